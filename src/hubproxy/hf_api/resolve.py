"""`HEAD` and `GET /{repo}/resolve/{revision}/{path}`: file metadata and bytes.

Always answered directly (shape C of hf-protocol.md §2.1): `200`/`206` with `X-Repo-Commit`, a
content-hash `ETag`, the exact `Content-Length`, and `X-Linked-Etag`/`X-Linked-Size` for LFS
files. No redirect ever leaves hubproxy, so every byte goes through the cache.
"""

from starlette.responses import Response

from hubproxy.auth.roles import READ
from hubproxy.constants import (
    HEADER_CACHE_STATUS,
    HEADER_LINKED_ETAG,
    HEADER_LINKED_SIZE,
    HEADER_REPO_COMMIT,
    HEADER_STALE,
)
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.middleware import request_facts
from hubproxy.hf_api.ranges import (
    if_range_allows,
    requested_range,
)
from hubproxy.hf_api.streaming import StreamResponse, sends_files
from hubproxy.hf_api.xet_links import xet_headers
from hubproxy.stores import FileEntry


def file_headers(entry: FileEntry) -> dict[str, str]:
    """The metadata headers huggingface_hub reads from a `/resolve/` answer."""
    headers = {
        HEADER_REPO_COMMIT: entry.commit,
        "ETag": f'"{entry.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    if entry.is_lfs:
        headers[HEADER_LINKED_ETAG] = f'"{entry.etag}"'
        headers[HEADER_LINKED_SIZE] = str(entry.size)
    if entry.stale:
        headers[HEADER_STALE] = "true"
    return headers


async def resolve(call: Call) -> Response | StreamResponse:
    request, store, record = call.request, call.repo_store, call.record
    entry = await store.file_entry(call.repo, call.revision, call.route.path)
    headers = file_headers(entry) | await xet_headers(call, entry)
    record.commit_sha, record.sha256 = entry.commit, entry.sha256

    status = 200
    start, end = 0, entry.size
    if if_range_allows(request.headers.get("if-range"), entry.etag):
        byte_range = requested_range(request.headers.get("range"), entry.size, headers)
        resuming = byte_range is not None and byte_range.start > 0 and byte_range.end == entry.size
        if resuming and store.refuses_resume(entry):
            byte_range = None  # the client starts over on a 200 (`RepoStore.refuses_resume`)
        if byte_range is not None:
            status = 206
            start, end = byte_range.start, byte_range.end
            headers["Content-Range"] = byte_range.content_range
    headers["Content-Length"] = str(end - start)
    cache_status = headers[HEADER_CACHE_STATUS] = await store.cache_status(entry, start, end)
    request_facts(request.scope).cache = cache_status
    # A branch answered from its last known commit because upstream failed: "stale".
    record.cache = "stale" if entry.stale else cache_status

    if request.method == "HEAD" or start == end:
        response = StreamResponse(status, headers)
        warm_heads = call.services.warm_heads
        # Hosted branches move with every commit: only the caching proxy's answers are kept.
        remember = request.method == "HEAD" and status == 200 and not call.hosted
        if warm_heads is not None and remember and not entry.stale:
            # The table's action for a resolve (`endpoints.py`), asked again on each reuse.
            warm_heads.remember(request.scope, READ, call.repo, response.headers, cache_status)
        return response
    location = await store.redirect_url(entry)
    if location is not None:
        # Off-origin and presigned: the client follows it without credentials, keeping Range;
        # the metadata headers stay on the 302 itself (hf-protocol.md §2.1).
        headers.pop("Content-Range", None)
        headers.update(
            {"Location": location, "Content-Length": "0", HEADER_CACHE_STATUS: "redirect"}
        )
        record.cache = request_facts(request.scope).cache = "redirect"
        return StreamResponse(302, headers)
    body = store.read(
        entry, start, end, files=sends_files(request.scope, call.services.settings.sendfile)
    )
    try:
        # The first piece decides between a proper error response and a stream.
        first = await anext(body)
    except BaseException:
        await body.aclose()  # type: ignore[attr-defined]
        raise
    return StreamResponse(status, headers, first, body)
