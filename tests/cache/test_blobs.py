"""BlobCache against a scripted upstream: single-flight fills, verification, faults, restarts.

These run the real cache over real storage and a real SQLite database (`harness.py`).
"""

import asyncio
import errno
import hashlib
import os
from pathlib import Path

import pytest

from hubproxy.cache import staging
from hubproxy.cache.layout import chunk_key
from hubproxy.errors import InsufficientStorage, IntegrityError, OfflineMiss, UpstreamTruncated
from hubproxy.metrics import REGISTRY
from tests.cache.harness import (
    CHUNK,
    Harness,
    ScriptedUpstream,
    collect,
    git_blob,
    sha256_blob,
    state_of,
)

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
    await harness.settle(lambda: state_of(cache, blob).verified)
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
    await harness.settle(lambda: not state_of(cache, blob).fills)
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
    await harness.settle(lambda: 0 in state_of(cache, blob).present)
    stored = harness.stored_chunks(blob)[0].read_bytes()
    assert stored == CONTENT[:CHUNK]


async def test_failing_upstream_never_commits_a_chunk(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT, fail_always=True)
    blob = sha256_blob(CONTENT)
    with pytest.raises(UpstreamTruncated):
        await collect(cache.read(blob, len(CONTENT), 0, 10, upstream.fetch))
    await harness.settle(lambda: not state_of(cache, blob).fills)
    assert harness.stored_chunks(blob) == []
    assert not any((harness.root / "staging").iterdir())
    assert state_of(cache, blob).present == {}


async def test_content_not_matching_its_hash_is_deleted(harness: Harness) -> None:
    cache = await harness.open()
    wrong = CONTENT[:-1] + b"X"
    upstream = ScriptedUpstream(wrong)
    blob = sha256_blob(CONTENT)  # named for the real content, served something else
    # The whole read breaks before its last piece: the reader never gets the file whole.
    received = bytearray()

    async def read_all() -> None:
        async for piece in cache.read(blob, len(CONTENT), 0, len(CONTENT), upstream.fetch):
            received.extend(piece)

    with pytest.raises(IntegrityError):
        await read_all()
    assert len(received) < len(CONTENT)
    assert cache.refuses_resume(blob)
    await harness.settle(lambda: cache.states.known(blob) is None)
    assert harness.stored_chunks(blob) == []
    assert await harness.metadata.get_blob(str(blob)) is None


async def test_a_cold_whole_read_verifies_the_blob_without_reading_it_back(
    harness: Harness,
) -> None:
    cache = await harness.open()
    reread: list[object] = []

    async def verify(state: object) -> None:
        reread.append(state)

    cache.verifier.verify = verify  # type: ignore[method-assign]
    blob = sha256_blob(CONTENT)
    data = await collect(
        cache.read(blob, len(CONTENT), 0, len(CONTENT), ScriptedUpstream(CONTENT).fetch)
    )
    assert data == CONTENT
    # Verified by the read's own hash, before its last piece went out.
    assert state_of(cache, blob).verified
    assert await harness.metadata.get_blob(str(blob)) is not None
    await asyncio.sleep(0.05)
    assert reread == []


async def test_git_sha1_blobs_verify(harness: Harness) -> None:
    cache = await harness.open()
    content = b'{"model_type": "bert"}\n'
    blob = git_blob(content)
    data = await collect(
        cache.read(blob, len(content), 0, len(content), ScriptedUpstream(content).fetch)
    )
    assert data == content
    await harness.settle(lambda: state_of(cache, blob).verified)


