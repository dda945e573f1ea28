"""Repo metadata: info (`/api/{type}s/{repo}[/revision/{rev}]`), refs and commit history."""

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.constants import HEADER_STALE, PLURAL_BY_REPO_TYPE
from hubproxy.hf_api.context import public_base_url, repo_store
from hubproxy.hf_api.parameters import whole_number_query
from hubproxy.hf_api.routing import RouteMatch
from hubproxy.stores import Answer

# Query parameters of repo info that change the document (hf-protocol.md §4.1).
# Deeper pages of a commit history are not served (they would be walked on every request).
MAX_PAGE = 1_000_000
_INFO_PARAMETERS = frozenset({"blobs", "securityStatus", "expand", "expand[]", "files_metadata"})


def json_answer(answer: Answer, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if answer.stale:
        headers[HEADER_STALE] = "true"
    return JSONResponse(answer.body, headers=headers)


async def repo_info(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    query = [
        (key, value) for key, value in request.query_params.multi_items() if key in _INFO_PARAMETERS
    ]
    answer = await repo_store(request).repo_info(match.ref, match.revision, query)
    return json_answer(answer)


async def refs(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    include_prs = request.query_params.get("include_prs", "").lower() in ("1", "true")
    answer = await repo_store(request).refs(match.ref, include_prs=include_prs)
    return json_answer(answer)


async def commits(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    assert match.revision is not None
    page = whole_number_query(request, "p", default=0, maximum=MAX_PAGE)
    assert page is not None
    expand = request.query_params.getlist("expand") + request.query_params.getlist("expand[]")
    formatted = "formatted" in expand
    result = await repo_store(request).commits(match.ref, match.revision, page, formatted=formatted)
    headers: dict[str, str] = {}
    if result.has_next:
        # Pin the next page to the commit: the listing stays consistent if the branch moves.
        plural = PLURAL_BY_REPO_TYPE[match.ref.repo_type]
        url = (
            f"{public_base_url(request)}/api/{plural}/{match.ref.repo_id}/commits/"
            f"{quote(result.commit, safe='')}?"
            + urlencode([("p", str(page + 1))] + ([("expand[]", "formatted")] if formatted else []))
        )
        headers["Link"] = f'<{url}>; rel="next"'
    return json_answer(Answer(result.items, result.commit, result.stale), headers)
