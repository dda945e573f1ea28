"""`HeldContent`: the private hub's view of the blob cache (`stores.ContentStore`).

Hosted repos keep their files in the same chunk store as cached upstream files, so a file that
is both uploaded and cached is stored once. Held blobs are never evicted. An upload is staged
on local disk one chunk per file, as it arrives; once the hub has verified it, each chunk file
is moved into storage (a rename on local disk), so the bytes are written once.
"""

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from hubproxy.blob_ids import BlobId
from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.staging import storage_error
from hubproxy.errors import IntegrityError


class HeldUpload:
    """A `stores.ContentUpload` staging one file per chunk of `blob`."""

    def __init__(
        self, blobs: BlobCache, blob: BlobId, size: int, chunk_size: int, directory: Path
    ) -> None:
        self.blobs = blobs
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
        await self.blobs.store_held_chunks(self.blob, self.size, self.chunk_size, self._files)
        self._files = []

    async def abort(self) -> None:
        def remove() -> None:
            self._close()
            for path in self._files:
                path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)
        self._files = []


class HeldContent:
    """Blob ids as text in, `BlobCache` calls out; reads never go upstream."""

    def __init__(self, blobs: BlobCache) -> None:
        self.blobs = blobs

    async def holds(self, blob_id: str, size: int) -> bool:
        return await self.blobs.holds(BlobId.parse(blob_id), size)

    async def open_upload(self, blob_id: str, size: int) -> HeldUpload:
        blob = BlobId.parse(blob_id)
        chunk_size = await self.blobs.chunk_size_of(blob)
        self.blobs.staging_dir.mkdir(parents=True, exist_ok=True)
        return HeldUpload(self.blobs, blob, size, chunk_size, self.blobs.staging_dir)

    async def store_bytes(self, blob_id: str, content: bytes) -> None:
        await self.blobs.store_held(BlobId.parse(blob_id), content)

    def read(self, blob_id: str, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        return self.blobs.read(BlobId.parse(blob_id), size, start, end, None)

    async def redirect_url(self, blob_id: str) -> str | None:
        return await self.blobs.redirect_url(BlobId.parse(blob_id))
