"""Project administration over HTTP, for project admins who have no access to the data dir.

`/api/organizations/{project}/members[/{user}]` (GET list, PUT `{"role"}`, DELETE) and
`/api/organizations/{project}/robots[/{name}]` (GET list, POST `{"name", "permissions",
"expires_in"}` → the token, shown once; DELETE revokes). The dispatcher has already checked
`manage_members` on the project; what may be handed on is decided by `auth.authz`
(`may_grant`, `may_create_robot`): a role or a robot's permissions only within what the caller
holds there, a role change or removal only of members whose role is within it too, a robot
expiring no later than the caller's token. Refusals are audited by the dispatcher.
"""

from typing import Any

from starlette.responses import JSONResponse, Response

from hubproxy.auth import accounts
from hubproxy.auth.accounts import AccountNotFound, Robot
from hubproxy.auth.authz import enforce, may_create_robot, may_grant, may_revoke_robot
from hubproxy.auth.roles import ROLES
from hubproxy.errors import BadRequest
from hubproxy.hf_api.bodies import json_object, required_string, strings_field
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.tokens import bounded_expiry

MAX_BODY_BYTES = 64 * 1024


def robot_document(robot: Robot) -> dict[str, Any]:
    return {
        "name": robot.name,
        "project": robot.project,
        "permissions": sorted(robot.permissions),
        "expires": robot.expires,
        "revoked": robot.revoked,
        "created": robot.created,
        "createdBy": robot.created_by,
    }


def _project(call: Call) -> str:
    """The project the URL names (in its canonical spelling, after authorization)."""
    assert call.route.project is not None
    return call.route.project


async def members(call: Call) -> Response:
    project = _project(call)
    listed = await call.read_accounts(lambda connection: accounts.list_members(connection, project))
    return JSONResponse([{"user": user, "role": role} for user, role in listed])


async def member(call: Call) -> Response:
    project, user = _project(call), call.route.subject
    granter, snapshot = call.principal, call.snapshot
    # Checked against the snapshot: the role the member holds now, as requests see it.
    current = snapshot.roles.get(user, {}).get(project)
    if call.request.method == "DELETE":
        enforce(may_grant(granter, project, None, snapshot, current_role=current))
        await call.apply_account_change(
            lambda connection: accounts.remove_member(connection, project, user)
        )
        return JSONResponse({"project": project, "user": user, "removed": True})
    role = (await json_object(call.request, MAX_BODY_BYTES)).get("role")
    await set_role(call, project, user, role)
    return JSONResponse({"project": project, "user": user, "role": role})


async def set_role(call: Call, project: str, user: str, role: object) -> None:
    """Give `user` the `role` in `project` (added, or changed), if the caller may hand it on
    (`authz.may_grant`); what the member API and the web UI's member form do."""
    if not isinstance(role, str) or role not in ROLES:
        raise BadRequest(f"Body needs a 'role', one of {', '.join(ROLES)}")
    call.record.reason = f"role={role[:64]}"
    current = call.snapshot.roles.get(user, {}).get(project)
    enforce(may_grant(call.principal, project, role, call.snapshot, current_role=current))
    await call.apply_account_change(
        lambda connection: accounts.add_member(connection, project, user, role)
    )


async def robots(call: Call) -> Response:
    project = _project(call)
    if call.request.method == "GET":
        listed = await call.read_accounts(
            lambda connection: accounts.list_robots(connection, project)
        )
        return JSONResponse([robot_document(robot) for robot in listed])
    payload = await json_object(call.request, MAX_BODY_BYTES)
    name = required_string(payload, "name")
    permissions = strings_field(payload, "permissions")
    if permissions is None:
        permissions = ["read"]
    call.record.path, call.record.reason = name, f"permissions={','.join(permissions)}"
    creator = call.principal
    expires = bounded_expiry(call, payload)
    if expires is None:
        # Omitted: as long as the creator's own token (never, for a token that never expires).
        expires = creator.token_expires
    enforce(may_create_robot(creator, project, permissions, expires, call.snapshot))
    robot, token, secret = await call.apply_account_change(
        lambda connection: accounts.create_robot(
            connection, project, name, permissions, expires=expires, created_by=creator.name
        ),
    )
    return JSONResponse({**robot_document(robot), "tokenId": token.id, "token": secret}, 201)


async def robot(call: Call) -> Response:
    project, name = _project(call), call.route.subject
    revoker, snapshot = call.principal, call.snapshot

    def revoke(connection: Any) -> Robot:
        found = accounts.get_robot(connection, name)
        if found.project != project:
            raise AccountNotFound(f"no robot {name!r} in {project!r}")
        enforce(may_revoke_robot(revoker, project, found.permissions, snapshot))
        return accounts.revoke_robot(connection, name)

    return JSONResponse(robot_document(await call.apply_account_change(revoke)))
