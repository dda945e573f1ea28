"""Copy a data dir's chunk objects into another storage (`hubproxy admin migrate-to --storage`).

Every object of the source (chunks, and Xet xorbs) is copied under the same key. Verified:

- every chunk the metadata database records is the size its row says (a difference stops the
  copy: the source is damaged);
- every object in the target has the source's size and the S3 ETag of the source's bytes, which
  the copy computes as it reads them (an MD5 for an object sent in one PUT, the MD5 of the parts'
  MD5s for a multipart upload, with the target's part size): the target holds those bytes;
- the chunks of every complete, verified blob, read in order, hash to the blob's name (the
  content hash the store already knows), so the bytes copied are the blob's.

Resumable: an object the target already holds with the right size and ETag is skipped (its
source bytes are still read, to hash them); any other is copied again (keys are content
addresses: overwriting is harmless). Blobs go a few at a time, the chunks of each in order.
"""

import asyncio
import hashlib
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from hubproxy.blob_ids import BlobId, ContentHasher
from hubproxy.cache.layout import CHUNKS_PREFIX, WHOLE_PREFIX, XORBS_PREFIX, chunk_key
from hubproxy.cache.storage import ObjectNotFound, Storage
from hubproxy.progress import NO_PROGRESS, Progress

PARALLEL_BLOBS = 4


class StorageTransferError(Exception):
    """The source is inconsistent, or the target does not hold what was sent to it."""


@dataclass
class StorageTransferReport:
    objects: int = 0  # objects in the source
    copied: int = 0  # sent to the target by this run
    skipped: int = 0  # already in the target, verified
    bytes_copied: int = 0
    blobs_hashed: int = 0  # complete, verified blobs whose copied chunks hash to their name
    missing_chunks: int = 0  # recorded in the database, absent from the source (refetched later)
    verified: bool = False


class S3Etag:
    """The ETag S3 gives an object of `size` bytes as `S3Writer` sends it: one PUT below
    `part_size` (the MD5 of the bytes), else parts of `part_size` ("MD5 of their MD5s-N")."""

    def __init__(self, size: int, part_size: int) -> None:
        self.multipart = size >= part_size
        self.part_size = part_size
        self._whole = hashlib.md5(usedforsecurity=False)
        self._part = hashlib.md5(usedforsecurity=False)
        self._part_filled = 0
        self._parts: list[bytes] = []

    def update(self, data: bytes) -> None:
        if not self.multipart:
            self._whole.update(data)
            return
        view = memoryview(data)
        while view:
            take = min(len(view), self.part_size - self._part_filled)
            self._part.update(view[:take])
            self._part_filled += take
            view = view[take:]
            if self._part_filled == self.part_size:
                self._parts.append(self._part.digest())
                self._part = hashlib.md5(usedforsecurity=False)
                self._part_filled = 0

    def hexdigest(self) -> str:
        if not self.multipart:
            return self._whole.hexdigest()
        parts = self._parts + ([self._part.digest()] if self._part_filled else [])
        return f"{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"


@dataclass(frozen=True)
class _Blob:
    blob: BlobId
    size: int
    chunk_sizes: dict[int, int]  # chunk index -> size, as recorded
    complete: bool
    verified: bool


