"""`/admin/...`: projects and their members and robots, your tokens, the policy, the cache, and
the audit log (filters, keyset paging, CSV and JSON export).

The table (`web/table.py`) gives each page the API's platform action: `review` lets a project
admin in, with `Call.within` naming the projects they see; changes go through the same
functions as the API's (`projects.set_role`, `tokens.revoke_token`), so `auth.authz` decides
what may be handed on and the audit log records it under the same action.
"""

import csv
import datetime
import io
import json
from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from hubproxy.auth import accounts
from hubproxy.auth.audit import AUDITED_ACTIONS, FIELDS, AuditRecord, query_page
from hubproxy.auth.roles import ROLES
from hubproxy.errors import BadRequest, NotFound
from hubproxy.hf_api.admin_audit import MAX_LIMIT, reviewed_namespaces
from hubproxy.hf_api.bodies import MAX_STRING_LENGTH
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.parameters import whole_number_query
from hubproxy.hf_api.projects import robot_document, set_role
from hubproxy.hf_api.tokens import revoke_token
from hubproxy.naming import namespace
from hubproxy.web.dispatch_support import form_value
from hubproxy.web.render import page

AUDIT_PAGE_SIZE = 100
TOP_CACHED_REPOS = 20
_FILTERS = ("user", "repo", "action", "decision", "since", "until")


async def overview(call: Call) -> Response:
    return page(call, "admin.html", title="Administration", admin=call.within is None)


def _moment(value: str, name: str) -> float | None:
    """A time filter: Unix seconds, or a date (`2026-12-02`, `2026-12-02T04:00`) in UTC."""
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"'{name}' must be a date (YYYY-MM-DD[THH:MM]) or Unix time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _audit_filters(call: Call) -> dict[str, Any]:
    query = call.request.query_params
    given = {name: query.get(name, "") for name in _FILTERS}
    for name, value in given.items():
        if len(value) > MAX_STRING_LENGTH:
            raise BadRequest(f"'{name}' is longer than {MAX_STRING_LENGTH} characters")
    if given["decision"] not in ("", "allow", "deny"):
        raise BadRequest("'decision' must be allow or deny")
    return given


async def _records(
    call: Call, given: dict[str, Any], limit: int, before: int | None
) -> list[tuple[int, AuditRecord]]:
    namespaces = reviewed_namespaces(call)
    since, until = _moment(given["since"], "since"), _moment(given["until"], "until")
    return await call.services.audit_log.read(
        lambda connection: query_page(
            connection,
            limit=limit,
            actor=given["user"] or None,
            repo=given["repo"] or None,
            action=given["action"] or None,
            decision=given["decision"] or None,
            since=since,
            until=until,
            before_serial=before,
            namespaces=namespaces,
        ),
    )


async def audit(call: Call) -> Response:
    """The audit log, newest first, `AUDIT_PAGE_SIZE` a page (`?before=<serial>` pages on)."""
    given = _audit_filters(call)
    before = whole_number_query(call.request, "before", minimum=1)
    found = await _records(call, given, AUDIT_PAGE_SIZE + 1, before)
    shown = found[:AUDIT_PAGE_SIZE]
    kept = {name: value for name, value in given.items() if value}
    next_url = None
    if len(found) > AUDIT_PAGE_SIZE:
        next_url = "/admin/audit?" + urlencode({**kept, "before": shown[-1][0]})
    return page(
        call,
        "audit.html",
        title="Audit log",
        records=[record for _, record in shown],
        filters=given,
        actions=AUDITED_ACTIONS,
        next_url=next_url,
        first_url="/admin/audit?" + urlencode(kept) if before else None,
        export_query=urlencode(kept),
    )


async def audit_export(call: Call) -> Response:
    """The filtered log as CSV or JSON (`?format=`), newest first, at most `MAX_LIMIT`."""
    given = _audit_filters(call)
    kind = call.request.query_params.get("format", "csv")
    if kind not in ("csv", "json"):
        raise BadRequest("'format' must be csv or json")
    limit = whole_number_query(call.request, "limit", default=MAX_LIMIT, maximum=MAX_LIMIT)
    assert limit is not None
    records = [record.as_dict() for _, record in await _records(call, given, limit, None)]
    disposition = {"Content-Disposition": f'attachment; filename="audit.{kind}"'}
    if kind == "json":
        return Response(json.dumps(records), media_type="application/json", headers=disposition)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS)
    writer.writeheader()
    for record in records:
        # A cell starting with = + - @ is a formula to spreadsheets: quote it as text.
        writer.writerow(
            {
                name: f"'{value}" if isinstance(value, str) and value[:1] in "=+-@" else value
                for name, value in record.items()
            }
        )
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=disposition)


async def projects(call: Call) -> Response:
    listed = await call.read_accounts(accounts.list_projects)
    visible = [p for p in listed if call.within is None or p.name in call.within]
    return page(call, "projects.html", title="Projects", projects=visible)


async def project(call: Call) -> Response:
    """A project's members (with the role form) and robots."""
    name = call.route.project
    assert name is not None
    members = await call.read_accounts(lambda c: accounts.list_members(c, name))
    robots = await call.read_accounts(lambda c: accounts.list_robots(c, name))
    return page(
        call,
        "project.html",
        title=name,
        project=call.snapshot.projects.get(name),
        name=name,
        members=members,
        robots=[robot_document(robot) for robot in robots],
        roles=ROLES,
    )


async def member(call: Call) -> Response:
    """The member form: give a user a role in the project (added or changed)."""
    project_name = call.route.project
    assert project_name is not None
    user = namespace(form_value(call, "user").strip())
    if user not in call.snapshot.users:
        raise NotFound(f"No user {user!r}")
    call.record.path = user
    await set_role(call, project_name, user, form_value(call, "role"))
    return RedirectResponse(f"/admin/projects/{project_name}", status_code=303)


async def tokens(call: Call) -> Response:
    """Your own tokens; POST revokes one (revoking this session's token signs you out)."""
    if call.request.method == "POST":
        await revoke_token(call, form_value(call, "token_id"))
        return RedirectResponse("/admin/tokens", status_code=303)
    owner = call.principal.name
    listed = await call.read_accounts(lambda c: accounts.list_tokens(c, owner))
    return page(
        call,
        "tokens.html",
        title="Your tokens",
        tokens=[token for token in listed if token.owner_kind == "user"],
        current=call.principal.token_id,
    )


async def policy(call: Call) -> Response:
    snapshot = call.snapshot
    return page(
        call,
        "policy.html",
        title="Policy",
        policy=snapshot.policy,
        require_auth=call.settings.require_auth,
        users=sorted(snapshot.users.values(), key=lambda user: user.name),
    )


async def cache(call: Call) -> Response:
    """The cache: bytes stored, the repos holding most, and pins."""
    manager = call.services.cache
    usages = await manager.list_repos() if manager is not None else []
    metadata = call.services.proxied.metadata
    stored, (blob_count, pinned_bytes) = await metadata.stored_bytes(), await metadata.usage()
    top = sorted(usages, key=lambda usage: usage.cached_bytes, reverse=True)[:TOP_CACHED_REPOS]
    pinned = [usage for usage in usages if usage.pins]
    return page(
        call,
        "cache.html",
        title="Cache",
        stored=stored,
        limit=call.settings.cache_max_bytes,
        blob_count=blob_count,
        pinned_bytes=pinned_bytes,
        repo_count=len(usages),
        top=top,
        pinned=pinned,
    )
