"""The Range / If-Range parser, case by case (RFC 9110 §14)."""

import pytest

from hubproxy.hf_api.ranges import (
    ByteRange,
    MalformedRange,
    UnsatisfiableRange,
    if_range_allows,
    parse_range,
)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, ByteRange(0, 10, 100)),
        ("bytes=10-", 100, ByteRange(10, 100, 100)),
        ("bytes=0-", 100, ByteRange(0, 100, 100)),
        ("bytes=90-200", 100, ByteRange(90, 100, 100)),
        ("bytes=-10", 100, ByteRange(90, 100, 100)),
        ("bytes=-500", 100, ByteRange(0, 100, 100)),
        ("bytes=99-99", 100, ByteRange(99, 100, 100)),
        (" bytes = 5 - 6 ", 100, ByteRange(5, 7, 100)),
        ("BYTES=1-2", 100, ByteRange(1, 3, 100)),
        ("items=0-5", 100, None),
        ("bytes=0-1,5-6", 100, None),
        ("=1-2", 100, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header", ["bytes", "bytes=", "bytes=a-b", "bytes=5-1", "bytes=-", "bytes=1-2,x"]
)
def test_malformed(header: str) -> None:
    with pytest.raises(MalformedRange):
        parse_range(header, 100)


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0), ("bytes=-5", 0)]
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, size)


def test_content_range_and_length() -> None:
    byte_range = ByteRange(10, 20, 100)
    assert byte_range.content_range == "bytes 10-19/100"
    assert byte_range.length == 10


def test_if_range() -> None:
    assert if_range_allows(None, "abc")
    assert if_range_allows('"abc"', "abc")
    assert not if_range_allows('"abd"', "abc")
    assert not if_range_allows('W/"abc"', "abc")
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", "abc")
