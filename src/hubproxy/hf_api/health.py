"""`/health/live` (the process answers) and `/health/ready` (database and storage usable)."""

import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.hf_api.context import services
from hubproxy.metrics import REGISTRY

logger = logging.getLogger(__name__)


async def live(request: Request) -> JSONResponse:
    request.scope["state"]["route"] = "health"
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus exposition of `hubproxy.metrics.REGISTRY`."""
    request.scope["state"]["route"] = "metrics"
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def ready(request: Request) -> JSONResponse:
    request.scope["state"]["route"] = "health"
    checks = await services(request).check_ready()
    healthy = all(value == "ok" for value in checks.values())
    if not healthy:
        logger.warning("readiness check failed: %s", checks)
    return JSONResponse(
        {"status": "ready" if healthy else "unavailable", **checks},
        status_code=200 if healthy else 503,
    )
