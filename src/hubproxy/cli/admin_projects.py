"""`hubproxy admin project | member | robot`: projects, their members and robot accounts.

All of them also work through a running server (`--endpoint`), which is how project admins
without access to the data dir manage their members and robots, and how operators manage
projects without `kubectl exec`.
"""

import dataclasses
import time
from typing import Annotated, Any

import typer

from hubproxy.auth import accounts
from hubproxy.auth.accounts import AccountNotFound, Robot
from hubproxy.auth.audit import AuditRecord
from hubproxy.auth.roles import ACTIONS, ROLES
from hubproxy.cli.admin_api import admin_path, is_remote, project_from_api
from hubproxy.cli.admin_support import (
    Json,
    admin_context,
    change,
    fail,
    operator,
    parse_time,
    remote,
    remote_path,
    show_new_token,
)
from hubproxy.cli.common import command_group
from hubproxy.cli.output import emit, table, when
from hubproxy.project_removal import delete_project

robot_app = command_group("Robot accounts of one project.")
project_app = command_group("Namespaces: hosted repos or proxied upstream.")
member_app = command_group("Project members and their roles.")


# Robots


def _robot_from_api(answer: dict[str, Any]) -> Robot:
    return Robot(
        answer["name"],
        answer["project"],
        frozenset(action for action in ACTIONS if action in answer["permissions"]),
        answer["expires"],
        answer["revoked"],
        answer["created"],
        answer["createdBy"],
    )


def _robot_document(robot: Robot) -> dict[str, Any]:
    document = dataclasses.asdict(robot)
    document["permissions"] = sorted(robot.permissions)
    return document


