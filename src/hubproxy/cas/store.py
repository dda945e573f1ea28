"""`XetStore`: xorbs and shards in, file content out.

Every upload is spooled first (memory up to `SPOOL_IN_MEMORY`, then an anonymous temporary
file in the staging directory), bounded while it arrives, and verified in a worker thread:

- a xorb is parsed chunk by chunk and must hash to its name; only then are its raw bytes
  written through a storage writer (invisible until committed) under `layout.xorb_key`, and
  then its index recorded;
- a shard is parsed, and each file in it is checked against what the CAS itself stored: every
  term's xorb exists and holds the chunks named, each term's length and verification hash
  match those chunks (which proves the uploader had them), the chunks give the file hash, and
  the reconstructed bytes give the sha256 the shard names. Only then is the file registered,
  for the repo the upload was authorized for.

Nothing unverified is ever stored or registered. Reads reconstruct any byte range from the
xorbs, streaming: one storage range per term, decompressed chunk by chunk.
"""

import asyncio
import hashlib
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hubproxy.cache.layout import xorb_key
from hubproxy.cache.storage import Storage
from hubproxy.cas.index import CasIndex, XetFile
from hubproxy.cas.segments import Segment, Term, plan
from hubproxy.db import Database
from hubproxy.errors import InvalidShard, PayloadTooLarge, StorageUnavailable
from hubproxy.naming import RepoRef
from hubproxy.xet.hashing import ZERO_HASH, file_hash, from_hex, to_hex, verification_hash
from hubproxy.xet.shards import MAX_SHARD_BYTES, Shard, ShardFile, parse_shard
from hubproxy.xet.xorbs import MAX_XORB_BYTES, ChunkStream, XorbChunk, parse_xorb

SPOOL_IN_MEMORY = 4 * 1024 * 1024
WRITE_PIECE = 4 * 1024 * 1024
XORB_INDEXES_IN_MEMORY = 256


@dataclass(frozen=True, slots=True)
class ShardResult:
    """What a shard registered: the files (new or known) and whether anything was new."""

    files: tuple[XetFile, ...]
    new: bool


async def _spool(body: AsyncIterator[bytes], limit: int, what: str, directory: Path) -> BinaryIO:
    """The body in a spooled temporary file (rewound), refused as soon as it passes `limit`."""
    spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
        max_size=SPOOL_IN_MEMORY, mode="w+b", dir=str(directory)
    )
    received = 0
    pending = bytearray()
    try:
        async for piece in body:
            received += len(piece)
            if received > limit:
                raise PayloadTooLarge(f"{what} larger than {limit} bytes")
            pending += piece
            if len(pending) >= WRITE_PIECE:
                await asyncio.to_thread(spool.write, bytes(pending))
                pending.clear()
        await asyncio.to_thread(spool.write, bytes(pending))
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool  # type: ignore[return-value]  # a binary file in every way used here


