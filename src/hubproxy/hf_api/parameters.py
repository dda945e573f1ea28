"""Query parameters and numeric headers, parsed strictly into values or precise 400s.

Every number a client sends as text goes through `hubproxy.numbers` (ASCII digits, bounded
length and value); this module names the parameter in the refusal.
"""

from starlette.requests import Request

from hubproxy.errors import BadRequest
from hubproxy.numbers import MAX_WHOLE_NUMBER, InvalidNumber, decimal_number, whole_number


def parse_whole_number(
    text: str, name: str, *, minimum: int = 0, maximum: int = MAX_WHOLE_NUMBER
) -> int:
    """`text` as a whole number from `minimum` to `maximum`, or a 400 naming `name`."""
    try:
        return whole_number(text, minimum=minimum, maximum=maximum)
    except InvalidNumber:
        raise BadRequest(f"'{name}' must be a whole number from {minimum} to {maximum}") from None


def whole_number_query(
    request: Request,
    name: str,
    *,
    default: int | None = None,
    minimum: int = 0,
    maximum: int = MAX_WHOLE_NUMBER,
) -> int | None:
    """`?name=` as a whole number (`default` when absent), or a 400."""
    value = request.query_params.get(name)
    if value is None:
        return default
    return parse_whole_number(value, name, minimum=minimum, maximum=maximum)


def decimal_query(request: Request, name: str, *, maximum: float) -> float | None:
    """`?name=` as a finite non-negative decimal (None when absent), or a 400."""
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return decimal_number(value, maximum=maximum)
    except InvalidNumber:
        raise BadRequest(f"'{name}' must be a number from 0 to {maximum:g}") from None