@robot_app.command("create")
def robot_create(
    context: typer.Context,
    project: str,
    name: str,
    permission: Annotated[
        list[str] | None,
        typer.Option("--permission", "-p", help=f"Repeatable: {', '.join(ACTIONS)}."),
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime (90d) or an ISO date; default never.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Create a robot of PROJECT with explicit permissions; prints its token once, last."""
    expiry = parse_time(expires, future=True) if expires else None
    permissions = permission or ["read"]
    api_path = remote_path(context, project, "robots")
    if api_path is not None:
        answer = remote(
            context,
            "POST",
            api_path,
            {
                "name": name,
                "permissions": permissions,
                "expires_in": expiry - time.time() if expiry else None,
            },
        )
        robot, token_id, secret = _robot_from_api(answer), answer["tokenId"], answer["token"]
    else:
        robot, token, secret = change(
            context,
            lambda connection: accounts.create_robot(
                connection, project, name, permissions, expires=expiry, created_by=operator()
            ),
            lambda created: AuditRecord(
                "robot_create",
                token_id=created[1].id,
                repo_id=project,
                path=name,
                reason="permissions=" + ",".join(sorted(created[0].permissions)),
            ),
        )
        token_id = token.id
    show_new_token(
        as_json,
        {**_robot_document(robot), "token_id": token_id},
        f"created robot {robot.name} in {robot.project} "
        f"({', '.join(sorted(robot.permissions))}; expires {when(robot.expires)})",
        secret,
    )


def _remote_robots(context: typer.Context, project: str | None) -> list[Robot]:
    """The robots of `project` (or of every project the caller may review) on the server."""
    api_path = remote_path(context, project, "robots") if project else admin_path("robots")
    assert api_path is not None
    return [_robot_from_api(item) for item in remote(context, "GET", api_path)]


@robot_app.command("list")
def robot_list(
    context: typer.Context,
    project: Annotated[str | None, typer.Option(help="Only this project's robots.")] = None,
    as_json: Json = False,
) -> None:
    """Robot accounts (through --endpoint, a project admin's list only its projects')."""
    if admin_context(context).endpoint is not None:
        robots = _remote_robots(context, project)
    else:
        robots = change(context, lambda connection: accounts.list_robots(connection, project))
    rows = [("NAME", "PROJECT", "PERMISSIONS", "STATUS", "EXPIRES", "CREATED BY")]
    for robot in robots:
        rows.append(
            (
                robot.name,
                robot.project,
                ",".join(sorted(robot.permissions)),
                "revoked" if robot.revoked else "active",
                when(robot.expires),
                robot.created_by or "-",
            )
        )
    emit(as_json, [_robot_document(robot) for robot in robots], table(rows))


@robot_app.command("revoke")
def robot_revoke(
    context: typer.Context,
    name: str,
    project: Annotated[
        str | None, typer.Option(help="The robot's project (for --endpoint).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Revoke a robot and its token."""
    if admin_context(context).endpoint is not None:
        if project is None:
            # Robot names are unique: its project is the one it is listed in.
            project = next(
                (robot.project for robot in _remote_robots(context, None) if robot.name == name),
                None,
            )
            if project is None:
                raise fail(f"no robot {name!r}", AccountNotFound.exit_code)
        api_path = remote_path(context, project, "robots", name)
        assert api_path is not None
        robot = _robot_from_api(remote(context, "DELETE", api_path))
    else:
        robot = change(
            context,
            lambda connection: accounts.revoke_robot(connection, name),
            lambda robot: AuditRecord("robot_revoke", repo_id=robot.project, path=robot.name),
        )
    emit(as_json, _robot_document(robot), [f"revoked robot {robot.name}"])


# Projects


@project_app.command("create")
def project_create(
    context: typer.Context,
    name: str,
    kind: Annotated[
        str, typer.Option(help="hosted (private repos) or proxy (upstream).")
    ] = "hosted",
    upstream_namespace: Annotated[
        str | None,
        typer.Option(help="Proxy projects: the upstream namespace.", show_default="NAME"),
    ] = None,
    public: Annotated[bool, typer.Option("--public/--private", help="Anonymous read.")] = False,
    fullname: Annotated[
        str, typer.Option(help="Display name (whoami's orgs).", show_default="NAME")
    ] = "",
    as_json: Json = False,
) -> None:
    """Create a project (a namespace)."""
    if is_remote(context):
        body = {
            "name": name, "kind": kind, "public": public, "upstreamNamespace": upstream_namespace,
            "fullname": fullname,
        }  # fmt: skip
        project = project_from_api(remote(context, "POST", admin_path("projects"), body))
    else:
        project = change(
            context,
            lambda connection: accounts.create_project(
                connection,
                name,
                kind=kind,
                public=public,
                upstream_namespace=upstream_namespace,
                fullname=fullname,
            ),
            lambda project: AuditRecord(
                "project_create",
                repo_id=project.name,
                reason=f"kind={project.kind} public={project.public}",
            ),
        )
    visibility = "public" if project.public else "private"
    emit(as_json, dataclasses.asdict(project), [f"created {visibility} {kind} project {name}"])


@project_app.command("list")
def project_list(context: typer.Context, as_json: Json = False) -> None:
    """Every project (through --endpoint, a project admin's list only its own)."""
    if is_remote(context):
        answer = remote(context, "GET", admin_path("projects"))
        projects = [project_from_api(item) for item in answer]
    else:
        projects = change(context, accounts.list_projects)
    rows = [("NAME", "KIND", "VISIBILITY", "UPSTREAM", "CREATED")]
    for project in projects:
        upstream = project.upstream if project.kind == "proxy" else "-"
        visibility = "public" if project.public else "private"
        rows.append((project.name, project.kind, visibility, upstream, when(project.created)))
    emit(as_json, [dataclasses.asdict(project) for project in projects], table(rows))


@project_app.command("delete")
def project_delete(
    context: typer.Context,
    name: str,
    delete_repos: Annotated[
        bool, typer.Option("--delete-repos", help="Also delete the project's hosted repos.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Delete a project with its members and robots (cached upstream files stay cached).
    A project that holds hosted repos is only deleted with --delete-repos."""
    if is_remote(context):
        path = admin_path("projects", name, delete_repos=delete_repos or None)
        project = project_from_api(remote(context, "DELETE", path))
    else:
        project = change(
            context,
            lambda connection: delete_project(connection, name, delete_repos=delete_repos),
            lambda project: AuditRecord("project_delete", repo_id=project.name),
        )
    emit(as_json, dataclasses.asdict(project), [f"deleted project {name}"])


# Members


@member_app.command("add")
def member_add(
    context: typer.Context,
    project: str,
    user: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "viewer",
    as_json: Json = False,
) -> None:
    """Give USER a role in PROJECT (replaces the role they had)."""
    api_path = remote_path(context, project, "members", user)
    if api_path is not None:
        remote(context, "PUT", api_path, {"role": role})
    else:
        change(
            context,
            lambda connection: accounts.add_member(connection, project, user, role),
            lambda _: AuditRecord("member_add", repo_id=project, path=user, reason=f"role={role}"),
        )
    emit(
        as_json,
        {"project": project, "user": user, "role": role},
        [f"{user} is {role} of {project}"],
    )


@member_app.command("remove")
def member_remove(context: typer.Context, project: str, user: str, as_json: Json = False) -> None:
    """Remove USER from PROJECT."""
    api_path = remote_path(context, project, "members", user)
    if api_path is not None:
        remote(context, "DELETE", api_path)
    else:
        change(
            context,
            lambda connection: accounts.remove_member(connection, project, user),
            lambda _: AuditRecord("member_remove", repo_id=project, path=user),
        )
    emit(as_json, {"project": project, "user": user}, [f"removed {user} from {project}"])


@member_app.command("list")
def member_list(context: typer.Context, project: str, as_json: Json = False) -> None:
    """Members of PROJECT and their roles."""
    api_path = remote_path(context, project, "members")
    if api_path is not None:
        members = [(item["user"], item["role"]) for item in remote(context, "GET", api_path)]
    else:
        members = change(context, lambda connection: accounts.list_members(connection, project))
    rows = [("USER", "ROLE"), *members]
    emit(as_json, [{"user": user, "role": role} for user, role in members], table(rows))
