"""BlobCache against a scripted upstream: single-flight, verification, faults, eviction.

These run the real cache over real storage backends and a real SQLite database; only the
upstream is a Python function here (the HTTP path is covered by the proxy tests), so every
byte it serves can be counted and every failure placed exactly.
"""

import asyncio
import errno
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hubproxy.blob_ids import BlobId
from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.layout import chunk_key
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.storage import LocalBackend, Storage
from hubproxy.cache.upstream import UpstreamTruncated
from hubproxy.db import Database
from hubproxy.errors import InsufficientStorage, IntegrityError, OfflineMiss

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


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.close()


CONTENT = bytes(range(256)) * (CHUNK * 5 // 256) + b"tail" * 1000  # 5 chunks and a bit


async def test_concurrent_cold_readers_fetch_each_byte_once(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    results = await asyncio.gather(
        *[
            collect(cache.read(blob, len(CONTENT), 0, len(CONTENT), upstream.fetch))
            for _ in range(8)
        ]
    )
    assert all(
        hashlib.sha256(result).digest() == hashlib.sha256(CONTENT).digest() for result in results
    )
    assert upstream.bytes_served == len(CONTENT)
    assert len(upstream.requests) == 6  # one per chunk
    await harness.settle(lambda: cache._states[blob].verified)
    # Warm: no upstream at all.
    again = await collect(cache.read(blob, len(CONTENT), 0, len(CONTENT), upstream.fetch))
    assert again == CONTENT
    assert upstream.bytes_served == len(CONTENT)


async def test_small_range_fetches_its_chunk_and_read_ahead_only(harness: Harness) -> None:
    cache = await harness.open(read_ahead_chunks=1)
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    start = CHUNK * 2 + 100
    data = await collect(cache.read(blob, len(CONTENT), start, start + 1024, upstream.fetch))
    assert data == CONTENT[start : start + 1024]
    await harness.settle(lambda: not cache._states[blob].fills)
    assert sorted(upstream.requests) == [(CHUNK * 2, CHUNK * 3), (CHUNK * 3, CHUNK * 4)]
    assert upstream.bytes_served == 2 * CHUNK


async def test_truncated_upstream_resumes_and_commits_exact_bytes(harness: Harness) -> None:
    cache = await harness.open(read_ahead_chunks=0)
    upstream = ScriptedUpstream(CONTENT, cut_after=[1000, 5000])
    blob = sha256_blob(CONTENT)
    data = await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch))
    assert data == CONTENT[:CHUNK]
    # Resumed where each cut left off: no byte fetched twice.
    chunk_zero_requests = [request for request in upstream.requests if request[1] == CHUNK]
    assert chunk_zero_requests == [(0, CHUNK), (1000, CHUNK), (6000, CHUNK)]
    await harness.settle(lambda: 0 in cache._states[blob].present)
    stored = harness.stored_chunks(blob)[0].read_bytes()
    assert stored == CONTENT[:CHUNK]


async def test_failing_upstream_never_commits_a_chunk(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT, fail_always=True)
    blob = sha256_blob(CONTENT)
    with pytest.raises(UpstreamTruncated):
        await collect(cache.read(blob, len(CONTENT), 0, 10, upstream.fetch))
    await harness.settle(lambda: not cache._states[blob].fills)
    assert harness.stored_chunks(blob) == []
    assert not any((harness.root / "staging").iterdir())
    assert cache._states[blob].present == {}


async def test_content_not_matching_its_hash_is_deleted(harness: Harness) -> None:
    cache = await harness.open()
    wrong = CONTENT[:-1] + b"X"
    upstream = ScriptedUpstream(wrong)
    blob = sha256_blob(CONTENT)  # named for the real content, served something else
    await collect(cache.read(blob, len(CONTENT), 0, len(CONTENT), upstream.fetch))
    await harness.settle(lambda: blob not in cache._states)
    assert harness.stored_chunks(blob) == []
    assert await harness.metadata.get_blob(str(blob)) is None


async def test_git_sha1_blobs_verify(harness: Harness) -> None:
    cache = await harness.open()
    content = b'{"model_type": "bert"}\n'
    blob = git_blob(content)
    data = await collect(
        cache.read(blob, len(content), 0, len(content), ScriptedUpstream(content).fetch)
    )
    assert data == content
    await harness.settle(lambda: cache._states[blob].verified)


