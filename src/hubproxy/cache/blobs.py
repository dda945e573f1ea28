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

A read may ask for `files` (`read_files`): the chunks of a verified blob that are stored as
local files then come as `FileSegment`s (open files, for sendfile) instead of bytes; anything
else — a chunk in flight, an unverified blob, S3 without a local tier — still comes as bytes.

Several processes (the workers of one server) share the data dir: a fill is owned through a
lease in the metadata store (`leases.py`), so one process fetches each chunk from upstream;
another process's readers of that chunk wait until it is recorded as stored and read it from
storage. Only the lease holder records the chunk (a fenced commit).

When the last chunk lands, the whole blob is verified (`verification.py`); stored bytes are
kept under `cache_max_bytes` by evicting least recently used blobs (`eviction.py`). The private
hub's content lives in the same chunks (`held.py`); what every part knows of a blob is in
`blob_states.py`.
"""

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

from hubproxy.blob_ids import BlobId
from hubproxy.cache.blob_states import BlobState, BlobStates
from hubproxy.cache.eviction import Evictor
from hubproxy.cache.layout import chunk_bounds, chunk_key, whole_key
from hubproxy.cache.leases import LEASE_SECONDS, Lease, Leases
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.staging import (
    RETRY_DELAYS_SECONDS,
    ChunkFill,
    FillMoved,
    RangeFetcher,
    download,
    follow,
)
from hubproxy.cache.storage import FileSegment, ObjectNotFound, Storage, StorageError
from hubproxy.cache.verification import Verifier
from hubproxy.errors import (
    DatabaseUnavailable,
    HubError,
    IntegrityError,
    OfflineMiss,
    StorageUnavailable,
    UpstreamUnavailable,
)
from hubproxy.lru import LruMap
from hubproxy.metrics import (
    CACHE_BLOBS,
    CACHE_PINNED_BYTES,
    CHUNK_READS,
    FILL_DURATION,
    FILLS,
    FILLS_IN_FLIGHT,
    REDIRECTS,
    SERVED_BYTES,
    VERIFICATION_FAILURES,
)

logger = logging.getLogger(__name__)

# How often a process waiting for another one's fill of a chunk looks whether it is stored.
REMOTE_FILL_POLL_SECONDS = 0.05
# How long resumes of a blob whose whole read failed verification are answered whole.
RESUME_REFUSED_SECONDS = 600.0
# Pieces of a first whole read at least this large are hashed in a thread (smaller: inline,
# where a thread hop would cost more than the hash).
THREAD_HASH_BYTES = 256 * 1024
FAILED_READS_REMEMBERED = 1024


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
        lease_seconds: float = LEASE_SECONDS,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS,
        redirect_ttl: int | None = None,
    ) -> None:
        self.storage = storage
        self.metadata = metadata
        self.staging_dir = staging_dir
        self.read_ahead_chunks = read_ahead_chunks
        self.parallel_chunk_fetches = parallel_chunk_fetches
        self.retry_delays = retry_delays
        # The parts the private hub's held content (`held.py`) shares with the cache.
        self.states = BlobStates(storage, metadata, chunk_size)
        self.verifier = Verifier(self.states, redirect_ttl)
        self.evictor = Evictor(self.states, max_bytes)
        self.leases = Leases(metadata.database, seconds=lease_seconds)
        # Blobs whose whole read failed verification lately -> when (`refuses_resume`).
        self._failed_whole_reads: LruMap[BlobId, float] = LruMap(FAILED_READS_REMEMBERED)

    @property
    def stored_bytes(self) -> int:
        """Bytes of committed chunks (what `max_bytes` limits)."""
        return self.states.stored_bytes

    async def start(
        self, *, sole: bool = True, reverify: bool = True, shared: bool | None = None
    ) -> None:
        """Empty the staging area, count stored bytes, re-verify blobs a crash left unverified.

        `sole`: no other process uses the data dir, so objects half-written by a crash are
        removed here (a server of several workers does it once, before they start);
        `reverify`: this process re-verifies (one worker of several does); `shared` (default:
        not `sole`): other processes store chunks through the same metadata store (workers,
        replicas), so `cache_max_bytes` is kept for all of them together.
        """
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.staging_dir.iterdir():
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
        if sole:
            removed = await self.storage.remove_incomplete()
            if removed:
                logger.info("removed %d incomplete objects left by an earlier crash", removed)
        self.states.stored_bytes = await self.metadata.stored_bytes()
        if (not sole) if shared is None else shared:
            self.evictor.shared(self.leases)
            self.verifier.shared(self.leases)
        for blob_text in await self.metadata.unverified_complete_blobs() if reverify else ():
            state = await self.states.get(BlobId.parse(blob_text), None)
            if state is not None:
                self.verifier.schedule(state)
        self.states.spawn(self.refresh_usage_metrics())

    async def refresh_usage_metrics(self, interval: float = 30.0) -> None:
        """Keep the blob-count and pinned-bytes gauges current (they need a database scan)."""
        while True:
            try:
                blobs, pinned = await self.metadata.usage()
            except DatabaseUnavailable:
                # The gauges keep their last values; readiness reports the outage.
                logger.warning("cache usage metrics: the database is unavailable; next time")
            else:
                CACHE_BLOBS.set(blobs)
                CACHE_PINNED_BYTES.set(pinned)
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        self.evictor.close()
        await self.states.aclose()
        await self.evictor.flush_touches()

    async def cached_fraction(self, blob: BlobId, start: int, end: int) -> str:
        """`hit` if every chunk of `[start, end)` is present, `miss` if none, else `partial`."""
        if end <= start:
            return "hit"
        # Looked up, never created: a HEAD must not write to the database.
        state = await self.states.get(blob, None)
        if state is None or not state.from_upstream:
            return "miss"  # content only the private hub stored is read from upstream
        first, last = start // state.chunk_size, (end - 1) // state.chunk_size
        present = sum(1 for index in range(first, last + 1) if index in state.present)
        if present == last - first + 1:
            return "hit"
        return "miss" if present == 0 else "partial"

    # Reading ---------------------------------------------------------------------------

    def read(
        self,
        blob: BlobId,
        size: int,
        start: int,
        end: int,
        fetch: RangeFetcher | None,
        *,
        held: bool = False,
    ) -> AsyncIterator[bytes]:
        """Yield the bytes `[start, end)` of `blob` (of `size` bytes); see `read_files`."""
        return cast(
            AsyncIterator[bytes],
            self.read_files(blob, size, start, end, fetch, held=held, files=False),
        )

    async def read_files(
        self,
        blob: BlobId,
        size: int,
        start: int,
        end: int,
        fetch: RangeFetcher | None,
        *,
        held: bool = False,
        files: bool = True,
    ) -> AsyncIterator[bytes | FileSegment]:
        """Yield `[start, end)` of `blob` (of `size` bytes), in order, as bytes or, if `files`
        and the blob is verified, stored chunk files as `FileSegment`s (the receiver closes
        them).

        `fetch` reads from upstream; None means offline: missing chunks raise `OfflineMiss`.
        A proxied entry naming a blob (`held` False) is served from the store only if every
        stored chunk came from upstream; content the private hub stored is otherwise read
        from upstream (`_pass_through`), never from the store: an upstream that names the hash
        of a hosted file must not get its bytes. `held`: the private hub reads its own content.
        """
        state = await self.states.get(blob, size)
        assert state is not None
        if end <= start:
            return
        if not held and not state.from_upstream:
            if fetch is None:
                raise OfflineMiss()
            async for piece in self._pass_through(state, start, end, fetch):
                yield piece
            return
        await self._learn_verified(state)
        # Decided once: only bytes of a verified blob skip the hashing of a first whole read.
        files = files and state.verified and self.storage.opens_files
        pieces: AsyncIterator[bytes | FileSegment]
        pieces = self._pieces(state, start, end, fetch, held=held, files=files)
        if start == 0 and end >= state.size and not state.verified and not held:
            pieces = self._held_back_until_verified(state, cast(AsyncIterator[bytes], pieces))
        try:
            async for part in pieces:
                yield part
        finally:
            await pieces.aclose()  # type: ignore[attr-defined]

    async def _pieces(
        self,
        state: BlobState,
        start: int,
        end: int,
        fetch: RangeFetcher | None,
        *,
        held: bool,
        files: bool = False,
    ) -> AsyncIterator[bytes | FileSegment]:
        """`[start, end)` of the blob, chunk after chunk, filling what is missing."""
        state.readers += 1
        try:
            self.evictor.touch(state)
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
                async for piece in self._read_chunk(
                    state, index, piece_start, piece_end, fetch, held=held, files=files
                ):
                    yield piece
        finally:
            state.readers -= 1

    async def _held_back_until_verified(
        self, state: BlobState, pieces: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """`pieces` (the whole blob, not yet verified), the last one held back until all of them
        hash to the blob's name. On a mismatch the stored copy is dropped and `IntegrityError`
        raised: the response breaks short of its Content-Length, so the first client of a
        corrupt upstream file never receives it as a whole one, and its resume is answered with
        the whole file again (`refuses_resume`)."""
        hasher = state.blob.hasher(state.size)
        held_back: bytes | None = None
        hashing: asyncio.Future[None] | None = None
        state.streaming_checks += 1
        checked = False  # hashed to the end, and the outcome acted on
        try:
            async for piece in pieces:
                if hashing is not None:
                    await hashing
                # A MiB piece is a millisecond of hashing, which releases the GIL: in a thread,
                # it runs on another core while the previous piece goes out, and the event
                # loop (the bottleneck of a cold download) only receives and sends.
                if len(piece) >= THREAD_HASH_BYTES:
                    hashing = asyncio.ensure_future(asyncio.to_thread(hasher.update, piece))
                else:
                    hashing = None
                    hasher.update(piece)
                if held_back is not None:
                    yield held_back
                held_back = piece
            if hashing is not None:
                await hashing
            if hasher.hexdigest() != state.blob.digest:
                logger.error("content of %s does not match its hash: response broken", state.blob)
                VERIFICATION_FAILURES.inc()
                self._failed_whole_reads.put(state.blob, time.monotonic())
                checked = True
                await self._discard(state)
                raise IntegrityError(
                    "The file's content does not match its hash: retry the download"
                )
            self._failed_whole_reads.pop(state.blob)
            await self._accept_streamed(state)
            checked = True
        finally:
            if hashing is not None:
                hashing.cancel()  # abandoned: its thread finishes a hash nobody reads
            state.streaming_checks -= 1
            abandoned = not checked and not state.streaming_checks
            if abandoned and state.complete() and not state.verified:
                # The stored copy is checked as usual (or when its last fill lands).
                self.verifier.schedule(state)
        if held_back is not None:
            yield held_back

    async def _accept_streamed(self, state: BlobState) -> None:
        """After a whole read hashed right: once its fills have committed, the stored blob is
        those bytes, so it is verified without reading it back (one hash per cold file)."""
        pending = [fill.task for fill in state.fills.values() if fill.task is not None]
        if pending:
            await asyncio.wait(pending)
        if state.complete() and not state.verified and not state.fills:
            await self.verifier.accept(state)

    async def _discard(self, state: BlobState) -> None:
        """Stop every fill of the blob, then delete what is stored: a fill still committing
        must not bring a chunk of it back."""
        tasks = [fill.task for fill in state.fills.values() if fill.task is not None]
        if state.job is not None:
            tasks.append(state.job)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.states.remove(state)
        # A fill stopped between writing its chunk and recording it leaves an unrecorded object.
        for index in range(state.chunks):
            await self.storage.delete(chunk_key(state.blob, index))

    def refuses_resume(self, blob: BlobId) -> bool:
        """Whether a read to the end of `blob` from an offset should get the whole file
        instead: a whole read of it failed verification lately, so a client resuming that
        read holds corrupt bytes before the offset. huggingface_hub starts over when its
        resume request is answered 200."""
        failed = self._failed_whole_reads.get(blob)
        return failed is not None and time.monotonic() - failed < RESUME_REFUSED_SECONDS

    async def _read_chunk(
        self,
        state: BlobState,
        index: int,
        start: int,
        end: int,
        fetch: RangeFetcher | None,
        *,
        held: bool,
        files: bool = False,
    ) -> AsyncIterator[bytes | FileSegment]:
        """Yield `[start, end)` of one chunk, from storage (as a file if `files`) or by
        following its fill."""
        position = start
        # One read of a chunk counts once, by how it began: a read that followed a fill and
        # then found it committed (`FillMoved`) was a miss, not a miss and then a hit.
        counted = False
        for _attempt in range(3):
            if index in state.present:
                if not held and not state.from_upstream:
                    # The private hub stored this blob while we were reading it: its chunks
                    # are not upstream's to serve. The client's retry reads from upstream.
                    raise IntegrityError("The content changed while it was read; retry")
                try:
                    if not counted:
                        CHUNK_READS.labels("hit").inc()
                        counted = True
                    if files:
                        segment = await self._chunk_file(state, index, position, end)
                        SERVED_BYTES.labels("cache").inc(segment.count)
                        yield segment
                        return
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
                        await self.states.forget_chunk(state, index)
                        raise IntegrityError("A cached chunk was truncated; retry the download")
                    return
                except ObjectNotFound:
                    # The database says present but storage lost it (deleted by hand?): refetch.
                    logger.warning("chunk %d of %s vanished from storage", index, state.blob)
                    await self.states.forget_chunk(state, index)
                    continue
                except StorageError as error:
                    logger.error("storage read of %s failed: %s", state.blob, error)
                    raise error.as_hub_error() from error
            fill = state.fills.get(index)
            if fill is None:
                if fetch is None:
                    raise OfflineMiss()
                fill = self._ensure_fill(state, index, fetch)
                if fill is None:
                    continue
            if not counted:
                CHUNK_READS.labels("miss" if fill.readers == 0 else "joined").inc()
                counted = True
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

    async def _chunk_file(self, state: BlobState, index: int, start: int, end: int) -> FileSegment:
        """`[start, end)` of stored chunk `index` as an open file, checked to be whole."""
        segment = await self.storage.open_file(chunk_key(state.blob, index), start, end)
        if segment.size != state.present[index]:
            segment.close()
            logger.error("chunk %d of %s is truncated in storage", index, state.blob)
            await self.states.forget_chunk(state, index)
            raise IntegrityError("A cached chunk was truncated; retry the download")
        return segment

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
        fill.task = self.states.spawn(self._fill(state, fill, chunk_start, fetch))
        return fill

    async def _fill(
        self, state: BlobState, fill: ChunkFill, offset: int, fetch: RangeFetcher
    ) -> None:
        FILLS_IN_FLIGHT.inc()
        started = time.monotonic()
        try:
            lease = await self._lease_or_stored(state, fill.index)
            if lease is not None:
                try:
                    async with self.leases.renewed(lease):
                        await download(fill, offset, fetch, self.retry_delays)
                        await self._commit(state, fill, lease)
                finally:
                    await self.leases.release(lease)
            # else: another process stored it; this fill's readers read it from storage.
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
        if (
            state.complete()
            and not state.streaming_checks
            and not await self._learn_verified(state)
        ):
            self.verifier.schedule(state)
        if fill.done:
            await self.evictor.evict_if_needed()

    async def _learn_verified(self, state: BlobState) -> bool:
        """Whether the blob is verified; a complete blob another process verified is taken as
        verified here too (its state was loaded before)."""
        if (
            not state.verified
            and state.complete()
            and await self.metadata.is_verified(str(state.blob))
        ):
            state.verified = True
        return state.verified

    async def _lease_or_stored(self, state: BlobState, index: int) -> Lease | None:
        """The lease to fill chunk `index`, or None once another process has stored it
        (waiting while that process holds the lease)."""
        name = f"fill:{state.blob}:{index}"
        while True:
            size = await self.metadata.stored_chunk(str(state.blob), index)
            if size is not None:
                self.states.learn_chunk(state, index, size)
                return None
            lease = await self.leases.acquire(name)
            if lease is not None:
                # Stored between the look and the take? Then the lease is not needed.
                size = await self.metadata.stored_chunk(str(state.blob), index)
                if size is None:
                    return lease
                await self.leases.release(lease)
                self.states.learn_chunk(state, index, size)
                return None
            await asyncio.sleep(REMOTE_FILL_POLL_SECONDS)

    async def _commit(self, state: BlobState, fill: ChunkFill, lease: Lease) -> None:
        if not state.from_upstream:
            # The private hub stored the blob meanwhile: its chunks stay; upstream's bytes
            # reach only the readers of this fill.
            return
        # The staging file is moved away by import_file; followers keep their open descriptor.
        key = chunk_key(state.blob, fill.index)
        try:
            info = await self.storage.import_file(key, fill.staging_path)
        except StorageError as error:
            logger.error("storage commit of %s failed: %s", key, error)
            raise error.as_hub_error() from error
        if info.size != fill.length:
            await self.storage.delete(key)
            raise IntegrityError("committed chunk has the wrong size")
        await self.states.add_chunk(state, fill.index, fill.length, fence=lease)

    def _ensure_job(self, state: BlobState, first: int, fetch: RangeFetcher) -> None:
        """Fill every missing chunk from `first` to the end, `parallel_chunk_fetches` at a time."""
        state.job_start = min(state.job_start, first) if state.job is not None else first
        if state.job is None or state.job.done():
            state.job = self.states.spawn(self._run_job(state, fetch))

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

    async def _pass_through(
        self, state: BlobState, start: int, end: int, fetch: RangeFetcher
    ) -> AsyncIterator[bytes]:
        """Upstream's bytes `[start, end)` of a blob the private hub stored, straight from
        upstream and stored nowhere. A read of the whole blob whose bytes hash to its name
        proves upstream serves exactly this content: from then on it is served from the store
        like any cached blob."""
        hasher = state.blob.hasher(state.size) if start == 0 and end == state.size else None
        position = start
        async for piece in fetch(start, end):
            piece = piece[: end - position]
            position += len(piece)
            SERVED_BYTES.labels("upstream").inc(len(piece))
            if hasher is not None:
                await asyncio.to_thread(hasher.update, piece)
            yield piece
            if position == end:
                break
        if position != end:
            raise IntegrityError("The upstream response was shorter than the file")
        if hasher is not None and hasher.hexdigest() == state.blob.digest:
            state.from_upstream = True
            await self.metadata.set_from_upstream(str(state.blob), True)

    # Redirects ---------------------------------------------------------------------------

    async def redirect_url(self, blob: BlobId, *, held: bool = False) -> str | None:
        """A presigned URL of the whole verified content, or None to stream it ourselves
        (`held`, and content only the private hub stored: as for `read`)."""
        ttl = self.verifier.redirect_ttl
        if ttl is None:
            return None
        state = await self.states.get(blob, None)
        if state is None or not state.verified or not state.complete():
            return None
        if not held and not state.from_upstream:
            return None
        if not state.whole:
            # Verified before redirect mode was on: compose it now, redirect next time.
            self.verifier.compose_later(state)
            return None
        url = await self.storage.presign(whole_key(blob), ttl)
        if url is not None:
            self.evictor.touch(state)
            REDIRECTS.inc()
        return url
