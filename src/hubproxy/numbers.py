"""The one strict parser for numbers that arrive as text: query values, headers, signed links.

`int()` and `str.isdigit()` disagree about what a digit is: `"²".isdigit()` is true and
`int("²")` raises, `int("٣")` is 3, and `int()` refuses (and used to spend quadratic time on)
more than 4300 digits. Text from a client or an upstream is therefore parsed here only: ASCII
digits `0-9`, at most as many as the largest allowed value has, and a bounded value. Floats are
fixed-point decimals of bounded length, so `1e400`, `inf` and `nan` never parse.

A leaf module: it raises `InvalidNumber` (a `ValueError`), which callers turn into their own
error (a 400 in `hf_api`, an upstream failure in `cache`).
"""

import re

# Larger than any file size, offset or count hubproxy handles, and exact in a SQLite INTEGER.
MAX_WHOLE_NUMBER = 2**63 - 1
# Enough for MAX_WHOLE_NUMBER with some leading zeros; longer text is refused unread.
MAX_DIGITS = 32
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,9})?")


class InvalidNumber(ValueError):
    """The text is not a number in the allowed range (the message says what was allowed)."""


def whole_number(text: str, *, minimum: int = 0, maximum: int = MAX_WHOLE_NUMBER) -> int:
    """`text` as a whole number from `minimum` to `maximum`: ASCII digits only, no sign, no
    spaces, at most `MAX_DIGITS` characters (leading zeros included)."""
    refusal = InvalidNumber(f"expected a whole number from {minimum} to {maximum}")
    if len(text) > MAX_DIGITS or not _DIGITS.fullmatch(text):
        raise refusal
    value = int(text)
    if not minimum <= value <= maximum:
        raise refusal
    return value


def saturating_whole_number(text: str, ceiling: int) -> int:
    """`text` (ASCII digits, already checked) as a number, or `ceiling` if it is larger: for
    positions where any value beyond the resource's size means the same thing."""
    if not _DIGITS.fullmatch(text):
        raise InvalidNumber("expected ASCII digits")
    stripped = text.lstrip("0") or "0"
    if len(stripped) > len(str(ceiling)):
        return ceiling
    return min(int(stripped), ceiling)


def decimal_number(text: str, *, minimum: float = 0.0, maximum: float) -> float:
    """`text` as a finite fixed-point decimal (`123` or `123.456`) from `minimum` to
    `maximum`; exponents, signs, `inf` and `nan` are refused."""
    if not _DECIMAL.fullmatch(text):
        raise InvalidNumber(f"expected a number from {minimum:g} to {maximum:g}")
    value = float(text)
    if not minimum <= value <= maximum:
        raise InvalidNumber(f"expected a number from {minimum:g} to {maximum:g}")
    return value
