"""`XetBackedContent`: the private hub's content store (`stores.ContentStore`) with files
uploaded through Xet in it.

A file uploaded through Xet is not copied into the blob store: its bytes live once, in the
xorbs, and every download path reconstructs them (`XetStore.read`, streaming, by range). So
`holds("sha256:…")` is also true for a registered Xet file, which is what lets a commit's
`lfsFile` line name it, and reads of such a blob reconstruct it. Everything else (regular
files, LFS uploads) goes to the held blob store as before.
"""

from collections.abc import AsyncIterator

from hubproxy.cas.index import XetFile
from hubproxy.cas.store import XetStore
from hubproxy.stores import ContentStore, ContentUpload

SHA256_BLOB = "sha256:"


class XetBackedContent:
    """Held blobs first; a sha256 blob the blob store lacks may be a registered Xet file."""

    def __init__(self, held: ContentStore, xet: XetStore) -> None:
        self.held = held
        self.xet = xet

    async def _xet_file(self, blob_id: str, size: int) -> XetFile | None:
        if not blob_id.startswith(SHA256_BLOB):
            return None
        found = await self.xet.file_by_sha256(blob_id.removeprefix(SHA256_BLOB))
        return found if found is not None and found.size == size else None

    async def holds(self, blob_id: str, size: int) -> bool:
        if await self.held.holds(blob_id, size):
            return True
        return await self._xet_file(blob_id, size) is not None

    async def open_upload(self, blob_id: str, size: int) -> ContentUpload:
        return await self.held.open_upload(blob_id, size)

    async def store_bytes(self, blob_id: str, content: bytes) -> None:
        await self.held.store_bytes(blob_id, content)

    async def read(self, blob_id: str, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        file = None if await self.held.holds(blob_id, size) else await self._xet_file(blob_id, size)
        pieces = (
            self.held.read(blob_id, size, start, end)
            if file is None
            else self.xet.read(file, start, end)
        )
        async for piece in pieces:
            yield piece

    async def redirect_url(self, blob_id: str) -> str | None:
        # A reconstructed file has no single object to redirect to.
        return await self.held.redirect_url(blob_id)
