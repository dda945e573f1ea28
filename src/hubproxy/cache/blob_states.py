"""What this process knows of each blob, shared by every part of the chunk store.

`BlobStates` loads a blob's record from the database once (one load however many readers ask
at once), keeps it in memory, counts the bytes of committed chunks (what `cache_max_bytes`
limits) and owns the background tasks that outlive requests. The parts that act on blobs each
have their module: reading and filling cached content (`blobs.py`), the private hub's held
content (`held.py`), verification and whole objects (`verification.py`), eviction
(`eviction.py`).
"""

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from hubproxy.blob_ids import BlobId
from hubproxy.cache.layout import chunk_count, chunk_key, whole_key
from hubproxy.cache.leases import Lease
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.staging import ChunkFill
from hubproxy.cache.storage import Storage
from hubproxy.metrics import CACHE_STORED_BYTES
from hubproxy.singleflight import SingleFlight

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class BlobState:
    """What this process knows of one blob; loaded from the database on first use."""

    blob: BlobId
    size: int
    chunk_size: int
    present: dict[int, int]  # chunk index -> size of the committed object
    verified: bool
    fills: dict[int, ChunkFill] = field(default_factory=dict)
    readers: int = 0
    job: asyncio.Task[None] | None = None
    job_start: int = 0
    verifying: asyncio.Task[None] | None = None
    whole: bool = False
    composing: asyncio.Task[None] | None = None
    # Every present chunk came from upstream (`BlobRecord.from_upstream`).
    from_upstream: bool = True
    # Whole reads hashing the blob as they stream it (`BlobCache._held_back_until_verified`):
    # while one runs, the last fill leaves verification to it.
    streaming_checks: int = 0

    @property
    def chunks(self) -> int:
        return chunk_count(self.size, self.chunk_size)

    def complete(self) -> bool:
        return len(self.present) == self.chunks


class BlobStates:
    """The blobs this process has touched, their stored bytes and background tasks."""

    def __init__(self, storage: Storage, metadata: CacheMetadata, chunk_size: int) -> None:
        self.storage = storage
        self.metadata = metadata
        # The chunk size of new blobs; a stored blob keeps the one it was stored with.
        self.chunk_size = chunk_size
        self._states: dict[BlobId, BlobState] = {}
        self._loading: SingleFlight[BlobId, BlobState | None] = SingleFlight()
        self._tasks: set[asyncio.Task[None]] = set()
        self.stored_bytes = 0

    @property
    def stored_bytes(self) -> int:
        """Bytes of committed chunks (what `max_bytes` limits)."""
        return self._stored_bytes

    @stored_bytes.setter
    def stored_bytes(self, value: int) -> None:
        self._stored_bytes = value
        CACHE_STORED_BYTES.set(value)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task that outlives the request that started it, cancelled at shutdown."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Cancel every background task and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def known(self, blob: BlobId) -> BlobState | None:
        """The state of `blob` if this process has loaded it (no database access)."""
        return self._states.get(blob)

    def drop(self, blob: BlobId) -> None:
        """Forget what memory says of `blob`: the next use loads it from the database again."""
        self._states.pop(blob, None)

    async def get(self, blob: BlobId, size: int | None) -> BlobState | None:
        """The state of `blob`; created (with `size`) if the database has none. With `size`
        None it is only looked up (a HEAD must not write to the database)."""
        while True:
            state = self._states.get(blob)
            if state is not None:
                return state
            found = await self._loading.run(blob, lambda: self._load(blob, size))
            if found is not None or size is None:
                return found
            # That load was a lookup only (a HEAD) and found nothing: load again and create.

    async def _load(self, blob: BlobId, size: int | None) -> BlobState | None:
        record = await self.metadata.get_blob(str(blob))
        if record is None:
            if size is None:
                return None
            await self.metadata.create_blob(str(blob), size, self.chunk_size)
            state = BlobState(blob, size, self.chunk_size, {}, verified=False)
        else:
            state = BlobState(
                blob, record.size, record.chunk_size, dict(record.chunks), record.verified,
                whole=record.whole, from_upstream=record.from_upstream,
            )  # fmt: skip
        self._states[blob] = state
        return state

    async def add_chunk(
        self, state: BlobState, index: int, size: int, *, fence: Lease | None = None
    ) -> None:
        """Record chunk `index` (`size` bytes), just committed to storage, as present (with
        `fence`: only while that lease is held)."""
        await self.metadata.add_chunk(str(state.blob), index, size, fence=fence)
        self.learn_chunk(state, index, size)

    def learn_chunk(self, state: BlobState, index: int, size: int) -> None:
        """Chunk `index` is recorded as present (by this process or another one)."""
        if index not in state.present:
            state.present[index] = size
            self.stored_bytes += size

    async def forget_chunk(self, state: BlobState, index: int) -> None:
        """Chunk `index` is not (or no longer validly) in storage: fetch it again next time."""
        size = state.present.pop(index, 0)
        self.stored_bytes -= size
        state.verified = False
        await self.metadata.remove_chunk(str(state.blob), index)

    async def remove(self, state: BlobState) -> None:
        """Delete every stored object of the blob and its record."""
        if state.whole:
            await self.storage.delete(whole_key(state.blob))
            state.whole = False
        for index in list(state.present):
            await self.storage.delete(chunk_key(state.blob, index))
            self.stored_bytes -= state.present.pop(index)
        state.verified = False
        await self.metadata.remove_blob(str(state.blob))
        self._states.pop(state.blob, None)
