"""Fill leases in the metadata store (`cache/leases.py`): two processes sharing a data dir —
here two blob caches, each with its own database connection and staging area — fetch each
chunk from upstream once, and a fenced-off owner can never record its work."""

import asyncio
import time
from pathlib import Path

import pytest

from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.leases import LeaseLost, Leases
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.storage import LocalBackend, Storage
from hubproxy.db import Database
from hubproxy.errors import DatabaseUnavailable
from hubproxy.metrics import REGISTRY
from tests.cache.harness import CHUNK, ScriptedUpstream, collect, sha256_blob

CONTENT = bytes(range(256)) * (CHUNK * 5 // 256 + 100)  # six chunks, the last one short


async def open_worker(root: Path, name: str) -> tuple[BlobCache, Database]:
    database = Database(root / "db.sqlite3")
    await database.open()
    metadata = CacheMetadata(database)
    await metadata.open()
    cache = BlobCache(
        Storage(LocalBackend(root / "storage")), metadata, root / "staging" / name,
        chunk_size=CHUNK, read_ahead_chunks=1, parallel_chunk_fetches=3, max_bytes=None,
        retry_delays=(0.01,),
    )  # fmt: skip
    await cache.start(sole=name == "a", reverify=name == "a")
    return cache, database


async def test_readers_in_two_processes_fetch_each_chunk_once(tmp_path: Path) -> None:
    first, first_database = await open_worker(tmp_path, "a")
    second, second_database = await open_worker(tmp_path, "b")
    try:
        upstream = ScriptedUpstream(CONTENT)
        upstream.gate = asyncio.Event()
        blob = sha256_blob(CONTENT)
        reads = [
            asyncio.ensure_future(
                collect(cache.read(blob, len(CONTENT), 0, len(CONTENT), upstream.fetch))
            )
            for cache in (first, second, first, second)
        ]
        await asyncio.sleep(0.2)  # every reader is waiting: on its own fill or on a lease
        upstream.gate.set()
        results = await asyncio.gather(*reads)
        assert all(result == CONTENT for result in results)
        assert upstream.bytes_served == len(CONTENT)
        assert len(upstream.requests) == 6
        assert sorted(upstream.requests) == sorted(set(upstream.requests))
        # A range read in either process is warm now: nothing more from upstream.
        assert (
            await collect(second.read(blob, len(CONTENT), 100, 200_000, upstream.fetch))
            == (CONTENT[100:200_000])
        )
        assert upstream.bytes_served == len(CONTENT)
        # No lease is left behind.
        rows = await first_database.run(
            lambda connection: connection.execute("SELECT COUNT(*) FROM leases").fetchone()[0]
        )
        assert rows == 0
    finally:
        await first.aclose()
        await second.aclose()
        await first_database.aclose()
        await second_database.aclose()


async def test_an_expired_lease_is_taken_over_and_its_old_owner_fenced_off(
    tmp_path: Path,
) -> None:
    database = Database(tmp_path / "db.sqlite3")
    await database.open()
    metadata = CacheMetadata(database)
    await metadata.open()
    try:
        stalled, other = Leases(database, seconds=0.2), Leases(database, seconds=30)
        old = await stalled.acquire("fill:x:0")
        assert old is not None
        assert old.token == 1
        assert await other.acquire("fill:x:0") is None  # held
        assert await other.held_elsewhere("fill:x:0")
        time.sleep(0.25)
        new = await other.acquire("fill:x:0")
        assert new is not None
        assert new.token == 2
        assert not await stalled.renew(old)
        blob = sha256_blob(b"x")
        await metadata.create_blob(str(blob), 1, CHUNK)
        with pytest.raises(LeaseLost):
            await metadata.add_chunk(str(blob), 0, 1, fence=old)
        assert await metadata.stored_chunk(str(blob), 0) is None
        await metadata.add_chunk(str(blob), 0, 1, fence=new)
        assert await metadata.stored_chunk(str(blob), 0) == 1
        await stalled.release(old)  # not its lease any more: nothing happens
        assert await stalled.held_elsewhere("fill:x:0")
        await other.release(new)
        assert not await stalled.held_elsewhere("fill:x:0")
    finally:
        await database.aclose()


async def test_usage_metrics_outlive_a_database_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache, database = await open_worker(tmp_path, "a")
    answers: list[object] = [DatabaseUnavailable(), (7, 5)]

    async def usage() -> tuple[int, int]:
        answer = answers.pop(0) if answers else (7, 5)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, tuple)
        return answer

    monkeypatch.setattr(cache.metadata, "usage", usage)
    refreshing = asyncio.ensure_future(cache.refresh_usage_metrics(interval=0.01))
    try:
        deadline = time.monotonic() + 10
        while REGISTRY.get_sample_value("hubproxy_cache_blobs") != 7:  # went on after it
            assert time.monotonic() < deadline
            assert not refreshing.done()
            await asyncio.sleep(0.01)
        assert "the database is unavailable" in caplog.text
    finally:
        refreshing.cancel()
        await cache.aclose()
        await database.aclose()