async def test_full_read_keeps_filling_after_the_client_leaves(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    reader = cache.read(blob, len(CONTENT), 0, len(CONTENT), upstream.fetch)
    first = await anext(reader)
    assert first == CONTENT[: len(first)]
    await reader.aclose()  # type: ignore[attr-defined]
    await harness.settle(lambda: cache._states[blob].verified)
    assert len(harness.stored_chunks(blob)) == 6
    assert upstream.bytes_served == len(CONTENT)


async def test_offline_serves_cached_and_refuses_missing(harness: Harness) -> None:
    cache = await harness.open()
    blob = sha256_blob(CONTENT)
    await collect(cache.read(blob, len(CONTENT), 0, CHUNK, ScriptedUpstream(CONTENT).fetch))
    await harness.settle(lambda: 0 in cache._states[blob].present)
    assert await collect(cache.read(blob, len(CONTENT), 10, 20, None)) == CONTENT[10:20]
    with pytest.raises(OfflineMiss):
        await collect(cache.read(blob, len(CONTENT), CHUNK * 3, CHUNK * 3 + 5, None))


async def test_restart_serves_from_storage(tmp_path: Path) -> None:
    blob = sha256_blob(CONTENT)
    first = Harness(tmp_path)
    cache = await first.open()
    await collect(cache.read(blob, len(CONTENT), 0, len(CONTENT), ScriptedUpstream(CONTENT).fetch))
    await first.settle(lambda: cache._states[blob].verified)
    await first.close()

    second = Harness(tmp_path)
    cache = await second.open()
    try:
        assert await collect(cache.read(blob, len(CONTENT), 0, len(CONTENT), None)) == CONTENT
        assert await cache.cached_fraction(blob, 0, len(CONTENT)) == "hit"
    finally:
        await second.close()


async def test_restart_removes_staging_and_temp_leftovers(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "abc.0.deadbeef").write_bytes(b"half a chunk")
    leftover_dir = tmp_path / "storage" / "chunks" / "sha256" / "ab"
    leftover_dir.mkdir(parents=True)
    (leftover_dir / ".00000000.tmp-1234").write_bytes(b"partial")
    harness = Harness(tmp_path)
    await harness.open()
    try:
        assert list(staging.iterdir()) == []
        assert list(leftover_dir.iterdir()) == []
    finally:
        await harness.close()


async def test_lost_chunk_is_refetched(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch))
    await harness.settle(lambda: 0 in cache._states[blob].present)
    await harness.storage.delete(chunk_key(blob, 0))
    before = upstream.bytes_served
    assert (
        await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch)) == CONTENT[:CHUNK]
    )
    assert upstream.bytes_served - before == CHUNK


async def test_eviction_removes_least_recently_used_whole_blobs(harness: Harness) -> None:
    cache = await harness.open(max_bytes=CHUNK * 3)
    blobs = []
    for number in range(3):
        content = bytes([number]) * (CHUNK * 2)
        blob = sha256_blob(content)
        blobs.append(blob)
        await collect(
            cache.read(blob, len(content), 0, len(content), ScriptedUpstream(content).fetch)
        )
        await harness.settle(
            lambda blob=blob: cache._states.get(blob) is not None and cache._states[blob].verified
        )
        await asyncio.sleep(0.01)
    await harness.settle(lambda: cache.stored_bytes <= CHUNK * 3)
    assert harness.stored_chunks(blobs[0]) == []
    assert len(harness.stored_chunks(blobs[2])) == 2


async def test_truncated_chunk_in_storage_is_never_served_whole(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch))
    await harness.settle(lambda: 0 in cache._states[blob].present)
    chunk_file = harness.stored_chunks(blob)[0]
    chunk_file.write_bytes(chunk_file.read_bytes()[:1000])  # as after a power loss
    with pytest.raises(IntegrityError):
        await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch))
    assert 0 not in cache._states[blob].present
    assert (
        await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch)) == CONTENT[:CHUNK]
    )


async def test_full_disk_fails_the_read_and_leaves_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = await harness.open()

    def disk_full(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("hubproxy.cache.staging.write_all", disk_full)
    blob = sha256_blob(CONTENT)
    with pytest.raises(InsufficientStorage):
        await collect(cache.read(blob, len(CONTENT), 0, 100, ScriptedUpstream(CONTENT).fetch))
    await harness.settle(lambda: not cache._states[blob].fills)
    assert harness.stored_chunks(blob) == []
    assert list((harness.root / "staging").iterdir()) == []


async def test_a_lookup_racing_a_first_read_does_not_lose_the_blob(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    # A HEAD (lookup only) and a GET of a never-seen blob arrive together.
    status, data = await asyncio.gather(
        cache.cached_fraction(blob, 0, 10),
        collect(cache.read(blob, len(CONTENT), 0, 10, upstream.fetch)),
    )
    assert status == "miss"
    assert data == CONTENT[:10]
