"""`hubproxy admin`: users, tokens, robots, projects, members, policy and the audit log.

Works directly on the data dir, with or without a running server (which picks up changes
within a second), so the first admin can be created before anything runs:

    hubproxy admin --data-dir DIR user create alice --admin
    hubproxy admin --data-dir DIR token create alice --scope admin

Every command also works through a running server, given `--endpoint URL --token hp_...` (or
HF_TOKEN): the admin API (`/api/hubproxy/admin/...`, `/api/hubproxy/tokens`,
`/api/organizations/{project}/...`) does the same change, authorized by the token's role
(platform admins everything; project admins their projects' members, robots and audit
records; users their own tokens) and audited with that principal as the actor. The output is
the same in both modes.

Tables for people, `--json` for scripts. A created token is printed once, as the last line of
stdout. Exit codes: 0 done, 1 failed (also a refused token or permission, 401/403, with the
server's reason), 2 invalid input, 3 not found, 4 already exists. Every change on the data
dir is written to the audit log with the operating-system user as the actor (`cli:<user>`).
"""

import dataclasses
import sqlite3
import time
from typing import Annotated, Any
from urllib.parse import quote

import typer

from hubproxy.auth import accounts
from hubproxy.auth.accounts import Token, User
from hubproxy.auth.audit import AuditRecord, delete_records, insert_records, query_records
from hubproxy.auth.audit_log import audit_log_exists, run_on_audit_log
from hubproxy.cli import admin_backup, admin_migrate, admin_protections
from hubproxy.cli.admin_api import (
    admin_path,
    audit_record_from_api,
    is_remote,
    policy_from_api,
    user_from_api,
)
from hubproxy.cli.admin_projects import member_app, project_app, robot_app
from hubproxy.cli.admin_support import (
    Json,
    admin_context,
    change,
    data_dir_settings,
    fail,
    operator,
    parse_time,
    remote,
    show_new_token,
)
from hubproxy.cli.common import command_group
from hubproxy.cli.output import emit, table, when
from hubproxy.db import DatabaseError

# The most records one `audit` shows (the admin API's bound too).
MAX_AUDIT_LIMIT = 100_000

app = command_group("Manage users, tokens, robots, projects, roles and policy; read the audit log.")
user_app = command_group("People who log in with tokens.")
token_app = command_group("Access tokens (hp_...): shown once, stored hashed.")
policy_app = command_group("Access to namespaces that are not projects.")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(robot_app, name="robot")
app.add_typer(project_app, name="project")
app.add_typer(member_app, name="member")
app.add_typer(policy_app, name="policy")
admin_backup.register(app)
admin_protections.register(app)
admin_migrate.register(app)


@app.callback()
def admin() -> None:
    """Administer hubproxy directly on its data dir, or through a running server with
    --endpoint URL --token hp_... (your own tokens, a project admin's members and robots)."""


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
    """Create a user (then give them a token: `token create NAME`). The first admin is
    created on the data dir: before it exists, no server has anyone to authorize it."""
    if is_remote(context):
        body = {"name": name, "fullname": fullname, "email": email, "isAdmin": admin}
        user = user_from_api(remote(context, "POST", admin_path("users"), body))
    else:
        user = change(
            context,
            lambda connection: accounts.create_user(
                connection, name, fullname=fullname, email=email, is_admin=admin
            ),
            lambda user: AuditRecord(
                "user_create", reason=f"admin={user.is_admin}", path=user.name
            ),
            # The first admin is how a new hub starts; everything else needs an existing one.
            may_create=admin,
        )
    emit(
        as_json, _user_document(user), [f"created user {user.name}" + (" (admin)" if admin else "")]
    )


@user_app.command("list")
def user_list(context: typer.Context, as_json: Json = False) -> None:
    """Every user."""
    if is_remote(context):
        users = [user_from_api(item) for item in remote(context, "GET", admin_path("users"))]
    else:
        users = change(context, accounts.list_users)
    emit(as_json, [_user_document(user) for user in users], _user_table(users))


def _set_disabled(context: typer.Context, name: str, disabled: bool, as_json: bool) -> None:
    verb = "disable" if disabled else "enable"
    if is_remote(context):
        # The API's flag resource: PUT disables, DELETE enables.
        method = "PUT" if disabled else "DELETE"
        user = user_from_api(remote(context, method, admin_path("users", name, "disabled")))
    else:
        user = change(
            context,
            lambda connection: accounts.set_user_disabled(connection, name, disabled),
            lambda user: AuditRecord(f"user_{verb}", path=user.name),
        )
    emit(as_json, _user_document(user), [f"{verb}d user {user.name}"])


@user_app.command("disable")
def user_disable(context: typer.Context, name: str, as_json: Json = False) -> None:
    """Refuse every token of a user (reversible with `user enable`)."""
    _set_disabled(context, name, True, as_json)


@user_app.command("enable")
def user_enable(context: typer.Context, name: str, as_json: Json = False) -> None:
    """Accept a disabled user's tokens again."""
    _set_disabled(context, name, False, as_json)


