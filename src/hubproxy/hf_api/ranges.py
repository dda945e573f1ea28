"""Pure parsing of `Range` and `If-Range` request headers (RFC 9110 §14) for one resource.

Single ranges are served exactly, including suffix ranges (`bytes=-N`) and the open-ended form
(`bytes=N-`) huggingface_hub sends to resume. A request for several ranges is answered with the
whole file (allowed by RFC 9110, and no Hub client asks for more than one).
"""

import re
from dataclasses import dataclass

from hubproxy.errors import BadRequest, RangeNotSatisfiable
from hubproxy.numbers import saturating_whole_number

# ASCII digits only: `\d` would also take other scripts' digits, which `int()` reads differently.
_SPEC = re.compile(r"^[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")
# More ranges than any client sends is no request to honour but a header to refuse.
MAX_RANGES = 100


class MalformedRange(ValueError):
    """The header says `bytes=` but its ranges cannot be parsed."""


class UnsatisfiableRange(ValueError):
    """No byte of the requested range exists in the resource."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """`[start, end)` of a resource of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range `header` asks for, or None to send the whole resource.

    Raises `MalformedRange` for a `bytes=` header that does not parse and
    `UnsatisfiableRange` when the range starts past the end (send 416).
    Other units are ignored, as RFC 9110 allows.
    """
    if header is None:
        return None
    unit, separator, specification = header.partition("=")
    if not separator:
        raise MalformedRange(f"malformed Range header {header[:100]!r}")
    if unit.strip().lower() != "bytes":
        return None
    specs = specification.split(",")
    if len(specs) > MAX_RANGES:
        raise MalformedRange(f"more than {MAX_RANGES} ranges in the Range header")
    parsed: list[tuple[str, str]] = []
    for spec in specs:
        match = _SPEC.match(spec)
        if not match or (not match.group(1) and not match.group(2)):
            raise MalformedRange(f"malformed Range header {header[:100]!r}")
        parsed.append((match.group(1), match.group(2)))
    if len(parsed) > 1:
        return None
    first, last = parsed[0]
    # Positions past the end all mean the same: they are read saturated at `size` + 1, so a
    # position of any number of digits costs no big-number arithmetic.
    ceiling = size + 1
    if not first:
        suffix = saturating_whole_number(last, ceiling)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRange(header)
        return ByteRange(max(0, size - suffix), size, size)
    start = saturating_whole_number(first, ceiling)
    if last and saturating_whole_number(last, ceiling) < start:
        raise MalformedRange(f"malformed Range header {header[:100]!r}: end before start")
    if start >= size:
        raise UnsatisfiableRange(header)
    end = size if not last else min(saturating_whole_number(last, ceiling) + 1, size)
    return ByteRange(start, end, size)


def if_range_allows(if_range: str | None, etag: str) -> bool:
    """Whether a `Range` may be honoured given `If-Range` and the current strong `etag`.

    hubproxy sends no `Last-Modified`, so a date validator never matches.
    """
    if if_range is None:
        return True
    value = if_range.strip()
    return not value.startswith("W/") and value.strip('"') == etag


def requested_range(
    header: str | None, size: int, error_headers: dict[str, str] | None = None
) -> ByteRange | None:
    """`parse_range` with its failures as the HTTP errors clients expect: 400 for a malformed
    header, 416 (with `Content-Range: bytes */size` and `error_headers`) for one past the end."""
    try:
        return parse_range(header, size)
    except MalformedRange as error:
        raise BadRequest(str(error)) from None
    except UnsatisfiableRange:
        raise RangeNotSatisfiable(
            f"Range not satisfiable for a file of {size} bytes",
            headers={**(error_headers or {}), "Content-Range": f"bytes */{size}"},
        ) from None
