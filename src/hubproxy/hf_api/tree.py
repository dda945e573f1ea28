"""Listings: `GET /api/{type}s/{repo}/tree/{rev}[/{path}]` and `POST .../paths-info/{rev}`.

The store returns a whole listing; pagination happens here, with hubproxy's own cursor and an
absolute `Link` next URL pointing back at hubproxy (the client requires absolute URLs and
must never be sent to the upstream hub).
"""

from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from hubproxy.constants import PLURAL_BY_REPO_TYPE, TREE_PAGE_SIZE, TREE_PAGE_SIZE_EXPANDED
from hubproxy.errors import BadRequest
from hubproxy.hf_api.bodies import bounded_body
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.parameters import whole_number_query
from hubproxy.hf_api.repos import json_answer
from hubproxy.hf_api.xet_links import add_xet_hashes
from hubproxy.json_input import parse_json
from hubproxy.naming import path_in_repo
from hubproxy.stores import Answer

MAX_PATHS_INFO = 10_000
# A cursor is an offset into one listing; no listing is this long.
MAX_CURSOR = 10**12
MAX_BODY_BYTES = 8 * 1024 * 1024


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def _cursor(request: Request) -> int:
    offset = whole_number_query(request, "cursor", default=0, maximum=MAX_CURSOR)
    assert offset is not None
    return offset


async def tree(call: Call) -> Response:
    request = call.request
    recursive = _flag(request.query_params.get("recursive"))
    expand = _flag(request.query_params.get("expand"))
    offset = _cursor(request)
    answer = await call.repo_store.tree(
        call.repo, call.revision, call.route.path, recursive=recursive, expand=expand
    )
    page_size = TREE_PAGE_SIZE_EXPANDED if expand else TREE_PAGE_SIZE
    listing = answer.body
    page = listing[offset : offset + page_size]
    await add_xet_hashes(call, page)
    headers: dict[str, str] = {}
    if offset + page_size < len(listing):
        plural = PLURAL_BY_REPO_TYPE[call.repo.repo_type]
        path_part = f"/{quote(call.route.path, safe='')}" if call.route.path else ""
        query = urlencode(
            {
                "recursive": str(recursive).lower(),
                "expand": str(expand).lower(),
                "cursor": str(offset + page_size),
            }
        )
        # Pinned to the commit so that every page comes from the same listing.
        url = (
            f"{call.base_url}/api/{plural}/{call.repo.repo_id}/tree/"
            f"{quote(answer.commit or call.revision, safe='')}{path_part}?{query}"
        )
        headers["Link"] = f'<{url}>; rel="next"'
    return json_answer(Answer(page, answer.commit, answer.stale), headers)


async def paths_info(call: Call) -> Response:
    request = call.request
    body = await bounded_body(request, MAX_BODY_BYTES)
    if request.headers.get("content-type", "").startswith("application/json"):
        payload = parse_json(body, what="The paths-info body")
        if not isinstance(payload, dict):
            raise BadRequest("paths-info body must be a JSON object")
        raw_paths = payload.get("paths", [])
        expand = bool(payload.get("expand", False))
    else:
        try:
            form = parse_qs(
                body.decode(), keep_blank_values=True, strict_parsing=False, errors="strict"
            )
        except UnicodeDecodeError:
            raise BadRequest("paths-info form is not UTF-8") from None
        raw_paths = form.get("paths", [])
        expand = _flag(form.get("expand", [""])[0])
    if not isinstance(raw_paths, list) or not all(isinstance(path, str) for path in raw_paths):
        raise BadRequest("paths must be a list of strings")
    if len(raw_paths) > MAX_PATHS_INFO:
        raise BadRequest(f"At most {MAX_PATHS_INFO} paths per request")
    paths = [path_in_repo(path, allow_root=True) for path in raw_paths]
    answer = await call.repo_store.paths_info(
        call.repo, call.revision, [path for path in paths if path], expand=expand
    )
    await add_xet_hashes(call, answer.body)
    return json_answer(answer)
