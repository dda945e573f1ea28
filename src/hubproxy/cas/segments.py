"""Which chunks of which xorbs make a byte range of a file: the plan behind reconstruction
answers and server-side reads. Pure functions over the file's terms and the xorbs' indexes."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hubproxy.xet.xorbs import XorbChunk


@dataclass(frozen=True, slots=True)
class Term:
    """Chunks `[first_chunk, end_chunk)` of xorb `xorb_hash` (string form): `size` bytes."""

    xorb_hash: str
    first_chunk: int
    end_chunk: int
    size: int


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of a term that a byte range needs: chunks `[first_chunk, end_chunk)`, stored at
    xorb bytes `[byte_start, byte_end)`, decompressing to `size` bytes of which the range
    starts `skip` bytes in (only the first segment has a non-zero `skip`)."""

    xorb_hash: str
    first_chunk: int
    end_chunk: int
    byte_start: int
    byte_end: int
    size: int
    skip: int


def plan(
    terms: Sequence[Term],
    chunks: Mapping[str, Sequence[XorbChunk]],
    start: int,
    end: int,
) -> list[Segment]:
    """The segments covering file bytes `[start, end)` (non-empty, within the file), whole
    chunks each: chunks before `start` or from `end` on are left out."""
    segments: list[Segment] = []
    position = 0
    for term in terms:
        term_end = position + term.size
        if term_end <= start:
            position = term_end
            continue
        if position >= end:
            break
        index = chunks[term.xorb_hash]
        first, last = term.first_chunk, term.end_chunk
        chunk_position = position
        # Whole chunks before `start` are skipped; the one holding it is kept.
        while chunk_position + index[first].uncompressed_length <= start:
            chunk_position += index[first].uncompressed_length
            first += 1
        skip = max(0, start - chunk_position)
        covered = chunk_position
        cut = first
        while cut < last and covered < end:
            covered += index[cut].uncompressed_length
            cut += 1
        segments.append(
            Segment(
                term.xorb_hash,
                first,
                cut,
                index[first].offset,
                index[cut - 1].end,
                covered - chunk_position,
                skip,
            )
        )
        position = term_end
    return segments
