"""Serialized xorbs, as clients upload them (`shared/xet.md` §2.3; xet-core `xorb_object/`).

A xorb is a concatenation of chunks, each an 8-byte header and its payload, with no footer:

    version u8 (0) | compressed length u24 LE | scheme u8 | uncompressed length u24 LE

Schemes: 0 none (payload is the chunk), 1 LZ4 frame, 2 BG4-LZ4 (an LZ4 frame of the chunk's
bytes regrouped: every 4th byte from 0, then from 1, 2 and 3). A chunk is at most 128 KiB
uncompressed, its payload at most twice that; a xorb is at most 64 MiB serialized.

`parse_xorb` reads one from a file, decompresses every chunk (each decompression is bounded by
the length its header announces, so no payload can expand further), hashes it, and returns the
index the CAS keeps: per chunk the offset of its header, both lengths and its hash, plus the
xorb's Merkle root, which must equal the hash the xorb was uploaded under.
"""

from dataclasses import dataclass
from typing import BinaryIO

import lz4.frame  # type: ignore[import-untyped]

from hubproxy.errors import InvalidXorb
from hubproxy.xet.hashing import chunk_hash, merkle_root, to_hex

HEADER_BYTES = 8
MAX_XORB_BYTES = 64 * 1024 * 1024
MAX_CHUNK_BYTES = 128 * 1024
MAX_PAYLOAD_BYTES = 2 * MAX_CHUNK_BYTES
# hf_xet puts at most 8192 chunks in a xorb; room for a client that puts more, still bounded.
MAX_CHUNKS = 65536
SCHEME_NONE, SCHEME_LZ4, SCHEME_BG4_LZ4 = 0, 1, 2
SCHEMES = {SCHEME_NONE: "none", SCHEME_LZ4: "lz4", SCHEME_BG4_LZ4: "bg4-lz4"}
# What a footered (stored-format) xorb starts its footer with; never part of an upload.
FOOTER_TAG = b"XETBLOB"


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """One chunk's header: format version, scheme and both lengths."""

    version: int
    compressed_length: int
    scheme: int
    uncompressed_length: int


@dataclass(frozen=True, slots=True)
class XorbChunk:
    """One chunk of a stored xorb: where its header starts, its lengths and its hash."""

    offset: int
    compressed_length: int
    uncompressed_length: int
    hash: bytes

    @property
    def end(self) -> int:
        """Where the next chunk's header starts."""
        return self.offset + HEADER_BYTES + self.compressed_length


@dataclass(frozen=True, slots=True)
class XorbIndex:
    """A verified xorb: its hash, serialized size and chunks in order."""

    hash: bytes
    size: int
    chunks: tuple[XorbChunk, ...]

    @property
    def hex(self) -> str:
        return to_hex(self.hash)


def parse_header(data: bytes | bytearray | memoryview, offset: int) -> ChunkHeader:
    """The chunk header in `data` (8 bytes), checked; `offset` only names it in errors."""
    if len(data) < HEADER_BYTES:
        raise InvalidXorb(f"Xorb truncated in the chunk header at byte {offset}")
    raw = bytes(data[:HEADER_BYTES])
    if raw.startswith(FOOTER_TAG):
        raise InvalidXorb(f"Xorb has a footer at byte {offset}: upload xorbs without one")
    header = ChunkHeader(
        raw[0],
        int.from_bytes(raw[1:4], "little"),
        raw[4],
        int.from_bytes(raw[5:8], "little"),
    )
    where = f"chunk header at byte {offset}"
    if header.version != 0:
        raise InvalidXorb(f"Unknown chunk format version {header.version} in the {where}")
    if header.scheme not in SCHEMES:
        raise InvalidXorb(f"Unknown compression scheme {header.scheme} in the {where}")
    if not 0 < header.uncompressed_length <= MAX_CHUNK_BYTES:
        raise InvalidXorb(
            f"Chunk length {header.uncompressed_length} in the {where} is not within"
            f" 1..{MAX_CHUNK_BYTES}"
        )
    if header.compressed_length > MAX_PAYLOAD_BYTES or header.compressed_length == 0:
        raise InvalidXorb(
            f"Compressed length {header.compressed_length} in the {where} is not within"
            f" 1..{MAX_PAYLOAD_BYTES}"
        )
    if header.scheme == SCHEME_NONE and header.compressed_length != header.uncompressed_length:
        raise InvalidXorb(
            f"Uncompressed chunk with two lengths ({header.compressed_length} and"
            f" {header.uncompressed_length}) in the {where}"
        )
    return header


