"""`HeldContent`: the private hub's content in the chunk store (`stores.ContentStore`).

Hosted repos keep their files in the same chunk store as cached upstream files, so a file that
is both uploaded and cached is stored once. Held blobs are never evicted. An upload is staged
on local disk one chunk per file, as it arrives; once the hub has verified it, each chunk file
is moved into storage (a rename on local disk), so the bytes are written once. Reads of held
content never go upstream.
"""

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from hubproxy.blob_ids import BlobId
from hubproxy.cache.blob_states import BlobState
from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.layout import chunk_bounds, chunk_key
from hubproxy.cache.staging import storage_error
from hubproxy.cache.storage import StorageError
from hubproxy.errors import IntegrityError

logger = logging.getLogger(__name__)

# Stores the staged chunk files of an upload, verified by the hub: (blob, size, chunk size, files).
StoreChunkFiles = Callable[[BlobId, int, int, Sequence[Path]], Awaitable[None]]


class HeldUpload:
    """A `stores.ContentUpload` staging one file per chunk of `blob`."""

    def __init__(
        self,
        store: StoreChunkFiles,
        blob: BlobId,
        size: int,
        chunk_size: int,
        directory: Path,
    ) -> None:
        self.store = store
        self.blob = blob
        self.size = size
        self.chunk_size = chunk_size
        self.directory = directory
        self._name = f"upload-{secrets.token_hex(8)}"
        self._files: list[Path] = []
        self._handle: BinaryIO | None = None
        self._in_chunk = 0
        self._received = 0

    async def write(self, data: bytes | bytearray) -> None:
        try:
            await asyncio.to_thread(self._write, memoryview(data))
        except OSError as error:
            raise storage_error(error) from error

    def _write(self, view: memoryview) -> None:
        while view:
            if self._handle is None or self._in_chunk == self.chunk_size:
                self._close()
                path = self.directory / f"{self._name}-{len(self._files)}"
                self._files.append(path)
                self._handle = open(path, "wb")  # noqa: SIM115 - closed by _close()
                self._in_chunk = 0
            take = min(len(view), self.chunk_size - self._in_chunk)
            self._handle.write(view[:take])
            self._in_chunk += take
            self._received += take
            view = view[take:]

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    async def commit(self) -> None:
        await asyncio.to_thread(self._close)
        if self._received != self.size:
            raise IntegrityError(f"{self._received} bytes of {self.blob} staged, not {self.size}")
        await self.store(self.blob, self.size, self.chunk_size, self._files)
        self._files = []

    async def abort(self) -> None:
        def remove() -> None:
            self._close()
            for path in self._files:
                path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)
        self._files = []


class HeldContent:
    """Blob ids as text in; content the hub verified is stored and held (never evicted)."""

    def __init__(self, blobs: BlobCache) -> None:
        self.blobs = blobs
        self.states = blobs.states
        self.storage = blobs.storage
        self.metadata = blobs.metadata

    async def holds(self, blob_id: str, size: int) -> bool:
        """Whether every chunk of the blob is stored and the whole was verified."""
        state = await self.states.get(BlobId.parse(blob_id), None)
        return state is not None and state.size == size and state.complete() and state.verified

    async def open_upload(self, blob_id: str, size: int) -> HeldUpload:
        blob = BlobId.parse(blob_id)
        chunk_size = await self._chunk_size_of(blob)
        directory = self.blobs.staging_dir
        directory.mkdir(parents=True, exist_ok=True)
        return HeldUpload(self._store_verified, blob, size, chunk_size, directory)

    async def store_bytes(self, blob_id: str, content: bytes) -> None:
        """Store small content already verified against the blob id, and hold it."""
        blob = BlobId.parse(blob_id)
        chunk_size = await self._chunk_size_of(blob)
        pieces = [
            content[start : start + chunk_size] for start in range(0, len(content), chunk_size)
        ]
        await self._store_verified(blob, len(content), chunk_size, pieces)

    def read(self, blob_id: str, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        return self.blobs.read(BlobId.parse(blob_id), size, start, end, None, held=True)

    async def redirect_url(self, blob_id: str) -> str | None:
        return await self.blobs.redirect_url(BlobId.parse(blob_id), held=True)

    async def _chunk_size_of(self, blob: BlobId) -> int:
        """The chunk size `blob` is (or will be) stored with."""
        state = self.states.known(blob)
        if state is not None:
            return state.chunk_size
        record = await self.metadata.get_blob(str(blob))
        return record.chunk_size if record is not None else self.states.chunk_size

    async def _store_verified(
        self, blob: BlobId, size: int, chunk_size: int, pieces: Sequence[bytes | Path]
    ) -> None:
        """Store content the hub verified against `blob` (one piece per chunk: bytes, or a
        local file moved into storage) and hold it.

        Chunks already stored (a cached copy) are kept, and the whole is then verified again,
        since those came from elsewhere; else the caller's verification stands."""
        record = await self.metadata.get_blob(str(blob))
        known = self.states.known(blob)
        if known is not None and (record is None or record.chunks != known.present):
            # `hubproxy cache gc` (another process) deleted it: what memory says is stale.
            self.states.drop(blob)
        state = await self.states.get(blob, size)
        assert state is not None
        if state.size != size or state.chunk_size != chunk_size or len(pieces) != state.chunks:
            raise IntegrityError(f"{blob} is stored with another size or chunk size")
        if state.from_upstream and len(state.present) < state.chunks:
            # Said before the first chunk lands, so no proxied read serves the hub's bytes.
            state.from_upstream = False
            await self.metadata.set_from_upstream(str(blob), False)
        written = 0
        state.readers += 1  # nobody evicts it meanwhile
        try:
            for index, piece in enumerate(pieces):
                if index in state.present:
                    if isinstance(piece, Path):
                        piece.unlink(missing_ok=True)
                    continue
                await self._put_chunk(state, index, piece)
                written += 1
        finally:
            state.readers -= 1
        if not state.verified:
            if written == state.chunks:
                state.verified = True
                await self.metadata.mark_verified(str(blob))
            else:
                await self.blobs.verifier.verify(state)
        if not state.verified:
            raise IntegrityError(f"{blob} could not be stored intact")
        await self.metadata.hold(str(blob))

    async def _put_chunk(self, state: BlobState, index: int, piece: bytes | Path) -> None:
        key = chunk_key(state.blob, index)
        start, end = chunk_bounds(index, state.size, state.chunk_size)
        try:
            if isinstance(piece, Path):
                info = await self.storage.import_file(key, piece)
            else:
                info = await self.storage.put_bytes(key, piece)
        except StorageError as error:
            logger.error("storage write of %s failed: %s", key, error)
            raise error.as_hub_error() from error
        if info.size != end - start:
            await self.storage.delete(key)
            raise IntegrityError(f"chunk {index} of {state.blob} has the wrong size")
        await self.states.add_chunk(state, index, info.size)
