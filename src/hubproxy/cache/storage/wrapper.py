"""`Storage`: the one object the rest of hubproxy uses to reach a backend.

Everything every backend needs lives here once: key validation against the one key pattern,
a cap on concurrent operations, translation of stray `OSError`s into the storage errors, and
small-object helpers (`get_bytes`, `put_bytes`) built on `read` and `open_writer`.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from hubproxy.cache.storage.base import (
    FileSegment,
    InvalidKey,
    ObjectInfo,
    ObjectWriter,
    StorageBackend,
    StorageError,
)
from hubproxy.metrics import STORAGE_OPERATION_DURATION

# Keys are relative POSIX paths of lowercase names, built only by cache/layout.py.
Result = TypeVar("Result")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:-]*(?:/[a-z0-9][a-z0-9_.:-]*)*$")


def check_key(key: str) -> str:
    """Return `key` if it is a well-formed storage key, else raise `InvalidKey`."""
    if len(key) > 1024 or not KEY_PATTERN.match(key) or ".." in key:
        raise InvalidKey(f"invalid storage key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """Like `check_key`, for a listing prefix (may be empty or end with '/')."""
    stripped = prefix.rstrip("/")
    if stripped:
        check_key(stripped)
    return prefix


class Storage:
    """A backend behind validation and a concurrency cap; see `base.py` for the contract."""

    def __init__(self, backend: StorageBackend, max_concurrency: int = 64) -> None:
        self.backend = backend
        self._slots = asyncio.Semaphore(max_concurrency)

    @property
    def name(self) -> str:
        return self.backend.name

    async def _guarded(
        self, operation: str, key: str, call: Callable[[], Awaitable[Result]]
    ) -> Result:
        """Run one backend call within the concurrency cap, timed, with errors normalised."""
        async with self._slots:
            try:
                with STORAGE_OPERATION_DURATION.labels(self.backend.name, operation).time():
                    return await call()
            except StorageError:
                raise
            except OSError as error:
                raise StorageError(f"{operation} {key}: {error}") from error

    async def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        return await self._guarded("stat", key, lambda: self.backend.stat(key))

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream `[start, end)`. Reads hold no slot: a slow client must not starve the others."""
        check_key(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid read range {start}-{end}")
        try:
            async for piece in self.backend.read(key, start, end):
                yield piece
        except StorageError:
            raise
        except OSError as error:
            raise StorageError(f"read {key}: {error}") from error

    @property
    def opens_files(self) -> bool:
        """Whether `open_file` can hand out objects as local files (for sendfile)."""
        return hasattr(self.backend, "open_file")

    async def open_file(self, key: str, start: int, end: int) -> FileSegment:
        """`[start, end)` of an object as an open local file; only if `opens_files`."""
        check_key(key)
        # Optional in the Protocol: a backend of local files has it (`opens_files`).
        open_file: Callable[[str, int, int], Awaitable[FileSegment]] = getattr(  # noqa: B009
            self.backend, "open_file"
        )
        return await self._guarded("open_file", key, lambda: open_file(key, start, end))

    async def open_writer(self, key: str) -> ObjectWriter:
        check_key(key)
        return await self._guarded("open_writer", key, lambda: self.backend.open_writer(key))

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._guarded("delete", key, lambda: self.backend.delete(key))

    async def list(self, prefix: str) -> AsyncIterator[str]:
        async for key in self.backend.list(check_prefix(prefix)):
            yield key

    async def import_file(self, key: str, path: Path) -> ObjectInfo:
        check_key(key)
        return await self._guarded("import", key, lambda: self.backend.import_file(key, path))

    async def compose(self, key: str, parts: Sequence[str]) -> ObjectInfo | None:
        """Concatenate objects into `key` server-side, if the backend can (S3); else None."""
        compose = getattr(self.backend, "compose", None)
        if compose is None:
            return None
        check_key(key)
        for part in parts:
            check_key(part)
        info: ObjectInfo = await self._guarded("compose", key, lambda: compose(key, parts))
        return info

    async def get_bytes(self, key: str) -> bytes:
        """A whole (small) object."""
        return b"".join([piece async for piece in self.read(key)])

    async def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Write a whole (small) object atomically."""
        writer = await self.open_writer(key)
        try:
            await writer.write(data)
            return await writer.commit()
        except BaseException:
            await writer.abort()
            raise

    async def remove_incomplete(self) -> int:
        return await self.backend.remove_incomplete()

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        return await self.backend.presign(check_key(key), ttl_seconds)

    async def aclose(self) -> None:
        await self.backend.aclose()
