"""Discussions and pull requests of hosted repos (hf-protocol.md §12), in the shapes
huggingface_hub's `community.py` parses.

`GET|POST .../discussions`, `GET .../discussions/{num}?diff=1`, and the changes
`.../discussions/{num}/{comment,comment/{id}/edit,comment/{id}/hide,title,status,merge}`. The
endpoint table authorizes reading (`read`), opening and commenting (`write`) and merging
(`manage_refs`); what depends on who wrote the discussion or comment is decided here with
`authz`, once it has been read. Proxied repos have no discussions here: they list none.
"""

from typing import Any

from starlette.responses import JSONResponse, Response

from hubproxy.auth.authz import enforce, may_edit_comment, may_moderate_discussion
from hubproxy.errors import BadRequest, NotFound
from hubproxy.hf_api.bodies import json_object
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.hosted import hosted_repo
from hubproxy.hf_api.parameters import whole_number_query
from hubproxy.hub.discussions import (
    CLOSED,
    COMMENT,
    DISCUSSION_NOT_FOUND,
    DRAFT,
    MERGED,
    OPEN,
    STATUSES,
    DiscussionRecord,
    EventRecord,
    checked_comment,
    checked_title,
)
from hubproxy.hub.pull_requests import diff, merge
from hubproxy.hub.store import iso_date

PAGE_SIZE = 50
KINDS = ("all", "discussion", "pull_request")
# What the client fills in for a blank description (hf_api.create_discussion).
MAX_PAGE = 10**6


def _author(name: str) -> dict[str, str]:
    return {"name": name}


