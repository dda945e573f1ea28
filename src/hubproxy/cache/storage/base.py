"""The storage Protocol every chunk backend implements, and the errors it may raise.

A backend stores immutable objects under keys built by `cache/layout.py`. It is deliberately
small (stat, read, open_writer, delete, list, plus lifecycle) so that it never needs a second
version: everything shared by all backends (key validation, concurrency cap, error
normalisation, small-object helpers) lives in `cache/storage/wrapper.py`, not here.

Contract, checked for every backend by `tests/storage/test_conformance.py`:
- An object written through `open_writer` is invisible (`stat` raises `ObjectNotFound`, `list`
  omits it) until `commit()` returns; `abort()` leaves nothing behind.
- Committing a key that exists replaces it atomically (readers see the old or the new object,
  never a mix): two processes filling the same content-addressed chunk both succeed.
- `read(key, start, end)` yields the bytes of `[start, end)` (end None = to the end of the object)
  in pieces of at most the backend's preferred size; it raises `ObjectNotFound` for absent keys.
- `delete` of an absent key is not an error.

A backend whose objects are local files may also offer `open_file(key, start, end)`: the bytes
as an open file and a range of it, for `sendfile(2)` (the zero-copy path of `hf_api/streaming.py`).
"""

import errno
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from hubproxy.errors import HubError, InsufficientStorage, StorageUnavailable


class StorageError(Exception):
    """The backend failed in a way that is neither "not found" nor "full"."""

    def as_hub_error(self) -> HubError:
        """What a client is told (the details are for the log, not for it)."""
        return StorageUnavailable()


class ObjectNotFound(StorageError):
    """No committed object has this key."""


class StorageFull(StorageError):
    """The backend has no room for the write (ENOSPC, quota)."""

    def as_hub_error(self) -> HubError:
        return InsufficientStorage()


def from_os_error(error: OSError, what: str) -> StorageError:
    """The storage error a failed file operation on `what` (a key or a path) is."""
    if isinstance(error, FileNotFoundError):
        return ObjectNotFound(what)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"no space left writing {what}")
    return StorageError(f"{type(error).__name__} on {what}: {error.strerror}")


class InvalidKey(StorageError):
    """The key is not one `cache/layout.py` could have built."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A committed object: its key, size in bytes and backend ETag (opaque)."""

    key: str
    size: int
    etag: str


@dataclass(slots=True)
class FileSegment:
    """`count` bytes of an open object file from `offset`; `size` is the whole file's size.

    Whoever receives one closes it (`close`), once its bytes are sent or it is given up. The
    open file keeps the bytes readable even if the object is deleted meanwhile (eviction).
    """

    file: BinaryIO
    offset: int
    count: int
    size: int

    def close(self) -> None:
        self.file.close()


class ObjectWriter(Protocol):
    """An object being written: content is invisible until `commit`."""

    async def write(self, data: bytes | memoryview) -> None:
        """Append bytes."""

    async def commit(self) -> ObjectInfo:
        """Make the object visible under its key, replacing any existing one."""

    async def abort(self) -> None:
        """Discard everything written; safe to call after a failed write or twice."""


class StorageBackend(Protocol):
    """A place to keep immutable objects: a directory, a bucket, memory."""

    name: str

    async def stat(self, key: str) -> ObjectInfo:
        """Size and ETag of a committed object, or `ObjectNotFound`."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield the bytes of `[start, end)` in large pieces; `ObjectNotFound` if absent."""

    async def open_writer(self, key: str) -> ObjectWriter:
        """Start writing an object that becomes visible at `commit()`."""

    async def delete(self, key: str) -> None:
        """Remove an object; absent keys are fine."""

    def list(self, prefix: str) -> AsyncIterator[str]:
        """Yield the keys of committed objects starting with `prefix`, in no particular order."""

    async def import_file(self, key: str, path: Path) -> ObjectInfo:
        """Commit the content of a local file under `key`; the file is consumed (moved or deleted).

        Backends on the same filesystem rename it; others upload it.
        """

    async def remove_incomplete(self) -> int:
        """Delete objects left half-written by a crash; returns how many. Called at start."""

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        """A URL a client can GET the object from directly, or None if unsupported."""

    async def aclose(self) -> None:
        """Release connections and file handles."""
