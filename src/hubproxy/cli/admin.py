"""`hubproxy admin`: users, tokens, robots, projects, members, policy and the audit log.

Works directly on the data dir, with or without a running server (which picks up changes
within a second), so the first admin can be created before anything runs. Project admins
without access to the data dir manage their project's members and robots through a running
server instead (`--endpoint URL --token hp_...`, the `/api/organizations/{project}/...` API):

    hubproxy admin --data-dir DIR user create alice --admin
    hubproxy admin --data-dir DIR token create alice --scope admin

Tables for people, `--json` for scripts. A created token is printed once, as the last line of
stdout. Exit codes: 0 done, 1 failed, 2 invalid input, 3 not found, 4 already exists. Every
change is written to the audit log with the operating-system user as the actor.
"""

import dataclasses
import datetime
import getpass
import json
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
import typer

from hubproxy.auth import accounts
from hubproxy.auth.accounts import AccountError, Robot, Token, User
from hubproxy.auth.audit import AuditRecord, open_audit_database, query_records, write_records
from hubproxy.auth.roles import ACTIONS, ROLES
from hubproxy.cli.output import emit, table, when
from hubproxy.db import Database, DatabaseError
from hubproxy.settings import Settings, SettingsError, load_settings

Result = TypeVar("Result")

app = typer.Typer(
    help="Manage users, tokens, robots, projects, roles and policy; read the audit log.",
    no_args_is_help=True,
)
user_app = typer.Typer(help="People who log in with tokens.", no_args_is_help=True)
token_app = typer.Typer(
    help="Access tokens (hp_...): shown once, stored hashed.", no_args_is_help=True
)
robot_app = typer.Typer(help="Robot accounts of one project.", no_args_is_help=True)
project_app = typer.Typer(
    help="Namespaces: hosted repos or proxied upstream.", no_args_is_help=True
)
member_app = typer.Typer(help="Project members and their roles.", no_args_is_help=True)
policy_app = typer.Typer(help="Access to namespaces that are not projects.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(robot_app, name="robot")
app.add_typer(project_app, name="project")
app.add_typer(member_app, name="member")
app.add_typer(policy_app, name="policy")

Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclasses.dataclass
class _Context:
    settings: Settings
    # Set for `--endpoint`: members and robots are managed through that running server.
    endpoint: str | None = None
    token: str | None = None


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"hubproxy admin: {message}", err=True)
    return typer.Exit(code)


@app.callback()
def admin(
    context: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Data dir [./hubproxy-data].")] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML config file (or HUBPROXY_CONFIG).")
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(help="Manage members and robots through this running hubproxy instead."),
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Token for --endpoint (or HF_TOKEN).", envvar="HF_TOKEN")
    ] = None,
) -> None:
    """Administer hubproxy directly on its data dir (or, for a project admin's members and
    robots, through a running server with --endpoint and a token)."""
    try:
        settings = load_settings({"data_dir": data_dir}, config_file=config)
    except SettingsError as error:
        raise _fail(f"configuration error: {error}", 2) from None
    context.obj = _Context(settings, endpoint.rstrip("/") if endpoint else None, token)


def _context(context: typer.Context) -> _Context:
    found: _Context = context.find_root().obj if context.obj is None else context.obj
    return found


_EXIT_BY_STATUS = {400: 2, 404: 3, 409: 4}


def _remote(context: typer.Context, method: str, path: str, body: Any = None) -> Any:
    """Call the admin API of the server given by --endpoint; HTTP errors become exit codes."""
    found = _context(context)
    headers = {"Authorization": f"Bearer {found.token}"} if found.token else {}
    try:
        response = httpx.request(
            method, f"{found.endpoint}{path}", json=body, headers=headers, timeout=30
        )
    except httpx.HTTPError as error:
        raise _fail(f"cannot reach {found.endpoint}: {error}") from None
    if response.is_error:
        message = response.headers.get("x-error-message") or response.reason_phrase
        raise _fail(
            f"{response.status_code}: {message}", _EXIT_BY_STATUS.get(response.status_code, 1)
        )
    return response.json()


def _settings(context: typer.Context) -> Settings:
    return _context(context).settings


def _remote_path(context: typer.Context, project: str, *rest: str) -> str | None:
    """The admin API path for `project`, when working through --endpoint; else None."""
    if _context(context).endpoint is None:
        return None
    return "/".join(
        ("/api/organizations", quote(project, safe=""), *(quote(p, safe="") for p in rest))
    )