def _summary(call: Call, record: DiscussionRecord) -> dict[str, Any]:
    """A discussion as listings show it (and the head of its details)."""
    return {
        "num": record.num,
        "title": record.title,
        "status": record.status,
        "isPullRequest": record.is_pull_request,
        "createdAt": iso_date(record.created),
        "author": _author(record.author),
        "repo": {"name": call.repo.repo_id, "type": call.repo.repo_type},
        "pinned": False,
        "locked": False,
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    """An event as `community.deserialize_event` reads it (dates as the Hub writes them)."""
    data = event.data
    if event.type == COMMENT:

        def version(latest: dict[str, Any]) -> dict[str, Any]:
            return {
                "raw": latest["raw"],
                "html": latest["html"],
                "updatedAt": iso_date(latest["updatedAt"]),
                "author": _author(latest["author"]),
            }

        data = {
            "edited": data["edited"],
            "hidden": data["hidden"],
            "latest": version(data["latest"]),
            "history": [version(item) for item in data["history"]],
        }
    return {
        "id": event.event_id,
        "type": event.type,
        "createdAt": iso_date(event.created),
        "author": _author(event.author),
        "data": data,
    }


async def details(call: Call, num: int) -> dict[str, Any]:
    """A discussion with its events (and a pull request's changes and diff), as the API
    answers it."""
    record = await call.hub.discussions.get(call.repo, num)
    document = _summary(call, record)
    document["events"] = [event_json(event) for event in await call.hub.discussions.events(
        call.repo, num
    )]  # fmt: skip
    if record.is_pull_request:
        base_branch, base_commit, head_commit = record.branches
        repos = call.hub.repos
        base = await repos.files(call.repo, base_commit)
        head = await repos.files(call.repo, head_commit)
        changes: dict[str, Any] = {"base": f"refs/heads/{base_branch}"}
        if record.merge_commit:
            changes["mergeCommitId"] = record.merge_commit
        conflicts: list[str] = []
        target = (await repos.refs(call.repo))["branch"].get(base_branch)
        if record.status in (OPEN, DRAFT) and target is not None:
            conflicts = merge(base, await repos.files(call.repo, target), head).conflicts
        document["changes"] = changes
        document["filesWithConflicts"] = conflicts
        document["diff"] = await diff(call.hub.content, base, head)
    return document


def _num(call: Call) -> int:
    return call.route.discussion


async def discussions(call: Call) -> Response:
    """`get_repo_discussions` (GET, paged by `p`) and `create_discussion` /
    `create_pull_request` (POST)."""
    if call.request.method == "POST":
        return await _create(call)
    query = call.request.query_params
    kind = query.get("type", "all")
    status = query.get("status", "all")
    author = query.get("author")
    if kind not in KINDS:
        raise BadRequest(f"'type' must be one of {', '.join(KINDS)}")
    if status != "all" and status not in STATUSES:
        raise BadRequest(f"'status' must be all or one of {', '.join(STATUSES)}")
    page = whole_number_query(call.request, "p", default=0, maximum=MAX_PAGE) or 0
    start = page * PAGE_SIZE
    if not call.hosted:
        # Proxied repos: the repo must exist (404 otherwise); hubproxy keeps no discussions.
        await call.repo_store.repo_info(call.repo, None, [])
        return JSONResponse({"discussions": [], "count": 0, "start": start})
    records, count = await call.hub.discussions.page(
        call.repo, kind=kind, status=status, author=author, start=start, limit=PAGE_SIZE
    )
    return JSONResponse(
        {"discussions": [_summary(call, record) for record in records], "count": count,
         "start": start}
    )  # fmt: skip


def _require_hosted(call: Call) -> None:
    if not call.hosted:
        raise NotFound(DISCUSSION_NOT_FOUND)


async def _create(call: Call) -> Response:
    _require_hosted(call)
    payload = await json_object(call.request)
    title = checked_title(payload.get("title"))
    description = payload.get("description") or ""
    if description:
        description = checked_comment(description, "description")
    pull_request = payload.get("pullRequest", False)
    if not isinstance(pull_request, bool):
        raise BadRequest("'pullRequest' must be true or false")
    author = call.principal.name
    if pull_request:
        num = await call.hub.create_pull_request(call.repo, title, description, author)
        call.record.revision = f"refs/pr/{num}"
    else:
        num = await call.hub.discussions.create(
            call.repo, title=title, description=description, author=author
        )
    call.record.path = f"discussions/{num}"
    call.record.reason = "pull request" if pull_request else "discussion"
    return JSONResponse(await details(call, num))


async def discussion(call: Call) -> Response:
    """`get_discussion_details`: the discussion, its events, and for a pull request its
    target, conflicts and diff."""
    _require_hosted(call)
    return JSONResponse(await details(call, _num(call)))


async def comment(call: Call) -> Response:
    _require_hosted(call)
    payload = await json_object(call.request)
    text = checked_comment(payload.get("comment"))
    event = await call.hub.discussions.comment(call.repo, _num(call), call.principal.name, text)
    return JSONResponse({"newMessage": event_json(event)})


async def _moderate(call: Call, author: str, what: str) -> None:
    """Authorize a change to something `author` wrote (`authz.may_moderate_discussion`)."""
    _, visibility = await hosted_repo(call, call.repo)
    enforce(
        may_moderate_discussion(
            call.principal,
            author,
            what,
            call.repo.repo_id,
            call.snapshot,
            require_auth=call.settings.require_auth,
            repo=visibility,
        )
    )


async def comment_edit(call: Call) -> Response:
    _require_hosted(call)
    payload = await json_object(call.request)
    text = checked_comment(payload.get("content"), "content")
    discussions = call.hub.discussions
    existing = await discussions.comment_event(call.repo, _num(call), call.route.subject)
    enforce(may_edit_comment(call.principal, existing.author))
    event = await discussions.update_comment(
        call.repo, _num(call), existing.event_id, call.principal.name, text
    )
    call.record.reason = "comment edited"
    return JSONResponse({"updatedComment": event_json(event)})


async def comment_hide(call: Call) -> Response:
    _require_hosted(call)
    discussions = call.hub.discussions
    existing = await discussions.comment_event(call.repo, _num(call), call.route.subject)
    await _moderate(call, existing.author, "hide")
    event = await discussions.update_comment(
        call.repo, _num(call), existing.event_id, call.principal.name, None
    )
    call.record.reason = "comment hidden"
    return JSONResponse({"updatedComment": event_json(event)})


async def title(call: Call) -> Response:
    _require_hosted(call)
    payload = await json_object(call.request)
    new_title = checked_title(payload.get("title"))
    record = await call.hub.discussions.get(call.repo, _num(call))
    await _moderate(call, record.author, "rename")
    event = await call.hub.discussions.rename(call.repo, _num(call), call.principal.name, new_title)
    call.record.reason = "renamed"
    return JSONResponse({"newTitle": event_json(event)})


async def status(call: Call) -> Response:
    _require_hosted(call)
    payload = await json_object(call.request)
    new_status = payload.get("status")
    if new_status not in (OPEN, CLOSED):
        raise BadRequest("'status' must be open or closed")
    text = payload.get("comment")
    if text is not None:
        text = checked_comment(text)
    record = await call.hub.discussions.get(call.repo, _num(call))
    await _moderate(call, record.author, "close or reopen")
    event = await call.hub.discussions.change_status(
        call.repo, _num(call), call.principal.name, new_status, text
    )
    call.record.reason = new_status
    return JSONResponse({"newStatus": event_json(event)})


async def merge_pull_request(call: Call) -> Response:
    """`merge_pull_request`: no body, or `{"comment"}`; the answer is not read."""
    _require_hosted(call)
    payload = await json_object(call.request)
    text = payload.get("comment")
    if text is not None:
        text = checked_comment(text)
    num = _num(call)
    call.record.revision = f"refs/pr/{num}"
    sha = await call.hub.merge_pull_request(call.repo, num, call.actor, text)
    call.record.commit_sha = sha
    return JSONResponse({"status": MERGED, "mergeCommitId": sha})
