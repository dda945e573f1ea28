"""`LocalTier`: a bounded copy of hot objects on local disk, in front of a remote backend (S3).

A backend wrapping another: the remote (S3) stays the truth, the local directory is a cache of
it that belongs to one process of one replica and is never shared, recorded or trusted blindly.

- A whole read of an object (`read` from 0, `open_file`) is answered from its local copy if one
  is there and checks out; otherwise from the remote, and the bytes are written to a local copy
  as they pass (temp file + rename), for next time. `open_file` hands the local copy out as a
  file: warm reads then take the zero-copy path (sendfile) exactly as on local storage.
- Writes go to the remote first. A chunk committed from a staging file (`import_file`: cold
  fills, uploads) also becomes a local copy (a hard link of the staging file when the
  filesystem allows, so no byte is copied); other writes only drop the local copy of their key.
- A delete (eviction, a failed verification) deletes the remote object, then the local copy.
- The copies are kept under `max_bytes` by dropping the least recently used ones (local copies
  only: the remote is never touched by this).

S3 stays the truth. Each copy is named `<key>@<sha256 of its bytes>@<tag of the S3 ETag>`, the
digest computed from the bytes as they were written (from the remote, or the staging file the
remote got), the ETag the remote gave the object they came from. Each use of a copy asks the
remote for the object's ETag first (one HEAD, while the previous chunk is still being sent): a
copy whose object was deleted or replaced (a chunk stored again after a failed verification,
maybe by another replica) is deleted, never served. If the remote cannot answer, a copy that
checks out locally is served: its bytes are content-addressed. Locally, a copy is checked
against its digest before its first use in this process (so after every restart) and again
whenever its file changed (inode, size or modification time); a damaged or truncated copy is
deleted and the bytes read from the remote again. Between those checks a copy is trusted like a
chunk file of the local backend (whose verified blobs go out with sendfile unread). Copies are
not written with fsync: a copy torn by a crash fails its check and is dropped.

The index (key -> copy, in least-recently-used order) is rebuilt from the directory at first
use: copies are ordered by their access time, which each use of a copy sets, so the order
survives restarts; temp files of a crash are removed then.
"""

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from hubproxy.cache.storage.base import (
    FileSegment,
    ObjectInfo,
    ObjectNotFound,
    ObjectWriter,
    StorageBackend,
    StorageError,
    from_os_error,
)
from hubproxy.metrics import (
    LOCAL_TIER_BYTES,
    LOCAL_TIER_DROPPED,
    LOCAL_TIER_EVICTED_BYTES,
    LOCAL_TIER_READS,
    LOCAL_TIER_STORED_BYTES,
)

logger = logging.getLogger(__name__)

DIGEST_SEPARATOR = "@"
TEMP_MARKER = ".tmp-"
READ_PIECE_SIZE = 1024 * 1024
_DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_TAG_PATTERN = re.compile(r"^[0-9a-f]{16}$")
_HASH_PIECE_SIZE = 4 * 1024 * 1024

# What identifies the content of a copy's file without reading it: (inode, size, mtime in ns).
Signature = tuple[int, int, int]
# Every copy's modification time, set when it is written: any later write to the file sets it
# to the current time, so the change shows even within the clock's granularity (a jiffy).
COPY_MTIME_NS = 946_684_800 * 10**9  # 2000-01-01


def _publish(temp_path: Path, final: Path) -> os.stat_result:
    """Give a finished copy its modification time and final name; its status then."""
    os.utime(temp_path, ns=(time.time_ns(), COPY_MTIME_NS))
    os.replace(temp_path, final)
    return os.stat(final)


def _signature(status: os.stat_result) -> Signature:
    return status.st_ino, status.st_size, status.st_mtime_ns


@dataclass(slots=True)
class LocalCopy:
    """A local copy of one remote object."""

    key: str
    path: Path
    size: int
    digest: str
    # `etag_tag` of the remote object the bytes came from.
    tag: str
    # The file's signature when this process last found its bytes matching `digest`; None:
    # not checked yet (found on disk at start).
    checked: Signature | None


def etag_tag(etag: str) -> str:
    """A file-name-safe stand-in for a remote ETag (opaque, any characters)."""
    return hashlib.sha256(etag.encode()).hexdigest()[:16]


def _hash_descriptor(descriptor: int) -> str:
    hasher = hashlib.sha256()
    position = 0
    while piece := os.pread(descriptor, _HASH_PIECE_SIZE, position):
        hasher.update(piece)
        position += len(piece)
    return hasher.hexdigest()


