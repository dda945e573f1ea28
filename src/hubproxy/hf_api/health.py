"""`/health/live` (the process answers), `/health/ready` (database and storage usable; else 503
with the `X-Error-Code` of the failing part, which takes a replica out of its Service) and
`/metrics` (open, or for any valid token with `metrics_require_auth`; refusals are audited)."""

import logging

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.auth.audit import AuditRecord
from hubproxy.auth.authz import authorize_metrics
from hubproxy.auth.principal import ANONYMOUS, Principal
from hubproxy.errors import DatabaseUnavailable, HubError, StorageUnavailable, TokenRefused
from hubproxy.hf_api.context import services
from hubproxy.hf_api.middleware import request_facts
from hubproxy.metrics import exposition

logger = logging.getLogger(__name__)


async def live(request: Request) -> JSONResponse:
    request_facts(request.scope).route = "health"
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus exposition of every metric of the server (`hubproxy.metrics.exposition`)."""
    request_facts(request.scope).route = "metrics"
    found = services(request)
    if found.settings.metrics_require_auth:
        principal: Principal = ANONYMOUS
        try:
            principal = await found.authenticator.authenticate(request.headers.get("authorization"))
        except TokenRefused as refused:
            await _audit_denial(request, principal, refused, refused.reason, refused.token_id)
            raise
        decision = authorize_metrics(principal, require_token=True)
        if not decision.allowed:
            assert decision.error is not None
            await _audit_denial(request, principal, decision.error, decision.reason)
            raise decision.error
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


async def _audit_denial(
    request: Request,
    principal: Principal,
    error: HubError,
    reason: str,
    token_id: str | None = None,
) -> None:
    record = AuditRecord(
        "metrics",
        decision="deny",
        actor_kind=principal.kind,
        actor_name=principal.name,
        token_id=token_id or principal.token_id,
        request_id=request_facts(request.scope).request_id,
        client=(request.scope.get("client") or ("", 0))[0] or None,
        user_agent=request.headers.get("user-agent"),
        method=request.method,
        route="metrics",
        status=error.status,
        reason=reason,
    )
    await services(request).audit.emit([record])


async def ready(request: Request) -> JSONResponse:
    request_facts(request.scope).route = "health"
    checks = await services(request).check_ready()
    healthy = all(value == "ok" for value in checks.values())
    if healthy:
        return JSONResponse({"status": "ready", **checks})
    logger.warning("readiness check failed: %s", checks)
    # The code of the first failing part, as the requests it would fail carry it.
    error = DatabaseUnavailable() if checks.get("database") != "ok" else StorageUnavailable()
    return JSONResponse(
        {"status": "unavailable", **checks},
        status_code=503,
        headers={"X-Error-Code": str(error.code)},
    )
