"""Blob caches of two processes on one metadata store (each with its own database connection
and its own storage handle): `cache_max_bytes` holds for both together, a blob another process
is filling is not evicted, and a blob both see complete is hashed by one of them."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from hubproxy.blob_ids import BlobId
from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.leases import Leases
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.storage import LocalBackend, Storage
from hubproxy.db import Database
from tests.cache.harness import CHUNK, ScriptedUpstream, collect, sha256_blob

LIMIT = CHUNK * 5


class CountingStorage(Storage):
    """Local storage that counts the objects read through it."""

    reads = 0

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        CountingStorage.reads += 1
        async for piece in super().read(key, start, end):
            yield piece


async def open_process(root: Path, name: str) -> tuple[BlobCache, Database]:
    database = Database(root / "db.sqlite3")
    await database.open()
    metadata = CacheMetadata(database)
    await metadata.open()
    cache = BlobCache(
        CountingStorage(LocalBackend(root / "storage")), metadata, root / "staging" / name,
        chunk_size=CHUNK, read_ahead_chunks=1, parallel_chunk_fetches=3, max_bytes=LIMIT,
        retry_delays=(0.01,),
    )  # fmt: skip
    await cache.start(sole=False, reverify=name == "a")
    return cache, database


def stored_chunks(root: Path, blob: BlobId) -> int:
    digest = blob.digest
    directory = root / "storage" / "chunks" / blob.algorithm / digest[:2] / digest[2:4] / digest
    return len(list(directory.iterdir())) if directory.exists() else 0


async def test_two_processes_stay_under_one_limit_together(tmp_path: Path) -> None:
    first, first_database = await open_process(tmp_path, "a")
    second, second_database = await open_process(tmp_path, "b")
    try:
        contents = [bytes([number]) * (CHUNK * 2) for number in range(4)]
        blobs = [sha256_blob(content) for content in contents]
        # The oldest blob is being filled by a third process (it holds a fill lease of it).
        filler = Leases(first_database)
        assert await filler.acquire(f"fill:{blobs[0]}:9") is not None
        for number, content in enumerate(contents):
            cache = (first, second)[number % 2]  # each process stores 4 chunks: under alone
            await collect(
                cache.read(
                    blobs[number], len(content), 0, len(content), ScriptedUpstream(content).fetch
                )
            )
            await asyncio.sleep(0.01)  # distinct last-use times

        async def total() -> int:
            return await first.metadata.stored_bytes()

        deadline = asyncio.get_running_loop().time() + 10
        while await total() > LIMIT:  # the last commits' check runs within a second
            assert asyncio.get_running_loop().time() < deadline, "over the limit"
            await asyncio.sleep(0.05)
        # 8 chunks stored, room for 5: the least recently used blob nobody fills went,
        # and the one being filled elsewhere stayed.
        assert stored_chunks(tmp_path, blobs[0]) == 2
        assert stored_chunks(tmp_path, blobs[1]) == 0
        assert (
            await total()
            == CHUNK * 4
            == sum(stored_chunks(tmp_path, blob) * CHUNK for blob in blobs)
        )
    finally:
        await first.aclose()
        await second.aclose()
        await first_database.aclose()
        await second_database.aclose()


async def test_a_blob_both_processes_see_complete_is_hashed_once(tmp_path: Path) -> None:
    first, first_database = await open_process(tmp_path, "a")
    second, second_database = await open_process(tmp_path, "b")
    try:
        content = bytes(range(256)) * (CHUNK * 3 // 256)  # three chunks
        blob = sha256_blob(content)
        # Not from byte 0: no whole read hashes it as it streams; the last fill verifies it.
        fetch = ScriptedUpstream(content).fetch
        assert await collect(first.read(blob, len(content), 1, len(content), fetch)) == content[1:]
        deadline = asyncio.get_running_loop().time() + 10
        while not await first.metadata.is_verified(str(blob)):
            assert asyncio.get_running_loop().time() < deadline, "never verified"
            await asyncio.sleep(0.01)
        # As if a crash had left it unverified, with both processes about to check it.
        await first_database.run(
            lambda connection: connection.execute("UPDATE blobs SET verified = 0")
        )
        states = []
        for cache in (first, second):
            cache.states.drop(blob)
            state = await cache.states.get(blob, None)
            assert state is not None
            assert state.complete()
            assert not state.verified
            states.append(state)
        reads_before = CountingStorage.reads
        await asyncio.gather(first.verifier.verify(states[0]), second.verifier.verify(states[1]))
        assert CountingStorage.reads - reads_before == 3  # each chunk read once: one hash
        assert states[0].verified
        assert states[1].verified
        assert await second.metadata.is_verified(str(blob))
    finally:
        await first.aclose()
        await second.aclose()
        await first_database.aclose()
        await second_database.aclose()
