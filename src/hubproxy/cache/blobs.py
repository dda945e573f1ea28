"""Content-addressed, chunked blob cache with single-flight upstream fills.

A blob (a file's content, named by its sha256 or git sha1) is stored as fixed-size chunks
(`layout.py`). Reading a byte range walks its chunks in order:

- a committed chunk is streamed from storage;
- a missing chunk joins the one in-flight fill of (blob, chunk), or starts it. A fill is a task
  that outlives the request: it streams the chunk from upstream into a staging file, and every
  reader of that chunk — the first and any number of followers — reads the staging file as
  bytes land. When the chunk is complete and has exactly its expected length, the staging file
  is committed to storage (a rename on local disk) and recorded in the database; only then is
  the chunk "present". A broken upstream body never becomes a chunk: the fill retries from
  where it stopped, and if it gives up every reader gets the error (their connection breaks).
- a read that runs to the end of the file starts a whole-blob fill job that keeps up to
  `parallel_chunk_fetches` chunks in flight and carries on after the client leaves; a shorter
  range fills only its own chunks plus `read_ahead_chunks`.

When the last chunk lands, the whole blob is re-read and hashed; a mismatch with its name
deletes it (logged), so the next read fetches it again.
"""

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubproxy.blob_ids import BlobId
from hubproxy.cache.layout import chunk_bounds, chunk_count, chunk_key, whole_key
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.staging import (
    RETRY_DELAYS_SECONDS,
    ChunkFill,
    FillMoved,
    RangeFetcher,
    download,
    follow,
)
from hubproxy.cache.storage import ObjectNotFound, Storage, StorageError, StorageFull
from hubproxy.errors import (
    HubError,
    InsufficientStorage,
    IntegrityError,
    OfflineMiss,
    StorageUnavailable,
    UpstreamUnavailable,
)
from hubproxy.metrics import (
    CACHE_BLOBS,
    CACHE_PINNED_BYTES,
    CACHE_STORED_BYTES,
    CHUNK_READS,
    EVICTED_BYTES,
    EVICTIONS,
    FILL_DURATION,
    FILLS,
    FILLS_IN_FLIGHT,
    REDIRECTS,
    SERVED_BYTES,
    VERIFICATION_FAILURES,
)

logger = logging.getLogger(__name__)

TOUCH_FLUSH_SECONDS = 30.0


@dataclass(slots=True)
class BlobState:
    """What this process knows of one blob; loaded from the database on first use."""

    blob: BlobId
    size: int
    chunk_size: int
    present: dict[int, int]
    verified: bool
    fills: dict[int, ChunkFill] = field(default_factory=dict)
    readers: int = 0
    job: asyncio.Task[None] | None = None
    job_start: int = 0
    verifying: asyncio.Task[None] | None = None
    whole: bool = False
    composing: asyncio.Task[None] | None = None

    @property
    def chunks(self) -> int:
        return chunk_count(self.size, self.chunk_size)

    def complete(self) -> bool:
        return len(self.present) == self.chunks