def _change(
    context: typer.Context,
    function: Callable[[sqlite3.Connection], Result],
    audit: Callable[[Result], AuditRecord] | None = None,
) -> Result:
    """Run `function` in one transaction on the data dir's database; audit what it did."""
    if _context(context).endpoint is not None:
        raise _fail("this command works on the data dir only (drop --endpoint)", 2)
    settings = _settings(context)
    database = Database(settings.database_path)
    try:
        database.open_sync()
        result = database.run_sync(function)
    except AccountError as error:
        raise _fail(str(error), error.exit_code) from None
    except (DatabaseError, sqlite3.Error) as error:
        raise _fail(f"cannot use the database in {settings.data_dir}: {error}") from None
    finally:
        database.close_sync()
    if audit is not None:
        record = audit(result)
        record.actor_kind, record.actor_name = "cli", _operator()
        record.route = "admin-cli"
        connection = open_audit_database(settings.audit_path)
        try:
            write_records(connection, [record])
        finally:
            connection.close()
    return result


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_time(text: str, *, future: bool) -> float:
    """`30d`, `12h`, `90m`, `2w` from now (ahead if `future`, else ago), or an ISO date/time."""
    match = _DURATION.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return time.time() + seconds if future else time.time() - seconds
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"not a duration (30d, 12h) or ISO date: {text!r}", 2) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


# Users


def _user_document(user: User) -> dict[str, Any]:
    return dataclasses.asdict(user)


def _user_table(users: list[User]) -> list[str]:
    rows = [("NAME", "ADMIN", "STATUS", "EMAIL", "CREATED")]
    for user in users:
        status = "disabled" if user.disabled else "active"
        rows.append(
            (
                user.name,
                "yes" if user.is_admin else "no",
                status,
                user.email or "-",
                when(user.created),
            )
        )
    return table(rows)


@user_app.command("create")
def user_create(
    context: typer.Context,
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Platform administrator.")] = False,
    fullname: Annotated[str, typer.Option(help="Display name.")] = "",
    email: Annotated[str, typer.Option(help="Email address.")] = "",
    as_json: Json = False,
) -> None:
    """Create a user (then give them a token: `token create NAME`)."""
    user = _change(
        context,
        lambda connection: accounts.create_user(
            connection, name, fullname=fullname, email=email, is_admin=admin
        ),
        lambda user: AuditRecord("user_create", reason=f"admin={user.is_admin}", path=user.name),
    )
    emit(
        as_json, _user_document(user), [f"created user {user.name}" + (" (admin)" if admin else "")]
    )


@user_app.command("list")
def user_list(context: typer.Context, as_json: Json = False) -> None:
    """Every user."""
    users = _change(context, accounts.list_users)
    emit(as_json, [_user_document(user) for user in users], _user_table(users))


@user_app.command("disable")
def user_disable(context: typer.Context, name: str, as_json: Json = False) -> None:
    """Refuse every token of a user (reversible with `user enable`)."""
    user = _change(
        context,
        lambda connection: accounts.set_user_disabled(connection, name, True),
        lambda user: AuditRecord("user_disable", path=user.name),
    )
    emit(as_json, _user_document(user), [f"disabled user {user.name}"])


@user_app.command("enable")
def user_enable(context: typer.Context, name: str, as_json: Json = False) -> None:
    """Accept a disabled user's tokens again."""
    user = _change(
        context,
        lambda connection: accounts.set_user_disabled(connection, name, False),
        lambda user: AuditRecord("user_enable", path=user.name),
    )
    emit(as_json, _user_document(user), [f"enabled user {user.name}"])


# Tokens


def _token_document(token: Token) -> dict[str, Any]:
    return dataclasses.asdict(token)


def _show_new_token(as_json: bool, document: dict[str, Any], summary: str, secret: str) -> None:
    if as_json:
        typer.echo(json.dumps({**document, "token": secret}))
        return
    typer.echo(summary)
    typer.echo("The token is shown only this once:")
    typer.echo(secret)


