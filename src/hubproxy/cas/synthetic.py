"""Cached files offered over Xet without being chunked: synthetic xorbs over the chunk store.

hf_xet checks only lengths when it downloads (`shared/xet.md` §2.5), so a cached file can be
described as a row of xorbs that hubproxy makes up on the fly: each covers `XORB_SPAN` bytes
of the file, cut into uncompressed (scheme 0) chunks of `CHUNK_BYTES`, every chunk its 8-byte
header and then its bytes as the cache holds them. A file is named by its sha256 (its `X-Xet-
Hash`), a synthetic xorb by a hash of that and its position, so nothing needs storing: the
reconstruction plan and every xorb byte are computed from the file's size and read from the
blob cache (which fills from upstream like any other read).
"""

import hashlib
from collections.abc import AsyncIterator, Callable

from hubproxy.cas.segments import Term
from hubproxy.xet.xorbs import HEADER_BYTES, XorbChunk

# Within hf_xet's 128 KiB chunk limit; 1024 of them make one xorb, as real ones are at most.
CHUNK_BYTES = 64 * 1024
CHUNKS_PER_XORB = 1024
XORB_SPAN = CHUNK_BYTES * CHUNKS_PER_XORB
_NO_HASH = bytes(32)

FileReader = Callable[[int, int], AsyncIterator[bytes]]


def xorb_hash(sha256: str, part: int) -> str:
    """The name of synthetic xorb `part` of the file with this sha256 (64 hex digits)."""
    return hashlib.sha256(f"hubproxy-synthetic-xorb:{sha256}:{part}".encode()).hexdigest()


def parts(size: int) -> int:
    """How many synthetic xorbs a file of `size` bytes has."""
    return -(-size // XORB_SPAN)


def chunks(size: int, part: int) -> list[XorbChunk]:
    """The chunk index of synthetic xorb `part` of a file of `size` bytes."""
    first = part * XORB_SPAN
    span = min(XORB_SPAN, size - first)
    found = []
    for index in range(-(-span // CHUNK_BYTES)):
        length = min(CHUNK_BYTES, span - index * CHUNK_BYTES)
        found.append(XorbChunk(index * (HEADER_BYTES + CHUNK_BYTES), length, length, _NO_HASH))
    return found


def plan_inputs(sha256: str, size: int) -> tuple[list[Term], dict[str, list[XorbChunk]]]:
    """The terms and chunk indexes of the file, as `segments.plan` takes them."""
    terms, indexes = [], {}
    for part in range(parts(size)):
        name = xorb_hash(sha256, part)
        index = indexes[name] = chunks(size, part)
        terms.append(Term(name, 0, len(index), sum(chunk.uncompressed_length for chunk in index)))
    return terms, indexes


def xorb_size(size: int, part: int) -> int:
    index = chunks(size, part)
    return index[-1].end if index else 0


def _header(length: int) -> bytes:
    # version 0, compressed length (u24), scheme 0 (none), uncompressed length (u24)
    packed = length.to_bytes(3, "little")
    return b"\x00" + packed + b"\x00" + packed


async def xorb_bytes(
    read_file: FileReader, size: int, part: int, start: int, end: int
) -> AsyncIterator[bytes]:
    """Bytes `[start, end)` of synthetic xorb `part`: chunk headers made here, chunk bytes
    from one read of the file bytes they cover (`read_file(file_start, file_end)`)."""
    base = part * XORB_SPAN
    wanted = []  # (header slice, data bytes) per chunk the range touches
    for index, chunk in enumerate(chunks(size, part)):
        if chunk.end <= start or chunk.offset >= end:
            continue
        header_from = max(start - chunk.offset, 0)
        header_to = min(end - chunk.offset, HEADER_BYTES)
        data_start = chunk.offset + HEADER_BYTES
        data_from = base + index * CHUNK_BYTES + max(start, data_start) - data_start
        data_to = base + index * CHUNK_BYTES + max(min(end, chunk.end) - data_start, 0)
        wanted.append(
            (_header(chunk.uncompressed_length)[header_from:header_to], data_from, data_to)
        )
    if not wanted:
        return
    file_from = min(data_from for _header_bytes, data_from, _data_to in wanted)
    file_to = max(data_to for _header_bytes, _data_from, data_to in wanted)
    pieces = read_file(file_from, file_to) if file_from < file_to else None
    held = b""
    try:
        for header, data_from, data_to in wanted:
            if header:
                yield header
            need = max(data_to - data_from, 0)
            while need:
                if not held:
                    assert pieces is not None
                    held = await anext(pieces)
                piece, held = held[:need], held[need:]
                need -= len(piece)
                yield piece
    finally:
        if pieces is not None:
            await pieces.aclose()  # type: ignore[attr-defined]