def _lz4_frame(payload: bytes | bytearray | memoryview, length: int, offset: int) -> bytes:
    """An LZ4 frame that must decompress to exactly `length` bytes, and be nothing more."""
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        data: bytes = decompressor.decompress(bytes(payload), max_length=length + 1)
    except RuntimeError as error:
        raise InvalidXorb(f"Chunk at byte {offset} is not a valid LZ4 frame: {error}") from None
    if len(data) != length or not decompressor.eof or decompressor.unused_data:
        raise InvalidXorb(
            f"Chunk at byte {offset} does not decompress to the {length} bytes its header says"
        )
    return data


def _regroup(grouped: bytes) -> bytes:
    """Undo BG4's byte grouping: groups of sizes n//4 + (i < n%4) interleaved back."""
    size = len(grouped)
    out = bytearray(size)
    start = 0
    for lane in range(4):
        count = size // 4 + (1 if lane < size % 4 else 0)
        out[lane::4] = grouped[start : start + count]
        start += count
    return bytes(out)


def decode_chunk(
    header: ChunkHeader, payload: bytes | bytearray | memoryview, offset: int = 0
) -> bytes:
    """The uncompressed bytes of one chunk (its payload as `header` describes it)."""
    if len(payload) != header.compressed_length:
        raise InvalidXorb(f"Xorb truncated in the chunk at byte {offset}")
    if header.scheme == SCHEME_NONE:
        return bytes(payload)
    data = _lz4_frame(payload, header.uncompressed_length, offset)
    return _regroup(data) if header.scheme == SCHEME_BG4_LZ4 else data


def parse_xorb(stream: BinaryIO, expected_hash: bytes | None = None) -> XorbIndex:
    """Read, check and index a serialized xorb from `stream` (read to its end).

    Raises `InvalidXorb` for anything malformed: a truncated header or payload, an unknown
    version or scheme, lengths out of bounds or not matching the decompressed data, more than
    `MAX_XORB_BYTES`, no chunk at all, or (with `expected_hash`) another Merkle root."""
    chunks: list[XorbChunk] = []
    offset = 0
    while True:
        raw = stream.read(HEADER_BYTES)
        if not raw:
            break
        header = parse_header(raw, offset)
        if len(chunks) >= MAX_CHUNKS:
            raise InvalidXorb(f"Xorb has more than {MAX_CHUNKS} chunks")
        end = offset + HEADER_BYTES + header.compressed_length
        if end > MAX_XORB_BYTES:
            raise InvalidXorb(f"Xorb larger than {MAX_XORB_BYTES} bytes")
        payload = stream.read(header.compressed_length)
        data = decode_chunk(header, payload, offset)
        chunks.append(
            XorbChunk(
                offset, header.compressed_length, header.uncompressed_length, chunk_hash(data)
            )
        )
        offset = end
    if not chunks:
        raise InvalidXorb("Xorb is empty")
    root = merkle_root((chunk.hash, chunk.uncompressed_length) for chunk in chunks)
    if expected_hash is not None and root != expected_hash:
        raise InvalidXorb(f"Xorb content hashes to {to_hex(root)}, not to {to_hex(expected_hash)}")
    return XorbIndex(root, offset, tuple(chunks))


class ChunkStream:
    """Decodes chunks from xorb bytes that arrive in pieces (a stored xorb range being read):
    `feed` a piece, get the uncompressed chunks completed by it. Holds at most one partial
    chunk (header + payload) between pieces."""

    def __init__(self, offset: int = 0) -> None:
        self._pending = bytearray()
        self._offset = offset

    def feed(self, piece: bytes | bytearray | memoryview) -> list[bytes]:
        pending = self._pending
        pending += piece
        chunks: list[bytes] = []
        position = 0
        while len(pending) - position >= HEADER_BYTES:
            header = parse_header(pending[position : position + HEADER_BYTES], self._offset)
            end = position + HEADER_BYTES + header.compressed_length
            if end > len(pending):
                break
            payload = pending[position + HEADER_BYTES : end]
            chunks.append(decode_chunk(header, payload, self._offset))
            self._offset += end - position
            position = end
        del pending[:position]
        return chunks

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole chunk."""
        return len(self._pending)