class XetStore:
    """The CAS over chunk storage and the metadata database."""

    def __init__(self, storage: Storage, database: Database, staging_dir: Path) -> None:
        self.storage = storage
        self.index = CasIndex(database)
        self.staging_dir = staging_dir
        self._chunks: OrderedDict[str, tuple[XorbChunk, ...]] = OrderedDict()

    # Xorbs ----------------------------------------------------------------------------

    async def has_xorb(self, xorb_hash: str) -> bool:
        return await self.index.has_xorb(xorb_hash)

    async def put_xorb(self, xorb_hash: str, body: AsyncIterator[bytes]) -> bool:
        """Receive, verify and store a xorb; False if it was stored already (the body is then
        not read). `InvalidXorb` / `PayloadTooLarge` leave nothing behind."""
        if await self.index.has_xorb(xorb_hash):
            return False
        expected = from_hex(xorb_hash)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        spool = await _spool(body, MAX_XORB_BYTES, "Xorb", self.staging_dir)
        try:
            index = await asyncio.to_thread(parse_xorb, spool, expected)
            spool.seek(0)
            writer = await self.storage.open_writer(xorb_key(xorb_hash))
            try:
                while piece := await asyncio.to_thread(spool.read, WRITE_PIECE):
                    await writer.write(piece)
                await writer.commit()
            except BaseException:
                await writer.abort()
                raise
        finally:
            spool.close()
        return await self.index.add_xorb(index)

    async def xorb_chunks(self, xorb_hash: str) -> tuple[XorbChunk, ...] | None:
        """The chunk index of a stored xorb (kept in memory for the most recent ones)."""
        found = self._chunks.get(xorb_hash)
        if found is not None:
            self._chunks.move_to_end(xorb_hash)
            return found
        loaded = await self.index.xorb_chunks(xorb_hash)
        if loaded is not None:
            self._chunks[xorb_hash] = loaded
            if len(self._chunks) > XORB_INDEXES_IN_MEMORY:
                self._chunks.popitem(last=False)
        return loaded

    # Shards ---------------------------------------------------------------------------

    async def put_shard(self, body: AsyncIterator[bytes], ref: RepoRef) -> ShardResult:
        """Receive a shard, verify every file it describes against the stored xorbs, and
        register the files for `ref`. `InvalidShard` (nothing registered) on any mismatch."""
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        spool = await _spool(body, MAX_SHARD_BYTES, "Shard", self.staging_dir)
        try:
            size = spool.seek(0, 2)
            spool.seek(0)
            shard = await asyncio.to_thread(parse_shard, spool, size)
        finally:
            spool.close()
        return await self.register(shard, ref)

    async def register(self, shard: Shard, ref: RepoRef) -> ShardResult:
        verified = [await self._verify(described) for described in shard.files if described.terms]
        new = False
        for file in verified:
            new = await self.index.register(file, ref) or new
        return ShardResult(tuple(verified), new)

    async def _verify(self, described: ShardFile) -> XetFile:
        name = described.hex
        if described.verification is None:
            raise InvalidShard(f"File {name} has no verification entries")
        leaves: list[tuple[bytes, int]] = []
        terms: list[Term] = []
        for position, term in enumerate(described.terms):
            xorb = to_hex(term.xorb_hash)
            chunks = await self.xorb_chunks(xorb)
            if chunks is None:
                raise InvalidShard(f"File {name} uses xorb {xorb}, which was not uploaded")
            if term.chunk_end > len(chunks):
                raise InvalidShard(
                    f"File {name} uses chunks {term.chunk_start}..{term.chunk_end} of xorb"
                    f" {xorb}, which has {len(chunks)}"
                )
            used = chunks[term.chunk_start : term.chunk_end]
            length = sum(chunk.uncompressed_length for chunk in used)
            if length != term.unpacked_bytes:
                raise InvalidShard(
                    f"Term {position} of file {name} says {term.unpacked_bytes} bytes; its"
                    f" chunks hold {length}"
                )
            if verification_hash(chunk.hash for chunk in used) != described.verification[position]:
                raise InvalidShard(f"Verification hash of term {position} of file {name} is wrong")
            leaves += [(chunk.hash, chunk.uncompressed_length) for chunk in used]
            terms.append(Term(xorb, term.chunk_start, term.chunk_end, length))
        if file_hash(leaves) != described.hash:
            raise InvalidShard(f"The chunks of file {name} give another file hash")
        claimed = described.sha256
        known = await self.index.file(name)
        if known is not None:
            # Verified when first registered: the same chunks give the same bytes. The
            # verification hashes above were still checked, for this uploader.
            digest = known.sha256
        else:
            digest = await self._sha256(XetFile(name, described.size, "", tuple(terms)))
        if claimed is not None and claimed != to_hex(ZERO_HASH) and claimed != digest:
            raise InvalidShard(f"File {name} has sha256 {digest}, not {claimed}")
        return XetFile(name, described.size, digest, tuple(terms))

    async def _sha256(self, file: XetFile) -> str:
        digest = hashlib.sha256()
        async for piece in self.read(file, 0, file.size):
            await asyncio.to_thread(digest.update, piece)
        return digest.hexdigest()

    # Files ----------------------------------------------------------------------------

    async def file(self, file_hash: str) -> XetFile | None:
        return await self.index.file(file_hash)

    async def repo_file(self, ref: RepoRef, sha256: str) -> XetFile | None:
        return await self.index.repo_file(ref, sha256)

    async def in_repo(self, ref: RepoRef, file_hash: str) -> bool:
        return await self.index.in_repo(ref, file_hash)

    async def file_by_sha256(self, sha256: str) -> XetFile | None:
        return await self.index.file_by_sha256(sha256)

    async def segments(self, file: XetFile, start: int, end: int) -> list[Segment]:
        """The plan for file bytes `[start, end)` (within the file, non-empty)."""
        chunks = {}
        for term in file.terms:
            found = await self.xorb_chunks(term.xorb_hash)
            if found is None:
                raise InvalidShard(f"Xorb {term.xorb_hash} of file {file.hash} is missing")
            chunks[term.xorb_hash] = found
        return plan(file.terms, chunks, start, end)

    async def read(self, file: XetFile, start: int, end: int) -> AsyncIterator[bytes]:
        """File bytes `[start, end)`, reconstructed: never more than one storage piece and one
        chunk of it in memory."""
        if start >= end:
            return
        remaining = end - start
        for segment in await self.segments(file, start, end):
            skip = segment.skip
            async for piece in self._segment(segment):
                if skip >= len(piece):
                    skip -= len(piece)
                    continue
                piece = piece[skip : skip + remaining]
                skip = 0
                remaining -= len(piece)
                yield piece
                if remaining == 0:
                    return

    async def _segment(self, segment: Segment) -> AsyncIterator[bytes]:
        decoder = ChunkStream(segment.byte_start)
        key = xorb_key(segment.xorb_hash)
        async for piece in self.storage.read(key, segment.byte_start, segment.byte_end):
            chunks: Sequence[bytes] = await asyncio.to_thread(decoder.feed, piece)
            if chunks:
                yield b"".join(chunks)
        if decoder.pending:
            raise StorageUnavailable(f"Xorb {segment.xorb_hash} is stored truncated")
