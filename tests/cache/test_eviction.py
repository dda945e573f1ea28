"""Eviction: least recently used whole blobs go when stored bytes pass the limit."""

import asyncio

from tests.cache.harness import CHUNK, Harness, ScriptedUpstream, collect, is_verified, sha256_blob


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
        await harness.settle(lambda blob=blob: is_verified(cache, blob))
        await asyncio.sleep(0.01)
    await harness.settle(lambda: cache.stored_bytes <= CHUNK * 3)
    assert harness.stored_chunks(blobs[0]) == []
    assert len(harness.stored_chunks(blobs[2])) == 2