def _hash_file(path: Path) -> tuple[str, int]:
    """The sha256 and size of a file."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return _hash_descriptor(descriptor), os.fstat(descriptor).st_size
    finally:
        os.close(descriptor)


class _CopyWriter:
    """A local copy being written: a temp file next to its final name, hashed as it grows."""

    def __init__(self, tier: "LocalTier", key: str, tag: str) -> None:
        self.tier = tier
        self.key = key
        self.tag = tag
        self.final_directory = tier.directory / key.rpartition("/")[0]
        name = key.rpartition("/")[2]
        self.temp_path = self.final_directory / f".{name}{TEMP_MARKER}{secrets.token_hex(8)}"
        self.hasher = hashlib.sha256()
        self.size = 0
        self._handle: BinaryIO | None = None

    def _open(self) -> None:
        self.final_directory.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.temp_path, "xb")  # noqa: SIM115 - closed by commit/abort

    def _write(self, piece: bytes) -> None:
        if self._handle is None:
            self._open()
        assert self._handle is not None
        self._handle.write(piece)
        self.hasher.update(piece)
        self.size += len(piece)

    async def write(self, piece: bytes) -> None:
        await asyncio.to_thread(self._write, piece)

    def _finish(self) -> tuple[Path, os.stat_result]:
        """Close the temp file and rename it to its final name (no fsync: see the module)."""
        if self._handle is None:
            self._open()
        assert self._handle is not None
        self._handle.close()
        final = self.tier.path_of(self.key, self.hasher.hexdigest(), self.tag)
        return final, _publish(self.temp_path, final)

    async def commit(self) -> None:
        """Make the copy visible in the tier."""
        final, status = await asyncio.to_thread(self._finish)
        digest = self.hasher.hexdigest()
        copy = LocalCopy(self.key, final, self.size, digest, self.tag, _signature(status))
        await self.tier.admit(copy)

    def _abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self.temp_path.unlink(missing_ok=True)

    async def abort(self) -> None:
        await asyncio.to_thread(self._abort)


class _DroppingWriter:
    """A remote writer whose commit also drops the key's local copy (its bytes are replaced)."""

    def __init__(self, tier: "LocalTier", key: str, remote: ObjectWriter) -> None:
        self.tier = tier
        self.key = key
        self.remote = remote

    async def write(self, data: bytes | memoryview) -> None:
        await self.remote.write(data)

    async def commit(self) -> ObjectInfo:
        info = await self.remote.commit()
        await self.tier.drop(self.key)
        return info

    async def abort(self) -> None:
        await self.remote.abort()


