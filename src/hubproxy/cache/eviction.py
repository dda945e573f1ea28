"""Eviction: least recently used blobs go when stored bytes pass `cache_max_bytes`.

Reads record when each blob was last used (`touch`); the times reach the database in batches
(every `TOUCH_FLUSH_SECONDS`, and before each eviction round), so the hot path never waits on
a write. Blobs of pinned repos and blobs held for hosted repos are never candidates
(`CacheMetadata.least_recently_used`), nor is a blob someone is reading or filling right now.

When other processes share the metadata store (the workers of `serve --workers`, replicas),
the limit is the whole server's: `shared(leases)` makes the stored bytes come from the store
(its sum of committed chunks, read at most every `TOTAL_REFRESH_SECONDS`, plus this process's
commits since), one process at a time evicts (the lease `cache-eviction`), and a blob another
process is filling (a `fill:` lease of it is held) is skipped. A reader on another worker of a
blob evicted under it reads the chunks it has not opened yet from upstream again (the chunk
read path refetches a chunk that vanished from storage): nothing is served wrong.
"""

import asyncio
import logging
import time

from hubproxy.blob_ids import BlobId
from hubproxy.cache.blob_states import BlobState, BlobStates
from hubproxy.cache.leases import Leases
from hubproxy.metrics import EVICTED_BYTES, EVICTIONS

logger = logging.getLogger(__name__)

TOUCH_FLUSH_SECONDS = 30.0
# Candidates read from the database per eviction round.
CANDIDATES = 256
# How stale the server-wide stored bytes may be when other processes share the store.
TOTAL_REFRESH_SECONDS = 1.0
EVICTION_LEASE = "cache-eviction"


class Evictor:
    """Keeps the stored bytes of `states` under `max_bytes` (None: no limit)."""

    def __init__(self, states: BlobStates, max_bytes: int | None) -> None:
        self.states = states
        self.max_bytes = max_bytes
        self._touched: dict[str, float] = {}
        self._last_touch_flush = time.monotonic()
        # One eviction pass at a time: two fills ending together must not remove one blob twice.
        self._evicting = asyncio.Lock()
        # Set by `shared`: other processes store chunks in the same metadata store.
        self._leases: Leases | None = None
        self._total_read_at = -TOTAL_REFRESH_SECONDS
        self._deferred_check: asyncio.TimerHandle | None = None

    def shared(self, leases: Leases) -> None:
        """Keep the whole server under `max_bytes`, with the other processes on the store."""
        self._leases = leases

    def touch(self, state: BlobState) -> None:
        """The blob was used now (a read or a redirect)."""
        self._touched[str(state.blob)] = time.time()
        if time.monotonic() - self._last_touch_flush > TOUCH_FLUSH_SECONDS:
            self._last_touch_flush = time.monotonic()
            self.states.spawn(self.flush_touches())

    async def flush_touches(self) -> None:
        """Write the recorded use times to the database."""
        touched, self._touched = self._touched, {}
        if touched:
            await self.states.metadata.touch_blobs(touched)

    def _in_use(self, blob: BlobId) -> bool:
        state = self.states.known(blob)
        return state is not None and (
            state.readers > 0
            or bool(state.fills)
            or (state.job is not None and not state.job.done())
        )

    async def _filled_elsewhere(self, blob: BlobId) -> bool:
        return self._leases is not None and await self._leases.any_held_elsewhere(f"fill:{blob}:")

    async def evict_if_needed(self) -> None:
        """Remove least recently used whole blobs that nobody is reading until under the limit."""
        if self.max_bytes is None:
            return
        if self._leases is not None and not await self._read_total():
            return  # read less than a second ago: checked again when that second is over
        if self.states.stored_bytes <= self.max_bytes:
            return
        async with self._evicting:
            if self._leases is None:
                await self._evict(self.max_bytes)
                return
            lease = await self._leases.acquire(EVICTION_LEASE)
            if lease is None:
                return  # another process is evicting, counting this one's chunks too
            try:
                async with self._leases.renewed(lease):
                    self.states.stored_bytes = await self.states.metadata.stored_bytes()
                    await self._evict(self.max_bytes)
            finally:
                await self._leases.release(lease)

    async def _read_total(self) -> bool:
        """Refresh the stored bytes from the shared store, unless that was done less than
        `TOTAL_REFRESH_SECONDS` ago (then one check is deferred to the end of that time, so
        the last fill of a burst is never left unchecked); whether it was refreshed."""
        waited = time.monotonic() - self._total_read_at
        if waited < TOTAL_REFRESH_SECONDS:
            if self._deferred_check is None:
                self._deferred_check = asyncio.get_running_loop().call_later(
                    TOTAL_REFRESH_SECONDS - waited, self._run_deferred_check
                )
            return False
        self._total_read_at = time.monotonic()
        self.states.stored_bytes = await self.states.metadata.stored_bytes()
        return True

    def close(self) -> None:
        """Cancel a deferred check (the process stops)."""
        if self._deferred_check is not None:
            self._deferred_check.cancel()
            self._deferred_check = None

    def _run_deferred_check(self) -> None:
        self._deferred_check = None
        self.states.spawn(self.evict_if_needed())

    async def _evict(self, max_bytes: int) -> None:
        if self.states.stored_bytes <= max_bytes:
            return  # a pass that ran meanwhile did it
        await self.flush_touches()
        for blob_text in await self.states.metadata.least_recently_used(CANDIDATES):
            if self.states.stored_bytes <= max_bytes:
                return
            blob = BlobId.parse(blob_text)
            if self._in_use(blob) or await self._filled_elsewhere(blob):
                continue
            if self._leases is not None:
                # What other processes stored of it since this one loaded it goes too.
                self.states.drop(blob)
            state = await self.states.get(blob, None)
            if state is None:
                continue
            size = sum(state.present.values())
            logger.info("evicting %s (%d bytes) to stay under cache_max_bytes", blob, size)
            EVICTIONS.inc()
            EVICTED_BYTES.inc(size)
            await self.states.remove(state)
