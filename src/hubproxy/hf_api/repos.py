"""Repo metadata: info (`/api/{type}s/{repo}[/revision/{rev}]`), refs and commit history."""

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.constants import EXPAND_PROPERTIES, HEADER_STALE, PLURAL_BY_REPO_TYPE
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.parameters import whole_number_query
from hubproxy.stores import Answer

# Query parameters of repo info that change the document (hf-protocol.md §4.1).
# Deeper pages of a commit history are not served (they would be walked on every request).
MAX_PAGE = 1_000_000
_INFO_FLAGS = frozenset({"blobs", "securityStatus", "files_metadata"})
_TRUE = frozenset({"1", "true"})


def info_query(request: Request) -> list[tuple[str, str]]:
    """The query of a repo info request that changes the document, in one canonical form:
    flags as `true` (false ones dropped), `expand` as the sorted set of known properties
    (`constants.EXPAND_PROPERTIES`). Everything else is left out, so random values never
    become upstream requests or cache keys of their own."""
    params = request.query_params
    flags = [
        (name, "true") for name in sorted(_INFO_FLAGS) if params.get(name, "").lower() in _TRUE
    ]
    expanded = set(params.getlist("expand") + params.getlist("expand[]")) & EXPAND_PROPERTIES
    return flags + [("expand", value) for value in sorted(expanded)]


def json_answer(answer: Answer, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if answer.stale:
        headers[HEADER_STALE] = "true"
    return JSONResponse(answer.body, headers=headers)


async def repo_info(call: Call) -> Response:
    query = info_query(call.request)
    answer = await call.repo_store.repo_info(call.repo, call.route.revision, query)
    return json_answer(answer)


async def auth_check(call: Call) -> Response:
    """`auth_check(repo_id[, write=True])`: 200 when the caller may read (write) the repo; the
    refusals are authorization's (401/404 `RepoNotFound`, 403, `GatedRepo`)."""
    await call.repo_store.repo_info(call.repo, None, [])
    return JSONResponse({})


async def refs(call: Call) -> Response:
    include_prs = call.request.query_params.get("include_prs", "").lower() in ("1", "true")
    answer = await call.repo_store.refs(call.repo, include_prs=include_prs)
    return json_answer(answer)


async def commits(call: Call) -> Response:
    request = call.request
    page = whole_number_query(request, "p", default=0, maximum=MAX_PAGE)
    assert page is not None
    expand = request.query_params.getlist("expand") + request.query_params.getlist("expand[]")
    formatted = "formatted" in expand
    result = await call.repo_store.commits(call.repo, call.revision, page, formatted=formatted)
    headers: dict[str, str] = {}
    if result.has_next:
        # Pin the next page to the commit: the listing stays consistent if the branch moves.
        plural = PLURAL_BY_REPO_TYPE[call.repo.repo_type]
        url = (
            f"{call.base_url}/api/{plural}/{call.repo.repo_id}/commits/"
            f"{quote(result.commit, safe='')}?"
            + urlencode([("p", str(page + 1))] + ([("expand[]", "formatted")] if formatted else []))
        )
        headers["Link"] = f'<{url}>; rel="next"'
    return json_answer(Answer(result.items, result.commit, result.stale), headers)
