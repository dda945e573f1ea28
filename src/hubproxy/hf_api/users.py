"""`GET /api/whoami-v2`, and the small endpoints clients call on the side."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.errors import InvalidCredentials, Unauthorized
from hubproxy.hf_api.routing import RouteMatch


async def whoami(request: Request, match: RouteMatch) -> Response:
    authorization = request.headers.get("authorization", "")
    if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        raise Unauthorized(
            "No token: whoami needs a hubproxy token in 'Authorization: Bearer <token>' (HF_TOKEN)"
        )
    # No user accounts exist yet, so no token can be valid.
    raise InvalidCredentials()


async def agent_harnesses(request: Request, match: RouteMatch) -> Response:
    """huggingface_hub asks once per process which AI-agent environments to detect."""
    return JSONResponse({"standardEnvVars": [], "harnesses": {}})


async def telemetry(request: Request, match: RouteMatch) -> Response:
    """Libraries' usage pings: accepted and dropped (nothing is sent upstream)."""
    return Response(status_code=200)
