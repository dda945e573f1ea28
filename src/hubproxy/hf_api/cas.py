"""The Xet CAS routes (`shared/xet.md` §1.2), mounted at `CAS_PATH`; `casUrl` is the public
base URL plus that path.

Every route but the signed xorb-range GET needs `Authorization: Bearer <Xet access token>`
(`cas.tokens`): an invalid, expired or no-longer-authorized token is a 401 (hf_xet then asks
the hub for a new one), a read token on an upload route a 403. The range GET authorizes itself
with its signed query string and answers 403 when expired or tampered with (hf_xet then asks
for a fresh reconstruction). Bodies are bounded before they are read. Routes hf_xet falls back
from (xorb grants, v2 shards and reconstructions, global dedup) answer 404.
"""

import hmac
import time
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hubproxy.auth.audit import AuditRecord
from hubproxy.auth.authz import PUBLIC_REPO, RepoVisibility, authorize_xet
from hubproxy.auth.roles import READ, WRITE
from hubproxy.cache.layout import xorb_key
from hubproxy.cas import synthetic
from hubproxy.cas.segments import plan
from hubproxy.cas.store import XetStore
from hubproxy.cas.tokens import InvalidXetToken, XetGrant, range_signature, read_token
from hubproxy.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    Unauthorized,
)
from hubproxy.hf_api.bodies import body_stream, bounded_body, declared_length
from hubproxy.hf_api.context import public_base_url, services
from hubproxy.hf_api.middleware import request_facts
from hubproxy.hf_api.parameters import parse_whole_number
from hubproxy.hf_api.ranges import MalformedRange, UnsatisfiableRange, parse_range, requested_range
from hubproxy.hf_api.streaming import StreamResponse
from hubproxy.hf_api.xet_links import offers_cached_file
from hubproxy.metrics import HUB_UPLOADED_BYTES
from hubproxy.naming import RepoRef
from hubproxy.stores import FileEntry
from hubproxy.xet.hashing import HEX_PATTERN
from hubproxy.xet.shards import MAX_SHARD_BYTES
from hubproxy.xet.xorbs import MAX_XORB_BYTES

CAS_PATH = "/api/hubproxy/xet"
MAX_TELEMETRY_BYTES = 1024 * 1024


def cas(request: Request) -> XetStore:
    return services(request).xet


def cas_url(request: Request) -> str:
    return public_base_url(request, services(request).settings) + CAS_PATH


async def _signing_key(request: Request) -> bytes:
    return await services(request).signer.key()


def _hash(value: str, what: str = "hash") -> str:
    if not HEX_PATTERN.match(value):
        raise BadRequest(f"Invalid Xet {what} {value[:80]!r}: expected 64 lowercase hex digits")
    return value


async def _visibility(request: Request, repo: RepoRef) -> RepoVisibility:
    """The hosted repo's settings as they are now (a token outlives a change to them); a
    cached repo has none (public)."""
    record = await services(request).hub.repos.get_repo(repo)
    return PUBLIC_REPO if record is None else RepoVisibility(record.private, record.gated)


