"""What the `hubproxy admin` commands share: their context (data dir, or a running server
with `--endpoint`), one transaction per change with its audit record, remote calls with HTTP
errors as exit codes, durations, and showing a new token once."""

import dataclasses
import datetime
import getpass
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
import typer

from hubproxy.auth.accounts import AccountError, exit_code_for_status
from hubproxy.auth.audit import AuditRecord, insert_records
from hubproxy.auth.audit_log import run_on_audit_log
from hubproxy.cli.common import (
    describe_http_error,
    failure,
    location,
    require_hubproxy_data,
    settings_here,
)
from hubproxy.db import DatabaseError, database_for
from hubproxy.settings import Settings, SettingsError, parse_seconds

Result = TypeVar("Result")

Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@dataclasses.dataclass
class AdminContext:
    settings: Settings
    # Set for `--endpoint`: members and robots are managed through that running server.
    endpoint: str | None = None
    token: str | None = None


fail = failure("admin")


def admin_context(context: typer.Context) -> AdminContext:
    """The data dir's settings and, with `--endpoint`, the server to work through; loaded once
    per command line from the shared options (`cli/common.py`)."""
    root = context.find_root()
    if not isinstance(root.obj, AdminContext):
        given = location(context)
        endpoint = given.endpoint.rstrip("/") if given.endpoint else None
        root.obj = AdminContext(settings_here(context), endpoint, given.token)
    found: AdminContext = root.obj
    return found


# What to do about a refusal, after the server's own message.
_REFUSAL_HINTS = {
    401: "give a valid hubproxy token with --token or HF_TOKEN",
    403: "this token's user, role or scope does not allow it",
}


def remote(context: typer.Context, method: str, path: str, body: Any = None) -> Any:
    """Call the admin API of the server given by --endpoint; HTTP errors become exit codes
    (400 → 2, 404 → 3, 409 → 4, a refusal (401, 403) or anything else → 1)."""
    found = admin_context(context)
    headers = {"Authorization": f"Bearer {found.token}"} if found.token else {}
    try:
        response = httpx.request(
            method, f"{found.endpoint}{path}", json=body, headers=headers, timeout=30
        )
    except httpx.HTTPError as error:
        raise fail(f"cannot reach {found.endpoint}: {describe_http_error(error)}") from None
    if response.is_error:
        message = response.headers.get("x-error-message") or response.reason_phrase
        hint = _REFUSAL_HINTS.get(response.status_code)
        raise fail(
            f"{response.status_code}: {message}" + (f" ({hint})" if hint else ""),
            exit_code_for_status(response.status_code),
        )
    try:
        return response.json()
    except ValueError:
        raise fail(f"{found.endpoint} did not answer JSON: is it a hubproxy?") from None


def admin_settings(context: typer.Context) -> Settings:
    return admin_context(context).settings


def database_name(settings: Settings) -> str:
    """The metadata database of `settings`, for messages (never with a password)."""
    if settings.database_url is not None:
        from hubproxy.db.postgres import redacted

        return redacted(settings.database_url)
    return f"in {settings.data_dir}"


def data_dir_settings(context: typer.Context) -> Settings:
    """`admin_settings` of a data dir that holds hubproxy data (else exit 1, saying so)."""
    return require_hubproxy_data(context, admin_settings(context))


def remote_path(context: typer.Context, project: str, *rest: str) -> str | None:
    """The admin API path for `project`, when working through --endpoint; else None."""
    if admin_context(context).endpoint is None:
        return None
    return "/".join(
        ("/api/organizations", quote(project, safe=""), *(quote(p, safe="") for p in rest))
    )


def change(
    context: typer.Context,
    function: Callable[[sqlite3.Connection], Result],
    audit: Callable[[Result], AuditRecord] | None = None,
    *,
    may_create: bool = False,
) -> Result:
    """Run `function` in one transaction on the data dir's database; audit what it did.

    A data dir without hubproxy data is refused (a typo must not make a new hub), unless
    `may_create` (the first admin is created before anything else exists).
    """
    if admin_context(context).endpoint is not None:
        raise fail("this command works on the data dir only (drop --endpoint)", 2)
    settings = admin_settings(context) if may_create else data_dir_settings(context)
    database = database_for(settings)
    try:
        database.open_sync()
        result = database.run_sync(function)
    except AccountError as error:
        raise fail(str(error), error.exit_code) from None
    except (DatabaseError, sqlite3.Error) as error:
        raise fail(f"cannot use the database {database_name(settings)}: {error}") from None
    finally:
        database.close_sync()
    if audit is not None:
        record = audit(result)
        record.actor_kind, record.actor_name = "cli", operator()
        record.route = "admin-cli"
        try:
            run_on_audit_log(settings, lambda connection: insert_records(connection, [record]))
        except DatabaseError as error:
            raise fail(f"done, but not audited: {error}") from None
    return result


def operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_time(text: str, *, future: bool) -> float:
    """`30d`, `12h`, `90m`, `2w` from now (ahead if `future`, else ago), or an ISO date/time."""
    try:
        seconds = parse_seconds(text)
    except SettingsError:
        pass
    else:
        return time.time() + seconds if future else time.time() - seconds
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"not a duration (30d, 12h) or ISO date: {text!r}", 2) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


def show_new_token(as_json: bool, document: dict[str, Any], summary: str, secret: str) -> None:
    if as_json:
        typer.echo(json.dumps({**document, "token": secret}))
        return
    typer.echo(summary)
    typer.echo("The token is shown only this once:")
    typer.echo(secret)
