"""The strict number parser and the bounded JSON reader, without a server."""

import pytest

from hubproxy.errors import BadRequest
from hubproxy.json_input import nesting_depth, parse_json
from hubproxy.numbers import (
    InvalidNumber,
    decimal_number,
    saturating_whole_number,
    whole_number,
)


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("007", 7), ("9223372036854775807", 2**63 - 1)]
)
def test_whole_numbers(text: str, value: int) -> None:
    assert whole_number(text) == value


@pytest.mark.parametrize(
    "text", ["", "\xb2", "\u0663", "-1", "+1", " 1", "1 ", "1.0", "9" * 5000, "9223372036854775808"]
)
def test_not_whole_numbers(text: str) -> None:
    with pytest.raises(InvalidNumber):
        whole_number(text)


def test_whole_number_bounds() -> None:
    assert whole_number("5", minimum=5, maximum=5) == 5
    with pytest.raises(InvalidNumber):
        whole_number("6", maximum=5)


def test_saturating_positions() -> None:
    assert saturating_whole_number("9" * 5000, 11) == 11
    assert saturating_whole_number("0" * 5000 + "3", 11) == 3


@pytest.mark.parametrize("text", ["inf", "nan", "1e400", "1e3", "-1", "1.", ".5", "9" * 30])
def test_not_decimals(text: str) -> None:
    with pytest.raises(InvalidNumber):
        decimal_number(text, maximum=1e12)


def test_decimals() -> None:
    assert decimal_number("12.5", maximum=100) == 12.5


def test_depth_ignores_brackets_in_strings() -> None:
    assert nesting_depth(b'["' + b"[" * 100 + b'"]', 64) == 1
    assert nesting_depth(b'["\\"' + b"[" * 100 + b'"]', 64) == 1
    assert nesting_depth(b"[" * 100 + b"]" * 100, 64) == 100


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": ' * 65 + b"1" + b"}" * 65,
        b"NaN",
        b"[Infinity]",
        b"[1e400]",
        b"[" + b"9" * 5000 + b"]",
        b'"\\ud800"',
        b'{"\\udfff": 1}',
        b"\xff",
        b"{",
    ],
)
def test_refused_json(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json(body)


def test_accepted_json() -> None:
    assert parse_json(b'{"a": [1, 2.5, "\\ud83d\\ude00", "\\\\ud800"]}') == {
        "a": [1, 2.5, "\U0001f600", "\\ud800"]
    }
    assert parse_json(b"[" * 64 + b"]" * 64) is not None
