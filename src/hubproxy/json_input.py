"""JSON from clients, parsed with bounds: nesting depth, NaN/Infinity, lone surrogates.

Python's `json` parser recurses once per nested array or object, so 100,000 `[` reach a
`RecursionError` (an internal error) long before any size limit helps. `parse_json` measures
the nesting first, outside strings, with no recursion, and refuses deep documents. It also
refuses the `NaN`/`Infinity` constants Python accepts but JSON does not, invalid UTF-8, and
strings holding lone surrogates (`"\\ud800"`), which no path, name or database can store.
Used for JSON bodies (`hf_api.bodies`) and every NDJSON commit line (`hub.commits`).
"""

import json
import math
import re
from itertools import accumulate
from typing import Any

from hubproxy.errors import BadRequest

MAX_JSON_DEPTH = 64
# Integers in bodies are sizes, counts and durations: 32 digits is more than any of them.
MAX_INTEGER_DIGITS = 32

# Whole JSON strings: their brackets are text, not nesting.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
# A `\uD800`-`\uDFFF` escape: only then can a parsed string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")


def _refuse_constant(name: str) -> None:
    raise BadRequest(f"Request body holds {name}, which is not a JSON number")


def nesting_depth(data: bytes, limit: int) -> int:
    """The deepest nesting of arrays and objects in `data` (0 when it cannot exceed `limit`).

    Runs at C speed over strings and brackets, with no recursion, whatever the depth."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return 0  # too few brackets to nest deeper than the limit: no scan needed
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise BadRequest(f"Request body holds a number of more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"Request body holds {text[:40]}, which is too large a number")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_json(data: bytes, *, what: str = "Request body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`data` (UTF-8 JSON) as Python values; `BadRequest` naming `what` for anything else."""
    if nesting_depth(data, max_depth) > max_depth:
        raise BadRequest(f"{what} nests arrays or objects deeper than {max_depth} levels")
    try:
        value = json.loads(
            data.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not UTF-8") from None
    except (ValueError, RecursionError):
        raise BadRequest(f"{what} is not JSON") from None
    if _SURROGATE_ESCAPE.search(data) and _has_lone_surrogate(value):
        raise BadRequest(f"{what} holds a lone surrogate (\\ud800-\\udfff), which is not text")
    return value
