"""Malformed xorbs and shards: each is refused with a precise `InvalidXorb`/`InvalidShard`
(a 400), never an unhandled exception, and never with an allocation the input did not pay for."""

import io

import lz4.frame
import pytest

from hubproxy.errors import InvalidShard, InvalidXorb
from hubproxy.xet.hashing import chunk_hash, merkle_root
from hubproxy.xet.shards import BOOKEND_HASH, TAG, WITH_METADATA_EXT, parse_shard
from hubproxy.xet.xorbs import ChunkStream, parse_xorb


def header(compressed: int, scheme: int, uncompressed: int, version: int = 0) -> bytes:
    return (
        bytes([version])
        + compressed.to_bytes(3, "little")
        + bytes([scheme])
        + uncompressed.to_bytes(3, "little")
    )


def chunk(data: bytes, scheme: int = 0) -> bytes:
    payload = data
    if scheme == 1:
        payload = lz4.frame.compress(data)
    elif scheme == 2:
        grouped = b"".join(data[lane::4] for lane in range(4))
        payload = lz4.frame.compress(grouped)
    return header(len(payload), scheme, len(data)) + payload


def xorb_hash(*pieces: bytes) -> bytes:
    return merkle_root((chunk_hash(piece), len(piece)) for piece in pieces)


def parse(body: bytes, expected: bytes | None = None) -> None:
    parse_xorb(io.BytesIO(body), expected)


def test_a_well_formed_xorb_of_every_scheme_parses() -> None:
    pieces = [b"a" * 1000, bytes(range(256)) * 40 + b"xyz", b"plain bytes"]
    body = chunk(pieces[0], 1) + chunk(pieces[1], 2) + chunk(pieces[2], 0)
    index = parse_xorb(io.BytesIO(body), xorb_hash(*pieces))
    assert [c.uncompressed_length for c in index.chunks] == [len(piece) for piece in pieces]
    # The streaming decoder used for downloads gives the same bytes, fed in odd pieces.
    stream = ChunkStream()
    decoded = [
        data for start in range(0, len(body), 7) for data in stream.feed(body[start : start + 7])
    ]
    assert decoded == pieces
    assert stream.pending == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Xorb is empty"),
        (header(5, 0, 5)[:6], "truncated in the chunk header"),
        (header(5, 0, 5) + b"abc", "truncated in the chunk"),
        (header(5, 7, 5) + b"abcde", "Unknown compression scheme 7"),
        (header(5, 0, 5, version=1) + b"abcde", "Unknown chunk format version 1"),
        (header(5, 0, 6) + b"abcde", "two lengths"),
        (header(0, 1, 5), "Compressed length 0"),
        (header(5, 0, 0) + b"abcde", "Chunk length 0"),
        (header(300_000, 1, 100), "Compressed length 300000"),
        (header(10, 0, 200_000), "Chunk length 200000"),
        (header(20, 1, 5) + b"x" * 20, "not a valid LZ4 frame"),
        (header(5, 1, 5) + b"abcde", "does not decompress to the 5 bytes"),
        (b"XETBLOB\x01" + bytes(100), "has a footer"),
    ],
)
def test_malformed_xorbs_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(InvalidXorb, match=message) as raised:
        parse(body)
    assert raised.value.status == 400
    assert raised.value.code == "InvalidXorb"


def test_lying_uncompressed_lengths_are_refused() -> None:
    data = b"z" * 5000
    payload = lz4.frame.compress(data)
    # Announces fewer bytes than the frame holds: decompression stops at the announced length.
    with pytest.raises(InvalidXorb, match="does not decompress to the 4000 bytes"):
        parse(header(len(payload), 1, 4000) + payload)
    with pytest.raises(InvalidXorb, match="does not decompress to the 6000 bytes"):
        parse(header(len(payload), 1, 6000) + payload)
    # Trailing bytes after the frame inside the payload.
    with pytest.raises(InvalidXorb, match="does not decompress"):
        parse(header(len(payload) + 3, 1, 5000) + payload + b"xyz")


def test_a_xorb_that_hashes_to_another_name_is_refused() -> None:
    body = chunk(b"hello xet")
    with pytest.raises(InvalidXorb, match="hashes to"):
        parse(body, xorb_hash(b"something else"))


def test_an_oversized_xorb_is_refused_before_it_is_read_whole() -> None:
    piece = bytes(range(256)) * 512  # 128 KiB, incompressible enough for scheme 0
    body = chunk(piece) * 513  # just over 64 MiB
    with pytest.raises(InvalidXorb, match="larger than"):
        parse(body)


# Shards ---------------------------------------------------------------------------------


def shard_header(version: int = 2, footer: int = 0) -> bytes:
    return TAG + version.to_bytes(8, "little") + footer.to_bytes(8, "little")


BOOKEND = BOOKEND_HASH + bytes(16)


def file_record(file_hash: bytes, flags: int, entries: int) -> bytes:
    return file_hash + flags.to_bytes(4, "little") + entries.to_bytes(4, "little") + bytes(8)


def entry(xorb: bytes, unpacked: int, start: int, end: int) -> bytes:
    return xorb + b"".join(value.to_bytes(4, "little") for value in (0, unpacked, start, end))


def parse_shard_bytes(body: bytes) -> None:
    parse_shard(io.BytesIO(body), len(body))


def test_a_minimal_shard_parses() -> None:
    body = (
        shard_header()
        + file_record(b"f" * 32, WITH_METADATA_EXT, 1)
        + entry(b"x" * 32, 10, 0, 1)
        + b"s" * 32 + bytes(16)
        + BOOKEND
        + BOOKEND
    )  # fmt: skip
    shard = parse_shard(io.BytesIO(body), len(body))
    assert len(shard.files) == 1
    assert shard.files[0].size == 10
    assert shard.files[0].verification is None
    assert shard.files[0].sha256 is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "truncated in its header"),
        (b"x" * 48, "wrong magic number"),
        (shard_header(version=3) + BOOKEND + BOOKEND, "Unsupported shard version 3"),
        (shard_header(), "file-info record"),
        (shard_header() + BOOKEND, "CAS-info record"),
        (shard_header() + BOOKEND + BOOKEND + b"extra", "5 bytes after its sections"),
        # Absurd counts are checked against the bytes left before anything is allocated.
        (shard_header() + file_record(b"f" * 32, 0, 0xFFFFFFFF) + BOOKEND, "announces 4294967295"),
        (
            shard_header() + BOOKEND + b"x" * 32 + (0).to_bytes(4, "little")
            + (0x7FFFFFFF).to_bytes(4, "little") + bytes(8) + BOOKEND,
            "announces 2147483647 chunks",
        ),
        (
            shard_header() + file_record(b"f" * 32, 0, 1) + entry(b"x" * 32, 10, 3, 3) + BOOKEND + BOOKEND,
            "is empty",
        ),
    ],
)  # fmt: skip
def test_malformed_shards_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(InvalidShard, match=message) as raised:
        parse_shard_bytes(body)
    assert raised.value.status == 400


def test_an_oversized_shard_is_refused_by_its_size() -> None:
    with pytest.raises(InvalidShard, match="larger than"):
        parse_shard(io.BytesIO(b""), 65 * 1024 * 1024)
