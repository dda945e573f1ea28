"""Staging of chunk fills: the in-flight chunk, its download, and readers following it.

A fill streams one chunk from upstream into a staging file (`download`), resuming where a broken
body stopped; any number of readers `follow` the staging file while it grows. The blob cache
(`blobs.py`) decides when fills start and commits finished staging files to storage.
"""

import asyncio
import errno
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from hubproxy.cache.storage import from_os_error
from hubproxy.cache.upstream import is_upstream_failure
from hubproxy.errors import (
    HubError,
    IntegrityError,
    OfflineMiss,
    StorageUnavailable,
)
from hubproxy.metrics import UPSTREAM_BYTES

logger = logging.getLogger(__name__)

# Bytes handed to the response per piece when reading a staging file (see READ_PIECE_SIZE
# of the local storage for why not more).
STAGING_READ_SIZE = 1024 * 1024
# Upstream pieces are gathered to this size before a staging write. Every fill holds up to
# two such batches (one filling, one being written), and a full download runs
# `parallel_chunk_fetches` fills per file: 8 cold files hold up to 64 MB more at 1 MiB than at
# none. Each write is a hop to a thread, which costs the event loop more than the write: at
# 1 MiB its CPU per cold GiB is 1.9 s, against 2.3 s at 512 KiB (README, Performance).
STAGING_WRITE_SIZE = 1024 * 1024
# The buffers one pwritev takes at most (IOV_MAX).
_MOST_BUFFERS = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16
FILL_ATTEMPTS = 4
RETRY_DELAYS_SECONDS = (0.2, 1.0, 3.0)

# Fetches `[start, end)` of the blob from upstream; raises HubErrors.
RangeFetcher = Callable[[int, int], AsyncIterator[bytes]]


@dataclass(slots=True)
class ChunkFill:
    """One in-flight upstream fetch of one chunk, readable while it is being written."""

    index: int
    length: int
    staging_path: Path
    written: int = 0
    done: bool = False
    error: HubError | None = None
    readers: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Wake every reader waiting for more bytes (or the end)."""
        event, self.progress = self.progress, asyncio.Event()
        event.set()


async def download(
    fill: ChunkFill, offset: int, fetch: RangeFetcher, retry_delays: tuple[float, ...]
) -> None:
    """Stream the chunk into its staging file, resuming after upstream hiccups.

    Disk writes and the final fsync run in threads: under write-back pressure they block,
    and the event loop must keep serving everyone else meanwhile.
    """
    descriptor = os.open(fill.staging_path, os.O_WRONLY)
    # The pieces as they came (gathered, not joined: one copy fewer of every byte).
    buffer: list[bytes] = []
    buffered = 0

    async def flush() -> None:
        nonlocal buffer, buffered
        if buffer:
            pieces, length = buffer, buffered
            buffer, buffered = [], 0
            fill.written += await asyncio.to_thread(write_all, descriptor, pieces, fill.written)
            UPSTREAM_BYTES.inc(length)
            fill.notify()

    try:
        attempt = 0
        while fill.written < fill.length:
            progress_before = fill.written
            try:
                async for piece in fetch(offset + fill.written, offset + fill.length):
                    buffer.append(piece)
                    buffered += len(piece)
                    if buffered >= STAGING_WRITE_SIZE:
                        await flush()
                await flush()
                if fill.written != fill.length:
                    raise IntegrityError(
                        f"upstream sent {fill.written} bytes of a {fill.length}-byte chunk"
                    )
            except HubError as error:
                # Keep what did arrive: the retry resumes after it.
                await flush()
                if not is_upstream_failure(error) or isinstance(error, OfflineMiss):
                    raise
                attempt = 0 if fill.written > progress_before else attempt + 1
                if attempt >= FILL_ATTEMPTS:
                    raise
                await asyncio.sleep(retry_delays[min(attempt, len(retry_delays)) - 1])
        await asyncio.to_thread(os.fsync, descriptor)
    except OSError as error:
        raise storage_error(error) from error
    finally:
        os.close(descriptor)


def write_all(descriptor: int, pieces: list[bytes], offset: int) -> int:
    """Write all of `pieces`, one after the other, at `offset` (pwritev may write less than
    asked); returns their length."""
    views = [memoryview(piece) for piece in pieces]
    total = sum(len(view) for view in views)
    written = 0
    while views:
        sent = os.pwritev(descriptor, views[:_MOST_BUFFERS], offset + written)
        if sent <= 0:
            raise OSError(errno.EIO, "the staging file took no bytes")
        written += sent
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]
    return total


def storage_error(error: OSError) -> HubError:
    """The HubError a failed staging write becomes: full disk (507) or unavailable (503)."""
    logger.error("staging write failed: %s", error)
    return from_os_error(error, "the staging area").as_hub_error()


async def follow(fill: ChunkFill, start: int, end: int) -> AsyncIterator[bytes]:
    """Yield `[start, end)` of a chunk from its staging file as the fill writes it."""
    try:
        descriptor = os.open(fill.staging_path, os.O_RDONLY)
    except FileNotFoundError:
        # The fill finished (and moved the file away) before we could open it.
        descriptor = -1
    try:
        position = start
        while position < end:
            if fill.error is not None:
                raise fill.error
            available = min(fill.written, end)
            if available > position and descriptor >= 0:
                # The bytes were just written: a page-cache read, cheap enough inline.
                piece = os.pread(descriptor, min(available - position, STAGING_READ_SIZE), position)
                if not piece:
                    raise StorageUnavailable()
                position += len(piece)
                yield piece
                continue
            if fill.done or descriptor < 0:
                # Too late to follow the staging file: the caller reads storage instead.
                raise FillMoved(position)
            await fill.progress.wait()
    finally:
        if descriptor >= 0:
            os.close(descriptor)


class FillMoved(Exception):
    """The fill committed before its staging file could be opened: read storage instead."""

    def __init__(self, position: int) -> None:
        self.position = position
