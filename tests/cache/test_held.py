"""Held content (the private hub's blobs) in the chunk store, and where a blob's bytes came from.

A blob the private hub stored is served to the hub as it is, but a proxied entry that names it
gets upstream's bytes: only a whole read whose bytes hash to the blob's name makes the stored
copy servable through proxied entries.
"""

import pytest

from hubproxy.cache.held import HeldContent
from hubproxy.errors import OfflineMiss
from tests.cache.harness import CHUNK, Harness, ScriptedUpstream, collect, sha256_blob, state_of

SECRET = bytes(range(256)) * (CHUNK * 2 // 256) + b"secret"  # two chunks and a bit


async def test_held_content_is_read_back_and_held(harness: Harness) -> None:
    cache = await harness.open()
    held = HeldContent(cache)
    blob = sha256_blob(SECRET)
    await held.store_bytes(str(blob), SECRET)
    assert await held.holds(str(blob), len(SECRET))
    assert not await held.holds(str(blob), len(SECRET) + 1)
    assert await collect(held.read(str(blob), len(SECRET), 0, len(SECRET))) == SECRET
    record = await harness.metadata.get_blob(str(blob))
    assert record is not None
    assert record.verified
    assert not record.from_upstream


async def test_a_proxied_entry_naming_held_content_gets_upstreams_bytes(harness: Harness) -> None:
    cache = await harness.open()
    blob = sha256_blob(SECRET)
    await HeldContent(cache).store_bytes(str(blob), SECRET)
    liar = ScriptedUpstream(bytes(len(SECRET)))  # names the hash, has other bytes
    assert await cache.cached_fraction(blob, 0, len(SECRET)) == "miss"
    got = await collect(cache.read(blob, len(SECRET), 0, len(SECRET), liar.fetch))
    assert got == bytes(len(SECRET))
    assert liar.bytes_served == len(SECRET)
    assert not state_of(cache, blob).from_upstream  # the lie proved nothing
    with pytest.raises(OfflineMiss):
        await collect(cache.read(blob, len(SECRET), 0, 10, None))
    # The hub's own bytes are untouched.
    assert await collect(HeldContent(cache).read(str(blob), len(SECRET), 0, 10)) == SECRET[:10]


async def test_a_whole_upstream_read_of_the_same_bytes_makes_them_cached(harness: Harness) -> None:
    cache = await harness.open()
    blob = sha256_blob(SECRET)
    await HeldContent(cache).store_bytes(str(blob), SECRET)
    upstream = ScriptedUpstream(SECRET)
    assert await collect(cache.read(blob, len(SECRET), 5, 50, upstream.fetch)) == SECRET[5:50]
    assert not state_of(cache, blob).from_upstream  # a range proves nothing
    assert await collect(cache.read(blob, len(SECRET), 0, len(SECRET), upstream.fetch)) == SECRET
    assert state_of(cache, blob).from_upstream
    served = upstream.bytes_served
    assert await collect(cache.read(blob, len(SECRET), 0, len(SECRET), upstream.fetch)) == SECRET
    assert upstream.bytes_served == served  # a cache hit now
    assert await cache.cached_fraction(blob, 0, len(SECRET)) == "hit"
    record = await harness.metadata.get_blob(str(blob))
    assert record is not None
    assert record.from_upstream


async def test_content_cached_from_upstream_stays_upstreams_once_held(harness: Harness) -> None:
    cache = await harness.open()
    blob = sha256_blob(SECRET)
    upstream = ScriptedUpstream(SECRET)
    assert await collect(cache.read(blob, len(SECRET), 0, len(SECRET), upstream.fetch)) == SECRET
    await harness.settle(lambda: state_of(cache, blob).verified)
    await HeldContent(cache).store_bytes(str(blob), SECRET)  # every chunk was already there
    assert state_of(cache, blob).from_upstream
    served = upstream.bytes_served
    assert await collect(cache.read(blob, len(SECRET), 0, len(SECRET), upstream.fetch)) == SECRET
    assert upstream.bytes_served == served
