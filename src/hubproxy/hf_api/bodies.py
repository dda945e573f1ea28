"""Request bodies: bounded reads, JSON objects and their typed fields, with precise 400s."""

import math
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request

from hubproxy.errors import BadRequest, PayloadTooLarge
from hubproxy.json_input import parse_json
from hubproxy.numbers import InvalidNumber, whole_number

MAX_JSON_BYTES = 1024 * 1024
# Names, labels and e-mail addresses: longer strings are refused, not stored.
MAX_STRING_LENGTH = 1024
MAX_LIST_ITEMS = 1000


def declared_length(header: str) -> int:
    """A `Content-Length` value as a number; a 400 when it is not one."""
    try:
        return whole_number(header)
    except InvalidNumber:
        raise BadRequest("Content-Length is not a whole number of bytes") from None


async def bounded_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, read no further than `max_bytes` (a larger one is a 413 as soon as it
    shows: by its Content-Length, or while it arrives). Kept for later calls on `request`."""
    too_large = PayloadTooLarge(f"Request body larger than {max_bytes} bytes")
    kept: bytes | None = getattr(request.state, "bounded_body", None)
    if kept is None:
        declared = request.headers.get("content-length")
        if declared is not None and declared_length(declared) > max_bytes:
            raise too_large
        pieces: list[bytes] = []
        received = 0
        async for piece in body_stream(request):
            received += len(piece)
            if received > max_bytes:
                raise too_large
            pieces.append(piece)
        kept = request.state.bounded_body = b"".join(pieces)
    if len(kept) > max_bytes:
        raise too_large
    return kept


async def json_object(request: Request, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The body as a JSON object (empty body: `{}`); `BadRequest` for anything else.

    The one JSON reader of the API: bounded in bytes, nesting depth and number size
    (`hubproxy.json_input`)."""
    body = await bounded_body(request, max_bytes)
    payload = parse_json(body or b"{}")
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object")
    return payload


def expiry_from(payload: dict[str, Any]) -> float | None:
    """The absolute expiry an optional `"expires_in"` (positive seconds) asks for."""
    expires_in = payload.get("expires_in")
    if expires_in is None:
        return None
    # bool is an int to Python, not a number to JSON.
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not 0 < expires_in < math.inf
    ):
        raise BadRequest("'expires_in' must be a positive number of seconds")
    return time.time() + expires_in


def string_field(payload: dict[str, Any], name: str) -> str | None:
    """`payload[name]`: a string of at most `MAX_STRING_LENGTH` characters, None if absent
    (or null)."""
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_STRING_LENGTH:
        raise BadRequest(f"'{name}' must be a string of at most {MAX_STRING_LENGTH} characters")
    return value


def required_string(payload: dict[str, Any], name: str) -> str:
    value = string_field(payload, name)
    if value is None:
        raise BadRequest(f"Body needs a '{name}'")
    return value


def boolean_field(payload: dict[str, Any], name: str) -> bool | None:
    """`payload[name]`: true or false, None if absent (or null)."""
    value = payload.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be true or false")
    return value


def strings_field(payload: dict[str, Any], name: str) -> list[str] | None:
    """`payload[name]`: a list of at most `MAX_LIST_ITEMS` strings, None if absent (or null)."""
    value = payload.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > MAX_LIST_ITEMS
        or not all(isinstance(item, str) and len(item) <= MAX_STRING_LENGTH for item in value)
    ):
        raise BadRequest(f"'{name}' must be a list of at most {MAX_LIST_ITEMS} strings")
    return value


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives; a client that leaves early is a 400 (logged and audited as
    such), never an internal error."""
    try:
        async for piece in request.stream():
            yield piece
    except ClientDisconnect:
        raise BadRequest("The client disconnected before the whole body arrived") from None
