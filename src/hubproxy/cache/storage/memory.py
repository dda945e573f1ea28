"""In-memory backend: for tests and for trying hubproxy without a disk."""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

from hubproxy.cache.storage.base import ObjectInfo, ObjectNotFound

READ_PIECE_SIZE = 4 * 1024 * 1024


def _etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class MemoryWriter:
    def __init__(self, backend: "MemoryBackend", key: str) -> None:
        self._backend = backend
        self._key = key
        self._parts: list[bytes] = []
        self._closed = False

    async def write(self, data: bytes | memoryview) -> None:
        if self._closed:
            raise ValueError("writer is closed")
        self._parts.append(bytes(data))

    async def commit(self) -> ObjectInfo:
        if self._closed:
            raise ValueError("writer is closed")
        self._closed = True
        data = b"".join(self._parts)
        self._parts = []
        self._backend.objects[self._key] = data
        return ObjectInfo(self._key, len(data), _etag(data))

    async def abort(self) -> None:
        self._closed = True
        self._parts = []


class MemoryBackend:
    """Objects in a dict; a writer's buffer replaces the key atomically at commit."""

    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def stat(self, key: str) -> ObjectInfo:
        try:
            data = self.objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None
        return ObjectInfo(key, len(data), _etag(data))

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            data = self.objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None
        stop = len(data) if end is None else min(end, len(data))
        view = memoryview(data)
        for offset in range(start, stop, READ_PIECE_SIZE):
            yield bytes(view[offset : min(offset + READ_PIECE_SIZE, stop)])

    async def open_writer(self, key: str) -> MemoryWriter:
        return MemoryWriter(self, key)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def list(self, prefix: str) -> AsyncIterator[str]:
        for key in list(self.objects):
            if key.startswith(prefix):
                yield key

    async def import_file(self, key: str, path: Path) -> ObjectInfo:
        data = await asyncio.to_thread(path.read_bytes)
        await asyncio.to_thread(path.unlink)
        self.objects[key] = data
        return ObjectInfo(key, len(data), _etag(data))

    async def remove_incomplete(self) -> int:
        return 0

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        return None

    async def aclose(self) -> None:
        return None
