"""A blob cache over real local storage and a real SQLite database, with a scripted upstream.

Only the upstream is a Python function here (the HTTP path is covered by the proxy tests), so
every byte it serves can be counted and every failure placed exactly.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from hubproxy.blob_ids import BlobId
from hubproxy.cache.blob_states import BlobState
from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.storage import LocalBackend, Storage
from hubproxy.db import Database
from hubproxy.errors import UpstreamTruncated

CHUNK = 64 * 1024


@dataclass
class ScriptedUpstream:
    """Serves `content`, counting requests and bytes; can cut or fail on demand."""

    content: bytes
    requests: list[tuple[int, int]] = field(default_factory=list)
    bytes_served: int = 0
    cut_after: list[int] = field(default_factory=list)  # one entry per request to cut
    fail_always: bool = False
    gate: asyncio.Event | None = None
    piece: int = 8 * 1024

    async def fetch(self, start: int, end: int) -> AsyncIterator[bytes]:
        self.requests.append((start, end))
        if self.fail_always:
            raise UpstreamTruncated()
        limit = self.cut_after.pop(0) if self.cut_after else None
        sent = 0
        for offset in range(start, end, self.piece):
            if self.gate is not None:
                await self.gate.wait()
            data = self.content[offset : min(offset + self.piece, end)]
            if limit is not None and sent + len(data) > limit:
                data = data[: limit - sent]
                self.bytes_served += len(data)
                if data:
                    yield data
                raise UpstreamTruncated()
            sent += len(data)
            self.bytes_served += len(data)
            yield data
            await asyncio.sleep(0)


def sha256_blob(content: bytes) -> BlobId:
    return BlobId("sha256", hashlib.sha256(content).hexdigest())


def git_blob(content: bytes) -> BlobId:
    header = b"blob %d\0" % len(content)
    return BlobId("gitsha1", hashlib.sha1(header + content, usedforsecurity=False).hexdigest())


async def collect(iterator: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in iterator])


class Harness:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = Storage(LocalBackend(root / "storage"))
        self.database = Database(root / "db.sqlite3")
        self.metadata = CacheMetadata(self.database)
        self.cache: BlobCache | None = None

    async def open(self, **options: object) -> BlobCache:
        await self.database.open()
        await self.metadata.open()
        settings: dict[str, object] = {
            "chunk_size": CHUNK,
            "read_ahead_chunks": 1,
            "parallel_chunk_fetches": 3,
            "max_bytes": None,
            "retry_delays": (0.01,),
        }
        settings.update(options)
        self.cache = BlobCache(self.storage, self.metadata, self.root / "staging", **settings)  # type: ignore[arg-type]
        await self.cache.start()
        return self.cache

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.aclose()
        await self.database.aclose()

    async def settle(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached")
            await asyncio.sleep(0.01)

    def stored_chunks(self, blob: BlobId) -> list[Path]:
        digest = blob.digest
        directory = (
            self.root / "storage" / "chunks" / blob.algorithm / digest[:2] / digest[2:4] / digest
        )
        return sorted(directory.iterdir()) if directory.exists() else []


def state_of(cache: BlobCache, blob: BlobId) -> BlobState:
    """What the cache's process knows of `blob` (it must have loaded it)."""
    state = cache.states.known(blob)
    assert state is not None, f"{blob} is not loaded"
    return state


def is_verified(cache: BlobCache, blob: BlobId) -> bool:
    state = cache.states.known(blob)
    return state is not None and state.verified
