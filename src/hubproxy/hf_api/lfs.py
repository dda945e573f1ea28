"""Git LFS for hosted repos (hf-protocol.md §6.3): batch, signed upload links, verify.

huggingface_hub sends the object bytes with a plain PUT to the `href` of the batch answer,
with no Authorization header, so the link authorizes itself (`hub/upload_links.py` signs and
checks it). When the link is used, the token that asked for it is authorized again
(`auth.authz.authorize_upload_link`): a link minted
before its member was removed, its token revoked, its user disabled or its repo deleted and
created again is refused. Objects above `max_upload_bytes` get a per-object error in the batch
answer and a 413 on the PUT, checked against Content-Length and, while streaming, against the
signed size.
"""

import time
from typing import Any
from urllib.parse import quote, urlencode

from starlette.responses import JSONResponse, Response

from hubproxy.auth.authz import authorize_upload_link, enforce
from hubproxy.constants import PLURAL_BY_REPO_TYPE, SHA256_PATTERN, URL_PREFIX_BY_REPO_TYPE
from hubproxy.errors import BadRequest, UploadRejected, UploadTooLarge
from hubproxy.hf_api.bodies import body_stream, json_object
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.hosted import MAX_LISTING_BYTES
from hubproxy.hf_api.parameters import parse_whole_number
from hubproxy.hub.upload_links import UPLOAD_LINK_SECONDS, UploadLink
from hubproxy.naming import RepoRef

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
MAX_OBJECTS = 1000


def _lfs_response(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type=LFS_MEDIA_TYPE)


def _object_error(oid: Any, size: Any, message: str, code: int = 422) -> dict[str, Any]:
    return {"oid": str(oid), "size": size, "error": {"code": code, "message": message}}


def _too_large(call: Call, size: int) -> str | None:
    """Why an object of `size` bytes is refused here, or None if it is not too large."""
    largest = call.settings.max_upload_bytes
    if size > largest:
        return f"Objects larger than {largest} bytes cannot be uploaded here ({size} bytes)"
    return None


async def _object_answer(call: Call, ref: RepoRef, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return _object_error("", 0, "each object needs 'oid' and 'size'")
    oid, size = item.get("oid"), item.get("size")
    if not isinstance(oid, str) or not SHA256_PATTERN.match(oid):
        return _object_error(oid, size, "'oid' must be a lowercase sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return _object_error(oid, size, "'size' must be a non-negative integer")
    too_large = _too_large(call, size)
    if too_large is not None:
        # git-lfs reads a per-object 422 as "this object cannot be uploaded" and says why.
        return _object_error(oid, size, too_large)
    try:
        needed = await call.hub.lfs_upload_needed(ref, oid, size)
    except UploadRejected as error:
        return _object_error(oid, size, error.message)
    if not needed:
        return {"oid": oid, "size": size}  # already here: no actions, nothing to send
    who = call.principal
    actor = f"{who.kind}:{who.name}"
    # The dispatcher required write, so there is a token: the one re-authorized at PUT time.
    token_id = who.token_id or ""
    link = await call.hub.upload_links.mint(ref, oid, size, actor, token_id)
    base = call.base_url
    query = urlencode(link.query())
    plural = PLURAL_BY_REPO_TYPE[ref.repo_type]
    prefix = URL_PREFIX_BY_REPO_TYPE[ref.repo_type]
    return {
        "oid": oid,
        "size": size,
        "authenticated": True,
        "actions": {
            "upload": {
                "href": f"{base}/api/hubproxy/lfs/{plural}/{ref.repo_id}/{oid}?{query}",
                "expires_in": UPLOAD_LINK_SECONDS,
            },
            "verify": {"href": f"{base}/{prefix}{quote(ref.repo_id)}.git/info/lfs/objects/verify"},
        },
    }


async def batch(call: Call) -> Response:
    payload = await json_object(call.request, max_bytes=MAX_LISTING_BYTES)
    if payload.get("operation") != "upload":
        raise BadRequest("Only the 'upload' operation is supported: download through /resolve/")
    if payload.get("hash_algo", "sha256") != "sha256":
        raise BadRequest("Only sha256 object ids are supported")
    objects = payload.get("objects")
    if not isinstance(objects, list) or len(objects) > MAX_OBJECTS:
        raise BadRequest(f"'objects' must be a list of at most {MAX_OBJECTS} objects")
    answers = [await _object_answer(call, call.repo, item) for item in objects]
    return _lfs_response({"transfer": "basic", "objects": answers, "hash_algo": "sha256"})


async def upload(call: Call) -> Response:
    """`PUT` of an object's bytes to a signed link from `batch`."""
    request, ref, oid = call.request, call.repo, call.route.subject
    query = request.query_params
    size_text, expires_text = query.get("size", ""), query.get("expires", "")
    actor, signature = query.get("by", ""), query.get("signature", "")
    token_id = query.get("token", "")
    if not size_text or not expires_text or not signature or not token_id:
        raise BadRequest("This upload link is incomplete")
    size = parse_whole_number(size_text, "size")
    expires = parse_whole_number(expires_text, "expires")
    # Refused before a byte is read: the size the link was signed for, or what the client says
    # it sends (a link signed before `max_upload_bytes` was lowered is refused as well).
    declared = request.headers.get("content-length", "")
    for announced in (size, parse_whole_number(declared, "Content-Length") if declared else 0):
        too_large = _too_large(call, announced)
        if too_large is not None:
            raise UploadTooLarge(too_large)
    link = UploadLink(oid, size, expires, actor, token_id, signature)
    await call.hub.upload_links.check(ref, link)
    # The uploader the signed link names (the PUT itself carries no token).
    kind, _, name = actor.partition(":")
    record = call.record
    record.actor_kind, record.actor_name, record.token_id = kind, name, token_id
    record.sha256 = oid
    require_auth = call.settings.require_auth
    enforce(
        authorize_upload_link(
            token_id, ref.repo_id, call.snapshot, time.time(), require_auth=require_auth
        )
    )
    # `receive_lfs_object` stops reading at `size` bytes, which is at most `max_upload_bytes`.
    await call.hub.receive_lfs_object(ref, oid, size, body_stream(request))
    record.reason = f"stored {size} bytes"
    return Response(status_code=200)


async def verify(call: Call) -> Response:
    payload = await json_object(call.request)
    oid, size = payload.get("oid"), payload.get("size")
    if not isinstance(oid, str) or not SHA256_PATTERN.match(oid) or not isinstance(size, int):
        raise BadRequest("Request body needs the object's 'oid' and 'size'")
    await call.hub.lfs_object_stored(call.repo, oid, size)
    return _lfs_response({"message": "ok"})
