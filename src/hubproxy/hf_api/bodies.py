"""Request bodies: bounded reads and JSON objects, with precise 400s."""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request

from hubproxy.errors import BadRequest

MAX_JSON_BYTES = 1024 * 1024


async def json_object(request: Request, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The body as a JSON object (empty body: `{}`); `BadRequest` for anything else."""
    body = await request.body()
    if len(body) > max_bytes:
        raise BadRequest(f"Request body larger than {max_bytes} bytes")
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise BadRequest("Request body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object")
    return payload


def expiry_from(payload: dict[str, Any]) -> float | None:
    """The absolute expiry an optional `"expires_in"` (positive seconds) asks for."""
    expires_in = payload.get("expires_in")
    if expires_in is None:
        return None
    if not isinstance(expires_in, int | float) or expires_in <= 0:
        raise BadRequest("'expires_in' must be a positive number of seconds")
    return time.time() + expires_in


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives; a client that leaves early is a 400 (logged and audited as
    such), never an internal error."""
    try:
        async for piece in request.stream():
            yield piece
    except ClientDisconnect:
        raise BadRequest("The client disconnected before the whole body arrived") from None
