"""Eviction: least recently used blobs go when stored bytes pass `cache_max_bytes`.

Reads record when each blob was last used (`touch`); the times reach the database in batches
(every `TOUCH_FLUSH_SECONDS`, and before each eviction round), so the hot path never waits on
a write. Blobs of pinned repos and blobs held for hosted repos are never candidates
(`CacheMetadata.least_recently_used`), nor is a blob someone is reading or filling right now.
"""

import asyncio
import logging
import time

from hubproxy.blob_ids import BlobId
from hubproxy.cache.blob_states import BlobState, BlobStates
from hubproxy.metrics import EVICTED_BYTES, EVICTIONS

logger = logging.getLogger(__name__)

TOUCH_FLUSH_SECONDS = 30.0
# Candidates read from the database per eviction round.
CANDIDATES = 256


class Evictor:
    """Keeps the stored bytes of `states` under `max_bytes` (None: no limit)."""

    def __init__(self, states: BlobStates, max_bytes: int | None) -> None:
        self.states = states
        self.max_bytes = max_bytes
        self._touched: dict[str, float] = {}
        self._last_touch_flush = time.monotonic()
        # One eviction pass at a time: two fills ending together must not remove one blob twice.
        self._evicting = asyncio.Lock()

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

    async def evict_if_needed(self) -> None:
        """Remove least recently used whole blobs that nobody is reading until under the limit."""
        if self.max_bytes is None or self.states.stored_bytes <= self.max_bytes:
            return
        async with self._evicting:
            await self._evict(self.max_bytes)

    async def _evict(self, max_bytes: int) -> None:
        if self.states.stored_bytes <= max_bytes:
            return  # a pass that ran meanwhile did it
        await self.flush_touches()
        for blob_text in await self.states.metadata.least_recently_used(CANDIDATES):
            if self.states.stored_bytes <= max_bytes:
                return
            blob = BlobId.parse(blob_text)
            if self._in_use(blob):
                continue
            state = await self.states.get(blob, None)
            if state is None:
                continue
            size = sum(state.present.values())
            logger.info("evicting %s (%d bytes) to stay under cache_max_bytes", blob, size)
            EVICTIONS.inc()
            EVICTED_BYTES.inc(size)
            await self.states.remove(state)