async def _grant(request: Request, action: str) -> tuple[XetGrant, bool]:
    """The access token's grant, checked: signed here, not expired, the scope `action` needs,
    and its minter still allowed to `action` the repo; and whether the repo is hosted (cached
    repos are only read, their files offered as `xet_downloads` says)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "The CAS needs a Xet access token (from xet-read-token / xet-write-token)"
        )
    try:
        grant = read_token(await _signing_key(request), token.strip())
    except InvalidXetToken as error:
        raise Unauthorized(f"Invalid Xet access token: {error}") from None
    now = time.time()
    if grant.expires <= now:
        raise Unauthorized("The Xet access token has expired: ask for a new one")
    if action == WRITE and grant.scope != "write":
        raise Forbidden("This Xet access token is read-only: uploads need a xet-write-token")
    found = services(request)
    decision = authorize_xet(
        grant.token_id,
        WRITE if action == WRITE else READ,
        grant.repo.repo_id,
        found.authenticator.snapshot,
        now,
        require_auth=found.settings.require_auth,
        repo=await _visibility(request, grant.repo),
    )
    if not decision.allowed:
        assert decision.error is not None
        raise decision.error
    hosted = decision.project is not None and decision.project.kind == "hosted"
    if not hosted and (action == WRITE or found.settings.xet_downloads == "off"):
        raise Unauthorized("Xet access tokens are for hosted repos only")
    return grant, hosted


def _bounded(request: Request, limit: int, what: str) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared_length(declared) > limit:
        raise PayloadTooLarge(f"{what} larger than {limit} bytes")


async def upload_xorb(request: Request) -> Response:
    xorb_hash = _hash(request.path_params["hash"], "xorb hash")
    await _grant(request, WRITE)
    _bounded(request, MAX_XORB_BYTES, "Xorb")
    inserted = await cas(request).put_xorb(xorb_hash, body_stream(request))
    if inserted:
        HUB_UPLOADED_BYTES.labels("xet").inc(int(request.headers.get("content-length", "0")))
    return JSONResponse({"was_inserted": inserted})


async def upload_shard(request: Request) -> Response:
    grant, _hosted = await _grant(request, WRITE)
    _bounded(request, MAX_SHARD_BYTES, "Shard")
    result = await cas(request).put_shard(body_stream(request), grant.repo)
    found = services(request)
    for file in result.files:
        # The file is now an LFS object of the repo: a commit's `lfsFile` line may name it.
        await found.hub.repos.link_lfs_object(grant.repo, file.sha256, file.size)
    if result.new:
        token = found.authenticator.snapshot.tokens_by_id.get(grant.token_id)
        records = [
            AuditRecord(
                "upload",
                actor_kind=token.owner_kind if token else "anonymous",
                actor_name=token.owner if token else "anonymous",
                token_id=grant.token_id or None,
                repo_type=grant.repo.repo_type,
                repo_id=grant.repo.repo_id,
                revision=grant.revision,
                sha256=file.sha256,
                request_id=request_facts(request.scope).request_id,
                method="POST",
                route="xet_shard",
                reason=f"stored {file.size} bytes through Xet (file {file.hash})",
            )
            for file in result.files
        ]
        await found.audit.emit(records)
    return JSONResponse({"result": 1 if result.new else 0})


def _range_url(
    request: Request,
    key: bytes,
    grant: XetGrant,
    xorb_hash: str,
    start: int,
    end: int,
    synthetic_of: tuple[str, int] | None = None,
) -> str:
    expires = int(time.time() + services(request).settings.xet_url_lifetime)
    signature = range_signature(key, xorb_hash, start, end, expires, grant.repo, grant.token_id)
    fields: dict[str, str | int] = {
        "range": f"{start}-{end}",
        "expires": expires,
        "repo": f"{grant.repo.repo_type}:{grant.repo.repo_id}",
        "token": grant.token_id,
        "signature": signature,
    }
    if synthetic_of is not None:
        # Covered by the signature: the xorb's name is derived from the file and the part.
        fields["file"], fields["part"] = synthetic_of
    return f"{cas_url(request)}/v1/xorb-data/{xorb_hash}?{urlencode(fields)}"


async def _cached_file(request: Request, repo: RepoRef, sha256: str) -> FileEntry | None:
    """A cached LFS file of `repo` offered over Xet (`xet_links.offers_cached_file`)."""
    found = services(request)
    entry = await found.proxied.entry_with_sha256(repo, sha256)
    if entry is None or not offers_cached_file(found.settings, entry.size):
        return None
    return entry


async def reconstruction(request: Request) -> Response:
    file_hash = _hash(request.path_params["hash"], "file hash")
    grant, hosted = await _grant(request, READ)
    store = cas(request)
    parts: dict[str, int] = {}  # synthetic xorb -> its part of a cached file
    file = None
    if hosted:
        file = await store.file(file_hash)
        if file is None or not await store.in_repo(grant.repo, file_hash):
            raise NotFound(f"No file {file_hash} in {grant.repo.repo_id}")
        size = file.size
    else:
        entry = await _cached_file(request, grant.repo, file_hash)
        if entry is None:
            raise NotFound(f"No file {file_hash} in {grant.repo.repo_id}")
        size = entry.size
    # hf_xet reads a 416 as "nothing more to fetch".
    wanted = requested_range(request.headers.get("range"), size)
    start, end = (wanted.start, wanted.end) if wanted is not None else (0, size)
    if start >= end:
        raise RangeNotSatisfiable(f"Range not satisfiable for a file of {size} bytes")
    if file is not None:
        segments = await store.segments(file, start, end)
    else:
        terms, indexes = synthetic.plan_inputs(file_hash, size)
        parts = {term.xorb_hash: part for part, term in enumerate(terms)}
        segments = plan(terms, indexes, start, end)
    key = await _signing_key(request)
    fetch_info: dict[str, list[dict[str, Any]]] = {}
    terms_answer = []
    for segment in segments:
        chunk_range = {"start": segment.first_chunk, "end": segment.end_chunk}
        terms_answer.append(
            {"hash": segment.xorb_hash, "unpacked_length": segment.size, "range": chunk_range}
        )
        entries = fetch_info.setdefault(segment.xorb_hash, [])
        if any(entry["range"] == chunk_range for entry in entries):
            continue
        last = segment.byte_end - 1
        part = parts.get(segment.xorb_hash)
        synthetic_of = (file_hash, part) if part is not None else None
        url = _range_url(
            request, key, grant, segment.xorb_hash, segment.byte_start, last, synthetic_of
        )
        entries.append(
            {
                "range": chunk_range,
                "url": url,
                "url_range": {"start": segment.byte_start, "end": last},
            }
        )
    return JSONResponse(
        {
            "offset_into_first_range": segments[0].skip,
            "terms": terms_answer,
            "fetch_info": fetch_info,
        }
    )


async def xorb_range(request: Request) -> Response | StreamResponse:
    """`GET` of a signed xorb-range URL: no Authorization header, the URL is the credential."""
    xorb_hash = _hash(request.path_params["hash"], "xorb hash")
    query = request.query_params
    signed_range, token_id = query.get("range", ""), query.get("token", "")
    repo_text, signature = query.get("repo", ""), query.get("signature", "")
    first_text, _, last_text = signed_range.partition("-")
    repo_type, _, repo_id = repo_text.partition(":")
    if not (first_text and last_text and repo_id and signature):
        raise Forbidden("This xorb URL is incomplete")
    first = parse_whole_number(first_text, "range")
    last = parse_whole_number(last_text, "range")
    expires = parse_whole_number(query.get("expires", ""), "expires")
    repo = RepoRef(repo_type, repo_id)  # type: ignore[arg-type]  # checked by the signature
    key = await _signing_key(request)
    expected = range_signature(key, xorb_hash, first, last, expires, repo, token_id)
    if not hmac.compare_digest(expected, signature):
        raise Forbidden("This xorb URL is invalid")
    now = time.time()
    if expires <= now:
        raise Forbidden("This xorb URL has expired: ask for a new reconstruction")
    found = services(request)
    decision = authorize_xet(
        token_id, READ, repo.repo_id, found.authenticator.snapshot, now,
        require_auth=found.settings.require_auth, repo=await _visibility(request, repo),
    )  # fmt: skip
    if not decision.allowed:
        raise Forbidden("This xorb URL is no longer valid: ask for a new reconstruction")
    start, end = first, last + 1
    header = request.headers.get("range")
    if header is not None:
        try:
            asked = parse_range(header, last + 1)
        except (MalformedRange, UnsatisfiableRange) as error:
            raise BadRequest(f"Invalid Range for this xorb URL: {error}") from None
        if asked is None or asked.start < first:
            raise Forbidden("The Range asks for bytes this xorb URL was not signed for")
        start, end = asked.start, asked.end
    synthetic_file = query.get("file")
    if synthetic_file is None:
        total = (await found.xet.storage.stat(xorb_key(xorb_hash))).size
    else:
        part = parse_whole_number(query.get("part", ""), "part")
        if synthetic.xorb_hash(_hash(synthetic_file, "file hash"), part) != xorb_hash:
            raise Forbidden("This xorb URL is invalid")
        entry = await _cached_file(request, repo, synthetic_file)
        if entry is None:
            raise Forbidden("This xorb URL is no longer valid: ask for a new reconstruction")
        total = synthetic.xorb_size(entry.size, part)
    if end > total:
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{total}"})
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(end - start),
        "Content-Range": f"bytes {start}-{end - 1}/{total}",
        "Accept-Ranges": "bytes",
    }
    if synthetic_file is None:
        body = found.xet.storage.read(xorb_key(xorb_hash), start, end)
    else:
        cached = entry
        assert cached is not None

        def read_file(file_start: int, file_end: int) -> AsyncIterator[bytes]:
            # Without `files=True` the cache yields bytes only.
            return cast(AsyncIterator[bytes], found.proxied.read(cached, file_start, file_end))

        body = synthetic.xorb_bytes(read_file, cached.size, part, start, end)
    first_piece = await anext(body)
    return StreamResponse(206, headers, first_piece, body)


async def not_offered(request: Request) -> Response:
    """What hf_xet falls back from: xorb grants, v2 shards and reconstructions, global dedup."""
    raise NotFound(f"Not offered by this CAS: {request.method} {request.url.path}")


async def telemetry(request: Request) -> Response:
    await bounded_body(request, MAX_TELEMETRY_BYTES)
    return JSONResponse({})


ROUTES = [
    Route("/v1/xorbs/{prefix}/{hash}", upload_xorb, methods=["POST"]),
    Route("/v1/shards", upload_shard, methods=["POST"]),
    Route("/v1/reconstructions/{hash}", reconstruction, methods=["GET"]),
    Route("/v1/xorb-data/{hash}", xorb_range, methods=["GET"]),
    Route("/v1/xorb-grants/{prefix}/{hash}", not_offered, methods=["POST"]),
    Route("/v1/chunks/{prefix}/{hash}", not_offered, methods=["GET"]),
    Route("/v2/shards", not_offered, methods=["POST"]),
    Route("/v2/reconstructions/{hash}", not_offered, methods=["GET"]),
    Route("/v1/telemetry", telemetry, methods=["POST"]),
]
