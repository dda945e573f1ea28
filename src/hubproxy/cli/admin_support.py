"""What the `hubproxy admin` commands share: their context (data dir, or a running server
with `--endpoint`), one transaction per change with its audit record, remote calls with HTTP
errors as exit codes, durations, and showing a new token once."""

import dataclasses
import datetime
import getpass
import json
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
import typer

from hubproxy.auth.accounts import AccountError
from hubproxy.auth.audit import AuditRecord, open_audit_database, write_records
from hubproxy.db import Database, DatabaseError
from hubproxy.settings import Settings

Result = TypeVar("Result")

Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclasses.dataclass
class AdminContext:
    settings: Settings
    # Set for `--endpoint`: members and robots are managed through that running server.
    endpoint: str | None = None
    token: str | None = None


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"hubproxy admin: {message}", err=True)
    return typer.Exit(code)


def admin_context(context: typer.Context) -> AdminContext:
    found: AdminContext = context.find_root().obj if context.obj is None else context.obj
    return found


_EXIT_BY_STATUS = {400: 2, 404: 3, 409: 4}
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
        raise fail(f"cannot reach {found.endpoint}: {error}") from None
    if response.is_error:
        message = response.headers.get("x-error-message") or response.reason_phrase
        hint = _REFUSAL_HINTS.get(response.status_code)
        raise fail(
            f"{response.status_code}: {message}" + (f" ({hint})" if hint else ""),
            _EXIT_BY_STATUS.get(response.status_code, 1),
        )
    try:
        return response.json()
    except ValueError:
        raise fail(f"{found.endpoint} did not answer JSON: is it a hubproxy?") from None


def admin_settings(context: typer.Context) -> Settings:
    return admin_context(context).settings


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
) -> Result:
    """Run `function` in one transaction on the data dir's database; audit what it did."""
    if admin_context(context).endpoint is not None:
        raise fail("this command works on the data dir only (drop --endpoint)", 2)
    settings = admin_settings(context)
    database = Database(settings.database_path)
    try:
        database.open_sync()
        result = database.run_sync(function)
    except AccountError as error:
        raise fail(str(error), error.exit_code) from None
    except (DatabaseError, sqlite3.Error) as error:
        raise fail(f"cannot use the database in {settings.data_dir}: {error}") from None
    finally:
        database.close_sync()
    if audit is not None:
        record = audit(result)
        record.actor_kind, record.actor_name = "cli", operator()
        record.route = "admin-cli"
        connection = open_audit_database(settings.audit_path)
        try:
            write_records(connection, [record])
        finally:
            connection.close()
    return result


def operator() -> str:
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
