"""The audit log over HTTP: `GET|DELETE /api/hubproxy/admin/audit`.

`GET ?user=&repo=&action=&since=&denied=&limit=` answers the records `hubproxy admin audit`
shows (oldest first, the newest `limit`), as JSON objects with the record's own field names.
A platform admin sees every record; a project admin (`Call.within`) only those about
its projects: their repos, the changes to the project, and for a proxy project the upstream
namespace it mirrors. `DELETE ?before=` deletes older records (`hubproxy admin prune-audit`).

The log is read and pruned through `Services.audit_log` (`auth/audit_log.py`): the data dir's
audit file, or with `database_url` the shared PostgreSQL table every replica writes to.
"""

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.auth.audit import delete_records, query_records
from hubproxy.errors import BadRequest
from hubproxy.hf_api.admin import boolean_query
from hubproxy.hf_api.bodies import MAX_STRING_LENGTH
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.parameters import decimal_query, whole_number_query

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


async def audit(call: Call) -> Response:
    request, log = call.request, call.services.audit_log
    if request.method == "DELETE":
        before = _timestamp(request, "before")
        if before is None:
            raise BadRequest("Name the records to delete: ?before=<Unix time>")
        deleted = await log.change(lambda connection: delete_records(connection, before))
        call.record.reason = f"deleted {deleted} records before {time.ctime(before)}"
        return JSONResponse({"deleted": deleted})
    actor, repo, action = _text(request, "user"), _text(request, "repo"), _text(request, "action")
    since, denied, limit = (
        _timestamp(request, "since"),
        boolean_query(request, "denied"),
        _limit(request),
    )
    namespaces = reviewed_namespaces(call)
    records = await log.read(
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