# Tokens


TOKENS_API = "/api/hubproxy/tokens"


def _token_from_api(answer: dict[str, Any]) -> Token:
    return Token(
        answer["id"], answer["ownerKind"], answer["owner"], answer["name"], answer["scope"],
        answer["created"], answer["expires"], answer["lastUsed"], answer["revoked"],
    )  # fmt: skip


def _token_document(token: Token) -> dict[str, Any]:
    return dataclasses.asdict(token)


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
    if admin_context(context).endpoint is not None:
        body: dict[str, Any] = {"user": user, "name": name, "scope": scope}
        if expiry is not None:
            body["expires_in"] = expiry - time.time()
        answer = remote(context, "POST", TOKENS_API, body)
        token, secret = _token_from_api(answer), answer["token"]
    else:
        token, secret = change(
            context,
            lambda connection: accounts.create_token(
                connection, user, name=name, scope=scope, expires=expiry
            ),
            lambda created: AuditRecord(
                "token_create", token_id=created[0].id, path=user, reason=f"scope={scope}"
            ),
        )
    show_new_token(
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
    if admin_context(context).endpoint is not None:
        query = f"?user={quote(user, safe='')}" if user else ""
        tokens = [_token_from_api(item) for item in remote(context, "GET", TOKENS_API + query)]
    else:
        tokens = change(context, lambda connection: accounts.list_tokens(connection, user))
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
    if admin_context(context).endpoint is not None:
        path = f"{TOKENS_API}/{quote(token_id, safe='')}"
        token = _token_from_api(remote(context, "DELETE", path))
    else:
        token = change(
            context,
            lambda connection: accounts.revoke_token(connection, token_id),
            lambda token: AuditRecord("token_revoke", token_id=token.id, path=token.owner),
        )
    emit(as_json, _token_document(token), [f"revoked token {token.id} of {token.owner}"])


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
    if is_remote(context):
        policy = policy_from_api(remote(context, "GET", admin_path("policy")))
    else:
        policy = change(context, accounts.get_policy)
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
    if is_remote(context):
        given = {"mode": mode, "patterns": pattern, "requireAuth": require_auth}
        body = {name: value for name, value in given.items() if value is not None}
        policy = policy_from_api(remote(context, "PATCH", admin_path("policy"), body))
    else:
        policy = change(
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


def _local_audit(
    context: typer.Context,
    user: str | None,
    repo: str | None,
    action: str | None,
    since: float | None,
    denied: bool,
    limit: int,
) -> list[AuditRecord] | None:
    """The audit records of the data dir (or of `database_url`); None when there is no audit
    log yet."""
    settings = data_dir_settings(context)
    if not audit_log_exists(settings):
        return None
    try:
        return run_on_audit_log(
            settings,
            lambda connection: query_records(
                connection,
                actor=user,
                repo=repo,
                action=action,
                denied=denied,
                limit=limit,
                since=since,
            ),
        )
    except DatabaseError as error:
        raise fail(str(error)) from None


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
    limit: Annotated[
        int, typer.Option(help="At most this many (the newest).", min=1, max=MAX_AUDIT_LIMIT)
    ] = 1000,
    as_json: Json = False,
) -> None:
    """Audit records, oldest first (through --endpoint, a project admin sees only those of
    its projects)."""
    start = parse_time(since, future=False) if since else None
    if is_remote(context):
        path = admin_path(
            "audit", user=user, repo=repo, action=action, since=start, denied=denied, limit=limit
        )
        records = [audit_record_from_api(item) for item in remote(context, "GET", path)]
    else:
        found = _local_audit(context, user, repo, action, start, denied, limit)
        if found is None:
            emit(as_json, [], ["no audit records yet"])
            return
        records = found
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


@app.command("prune-audit")
def prune_audit(
    context: typer.Context,
    before: Annotated[str, typer.Option(help="Delete records older than this: 90d or a date.")],
    as_json: Json = False,
) -> None:
    """Delete old audit records (the server does it hourly with --audit-retention)."""
    cutoff = parse_time(before, future=False)
    if is_remote(context):
        answer = remote(context, "DELETE", admin_path("audit", before=cutoff))
        deleted = answer["deleted"]
        emit(as_json, {"deleted": deleted}, [f"deleted {deleted} audit records"])
        return

    def prune(connection: sqlite3.Connection) -> int:
        deleted = delete_records(connection, cutoff)
        record = AuditRecord("audit_prune", actor_kind="cli", actor_name=operator())
        record.reason = f"deleted {deleted} records before {time.ctime(cutoff)}"
        record.route = "admin-cli"
        insert_records(connection, [record])
        return deleted

    try:
        deleted = run_on_audit_log(data_dir_settings(context), prune)
    except DatabaseError as error:
        raise fail(str(error)) from None
    emit(as_json, {"deleted": deleted}, [f"deleted {deleted} audit records"])
