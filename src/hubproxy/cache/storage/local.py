"""Local-directory backend, safe on NFS.

Each object is one file at `<root>/<key>`. A writer writes `<dir>/.<name>.tmp-<random>` in the
object's own directory, fsyncs it and renames it over the final name: rename within one
directory is atomic on local filesystems and on NFS, and nothing relies on `flock`. When two
processes commit the same content-addressed key, the last rename wins with identical bytes.
Temp files left by a crash are removed by `remove_incomplete()` at start.

File I/O runs in the default thread pool so that a slow disk or NFS server never blocks the
event loop.
"""

import asyncio
import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, cast

from hubproxy.cache.storage.base import (
    FileSegment,
    ObjectInfo,
    from_os_error,
)

TEMP_MARKER = ".tmp-"
# Bytes per piece of a copying read. Each stream holds about three pieces at once (the one
# sent, the one held back for the hash check of a first whole read, and the transport's copy
# of what the socket did not take yet): 1 MiB is as fast as larger pieces (README,
# TOOLING.md) and keeps 8 cold streams ~70 MB smaller than 4 MiB did.
READ_PIECE_SIZE = 1024 * 1024


def _sync_directory(directory: Path) -> None:
    """Make a rename durable: fsync the directory entry (a no-op where unsupported, e.g. NFS)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _info(key: str, path: Path) -> ObjectInfo:
    status = path.stat()
    return ObjectInfo(key, status.st_size, f"{status.st_size:x}-{status.st_mtime_ns:x}")


class LocalWriter:
    def __init__(self, key: str, final_path: Path, temp_path: Path, handle: BinaryIO) -> None:
        self._key = key
        self._final_path = final_path
        self._temp_path = temp_path
        self._handle: BinaryIO | None = handle

    async def write(self, data: bytes | memoryview) -> None:
        handle = self._handle
        if handle is None:
            raise ValueError("writer is closed")
        try:
            await asyncio.to_thread(handle.write, data)
        except OSError as error:
            raise from_os_error(error, self._key) from error

    def _commit(self) -> ObjectInfo:
        handle = self._handle
        if handle is None:
            raise ValueError("writer is closed")
        self._handle = None
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(self._temp_path, self._final_path)
            _sync_directory(self._final_path.parent)
        except OSError as error:
            handle.close()
            self._temp_path.unlink(missing_ok=True)
            raise from_os_error(error, self._key) from error
        return _info(self._key, self._final_path)

    async def commit(self) -> ObjectInfo:
        return await asyncio.to_thread(self._commit)

    def _abort(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()
        self._temp_path.unlink(missing_ok=True)

    async def abort(self) -> None:
        await asyncio.to_thread(self._abort)


class LocalBackend:
    """Objects as files below `root`; keys are validated relative paths (see the wrapper)."""

    name = "local"

    def __init__(self, root: Path, read_piece_size: int = READ_PIECE_SIZE) -> None:
        self.root = root
        self.read_piece_size = read_piece_size
        self._nowait = hasattr(os, "RWF_NOWAIT")
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key

    async def stat(self, key: str) -> ObjectInfo:
        try:
            return await asyncio.to_thread(_info, key, self._path(key))
        except OSError as error:
            raise from_os_error(error, key) from error

    def _read_if_cached(self, descriptor: int, want: int, position: int) -> bytes | None:
        """Read without blocking if the bytes are in the page cache (`RWF_NOWAIT`), else None.

        A warm download then never pays a thread hop per piece (which made throughput swing
        by a third from run to run), and a cold one never blocks the event loop on the disk.
        """
        if not self._nowait:
            return None
        buffer = bytearray(want)
        try:
            count = os.preadv(descriptor, [buffer], position, os.RWF_NOWAIT)
        except BlockingIOError:
            return None
        except OSError as error:
            if error.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                self._nowait = False  # NFS and older kernels: always use the thread pool
                return None
            raise
        if count == 0:
            return None  # end of file, or nothing cached: let the blocking path decide
        del buffer[count:]
        # The consumers (hashing, the socket) take any buffer; a bytes copy would cost a pass.
        return cast(bytes, buffer)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            descriptor = await asyncio.to_thread(os.open, self._path(key), os.O_RDONLY)
        except OSError as error:
            raise from_os_error(error, key) from error
        try:
            position = start
            while end is None or position < end:
                want = (
                    self.read_piece_size
                    if end is None
                    else min(self.read_piece_size, end - position)
                )
                piece = self._read_if_cached(descriptor, want, position)
                if piece is None:
                    piece = await asyncio.to_thread(os.pread, descriptor, want, position)
                if not piece:
                    break
                position += len(piece)
                yield piece
        except OSError as error:
            raise from_os_error(error, key) from error
        finally:
            os.close(descriptor)

    def _open_file(self, key: str, start: int, end: int) -> FileSegment:
        handle = open(self._path(key), "rb", buffering=0)  # noqa: SIM115 - the segment owns it
        try:
            size = os.fstat(handle.fileno()).st_size
            # Start reading it into the page cache now: sendfile on the event loop then
            # rarely waits for the disk.
            with contextlib.suppress(OSError):
                os.posix_fadvise(handle.fileno(), start, end - start, os.POSIX_FADV_WILLNEED)
        except BaseException:
            handle.close()
            raise
        return FileSegment(cast(BinaryIO, handle), start, end - start, size)

    async def open_file(self, key: str, start: int, end: int) -> FileSegment:
        """`[start, end)` of the object as an open file, for sendfile (see `FileSegment`)."""
        try:
            return await asyncio.to_thread(self._open_file, key, start, end)
        except OSError as error:
            raise from_os_error(error, key) from error

    def _open_writer(self, key: str) -> LocalWriter:
        final_path = self._path(key)
        final_path.parent.mkdir(parents=True, exist_ok=True)
        temp_path = final_path.with_name(f".{final_path.name}{TEMP_MARKER}{secrets.token_hex(8)}")
        handle = open(temp_path, "xb")  # noqa: SIM115 - closed by commit/abort
        return LocalWriter(key, final_path, temp_path, handle)

    async def open_writer(self, key: str) -> LocalWriter:
        try:
            return await asyncio.to_thread(self._open_writer, key)
        except OSError as error:
            raise from_os_error(error, key) from error

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self._path(key).unlink, True)
        except OSError as error:
            raise from_os_error(error, key) from error

    def _list(self, prefix: str) -> list[str]:
        # Walk from the deepest directory the prefix names, then filter by the full prefix.
        directory = prefix.rpartition("/")[0]
        base = self.root / directory if directory else self.root
        keys: list[str] = []
        for current, _subdirectories, files in os.walk(base):
            for file_name in files:
                if TEMP_MARKER in file_name:
                    continue
                key = Path(current, file_name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return keys

    async def list(self, prefix: str) -> AsyncIterator[str]:
        for key in await asyncio.to_thread(self._list, prefix):
            yield key

    def _import_file(self, key: str, path: Path) -> ObjectInfo:
        final_path = self._path(key)
        final_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, final_path)
            _sync_directory(final_path.parent)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            # Another filesystem (NFS storage, local staging): copy to a temp name, then rename.
            temp_path = final_path.with_name(
                f".{final_path.name}{TEMP_MARKER}{secrets.token_hex(8)}"
            )
            try:
                with open(path, "rb") as source, open(temp_path, "xb") as target:
                    shutil.copyfileobj(source, target, 4 * 1024 * 1024)
                    target.flush()
                    os.fsync(target.fileno())
                os.replace(temp_path, final_path)
                _sync_directory(final_path.parent)
            finally:
                temp_path.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        return _info(key, final_path)

    async def import_file(self, key: str, path: Path) -> ObjectInfo:
        try:
            return await asyncio.to_thread(self._import_file, key, path)
        except OSError as error:
            raise from_os_error(error, key) from error

    def _remove_incomplete(self) -> int:
        removed = 0
        for current, _subdirectories, files in os.walk(self.root):
            for file_name in files:
                if TEMP_MARKER in file_name:
                    Path(current, file_name).unlink(missing_ok=True)
                    removed += 1
        return removed

    async def remove_incomplete(self) -> int:
        return await asyncio.to_thread(self._remove_incomplete)

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        return None

    async def aclose(self) -> None:
        return None
