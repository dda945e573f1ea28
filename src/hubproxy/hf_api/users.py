"""`GET /api/whoami-v2`, and the small endpoints clients call on the side."""

from starlette.responses import JSONResponse, Response

from hubproxy.auth.accounts import AccountsSnapshot
from hubproxy.errors import Unauthorized
from hubproxy.hf_api.call import Call


async def whoami(call: Call) -> Response:
    """The huggingface_hub shape: `type` is `user` for robots too (clients require it)."""
    principal = call.principal
    if principal.is_anonymous:
        raise Unauthorized(
            "No token: whoami needs a hubproxy token in 'Authorization: Bearer <token>' (HF_TOKEN)"
        )
    snapshot = call.snapshot
    if principal.kind == "robot":
        assert principal.robot_project is not None
        memberships = {principal.robot_project: "robot"}
        user = None
    else:
        memberships = dict(principal.roles)
        user = snapshot.users.get(principal.name)
    # A user's own namespace is `name`; `orgs` are the projects they belong to.
    orgs = [
        {"type": "org", "name": name, "fullname": _display_name(snapshot, name), "roleInOrg": role}
        for name, role in sorted(memberships.items())
    ]
    return JSONResponse(
        {
            "type": "user",
            "name": principal.name,
            "fullname": (user.fullname if user else "") or principal.name,
            "email": user.email if user and user.email else None,
            "isRobot": principal.kind == "robot",
            "isPlatformAdmin": bool(user and user.is_admin),
            "orgs": orgs,
            "auth": {
                "type": "access_token",
                "accessToken": {
                    "displayName": principal.token_name or principal.token_id,
                    "role": principal.scope,
                },
            },
        }
    )


def _display_name(snapshot: AccountsSnapshot, name: str) -> str:
    project = snapshot.projects.get(name)
    return project.display_name if project is not None else name


async def agent_harnesses(call: Call) -> Response:
    """huggingface_hub asks once per process which AI-agent environments to detect."""
    return JSONResponse({"standardEnvVars": [], "harnesses": {}})


async def telemetry(call: Call) -> Response:
    """Libraries' usage pings: accepted and dropped (nothing is sent upstream)."""
    return Response(status_code=200)
