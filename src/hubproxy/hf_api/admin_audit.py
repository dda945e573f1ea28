"""The audit log over HTTP: `GET|DELETE /api/hubproxy/admin/audit`.

`GET ?user=&repo=&action=&since=&denied=&limit=` answers the records `hubproxy admin audit`
shows (oldest first, the newest `limit`), as JSON objects with the record's own field names.
A platform admin sees every record; a project admin (`Call.within`) only those about
its projects: their repos, the changes to the project, and for a proxy project the upstream
namespace it mirrors. `DELETE ?before=` deletes older records (`hubproxy admin prune-audit`).

The audit file is read and pruned on connections of its own, in a worker thread: SQLite's WAL
lets them run beside the server's queued writer, as the CLI does on the data dir.
"""

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.auth.audit import open_audit_database, prune_records, query_records
from hubproxy.errors import BadRequest
from hubproxy.hf_api.admin import boolean_query
from hubproxy.hf_api.bodies import MAX_STRING_LENGTH
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.parameters import decimal_query, whole_number_query

Result = TypeVar("Result")

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
# The end of year 9999: later times cannot be shown as dates (and are no audit cut-off).
LATEST_TIMESTAMP = 253_402_300_799


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and len(value) > MAX_STRING_LENGTH:
        raise BadRequest(f"'{name}' is longer than {MAX_STRING_LENGTH} characters")
    return value


def _timestamp(request: Request, name: str) -> float | None:
    """A `?name=` Unix time in seconds, from 0 to `LATEST_TIMESTAMP` (NaN and infinities
    are refused with the rest)."""
    return decimal_query(request, name, maximum=LATEST_TIMESTAMP)


def _limit(request: Request) -> int:
    limit = whole_number_query(
        request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT
    )
    assert limit is not None
    return limit


def reviewed_namespaces(call: Call) -> frozenset[str] | None:
    """What a project admin's records may be about: its projects, and the upstream namespaces
    its proxy projects mirror (their repos are governed, and audited, under both names)."""
    projects = call.within
    if projects is None:
        return None
    known = call.snapshot.projects
    mirrored = {known[name].upstream for name in projects if name in known}
    return projects | mirrored


async def on_audit_file(path: Path, call: Callable[[sqlite3.Connection], Result]) -> Result:
    """`call` on a connection of its own to the audit file, in a worker thread."""

    def run() -> Result:
        connection = open_audit_database(path)
        try:
            return call(connection)
        finally:
            connection.close()

    return await asyncio.to_thread(run)


async def audit(call: Call) -> Response:
    request, path = call.request, call.settings.audit_path
    if request.method == "DELETE":
        before = _timestamp(request, "before")
        if before is None:
            raise BadRequest("Name the records to delete: ?before=<Unix time>")
        deleted = await on_audit_file(path, lambda connection: prune_records(connection, before))
        call.record.reason = f"deleted {deleted} records before {time.ctime(before)}"
        return JSONResponse({"deleted": deleted})
    actor, repo, action = _text(request, "user"), _text(request, "repo"), _text(request, "action")
    since, denied, limit = (
        _timestamp(request, "since"),
        boolean_query(request, "denied"),
        _limit(request),
    )
    namespaces = reviewed_namespaces(call)
    records = await on_audit_file(
        path,
        lambda connection: query_records(
            connection,
            actor=actor,
            repo=repo,
            action=action,
            since=since,
            denied=denied,
            limit=limit,
            namespaces=namespaces,
        ),
    )
    return JSONResponse([record.as_dict() for record in records])