def _recorded_blobs(database_path: Path) -> list[_Blob]:
    """The blobs with recorded chunks in the data dir's SQLite database (read only)."""
    connection = sqlite3.connect(f"file:{database_path}?mode=ro", uri=True)
    try:
        chunks: dict[str, dict[int, int]] = {}
        for blob_text, index, size in connection.execute(
            "SELECT blob_id, chunk_index, size FROM chunks ORDER BY blob_id, chunk_index"
        ):
            chunks.setdefault(blob_text, {})[int(index)] = int(size)
        blobs = []
        for blob_text, size, chunk_size, verified in connection.execute(
            "SELECT blob_id, size, chunk_size, verified FROM blobs ORDER BY blob_id"
        ):
            recorded = chunks.get(blob_text, {})
            if not recorded:
                continue
            count = -(-int(size) // int(chunk_size))
            complete = sorted(recorded) == list(range(count))
            blobs.append(
                _Blob(BlobId.parse(blob_text), int(size), recorded, complete, bool(verified))
            )
        return blobs
    finally:
        connection.close()


class _Copier:
    def __init__(self, source: Storage, target: Storage, progress: Progress) -> None:
        self.source = source
        self.target = target
        self.progress = progress
        # Only an S3 target has ETags this copy can predict; the only target migrate-to offers.
        self.part_size: int | None = getattr(target.backend, "part_size", None)
        self.report = StorageTransferReport()

    async def _read(self, key: str, *consumers: Callable[[bytes], None]) -> int:
        read = 0
        async for piece in self.source.read(key):
            for consume in consumers:
                consume(piece)
            read += len(piece)
        return read

    async def copy(self, key: str, size: int, content: ContentHasher | None = None) -> None:
        """Copy one object of `size` bytes, verified; feed its bytes to `content` once."""
        etag = S3Etag(size, self.part_size) if self.part_size else None
        try:
            existing = await self.target.stat(key)
        except ObjectNotFound:
            existing = None
        fed = False
        if existing is not None and existing.size == size:
            consumers = [etag.update] if etag is not None else []
            await self._read(key, *consumers, *([content.update] if content else []))
            fed = True
            if etag is None or existing.etag == etag.hexdigest():
                self.report.skipped += 1
                self.progress.advance(size)
                return
            etag = S3Etag(size, self.part_size) if self.part_size else None
        writer = await self.target.open_writer(key)
        try:
            sent = 0
            async for piece in self.source.read(key):
                if etag is not None:
                    etag.update(piece)
                if content is not None and not fed:
                    content.update(piece)
                await writer.write(piece)
                sent += len(piece)
            info = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        if sent != size or info.size != size:
            raise StorageTransferError(f"{key}: {size} bytes expected, {info.size} stored")
        if etag is not None and info.etag != etag.hexdigest():
            raise StorageTransferError(
                f"{key}: the target's ETag {info.etag} is not that of the bytes sent"
            )
        self.report.copied += 1
        self.report.bytes_copied += size
        self.progress.advance(size)

    async def copy_blob(self, blob: _Blob, objects: dict[str, int]) -> None:
        """The blob's chunks in order; a complete, verified blob is hashed on the way."""
        keys = {index: chunk_key(blob.blob, index) for index in blob.chunk_sizes}
        absent = [index for index, key in keys.items() if key not in objects]
        self.report.missing_chunks += len(absent)
        hashing = blob.complete and blob.verified and not absent
        content = blob.blob.hasher(blob.size) if hashing else None
        for index in sorted(keys):
            key = keys[index]
            if key not in objects:
                continue
            if objects[key] != blob.chunk_sizes[index]:
                raise StorageTransferError(
                    f"chunk {index} of {blob.blob} is {objects[key]} bytes in the data dir, the"
                    f" database says {blob.chunk_sizes[index]}: run `hubproxy cache verify`"
                )
            await self.copy(key, objects[key], content)
        if content is not None:
            if content.hexdigest() != blob.blob.digest:
                raise StorageTransferError(
                    f"the chunks of {blob.blob} do not hash to its name: run `hubproxy cache"
                    " verify` on the data dir, then migrate-to again"
                )
            self.report.blobs_hashed += 1


async def _sizes(source: Storage) -> dict[str, int]:
    keys = [
        key
        for prefix in (CHUNKS_PREFIX, WHOLE_PREFIX, XORBS_PREFIX)
        async for key in source.list(prefix)
    ]
    infos = await asyncio.gather(*(source.stat(key) for key in keys))
    return {info.key: info.size for info in infos}


async def transfer_storage(
    database_path: Path, source: Storage, target: Storage, progress: Progress = NO_PROGRESS
) -> StorageTransferReport:
    """Copy every object of `source` (a data dir's local storage, whose metadata is the SQLite
    database at `database_path`) into `target`, verified (see the module docstring)."""
    blobs = await asyncio.to_thread(_recorded_blobs, database_path)
    objects = await _sizes(source)
    copier = _Copier(source, target, progress)
    copier.report.objects = len(objects)
    progress.begin(f"copying chunks to {target.name}", sum(objects.values()))
    in_blobs = {chunk_key(blob.blob, index) for blob in blobs for index in blob.chunk_sizes}
    # Objects no chunk row names: xorbs, whole objects, chunks of a fill never recorded.
    others = sorted(set(objects) - in_blobs)
    slots = asyncio.Semaphore(PARALLEL_BLOBS)

    async def limited(work: Awaitable[None]) -> None:
        async with slots:
            await work

    await asyncio.gather(
        *(limited(copier.copy_blob(blob, objects)) for blob in blobs),
        *(limited(copier.copy(key, objects[key])) for key in others),
    )
    copier.report.verified = True
    return copier.report
