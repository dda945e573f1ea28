"""Uploaded shards (`shared/xet.md` §2.4; xet-core `metadata_shard/shard_format.rs`).

Little-endian throughout; every record after the 48-byte header is 48 bytes:

    header     tag[32] | version u64 (2) | footer size u64 (0 on upload)
    file info  per file: {file hash, flags u32, entry count u32, 8 reserved}
                 entries x {xorb hash, flags u32, unpacked u32, chunk start u32, chunk end u32}
                 if flags & 1<<31: entries x {verification hash, 16 reserved}
                 if flags & 1<<30: one {sha256 (word-swapped like every hash), 16 reserved}
               bookend: 32 x 0xFF, 16 x 0
    CAS info   per xorb: {xorb hash, flags u32, chunks u32, bytes in xorb u32, bytes on disk u32}
                 chunks x {chunk hash, range start u32, unpacked u32, flags u32, 4 reserved}
               bookend
    footer     `footer size` bytes, skipped (clients upload none)

The parser trusts no count: each is checked against the bytes left in the shard before a
record is read, so a hostile shard costs at most its own size in memory.
"""

from dataclasses import dataclass
from typing import BinaryIO

from hubproxy.errors import InvalidShard
from hubproxy.xet.hashing import HASH_BYTES, to_hex

TAG = b"HFRepoMetaData\x00" + bytes(
    [85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169]
)
VERSION = 2
HEADER_BYTES = 48
RECORD_BYTES = 48
MAX_SHARD_BYTES = 64 * 1024 * 1024
WITH_VERIFICATION = 1 << 31
WITH_METADATA_EXT = 1 << 30
BOOKEND_HASH = b"\xff" * HASH_BYTES


@dataclass(frozen=True, slots=True)
class FileTerm:
    """Chunks `[chunk_start, chunk_end)` of a xorb: `unpacked_bytes` of a file's content."""

    xorb_hash: bytes
    chunk_start: int
    chunk_end: int
    unpacked_bytes: int


@dataclass(frozen=True, slots=True)
class ShardFile:
    """A file the shard describes: its Xet hash, its terms in order, the verification hash of
    each term (None if the shard has none) and its sha256 (hex, None if not given)."""

    hash: bytes
    terms: tuple[FileTerm, ...]
    verification: tuple[bytes, ...] | None
    sha256: str | None

    @property
    def size(self) -> int:
        return sum(term.unpacked_bytes for term in self.terms)

    @property
    def hex(self) -> str:
        return to_hex(self.hash)


@dataclass(frozen=True, slots=True)
class ShardXorbChunk:
    hash: bytes
    byte_range_start: int
    unpacked_bytes: int
    flags: int


@dataclass(frozen=True, slots=True)
class ShardXorb:
    """A xorb the shard lists (its chunks as the client saw them; the CAS trusts its own index)."""

    hash: bytes
    bytes_in_xorb: int
    chunks: tuple[ShardXorbChunk, ...]


@dataclass(frozen=True, slots=True)
class Shard:
    files: tuple[ShardFile, ...]
    xorbs: tuple[ShardXorb, ...]


class _Reader:
    """Records from a shard of known size; refuses to read past it."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream = stream
        self.remaining = size
        self.position = 0

    def records(self, count: int, what: str) -> bytes:
        """`count` records, after checking the shard still holds them."""
        wanted = count * RECORD_BYTES
        if wanted > self.remaining:
            raise InvalidShard(
                f"Shard announces {count} {what} at byte {self.position}, but only"
                f" {self.remaining} bytes remain"
            )
        data = self.stream.read(wanted)
        if len(data) != wanted:
            raise InvalidShard(f"Shard truncated at byte {self.position + len(data)}")
        self.remaining -= wanted
        self.position += wanted
        return data


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _header(stream: BinaryIO, size: int) -> int:
    """Checks the header; returns the footer size it announces."""
    if size > MAX_SHARD_BYTES:
        raise InvalidShard(f"Shard larger than {MAX_SHARD_BYTES} bytes")
    if size < HEADER_BYTES:
        raise InvalidShard("Shard truncated in its header")
    header = stream.read(HEADER_BYTES)
    if len(header) != HEADER_BYTES:
        raise InvalidShard("Shard truncated in its header")
    if header[:32] != TAG:
        raise InvalidShard("Not a shard: wrong magic number")
    version = int.from_bytes(header[32:40], "little")
    if version != VERSION:
        raise InvalidShard(f"Unsupported shard version {version} (expected {VERSION})")
    return int.from_bytes(header[40:48], "little")


def _file(reader: _Reader, record: bytes) -> ShardFile:
    file_hash = record[:32]
    flags, count = _u32(record, 32), _u32(record, 36)
    per_entry = 1 + (1 if flags & WITH_VERIFICATION else 0)
    extra = 1 if flags & WITH_METADATA_EXT else 0
    # All of the file's records at once, so that the count is checked before any is kept.
    data = reader.records(count * per_entry + extra, f"records for file {to_hex(file_hash)}")
    terms = []
    for index in range(count):
        entry = data[index * RECORD_BYTES : (index + 1) * RECORD_BYTES]
        term = FileTerm(entry[:32], _u32(entry, 40), _u32(entry, 44), _u32(entry, 36))
        if term.chunk_end <= term.chunk_start or term.unpacked_bytes == 0:
            raise InvalidShard(
                f"Term {index} of file {to_hex(file_hash)} is empty (chunks"
                f" {term.chunk_start}..{term.chunk_end}, {term.unpacked_bytes} bytes)"
            )
        terms.append(term)
    verification = None
    if flags & WITH_VERIFICATION:
        base = count * RECORD_BYTES
        verification = tuple(
            data[base + index * RECORD_BYTES : base + index * RECORD_BYTES + 32]
            for index in range(count)
        )
    sha256 = None
    if extra:
        sha256 = to_hex(data[-RECORD_BYTES:][:32])
    return ShardFile(file_hash, tuple(terms), verification, sha256)


def _xorb(reader: _Reader, record: bytes) -> ShardXorb:
    xorb_hash = record[:32]
    count, in_xorb = _u32(record, 36), _u32(record, 40)
    data = reader.records(count, f"chunks of xorb {to_hex(xorb_hash)}")
    chunks = tuple(
        ShardXorbChunk(
            data[start : start + 32],
            _u32(data, start + 32),
            _u32(data, start + 36),
            _u32(data, start + 40),
        )
        for start in range(0, len(data), RECORD_BYTES)
    )
    return ShardXorb(xorb_hash, in_xorb, chunks)


def parse_shard(stream: BinaryIO, size: int) -> Shard:
    """Parse a shard of `size` bytes from `stream`; `InvalidShard` for anything malformed."""
    footer_size = _header(stream, size)
    reader = _Reader(stream, size - HEADER_BYTES)
    files: list[ShardFile] = []
    while True:
        record = reader.records(1, "file-info record (or its bookend)")
        if record[:32] == BOOKEND_HASH:
            break
        files.append(_file(reader, record))
    xorbs: list[ShardXorb] = []
    while True:
        record = reader.records(1, "CAS-info record (or its bookend)")
        if record[:32] == BOOKEND_HASH:
            break
        xorbs.append(_xorb(reader, record))
    if reader.remaining != footer_size:
        raise InvalidShard(
            f"Shard has {reader.remaining} bytes after its sections, but announces a footer of"
            f" {footer_size}"
        )
    return Shard(tuple(files), tuple(xorbs))
