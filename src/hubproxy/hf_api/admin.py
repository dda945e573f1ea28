"""Platform administration over HTTP, for operators who have no access to the data dir.

What `hubproxy admin --endpoint URL --token hp_...` calls instead of working on the data dir
(paths under `/api/hubproxy/admin`):

- `GET users`, `POST users` (`{"name", "fullname", "email", "isAdmin"}`),
  `PUT|DELETE users/{name}/disabled` (disable, enable);
- `GET projects`, `POST projects` (`{"name", "kind", "public", "upstreamNamespace",
  "fullname"}`),
  `DELETE projects/{name}[?delete_repos=true]`;
- `GET robots` (every project's);
- `GET policy`, `PATCH policy` (`{"mode", "patterns", "requireAuth"}`, only the parts given).

The dispatcher has already decided the platform action (`auth.authz.authorize_platform`);
listings show only the projects `Call.within` names (None: all). It audits every change with
the caller as the actor under the action names the CLI writes; handlers name the target on
the call's audit record.
"""

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy import project_removal
from hubproxy.auth import accounts
from hubproxy.auth.accounts import Policy, Project, User
from hubproxy.errors import BadRequest
from hubproxy.hf_api.bodies import (
    boolean_field,
    json_object,
    required_string,
    string_field,
    strings_field,
)
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.projects import robot_document

MAX_BODY_BYTES = 64 * 1024
_BOOLEAN_QUERY = {"true": True, "1": True, "false": False, "0": False}


def boolean_query(request: Request, name: str) -> bool:
    """A `?name=true|false|1|0` flag (absent: false)."""
    value = request.query_params.get(name)
    if value is None:
        return False
    if value not in _BOOLEAN_QUERY:
        raise BadRequest(f"'{name}' must be true or false")
    return _BOOLEAN_QUERY[value]


def _user_document(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "fullname": user.fullname,
        "email": user.email,
        "isAdmin": user.is_admin,
        "disabled": user.disabled,
        "created": user.created,
    }


def _project_document(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "kind": project.kind,
        "public": project.public,
        "upstreamNamespace": project.upstream_namespace,
        "fullname": project.fullname,
        "created": project.created,
    }


def _policy_document(policy: Policy) -> dict[str, Any]:
    return {
        "mode": policy.mode,
        "patterns": list(policy.patterns),
        "requireAuth": policy.require_auth,
    }


async def users(call: Call) -> Response:
    if call.request.method == "GET":
        listed = await call.read_accounts(accounts.list_users)
        return JSONResponse([_user_document(user) for user in listed])
    payload = await json_object(call.request, MAX_BODY_BYTES)
    name = required_string(payload, "name")
    fullname = string_field(payload, "fullname") or ""
    email = string_field(payload, "email") or ""
    is_admin = boolean_field(payload, "isAdmin") or False
    call.record.path, call.record.reason = name, f"admin={is_admin}"
    user = await call.apply_account_change(
        lambda connection: accounts.create_user(
            connection, name, fullname=fullname, email=email, is_admin=is_admin
        ),
    )
    return JSONResponse(_user_document(user), 201)


async def user_disabled(call: Call) -> Response:
    # The flag as a resource: PUT sets it (disable), DELETE clears it (enable).
    disabled, name = call.request.method == "PUT", call.route.subject
    user = await call.apply_account_change(
        lambda connection: accounts.set_user_disabled(connection, name, disabled)
    )
    return JSONResponse(_user_document(user))


async def projects(call: Call) -> Response:
    if call.request.method == "GET":
        visible = call.within
        listed = await call.read_accounts(accounts.list_projects)
        return JSONResponse(
            [
                _project_document(project)
                for project in listed
                if visible is None or project.name in visible
            ]
        )
    payload = await json_object(call.request, MAX_BODY_BYTES)
    name = required_string(payload, "name")
    kind = string_field(payload, "kind") or "hosted"
    public = boolean_field(payload, "public") or False
    upstream_namespace = string_field(payload, "upstreamNamespace")
    fullname = string_field(payload, "fullname") or ""
    call.record.repo_id = name
    project = await call.apply_account_change(
        lambda connection: accounts.create_project(
            connection,
            name,
            kind=kind,
            public=public,
            upstream_namespace=upstream_namespace,
            fullname=fullname,
        ),
    )
    call.record.reason = f"kind={project.kind} public={project.public}"
    return JSONResponse(_project_document(project), 201)


async def project(call: Call) -> Response:
    assert call.route.project is not None
    name = call.route.project
    delete_repos = boolean_query(call.request, "delete_repos")
    deleted = await call.apply_account_change(
        lambda connection: project_removal.delete_project(
            connection, name, delete_repos=delete_repos
        ),
    )
    return JSONResponse(_project_document(deleted))


async def robots(call: Call) -> Response:
    visible = call.within
    listed = await call.read_accounts(accounts.list_robots)
    return JSONResponse(
        [robot_document(robot) for robot in listed if visible is None or robot.project in visible]
    )


async def policy(call: Call) -> Response:
    if call.request.method == "GET":
        return JSONResponse(_policy_document(await call.read_accounts(accounts.get_policy)))
    payload = await json_object(call.request, MAX_BODY_BYTES)
    mode = string_field(payload, "mode")
    patterns = strings_field(payload, "patterns")
    require_auth = boolean_field(payload, "requireAuth")
    changed = await call.apply_account_change(
        lambda connection: accounts.set_policy(
            connection, mode=mode, patterns=patterns, require_auth=require_auth
        ),
    )
    call.record.reason = (
        f"mode={changed.mode} patterns={','.join(changed.patterns)} "
        f"require_auth={changed.require_auth}"
    )
    return JSONResponse(_policy_document(changed))
