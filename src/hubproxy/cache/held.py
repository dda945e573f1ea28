"""`HeldContent`: the private hub's view of the blob cache (`stores.ContentStore`).

Hosted repos keep their files in the same chunk store as cached upstream files, so a file that
is both uploaded and cached is stored once. Held blobs are never evicted.
"""

from collections.abc import AsyncIterator
from pathlib import Path

from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.layout import BlobId


class HeldContent:
    """Blob ids as text in, `BlobCache` calls out; reads never go upstream."""

    def __init__(self, blobs: BlobCache) -> None:
        self.blobs = blobs

    async def holds(self, blob_id: str, size: int) -> bool:
        return await self.blobs.holds(BlobId.parse(blob_id), size)

    async def store_file(self, blob_id: str, size: int, source: Path) -> None:
        await self.blobs.store_held(BlobId.parse(blob_id), size, source)

    async def store_bytes(self, blob_id: str, content: bytes) -> None:
        await self.blobs.store_held(BlobId.parse(blob_id), len(content), content)

    def read(self, blob_id: str, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        return self.blobs.read(BlobId.parse(blob_id), size, start, end, None)

    async def redirect_url(self, blob_id: str) -> str | None:
        return await self.blobs.redirect_url(BlobId.parse(blob_id))