class LocalTier:
    """`remote` with a local copy of its hot objects in `directory`, at most `max_bytes`."""

    def __init__(self, remote: StorageBackend, directory: Path, max_bytes: int) -> None:
        self.remote = remote
        self.name = remote.name
        self.directory = directory
        self.max_bytes = max_bytes
        # Least recently used first.
        self._copies: OrderedDict[str, LocalCopy] = OrderedDict()
        self.stored_bytes = 0
        self._loading: asyncio.Future[None] | None = None
        # Keys being copied from the remote by `open_file`: one download per key.
        self._filling: dict[str, asyncio.Task[LocalCopy | None]] = {}

    def path_of(self, key: str, digest: str, tag: str) -> Path:
        return self.directory / f"{key}{DIGEST_SEPARATOR}{digest}{DIGEST_SEPARATOR}{tag}"

    # Index --------------------------------------------------------------------------

    def _scan(self) -> list[tuple[int, LocalCopy]]:
        """The copies on disk with their access times; removes temp files and duplicates."""
        found: dict[str, tuple[int, LocalCopy]] = {}
        self.directory.mkdir(parents=True, exist_ok=True)
        for current, _subdirectories, files in os.walk(self.directory):
            for file_name in files:
                path = Path(current, file_name)
                if TEMP_MARKER in file_name:
                    path.unlink(missing_ok=True)
                    continue
                relative, _separator, rest = (
                    path.relative_to(self.directory).as_posix().partition(DIGEST_SEPARATOR)
                )
                digest, _separator, tag = rest.partition(DIGEST_SEPARATOR)
                if not _DIGEST_PATTERN.match(digest) or not _TAG_PATTERN.match(tag):
                    continue  # not a copy: left alone
                try:
                    status = path.stat()
                except FileNotFoundError:
                    continue
                copy = LocalCopy(relative, path, status.st_size, digest, tag, None)
                earlier = found.get(relative)
                if earlier is not None:
                    # Two copies of a key (a crash between a rename and the old one's removal).
                    older, newer = sorted((earlier, (status.st_atime_ns, copy)), key=_first)
                    older[1].path.unlink(missing_ok=True)
                    found[relative] = newer
                else:
                    found[relative] = (status.st_atime_ns, copy)
        return sorted(found.values(), key=_first)

    async def _ready(self) -> None:
        """Load the index from the directory, once (again after a failed attempt)."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        try:
            await asyncio.shield(self._loading)
        except OSError:
            self._loading = None
            raise

    async def _load(self) -> None:
        for _accessed, copy in await asyncio.to_thread(self._scan):
            self._copies[copy.key] = copy
            self.stored_bytes += copy.size
        logger.info(
            "local tier %s: %d copies, %d bytes",
            self.directory,
            len(self._copies),
            self.stored_bytes,
        )
        await self._evict_beyond_bound()

    async def admit(self, copy: LocalCopy) -> None:
        """Record a copy just written; the one it replaces and the least recently used beyond
        the bound are deleted."""
        await self._ready()
        earlier = self._copies.pop(copy.key, None)
        if earlier is not None:
            self.stored_bytes -= earlier.size
            if earlier.path != copy.path:
                await asyncio.to_thread(earlier.path.unlink, True)
        self._copies[copy.key] = copy
        self.stored_bytes += copy.size
        await self._evict_beyond_bound()

    async def _evict_beyond_bound(self) -> None:
        while self.stored_bytes > self.max_bytes and self._copies:
            _key, copy = self._copies.popitem(last=False)
            self.stored_bytes -= copy.size
            LOCAL_TIER_EVICTED_BYTES.inc(copy.size)
            # A reader holding the file open keeps its bytes (FileSegment's contract).
            await asyncio.to_thread(copy.path.unlink, True)
        LOCAL_TIER_STORED_BYTES.set(self.stored_bytes)

    async def drop(self, key: str) -> None:
        """Delete the local copy of `key`, if any."""
        await self._ready()
        copy = self._copies.pop(key, None)
        if copy is not None:
            self.stored_bytes -= copy.size
            LOCAL_TIER_STORED_BYTES.set(self.stored_bytes)
            await asyncio.to_thread(copy.path.unlink, True)

    def fits(self, size: int) -> bool:
        """Whether an object of `size` bytes may get a local copy (one larger than the whole
        bound would only push everything else out)."""
        return size <= self.max_bytes

    # Opening a copy ------------------------------------------------------------------

    def _open_checked(self, copy: LocalCopy) -> tuple[BinaryIO | None, Signature | None]:
        """The copy's file opened, checked against its digest unless unchanged since the last
        check, its access time set (the LRU order after a restart); (None, None) if missing or
        failing the check."""
        try:
            handle = cast(BinaryIO, open(copy.path, "rb", buffering=0))  # noqa: SIM115
        except FileNotFoundError:
            return None, None
        try:
            status = os.fstat(handle.fileno())
            signature = _signature(status)
            changed = signature != copy.checked
            if changed and (
                status.st_size != copy.size or _hash_descriptor(handle.fileno()) != copy.digest
            ):
                handle.close()
                return None, None
            with contextlib.suppress(OSError):
                os.utime(handle.fileno(), ns=(time.time_ns(), status.st_mtime_ns))
        except BaseException:
            handle.close()
            raise
        return handle, signature

    async def _remote_tag(self, key: str) -> str | None:
        """The tag of the remote object's ETag now; None if the remote cannot say (then a copy
        that checks out is served: its bytes are content-addressed); `ObjectNotFound` if the
        remote no longer has it."""
        try:
            return etag_tag((await self.remote.stat(key)).etag)
        except ObjectNotFound:
            raise
        except StorageError as error:
            logger.warning("could not confirm the local copy of %s: %s", key, error)
            return None

    async def _open_copy(
        self, key: str, *, confirm: bool = True
    ) -> tuple[BinaryIO, LocalCopy] | None:
        """The checked local copy of `key`, open, or None (a copy failing a check is deleted).

        `confirm`: first ask the remote whether the object is still the one copied (its
        ETag): a copy never outlives its remote object, nor stands for replaced bytes.
        """
        await self._ready()
        copy = self._copies.get(key)
        if copy is None:
            return None
        if confirm:
            try:
                tag = await self._remote_tag(key)
            except ObjectNotFound:
                await self._drop_failed(copy, "stale")
                raise
            if tag is not None and tag != copy.tag:
                logger.warning("local copy of %s is of a replaced object: dropped", key)
                await self._drop_failed(copy, "stale")
                return None
        try:
            handle, signature = await asyncio.to_thread(self._open_checked, copy)
        except OSError as error:
            logger.warning("local copy of %s unreadable, dropped: %s", key, error)
            handle, signature = None, None
        if handle is None:
            logger.error("local copy of %s is damaged or gone: dropped, read from S3", key)
            await self._drop_failed(copy, "damaged")
            return None
        copy.checked = signature
        if key in self._copies:
            self._copies.move_to_end(key)
        return handle, copy

    async def _drop_failed(self, copy: LocalCopy, reason: str) -> None:
        if self._copies.get(copy.key) is copy:
            LOCAL_TIER_DROPPED.labels(reason).inc()
            await self.drop(copy.key)

    # Reading ------------------------------------------------------------------------

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        opened = await self._open_copy(key)
        if opened is not None:
            LOCAL_TIER_READS.labels("hit").inc()
            handle, _copy = opened
            try:
                async for piece in self._read_handle(handle, start, end):
                    LOCAL_TIER_BYTES.labels("local").inc(len(piece))
                    yield piece
            finally:
                handle.close()
            return
        LOCAL_TIER_READS.labels("miss").inc()
        if start != 0 or key in self._filling:
            # A part from the middle is not worth a copy; a whole one is being made already.
            async for piece in self.remote.read(key, start, end):
                LOCAL_TIER_BYTES.labels("remote").inc(len(piece))
                yield piece
            return
        async for piece in self._read_through(key, end):
            yield piece

    async def _read_handle(
        self, handle: BinaryIO, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        descriptor = handle.fileno()
        position = start
        while end is None or position < end:
            want = READ_PIECE_SIZE if end is None else min(READ_PIECE_SIZE, end - position)
            piece = await asyncio.to_thread(os.pread, descriptor, want, position)
            if not piece:
                return
            position += len(piece)
            yield piece

    async def _read_through(self, key: str, end: int | None) -> AsyncIterator[bytes]:
        """`[0, end)` from the remote while the whole object is copied locally: the rest after
        `end` is read too before returning (a chunk is read whole but for ranged requests)."""
        # The ETag before the bytes: should the object change in between, the copy is of the
        # newer one but named after the older, and dropped at its first use (the safe way).
        tag = etag_tag((await self.remote.stat(key)).etag)
        writer: _CopyWriter | None = _CopyWriter(self, key, tag)
        position = 0
        try:
            async for piece in self.remote.read(key):
                LOCAL_TIER_BYTES.labels("remote").inc(len(piece))
                if writer is not None:
                    writer = await self._extend(writer, piece)
                if end is None or position + len(piece) <= end:
                    yield piece
                elif position < end:
                    yield piece[: end - position]
                position += len(piece)
                if writer is None and end is not None and position >= end:
                    break
            if writer is not None:
                try:
                    await writer.commit()
                except OSError as error:
                    self._copy_failed(key, error)
                    await writer.abort()
                writer = None
        finally:
            if writer is not None:
                await writer.abort()

    async def _extend(self, writer: _CopyWriter, piece: bytes) -> _CopyWriter | None:
        """The writer with `piece` added, or None if it was given up (too large, disk error)."""
        try:
            await writer.write(piece)
        except OSError as error:
            self._copy_failed(writer.key, error)
            await writer.abort()
            return None
        if not self.fits(writer.size):
            await writer.abort()
            return None
        return writer

    def _copy_failed(self, key: str, error: OSError) -> None:
        # The local disk is a cache: full or failing, the read goes on from the remote.
        logger.warning("no local copy of %s: %s", key, error)

    async def open_file(self, key: str, start: int, end: int) -> FileSegment:
        """`[start, end)` of the object as an open local file (copied from the remote first
        if needed): the zero-copy path of warm reads."""
        for _attempt in range(3):
            opened = await self._open_copy(key)
            if opened is None:
                LOCAL_TIER_READS.labels("miss").inc()
                await self._fill(key)
                opened = await self._open_copy(key, confirm=False)  # just copied
            else:
                LOCAL_TIER_READS.labels("hit").inc()
            if opened is not None:
                handle, copy = opened
                LOCAL_TIER_BYTES.labels("local").inc(max(0, end - start))
                with contextlib.suppress(OSError):
                    os.posix_fadvise(handle.fileno(), start, end - start, os.POSIX_FADV_WILLNEED)
                return FileSegment(handle, start, end - start, copy.size)
        raise from_os_error(OSError(errno.EIO, "no usable local copy"), key)

    async def _fill(self, key: str) -> None:
        """Copy `key` from the remote (one download however many readers wait for it)."""
        task = self._filling.get(key)
        if task is None:
            task = asyncio.ensure_future(self._copy_from_remote(key))
            self._filling[key] = task
            task.add_done_callback(lambda _task: self._filled(key, _task))
        await asyncio.shield(task)

    def _filled(self, key: str, task: "asyncio.Task[LocalCopy | None]") -> None:
        self._filling.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every reader that waited for it got it already

    async def _copy_from_remote(self, key: str) -> LocalCopy | None:
        writer = _CopyWriter(self, key, etag_tag((await self.remote.stat(key)).etag))
        try:
            async for piece in self.remote.read(key):
                LOCAL_TIER_BYTES.labels("remote").inc(len(piece))
                await writer.write(piece)
            await writer.commit()
        except OSError as error:
            await writer.abort()
            raise from_os_error(error, key) from error
        except BaseException:
            await writer.abort()
            raise
        return self._copies.get(key)

    # Writing ------------------------------------------------------------------------

    async def open_writer(self, key: str) -> ObjectWriter:
        return _DroppingWriter(self, key, await self.remote.open_writer(key))

    def _link(self, source: Path, writer: _CopyWriter) -> None:
        """Give `source` a second name at the writer's temp path (a copy across filesystems)."""
        writer.final_directory.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, writer.temp_path)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            shutil.copyfile(source, writer.temp_path)

    async def import_file(self, key: str, path: Path) -> ObjectInfo:
        """Commit `path` to the remote; it also becomes the local copy (hashed meanwhile)."""
        await self._ready()  # the first load removes temp files: before this one exists
        writer: _CopyWriter | None = None
        hashing: asyncio.Future[tuple[str, int]] | None = None
        try:
            if self.fits((await asyncio.to_thread(path.stat)).st_size):
                writer = _CopyWriter(self, key, tag="")  # tagged once the remote has it
                # Linked before the remote import, which consumes `path`.
                await asyncio.to_thread(self._link, path, writer)
                hashing = asyncio.ensure_future(asyncio.to_thread(_hash_file, writer.temp_path))
        except OSError as error:
            self._copy_failed(key, error)
            if writer is not None:
                await writer.abort()
            writer = None
        try:
            info = await self.remote.import_file(key, path)
        except BaseException:
            if hashing is not None:
                await asyncio.gather(hashing, return_exceptions=True)
            if writer is not None:
                await writer.abort()
            raise
        if writer is None or hashing is None:
            await self.drop(key)
            return info
        try:
            digest, size = await hashing
            if size != info.size:
                await writer.abort()
                return info
            tag = etag_tag(info.etag)
            final = self.path_of(key, digest, tag)
            status = await asyncio.to_thread(_publish, writer.temp_path, final)
            await self.admit(LocalCopy(key, final, size, digest, tag, _signature(status)))
        except OSError as error:
            self._copy_failed(key, error)
            await writer.abort()
        return info

    async def delete(self, key: str) -> None:
        await self.remote.delete(key)
        await self.drop(key)

    # Everything else is the remote's --------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        return await self.remote.stat(key)

    def list(self, prefix: str) -> AsyncIterator[str]:
        return self.remote.list(prefix)

    async def compose(self, key: str, parts: Sequence[str]) -> ObjectInfo | None:
        compose: Callable[[str, Sequence[str]], Awaitable[ObjectInfo]] | None = getattr(
            self.remote, "compose", None
        )
        return None if compose is None else await compose(key, parts)

    async def remove_incomplete(self) -> int:
        return await self.remote.remove_incomplete()

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        return await self.remote.presign(key, ttl_seconds)

    async def aclose(self) -> None:
        for task in list(self._filling.values()):
            task.cancel()
        await asyncio.gather(*self._filling.values(), return_exceptions=True)
        await self.remote.aclose()


def _first(item: tuple[int, LocalCopy]) -> int:
    return item[0]


def retire_worker_directories(directory: Path, count: int) -> None:
    """Delete the tiers of workers beyond `count` (the server runs fewer workers than it did):
    no process would ever use or bound them again."""
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        number = child.name.removeprefix("worker-")
        if child.is_dir() and number.isdigit() and int(number) >= count:
            logger.info("removing the local tier of a worker no longer run: %s", child)
            shutil.rmtree(child, ignore_errors=True)