class BlobCache:
    """Serves byte ranges of blobs, filling missing chunks from upstream exactly once."""

    def __init__(
        self,
        storage: Storage,
        metadata: CacheMetadata,
        staging_dir: Path,
        *,
        chunk_size: int,
        read_ahead_chunks: int,
        parallel_chunk_fetches: int,
        max_bytes: int | None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS,
        redirect_ttl: int | None = None,
    ) -> None:
        self.storage = storage
        self.metadata = metadata
        self.staging_dir = staging_dir
        self.chunk_size = chunk_size
        self.read_ahead_chunks = read_ahead_chunks
        self.parallel_chunk_fetches = parallel_chunk_fetches
        self.max_bytes = max_bytes
        self.retry_delays = retry_delays
        # Seconds presigned redirect URLs live; None: never redirect (stream everything).
        self.redirect_ttl = redirect_ttl
        self._states: dict[BlobId, BlobState] = {}
        self._loading: dict[BlobId, asyncio.Future[BlobState | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._touched: dict[str, float] = {}
        self._last_touch_flush = time.monotonic()
        self.stored_bytes = 0

    @property
    def stored_bytes(self) -> int:
        """Bytes of committed chunks (what `max_bytes` limits)."""
        return self._stored_bytes

    @stored_bytes.setter
    def stored_bytes(self, value: int) -> None:
        self._stored_bytes = value
        CACHE_STORED_BYTES.set(value)

    async def start(self) -> None:
        """Empty the staging area, count stored bytes, re-verify blobs a crash left unverified."""
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.staging_dir.iterdir():
            leftover.unlink(missing_ok=True)
        removed = await self.storage.remove_incomplete()
        if removed:
            logger.info("removed %d incomplete objects left by an earlier crash", removed)
        self.stored_bytes = await self.metadata.stored_bytes()
        for blob_text in await self.metadata.unverified_complete_blobs():
            state = await self._state(BlobId.parse(blob_text), None)
            if state is not None:
                self._schedule_verify(state)
        self._spawn(self.refresh_usage_metrics())

    async def refresh_usage_metrics(self, interval: float = 30.0) -> None:
        """Keep the blob-count and pinned-bytes gauges current (they need a database scan)."""
        while True:
            blobs, pinned = await self.metadata.usage()
            CACHE_BLOBS.set(blobs)
            CACHE_PINNED_BYTES.set(pinned)
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._flush_touches()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task that outlives the request that started it, cancelled at shutdown."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # State -----------------------------------------------------------------------------

    async def _state(self, blob: BlobId, size: int | None) -> BlobState | None:
        """The in-memory state of `blob`; created (with `size`) if the database has none."""
        while True:
            state = self._states.get(blob)
            if state is not None:
                return state
            pending = self._loading.get(blob)
            if pending is None:
                break
            found = await asyncio.shield(pending)
            if found is not None or size is None:
                return found
            # That load was a lookup only (a HEAD) and found nothing: load again and create.
        future: asyncio.Future[BlobState | None] = asyncio.get_running_loop().create_future()
        self._loading[blob] = future
        try:
            record = await self.metadata.get_blob(str(blob))
            if record is None:
                if size is None:
                    future.set_result(None)
                    return None
                await self.metadata.create_blob(str(blob), size, self.chunk_size)
                state = BlobState(blob, size, self.chunk_size, {}, verified=False)
            else:
                state = BlobState(
                    blob, record.size, record.chunk_size, dict(record.chunks), record.verified,
                    whole=record.whole,
                )  # fmt: skip
            self._states[blob] = state
            future.set_result(state)
            return state
        except BaseException as error:
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: the raise below reports it
            raise
        finally:
            del self._loading[blob]

    async def cached_fraction(self, blob: BlobId, start: int, end: int) -> str:
        """`hit` if every chunk of `[start, end)` is present, `miss` if none, else `partial`."""
        if end <= start:
            return "hit"
        # Looked up, never created: a HEAD must not write to the database.
        state = await self._state(blob, None)
        if state is None:
            return "miss"
        first, last = start // state.chunk_size, (end - 1) // state.chunk_size
        present = sum(1 for index in range(first, last + 1) if index in state.present)
        if present == last - first + 1:
            return "hit"
        return "miss" if present == 0 else "partial"

    # Reading ---------------------------------------------------------------------------

    async def read(
        self, blob: BlobId, size: int, start: int, end: int, fetch: RangeFetcher | None
    ) -> AsyncIterator[bytes]:
        """Yield the bytes `[start, end)` of `blob` (of `size` bytes).

        `fetch` reads from upstream; None means offline: missing chunks raise `OfflineMiss`.
        """
        state = await self._state(blob, size)
        assert state is not None
        if end <= start:
            return
        state.readers += 1
        try:
            self._touch(state)
            first = start // state.chunk_size
            last = (end - 1) // state.chunk_size
            to_end = end >= state.size
            if fetch is not None and to_end:
                self._ensure_job(state, first, fetch)
            for index in range(first, last + 1):
                if fetch is not None and not to_end:
                    # This chunk plus the read-ahead window, never more than the parallel cap.
                    window_end = min(
                        last + self.read_ahead_chunks,
                        index + self.parallel_chunk_fetches - 1,
                        state.chunks - 1,
                    )
                    for ahead in range(index, window_end + 1):
                        self._ensure_fill(state, ahead, fetch)
                chunk_start, chunk_end = chunk_bounds(index, state.size, state.chunk_size)
                piece_start = max(start, chunk_start) - chunk_start
                piece_end = min(end, chunk_end) - chunk_start
                async for piece in self._read_chunk(state, index, piece_start, piece_end, fetch):
                    yield piece
        finally:
            state.readers -= 1

    async def _read_chunk(
        self, state: BlobState, index: int, start: int, end: int, fetch: RangeFetcher | None
    ) -> AsyncIterator[bytes]:
        """Yield `[start, end)` of one chunk, from storage or by following its fill."""
        position = start
        for _attempt in range(3):
            if index in state.present:
                try:
                    CHUNK_READS.labels("hit").inc()
                    async for piece in self.storage.read(
                        chunk_key(state.blob, index), position, end
                    ):
                        position += len(piece)
                        SERVED_BYTES.labels("cache").inc(len(piece))
                        yield piece
                    if position != end:
                        # A short chunk file (a power loss before write-back?): never serve
                        # it as whole; drop it so the next read fetches it again.
                        logger.error("chunk %d of %s is truncated in storage", index, state.blob)
                        await self._forget_chunk(state, index)
                        raise IntegrityError("A cached chunk was truncated; retry the download")
                    return
                except ObjectNotFound:
                    # The database says present but storage lost it (deleted by hand?): refetch.
                    logger.warning("chunk %d of %s vanished from storage", index, state.blob)
                    await self._forget_chunk(state, index)
                    continue
                except StorageError as error:
                    logger.error("storage read of %s failed: %s", state.blob, error)
                    raise StorageUnavailable() from error
            fill = state.fills.get(index)
            if fill is None:
                if fetch is None:
                    raise OfflineMiss()
                fill = self._ensure_fill(state, index, fetch)
                if fill is None:
                    continue
            CHUNK_READS.labels("miss" if fill.readers == 0 else "joined").inc()
            fill.readers += 1
            try:
                async for piece in follow(fill, position, end):
                    position += len(piece)
                    SERVED_BYTES.labels("upstream").inc(len(piece))
                    yield piece
                return
            except FillMoved:
                # The fill committed before we could open its staging file: read storage.
                while fill.error is None and not fill.done:
                    await fill.progress.wait()
                if fill.error is not None:
                    raise fill.error from None
        raise StorageUnavailable()

    # Filling ---------------------------------------------------------------------------

    def _ensure_fill(self, state: BlobState, index: int, fetch: RangeFetcher) -> ChunkFill | None:
        """The in-flight fill of chunk `index`, started if needed; None if already present."""
        if index in state.present:
            return None
        fill = state.fills.get(index)
        if fill is not None:
            return fill
        chunk_start, chunk_end = chunk_bounds(index, state.size, state.chunk_size)
        staging_path = self.staging_dir / f"{state.blob.digest}.{index}.{secrets.token_hex(4)}"
        fill = ChunkFill(index, chunk_end - chunk_start, staging_path)
        # Created before the task runs so that followers can open it right away.
        fill.staging_path.touch(exist_ok=False)
        state.fills[index] = fill
        fill.task = self._spawn(self._fill(state, fill, chunk_start, fetch))
        return fill

    async def _fill(
        self, state: BlobState, fill: ChunkFill, offset: int, fetch: RangeFetcher
    ) -> None:
        FILLS_IN_FLIGHT.inc()
        started = time.monotonic()
        try:
            await download(fill, offset, fetch, self.retry_delays)
            await self._commit(state, fill)
            fill.done = True
            FILL_DURATION.observe(time.monotonic() - started)
        except HubError as error:
            fill.error = error
            logger.warning(
                "fill of chunk %d of %s failed: %s", fill.index, state.blob, error.message
            )
        except asyncio.CancelledError:
            fill.error = UpstreamUnavailable("hubproxy is shutting down")
            raise
        except Exception:
            logger.exception("fill of chunk %d of %s crashed", fill.index, state.blob)
            fill.error = HubError()
        finally:
            FILLS_IN_FLIGHT.dec()
            FILLS.labels("ok" if fill.done else "failed").inc()
            state.fills.pop(fill.index, None)
            fill.staging_path.unlink(missing_ok=True)
            fill.notify()
        if state.complete() and not state.verified:
            self._schedule_verify(state)
        if fill.done:
            await self._evict_if_needed()

    async def _commit(self, state: BlobState, fill: ChunkFill) -> None:
        # The staging file is moved away by import_file; followers keep their open descriptor.
        key = chunk_key(state.blob, fill.index)
        try:
            info = await self.storage.import_file(key, fill.staging_path)
        except StorageFull as error:
            raise InsufficientStorage() from error
        except StorageError as error:
            logger.error("storage commit of %s failed: %s", key, error)
            raise StorageUnavailable() from error
        if info.size != fill.length:
            await self.storage.delete(key)
            raise IntegrityError("committed chunk has the wrong size")
        await self.metadata.add_chunk(str(state.blob), fill.index, fill.length)
        state.present[fill.index] = fill.length
        self.stored_bytes += fill.length

    def _ensure_job(self, state: BlobState, first: int, fetch: RangeFetcher) -> None:
        """Fill every missing chunk from `first` to the end, `parallel_chunk_fetches` at a time."""
        state.job_start = min(state.job_start, first) if state.job is not None else first
        if state.job is None or state.job.done():
            state.job = self._spawn(self._run_job(state, fetch))

    async def _run_job(self, state: BlobState, fetch: RangeFetcher) -> None:
        while True:
            wanted = [
                index
                for index in range(state.job_start, state.chunks)
                if index not in state.present
            ]
            if not wanted:
                return
            in_flight = [state.fills[index] for index in wanted if index in state.fills]
            for index in wanted:
                if len(in_flight) >= self.parallel_chunk_fetches:
                    break
                if index not in state.fills:
                    fill = self._ensure_fill(state, index, fetch)
                    if fill is not None:
                        in_flight.append(fill)
            tasks = [fill.task for fill in in_flight if fill.task is not None]
            if not tasks:
                return
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if any(fill.error is not None for fill in in_flight if fill.task in done):
                return  # upstream is failing: readers see the error; a new read restarts the job

    # Held content (the private hub) ------------------------------------------------------

    async def holds(self, blob: BlobId, size: int) -> bool:
        """Whether every chunk of `blob` is stored and the whole was verified."""
        state = await self._state(blob, None)
        return state is not None and state.size == size and state.complete() and state.verified

    async def store_held(self, blob: BlobId, content: bytes) -> None:
        """Store small content already verified against `blob`, and hold it: never evicted."""
        chunk_size = await self.chunk_size_of(blob)
        pieces = [
            content[start : start + chunk_size] for start in range(0, len(content), chunk_size)
        ]
        await self._store_verified(blob, len(content), chunk_size, pieces)

    async def store_held_chunks(
        self, blob: BlobId, size: int, chunk_size: int, chunk_files: Sequence[Path]
    ) -> None:
        """Store content already verified against `blob`, given as one local file per chunk
        (moved into storage: a rename on local disk), and hold it."""
        await self._store_verified(blob, size, chunk_size, chunk_files)

    async def chunk_size_of(self, blob: BlobId) -> int:
        """The chunk size `blob` is (or will be) stored with."""
        state = self._states.get(blob)
        if state is not None:
            return state.chunk_size
        record = await self.metadata.get_blob(str(blob))
        return record.chunk_size if record is not None else self.chunk_size

    async def _store_verified(
        self, blob: BlobId, size: int, chunk_size: int, pieces: Sequence[bytes | Path]
    ) -> None:
        """Chunks already stored (a cached copy) are kept, and the whole is then verified
        again, since those came from elsewhere; else the caller's verification stands."""
        record = await self.metadata.get_blob(str(blob))
        known = self._states.get(blob)
        if known is not None and (record is None or record.chunks != known.present):
            # `hubproxy cache gc` (another process) deleted it: what memory says is stale.
            self._states.pop(blob, None)
        state = await self._state(blob, size)
        assert state is not None
        if state.size != size or state.chunk_size != chunk_size or len(pieces) != state.chunks:
            raise IntegrityError(f"{blob} is stored with another size or chunk size")
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
                await self._verify(state)
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
        except StorageFull as error:
            raise InsufficientStorage() from error
        except StorageError as error:
            logger.error("storage write of %s failed: %s", key, error)
            raise StorageUnavailable() from error
        if info.size != end - start:
            await self.storage.delete(key)
            raise IntegrityError(f"chunk {index} of {state.blob} has the wrong size")
        await self.metadata.add_chunk(str(state.blob), index, info.size)
        if index not in state.present:
            state.present[index] = info.size
            self.stored_bytes += info.size

    # Verification, eviction, bookkeeping -----------------------------------------------

    def _schedule_verify(self, state: BlobState) -> None:
        if state.verifying is None or state.verifying.done():
            state.verifying = self._spawn(self._verify(state))

    async def _verify(self, state: BlobState) -> None:
        """Hash the whole blob; delete it if the content does not match its name."""
        if state.blob.algorithm == "sha256":
            hasher = hashlib.sha256()
        else:
            hasher = hashlib.sha1(usedforsecurity=False)
            hasher.update(b"blob %d\0" % state.size)
        try:
            for index in range(state.chunks):
                async for piece in self.storage.read(chunk_key(state.blob, index)):
                    await asyncio.to_thread(hasher.update, piece)
        except StorageError as error:
            logger.warning("verification of %s could not read it: %s", state.blob, error)
            return
        if hasher.hexdigest() == state.blob.digest:
            state.verified = True
            await self.metadata.mark_verified(str(state.blob))
            if self.redirect_ttl is not None:
                await self._compose_whole(state)
            return
        logger.error("content of %s does not match its hash: deleted, will refetch", state.blob)
        VERIFICATION_FAILURES.inc()
        await self._remove(state)

    async def _compose_whole(self, state: BlobState) -> None:
        """Build the whole-content object clients are redirected to (server-side copy)."""
        parts = [chunk_key(state.blob, index) for index in range(state.chunks)]
        try:
            info = await self.storage.compose(whole_key(state.blob), parts)
        except StorageError as error:
            logger.warning("could not compose %s for redirects: %s", state.blob, error)
            return
        if info is None or info.size != state.size:
            return
        state.whole = True
        await self.metadata.mark_whole(str(state.blob))

    async def redirect_url(self, blob: BlobId) -> str | None:
        """A presigned URL of the whole verified content, or None to stream it ourselves."""
        if self.redirect_ttl is None:
            return None
        state = await self._state(blob, None)
        if state is None or not state.verified or not state.complete():
            return None
        if not state.whole:
            # Verified before redirect mode was on: compose it now, redirect next time.
            if state.composing is None or state.composing.done():
                state.composing = self._spawn(self._compose_whole(state))
            return None
        url = await self.storage.presign(whole_key(blob), self.redirect_ttl)
        if url is not None:
            self._touch(state)
            REDIRECTS.inc()
        return url

    async def _forget_chunk(self, state: BlobState, index: int) -> None:
        size = state.present.pop(index, 0)
        self.stored_bytes -= size
        state.verified = False
        await self.metadata.remove_chunk(str(state.blob), index)

    async def _remove(self, state: BlobState) -> None:
        if state.whole:
            await self.storage.delete(whole_key(state.blob))
            state.whole = False
        for index in list(state.present):
            await self.storage.delete(chunk_key(state.blob, index))
            self.stored_bytes -= state.present.pop(index)
        state.verified = False
        await self.metadata.remove_blob(str(state.blob))
        self._states.pop(state.blob, None)

    def _touch(self, state: BlobState) -> None:
        self._touched[str(state.blob)] = time.time()
        if time.monotonic() - self._last_touch_flush > TOUCH_FLUSH_SECONDS:
            self._last_touch_flush = time.monotonic()
            self._spawn(self._flush_touches())

    async def _flush_touches(self) -> None:
        touched, self._touched = self._touched, {}
        if touched:
            await self.metadata.touch_blobs(touched)

    def _in_use(self, blob: BlobId) -> bool:
        state = self._states.get(blob)
        return state is not None and (
            state.readers > 0
            or bool(state.fills)
            or (state.job is not None and not state.job.done())
        )

    async def _evict_if_needed(self) -> None:
        """Remove least recently used whole blobs that nobody is reading until under the limit."""
        if self.max_bytes is None or self.stored_bytes <= self.max_bytes:
            return
        await self._flush_touches()
        for blob_text in await self.metadata.least_recently_used(256):
            if self.stored_bytes <= self.max_bytes:
                return
            blob = BlobId.parse(blob_text)
            if self._in_use(blob):
                continue
            state = await self._state(blob, None)
            if state is None:
                continue
            size = sum(state.present.values())
            logger.info("evicting %s (%d bytes) to stay under cache_max_bytes", blob, size)
            EVICTIONS.inc()
            EVICTED_BYTES.inc(size)
            await self._remove(state)