async def test_full_read_keeps_filling_after_the_client_leaves(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    reader = cache.read(blob, len(CONTENT), 0, len(CONTENT), upstream.fetch)
    first = await anext(reader)
    assert first == CONTENT[: len(first)]
    await reader.aclose()  # type: ignore[attr-defined]
    await harness.settle(lambda: state_of(cache, blob).verified)
    assert len(harness.stored_chunks(blob)) == 6
    assert upstream.bytes_served == len(CONTENT)


async def test_offline_serves_cached_and_refuses_missing(harness: Harness) -> None:
    cache = await harness.open()
    blob = sha256_blob(CONTENT)
    await collect(cache.read(blob, len(CONTENT), 0, CHUNK, ScriptedUpstream(CONTENT).fetch))
    await harness.settle(lambda: 0 in state_of(cache, blob).present)
    assert await collect(cache.read(blob, len(CONTENT), 10, 20, None)) == CONTENT[10:20]
    with pytest.raises(OfflineMiss):
        await collect(cache.read(blob, len(CONTENT), CHUNK * 3, CHUNK * 3 + 5, None))


async def test_restart_serves_from_storage(tmp_path: Path) -> None:
    blob = sha256_blob(CONTENT)
    first = Harness(tmp_path)
    cache = await first.open()
    await collect(cache.read(blob, len(CONTENT), 0, len(CONTENT), ScriptedUpstream(CONTENT).fetch))
    await first.settle(lambda: state_of(cache, blob).verified)
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
    await harness.settle(lambda: 0 in state_of(cache, blob).present)
    await harness.storage.delete(chunk_key(blob, 0))
    before = upstream.bytes_served
    assert (
        await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch)) == CONTENT[:CHUNK]
    )
    assert upstream.bytes_served - before == CHUNK


async def test_truncated_chunk_in_storage_is_never_served_whole(harness: Harness) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch))
    await harness.settle(lambda: 0 in state_of(cache, blob).present)
    chunk_file = harness.stored_chunks(blob)[0]
    chunk_file.write_bytes(chunk_file.read_bytes()[:1000])  # as after a power loss
    with pytest.raises(IntegrityError):
        await collect(cache.read(blob, len(CONTENT), 0, CHUNK, upstream.fetch))
    assert 0 not in state_of(cache, blob).present
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
    await harness.settle(lambda: not state_of(cache, blob).fills)
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


def test_staging_writes_take_every_piece_whatever_pwritev_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pieces = [bytes([index % 251]) * (index % 7 + 1) for index in range(3000)]  # > IOV_MAX
    real_pwritev = os.pwritev

    def short_pwritev(descriptor: int, buffers: list[memoryview], offset: int) -> int:
        return real_pwritev(descriptor, buffers[:3], offset)  # a partial write every time

    monkeypatch.setattr(os, "pwritev", short_pwritev)
    path = tmp_path / "staging"
    path.write_bytes(b"")
    descriptor = os.open(path, os.O_WRONLY)
    try:
        assert staging.write_all(descriptor, pieces, 5) == sum(map(len, pieces))
    finally:
        os.close(descriptor)
    assert path.read_bytes() == b"\0" * 5 + b"".join(pieces)


def chunk_reads() -> float:
    return sum(
        REGISTRY.get_sample_value("hubproxy_chunk_reads_total", {"result": result}) or 0.0
        for result in ("hit", "miss", "joined")
    )


async def test_a_read_that_finds_its_fill_committing_counts_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = await harness.open()
    upstream = ScriptedUpstream(CONTENT)
    blob = sha256_blob(CONTENT)
    late_reads: list[asyncio.Task[bytes]] = []
    real_import = cache.storage.import_file

    async def import_then_read(key: str, path: Path) -> object:
        info = await real_import(key, path)
        if not late_reads:
            # The staging file is gone, the chunk not yet recorded: a reader arriving now
            # follows the fill, finds no file, and reads storage once the fill is done.
            late_reads.append(
                asyncio.ensure_future(collect(cache.read(blob, len(CONTENT), 0, 100, None)))
            )
            for _ in range(5):
                await asyncio.sleep(0)
        return info

    monkeypatch.setattr(cache.storage, "import_file", import_then_read)
    before = chunk_reads()
    whole = await collect(cache.read(blob, len(CONTENT), 0, len(CONTENT), upstream.fetch))
    assert whole == CONTENT
    assert await late_reads[0] == CONTENT[:100]
    assert chunk_reads() - before == 6 + 1  # every chunk once, and the late read once