@token_app.command("create")
def token_create(
    context: typer.Context,
    user: str,
    name: Annotated[str, typer.Option(help="A label, e.g. the machine it is for.")] = "",
    scope: Annotated[str, typer.Option(help="read, write or admin.")] = "read",
    expires: Annotated[
        str | None, typer.Option(help="Lifetime (30d, 12h) or an ISO date; default never.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Create a token for USER; prints it once, as the last line."""
    expiry = parse_time(expires, future=True) if expires else None
    token, secret = _change(
        context,
        lambda connection: accounts.create_token(
            connection, user, name=name, scope=scope, expires=expiry
        ),
        lambda created: AuditRecord(
            "token_create", token_id=created[0].id, path=user, reason=f"scope={scope}"
        ),
    )
    _show_new_token(
        as_json,
        _token_document(token),
        f"created token {token.id} for {user} (scope {token.scope}, expires {when(token.expires)})",
        secret,
    )


@token_app.command("list")
def token_list(
    context: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's or robot's tokens.")] = None,
    as_json: Json = False,
) -> None:
    """Tokens (ids, never secrets), with last use."""
    tokens = _change(context, lambda connection: accounts.list_tokens(connection, user))
    rows = [("ID", "OWNER", "KIND", "NAME", "SCOPE", "STATUS", "CREATED", "EXPIRES", "LAST USED")]
    now = time.time()
    for token in tokens:
        status = (
            "revoked"
            if token.revoked
            else "expired"
            if token.expires is not None and token.expires <= now
            else "active"
        )
        rows.append(
            (
                token.id,
                token.owner,
                token.owner_kind,
                token.name or "-",
                token.scope,
                status,
                when(token.created),
                when(token.expires),
                when(token.last_used),
            )
        )
    emit(as_json, [_token_document(token) for token in tokens], table(rows))


@token_app.command("revoke")
def token_revoke(context: typer.Context, token_id: str, as_json: Json = False) -> None:
    """Revoke a token by id (a running server refuses it within a second)."""
    token = _change(
        context,
        lambda connection: accounts.revoke_token(connection, token_id),
        lambda token: AuditRecord("token_revoke", token_id=token.id, path=token.owner),
    )
    emit(as_json, _token_document(token), [f"revoked token {token.id} of {token.owner}"])


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
    remote = _remote_path(context, project, "robots")
    if remote is not None:
        answer = _remote(
            context,
            "POST",
            remote,
            {
                "name": name,
                "permissions": permissions,
                "expires_in": expiry - time.time() if expiry else None,
            },
        )
        robot, token_id, secret = _robot_from_api(answer), answer["tokenId"], answer["token"]
    else:
        robot, token, secret = _change(
            context,
            lambda connection: accounts.create_robot(
                connection, project, name, permissions, expires=expiry, created_by=_operator()
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
    _show_new_token(
        as_json,
        {**_robot_document(robot), "token_id": token_id},
        f"created robot {robot.name} in {robot.project} "
        f"({', '.join(sorted(robot.permissions))}; expires {when(robot.expires)})",
        secret,
    )


@robot_app.command("list")
def robot_list(
    context: typer.Context,
    project: Annotated[str | None, typer.Option(help="Only this project's robots.")] = None,
    as_json: Json = False,
) -> None:
    """Robot accounts."""
    if _context(context).endpoint is not None:
        if project is None:
            raise _fail("with --endpoint, name the --project", 2)
        remote = _remote_path(context, project, "robots")
        assert remote is not None
        robots = [_robot_from_api(item) for item in _remote(context, "GET", remote)]
    else:
        robots = _change(context, lambda connection: accounts.list_robots(connection, project))
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
    if _context(context).endpoint is not None:
        if project is None:
            raise _fail("with --endpoint, name the robot's --project", 2)
        remote = _remote_path(context, project, "robots", name)
        assert remote is not None
        robot = _robot_from_api(_remote(context, "DELETE", remote))
    else:
        robot = _change(
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
        str | None, typer.Option(help="Proxy projects: the upstream namespace [NAME].")
    ] = None,
    public: Annotated[bool, typer.Option("--public/--private", help="Anonymous read.")] = False,
    as_json: Json = False,
) -> None:
    """Create a project (a namespace)."""
    project = _change(
        context,
        lambda connection: accounts.create_project(
            connection, name, kind=kind, public=public, upstream_namespace=upstream_namespace
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
    """Every project."""
    projects = _change(context, accounts.list_projects)
    rows = [("NAME", "KIND", "VISIBILITY", "UPSTREAM", "CREATED")]
    for project in projects:
        upstream = project.upstream if project.kind == "proxy" else "-"
        visibility = "public" if project.public else "private"
        rows.append((project.name, project.kind, visibility, upstream, when(project.created)))
    emit(as_json, [dataclasses.asdict(project) for project in projects], table(rows))


@project_app.command("delete")
def project_delete(context: typer.Context, name: str, as_json: Json = False) -> None:
    """Delete a project with its members and robots (cached upstream files stay cached)."""
    project = _change(
        context,
        lambda connection: accounts.delete_project(connection, name),
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
    remote = _remote_path(context, project, "members", user)
    if remote is not None:
        _remote(context, "PUT", remote, {"role": role})
    else:
        _change(
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
    remote = _remote_path(context, project, "members", user)
    if remote is not None:
        _remote(context, "DELETE", remote)
    else:
        _change(
            context,
            lambda connection: accounts.remove_member(connection, project, user),
            lambda _: AuditRecord("member_remove", repo_id=project, path=user),
        )
    emit(as_json, {"project": project, "user": user}, [f"removed {user} from {project}"])


@member_app.command("list")
def member_list(context: typer.Context, project: str, as_json: Json = False) -> None:
    """Members of PROJECT and their roles."""
    remote = _remote_path(context, project, "members")
    if remote is not None:
        members = [(item["user"], item["role"]) for item in _remote(context, "GET", remote)]
    else:
        members = _change(context, lambda connection: accounts.list_members(connection, project))
    rows = [("USER", "ROLE"), *members]
    emit(as_json, [{"user": user, "role": role} for user, role in members], table(rows))


# Policy


def _policy_lines(policy: accounts.Policy) -> list[str]:
    return [
        f"mode          {policy.mode}",
        f"patterns      {', '.join(policy.patterns) or '-'}",
        f"require auth  {'yes' if policy.require_auth else 'no'}",
    ]


@policy_app.command("show")
def policy_show(context: typer.Context, as_json: Json = False) -> None:
    """The upstream policy for namespaces that are not projects."""
    policy = _change(context, accounts.get_policy)
    emit(as_json, dataclasses.asdict(policy), _policy_lines(policy))


@policy_app.command("set")
def policy_set(
    context: typer.Context,
    mode: Annotated[
        str | None, typer.Option(help="allow-all, allow-list or deny-list (of --pattern).")
    ] = None,
    pattern: Annotated[
        list[str] | None,
        typer.Option(
            "--pattern", help="Repeatable repo id glob, e.g. 'meta-llama/*'. Replaces all."
        ),
    ] = None,
    require_auth: Annotated[
        bool | None,
        typer.Option("--require-auth/--allow-anonymous", help="Refuse anonymous requests."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Change the upstream policy (only the parts given)."""
    policy = _change(
        context,
        lambda connection: accounts.set_policy(
            connection, mode=mode, patterns=pattern, require_auth=require_auth
        ),
        lambda policy: AuditRecord(
            "policy_change",
            reason=f"mode={policy.mode} patterns={','.join(policy.patterns)} "
            f"require_auth={policy.require_auth}",
        ),
    )
    emit(as_json, dataclasses.asdict(policy), _policy_lines(policy))


# Audit


@app.command("audit")
def audit(
    context: typer.Context,
    user: Annotated[str | None, typer.Option(help="Actor name (user, robot, 'anonymous').")] = None,
    repo: Annotated[
        str | None, typer.Option(help="Repo id (or project, for admin changes).")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="download, upload, login, token_create...")
    ] = None,
    since: Annotated[str | None, typer.Option(help="1h, 7d or an ISO date/time.")] = None,
    denied: Annotated[bool, typer.Option("--denied", help="Only denials.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many (the newest).")] = 1000,
    as_json: Json = False,
) -> None:
    """Audit records, oldest first."""
    path = _settings(context).audit_path
    if not path.exists():
        emit(as_json, [], ["no audit records yet"])
        return
    connection = open_audit_database(path)
    try:
        records = query_records(
            connection,
            actor=user,
            repo=repo,
            action=action,
            denied=denied,
            limit=limit,
            since=parse_time(since, future=False) if since else None,
        )
    finally:
        connection.close()
    rows = [
        (
            "TIME",
            "ACTION",
            "DECISION",
            "ACTOR",
            "REPO",
            "PATH",
            "STATUS",
            "BYTES",
            "CACHE",
            "REASON",
        )
    ]
    for record in records:
        rows.append(
            (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.time)),
                record.action,
                record.decision,
                f"{record.actor_kind}:{record.actor_name}",
                record.repo_id or "-",
                record.path or "-",
                "-" if record.status is None else str(record.status),
                str(record.bytes_sent),
                record.cache or "-",
                record.reason or "-",
            )
        )
    emit(as_json, [record.as_dict() for record in records], table(rows))
