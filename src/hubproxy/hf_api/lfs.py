"""Git LFS for hosted repos (hf-protocol.md §6.3): batch, signed upload links, verify.

huggingface_hub sends the object bytes with a plain PUT to the `href` of the batch answer,
with no Authorization header, so the link authorizes itself: it names the repo, object, size,
expiry and uploader, and carries an HMAC over all of them made with the data dir's key.
"""

import time
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.constants import PLURAL_BY_REPO_TYPE, SHA256_PATTERN, URL_PREFIX_BY_REPO_TYPE
from hubproxy.errors import BadRequest, UploadRejected
from hubproxy.hf_api.bodies import body_stream, json_object
from hubproxy.hf_api.context import public_base_url
from hubproxy.hf_api.hosted import MAX_LISTING_BYTES, hub, principal
from hubproxy.hf_api.parameters import parse_whole_number
from hubproxy.hf_api.routing import RouteMatch
from hubproxy.naming import RepoRef

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
UPLOAD_LINK_SECONDS = 24 * 3600
MAX_OBJECTS = 1000


def _lfs_response(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type=LFS_MEDIA_TYPE)


def _object_error(oid: Any, size: Any, message: str) -> dict[str, Any]:
    return {"oid": str(oid), "size": size, "error": {"code": 422, "message": message}}


async def _object_answer(request: Request, ref: RepoRef, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return _object_error("", 0, "each object needs 'oid' and 'size'")
    oid, size = item.get("oid"), item.get("size")
    if not isinstance(oid, str) or not SHA256_PATTERN.match(oid):
        return _object_error(oid, size, "'oid' must be a lowercase sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return _object_error(oid, size, "'size' must be a non-negative integer")
    try:
        needed = await hub(request).lfs_upload_needed(ref, oid, size)
    except UploadRejected as error:
        return _object_error(oid, size, error.message)
    if not needed:
        return {"oid": oid, "size": size}  # already here: no actions, nothing to send
    expires = int(time.time()) + UPLOAD_LINK_SECONDS
    who = principal(request)
    actor = f"{who.kind}:{who.name}"
    signature = await hub(request).upload_signature(ref, oid, size, expires, actor)
    base = public_base_url(request)
    query = urlencode({"size": size, "expires": expires, "by": actor, "signature": signature})
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


async def batch(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    payload = await json_object(request, max_bytes=MAX_LISTING_BYTES)
    if payload.get("operation") != "upload":
        raise BadRequest("Only the 'upload' operation is supported: download through /resolve/")
    if payload.get("hash_algo", "sha256") != "sha256":
        raise BadRequest("Only sha256 object ids are supported")
    objects = payload.get("objects")
    if not isinstance(objects, list) or len(objects) > MAX_OBJECTS:
        raise BadRequest(f"'objects' must be a list of at most {MAX_OBJECTS} objects")
    answers = [await _object_answer(request, match.ref, item) for item in objects]
    return _lfs_response({"transfer": "basic", "objects": answers, "hash_algo": "sha256"})


async def upload(request: Request, match: RouteMatch) -> Response:
    """`PUT` of an object's bytes to a signed link from `batch`."""
    assert match.ref is not None
    query = request.query_params
    size_text, expires_text = query.get("size", ""), query.get("expires", "")
    actor, signature = query.get("by", ""), query.get("signature", "")
    if not size_text or not expires_text or not signature:
        raise BadRequest("This upload link is incomplete")
    size = parse_whole_number(size_text, "size")
    expires = parse_whole_number(expires_text, "expires")
    await hub(request).check_upload_signature(
        match.ref, match.path, size, expires, actor, signature
    )
    # The uploader the signed link names (the PUT itself carries no token).
    kind, _, name = actor.partition(":")
    request.state.audit_fields = {"actor_kind": kind, "actor_name": name, "sha256": match.path}
    await hub(request).receive_lfs_object(match.ref, match.path, size, body_stream(request))
    request.state.audit_fields["reason"] = f"stored {size} bytes"
    return Response(status_code=200)


async def verify(request: Request, match: RouteMatch) -> Response:
    assert match.ref is not None
    payload = await json_object(request)
    oid, size = payload.get("oid"), payload.get("size")
    if not isinstance(oid, str) or not SHA256_PATTERN.match(oid) or not isinstance(size, int):
        raise BadRequest("Request body needs the object's 'oid' and 'size'")
    await hub(request).lfs_object_stored(match.ref, oid, size)
    return _lfs_response({"message": "ok"})
