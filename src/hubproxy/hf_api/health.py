"""`/health/live` (the process answers) and `/health/ready` (database and storage usable)."""

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from hubproxy.hf_api.context import services

logger = logging.getLogger(__name__)


async def live(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    checks = await services(request).check_ready()
    healthy = all(value == "ok" for value in checks.values())
    if not healthy:
        logger.warning("readiness check failed: %s", checks)
    return JSONResponse(
        {"status": "ready" if healthy else "unavailable", **checks},
        status_code=200 if healthy else 503,
    )
