"""The local tier in front of a remote backend: read-through copies, checked before use,
bounded, kept across restarts, never the truth (`cache/storage/local_tier.py`).

The remote here is the memory backend with a count of its reads; the S3 remote is in the
conformance suite (`conftest.py`) and the proxy tests.
"""

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hubproxy.cache.storage import (
    LocalTier,
    MemoryBackend,
    ObjectInfo,
    ObjectNotFound,
    Storage,
)
from hubproxy.cache.storage.local_tier import (
    DIGEST_SEPARATOR,
    etag_tag,
    retire_worker_directories,
)
from hubproxy.metrics import REGISTRY
from hubproxy.settings import SettingsError, load_settings

KEY = "chunks/sha256/ab/cd/abcd/00000000"


def key(index: int) -> str:
    return f"chunks/sha256/ab/cd/abcd/{index:08d}"


def content(index: int, size: int = 1000) -> bytes:
    return bytes((index * 7 + position) % 251 for position in range(size))


class CountingRemote(MemoryBackend):
    """The memory backend, counting the reads that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        self.reads += 1
        async for piece in super().read(key, start, end):
            yield piece


def copies(directory: Path) -> dict[str, bytes]:
    """The tier's copies on disk: key -> bytes."""
    return {
        path.relative_to(directory).as_posix().partition(DIGEST_SEPARATOR)[0]: path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }


def dropped(reason: str) -> float:
    value = REGISTRY.get_sample_value("hubproxy_local_tier_dropped_total", {"reason": reason})
    return value or 0.0


async def read_whole(storage: Storage, key: str, size: int) -> bytes:
    return b"".join([piece async for piece in storage.read(key, 0, size)])


async def test_a_read_fills_the_tier_and_the_next_one_is_local(tmp_path: Path) -> None:
    remote = CountingRemote()
    remote.objects[KEY] = content(1)
    storage = Storage(LocalTier(remote, tmp_path, 10_000))
    assert await read_whole(storage, KEY, 1000) == content(1)
    assert remote.reads == 1
    assert copies(tmp_path) == {KEY: content(1)}
    assert await read_whole(storage, KEY, 1000) == content(1)
    assert b"".join([piece async for piece in storage.read(KEY, 10, 20)]) == content(1)[10:20]
    segment = await storage.open_file(KEY, 100, 300)
    try:
        assert (segment.offset, segment.count, segment.size) == (100, 200, 1000)
        assert os.pread(segment.file.fileno(), 200, 100) == content(1)[100:300]
    finally:
        segment.close()
    assert remote.reads == 1
    await storage.aclose()


async def test_a_part_read_first_does_not_fill_a_partial_copy(tmp_path: Path) -> None:
    remote = CountingRemote()
    remote.objects[KEY] = content(2)
    storage = Storage(LocalTier(remote, tmp_path, 10_000))
    assert b"".join([piece async for piece in storage.read(KEY, 500, 600)]) == content(2)[500:600]
    assert copies(tmp_path) == {}
    # A read of the start copies the whole object, though only its start is returned.
    assert b"".join([piece async for piece in storage.read(KEY, 0, 10)]) == content(2)[:10]
    assert copies(tmp_path) == {KEY: content(2)}
    await storage.aclose()


async def test_concurrent_file_opens_copy_once(tmp_path: Path) -> None:
    remote = CountingRemote()
    remote.objects[KEY] = content(3)
    storage = Storage(LocalTier(remote, tmp_path, 10_000))
    segments = await asyncio.gather(*(storage.open_file(KEY, 0, 1000) for _ in range(5)))
    for segment in segments:
        assert os.pread(segment.file.fileno(), 1000, 0) == content(3)
        segment.close()
    assert remote.reads == 1
    await storage.aclose()


@pytest.mark.parametrize("damage", ["flipped", "truncated", "deleted"])
async def test_a_damaged_copy_is_never_served_and_is_replaced(tmp_path: Path, damage: str) -> None:
    remote = CountingRemote()
    remote.objects[KEY] = content(4)
    storage = Storage(LocalTier(remote, tmp_path, 10_000))
    assert await read_whole(storage, KEY, 1000) == content(4)
    [path] = [path for path in tmp_path.rglob("*") if path.is_file()]
    if damage == "flipped":
        with open(path, "r+b") as file:
            file.seek(500)
            file.write(b"\xff")
    elif damage == "truncated":
        os.truncate(path, 999)
    else:
        path.unlink()
    before = dropped("damaged")
    segment = await storage.open_file(KEY, 0, 1000)
    try:
        assert os.pread(segment.file.fileno(), 1000, 0) == content(4)
    finally:
        segment.close()
    assert dropped("damaged") == before + 1
    assert remote.reads == 2
    assert copies(tmp_path) == {KEY: content(4)}
    await storage.aclose()


async def test_a_copy_never_outlives_or_stands_in_for_its_remote_object(tmp_path: Path) -> None:
    remote = CountingRemote()
    remote.objects[KEY] = content(9)
    storage = Storage(LocalTier(remote, tmp_path, 10_000))
    assert await read_whole(storage, KEY, 1000) == content(9)
    # Stored again with other bytes behind this tier's back (another replica, after a failed
    # verification): the copy is stale.
    remote.objects[KEY] = content(10)
    before = dropped("stale")
    segment = await storage.open_file(KEY, 0, 1000)
    try:
        assert os.pread(segment.file.fileno(), 1000, 0) == content(10)
    finally:
        segment.close()
    assert dropped("stale") == before + 1
    assert copies(tmp_path) == {KEY: content(10)}
    # Deleted behind its back: gone for this tier's readers too, copy and all.
    del remote.objects[KEY]
    with pytest.raises(ObjectNotFound):
        await storage.open_file(KEY, 0, 1000)
    with pytest.raises(ObjectNotFound):
        await read_whole(storage, KEY, 1000)
    assert copies(tmp_path) == {}
    await storage.aclose()


async def test_the_tier_stays_under_its_bound_dropping_the_least_recently_used(
    tmp_path: Path,
) -> None:
    remote = CountingRemote()
    for index in range(6):
        remote.objects[key(index)] = content(index)
    tier = LocalTier(remote, tmp_path, 3000)
    storage = Storage(tier)
    for index in range(3):
        await read_whole(storage, key(index), 1000)
    await read_whole(storage, key(0), 1000)  # used again: key 1 is now the oldest
    for index in range(3, 5):
        await read_whole(storage, key(index), 1000)
    assert set(copies(tmp_path)) == {key(0), key(3), key(4)}
    assert tier.stored_bytes == 3000
    assert remote.objects.keys() >= {key(index) for index in range(6)}  # S3 keeps everything
    await storage.aclose()


async def test_a_restart_keeps_the_copies_and_their_order_and_checks_them(
    tmp_path: Path,
) -> None:
    remote = CountingRemote()
    for index in range(4):
        remote.objects[key(index)] = content(index)
    first = Storage(LocalTier(remote, tmp_path, 3000))
    for index in (0, 1, 2):
        await read_whole(first, key(index), 1000)
    await read_whole(first, key(0), 1000)
    await first.aclose()
    (tmp_path / "chunks/sha256/ab/cd/abcd/.00000009.tmp-0011223344556677").write_bytes(b"x")
    [path_of_2] = list(tmp_path.rglob(f"00000002{DIGEST_SEPARATOR}*"))
    with open(path_of_2, "r+b") as file:  # damaged while the server was down
        file.write(b"\x00\x00")

    remote.reads = 0
    tier = LocalTier(remote, tmp_path, 3000)
    second = Storage(tier)
    assert await read_whole(second, key(0), 1000) == content(0)
    assert remote.reads == 0
    assert await read_whole(second, key(2), 1000) == content(2)  # checked: read from S3
    assert remote.reads == 1
    await read_whole(second, key(3), 1000)  # beyond the bound: key 1 was the least recent
    assert set(copies(tmp_path)) == {key(0), key(2), key(3)}
    assert tier.stored_bytes == 3000
    await second.aclose()


async def test_writes_go_to_the_remote_first_and_deletes_reach_both(tmp_path: Path) -> None:
    remote = CountingRemote()
    storage = Storage(LocalTier(remote, tmp_path / "tier", 10_000))
    staged = tmp_path / "staging-file"
    staged.write_bytes(content(5))
    info = await storage.import_file(KEY, staged)
    assert info.size == 1000
    assert not staged.exists()
    assert remote.objects[KEY] == content(5)
    assert copies(tmp_path / "tier") == {KEY: content(5)}
    assert await read_whole(storage, KEY, 1000) == content(5)
    assert remote.reads == 0
    # Bytes replaced through a writer: the old copy must go.
    await storage.put_bytes(KEY, content(6))
    assert copies(tmp_path / "tier") == {}
    assert await read_whole(storage, KEY, 1000) == content(6)
    await storage.delete(KEY)
    assert KEY not in remote.objects
    assert copies(tmp_path / "tier") == {}
    with pytest.raises(ObjectNotFound):
        await read_whole(storage, KEY, 1000)
    await storage.aclose()


class GatedRemote(CountingRemote):
    """Imports of every key but `KEY` wait for `gate`."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def import_file(self, key: str, path: Path) -> ObjectInfo:
        if key != KEY:
            self.waiting += 1
            await self.gate.wait()
        return await super().import_file(key, path)


async def test_imports_in_flight_when_the_tier_loads_all_become_copies(tmp_path: Path) -> None:
    remote = GatedRemote()
    storage = Storage(LocalTier(remote, tmp_path / "tier", 10_000))
    staged = []
    for index in range(4):
        staged.append(tmp_path / f"staged-{index}")
        staged[index].write_bytes(content(index))
    others = [
        asyncio.ensure_future(storage.import_file(key(index), staged[index]))
        for index in range(1, 4)
    ]
    while remote.waiting < 3:  # each has its temp file in the tier now
        await asyncio.sleep(0.001)
    await storage.import_file(KEY, staged[0])
    remote.gate.set()
    await asyncio.gather(*others)
    assert copies(tmp_path / "tier") == {key(index): content(index) for index in range(4)}
    await storage.aclose()


async def test_objects_larger_than_the_bound_get_no_copy(tmp_path: Path) -> None:
    remote = CountingRemote()
    remote.objects[KEY] = content(7, 5000)
    storage = Storage(LocalTier(remote, tmp_path, 4000))
    assert await read_whole(storage, KEY, 5000) == content(7, 5000)
    assert copies(tmp_path) == {}
    await storage.aclose()


def test_the_copy_names_carry_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    async def fill() -> None:
        remote = CountingRemote()
        remote.objects[KEY] = content(8)
        storage = Storage(LocalTier(remote, tmp_path, 10_000))
        await read_whole(storage, KEY, 1000)
        await storage.aclose()

    asyncio.run(fill())
    [path] = [path for path in tmp_path.rglob("*") if path.is_file()]
    digest = hashlib.sha256(content(8)).hexdigest()
    tag = etag_tag(hashlib.md5(content(8), usedforsecurity=False).hexdigest())  # memory's ETag
    assert path.name == f"00000000{DIGEST_SEPARATOR}{digest}{DIGEST_SEPARATOR}{tag}"


def test_local_cache_dir_needs_s3_storage(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="local_cache_dir: needs storage s3"):
        load_settings({"local_cache_dir": str(tmp_path)}, environ={})
    with pytest.raises(SettingsError, match="local_cache_max_bytes: must be positive"):
        load_settings({"storage": "s3", "s3_bucket": "b", "local_cache_max_bytes": "0"}, environ={})
    settings = load_settings(
        {"storage": "s3", "s3_bucket": "b", "local_cache_dir": str(tmp_path)}, environ={}
    )
    assert settings.local_cache_dir == tmp_path
    assert settings.local_cache_max_bytes == 10 * 1024**3


def test_tiers_of_workers_no_longer_run_are_removed(tmp_path: Path) -> None:
    for name in ("worker-0", "worker-1", "worker-3", "notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_bytes(b"x")
    retire_worker_directories(tmp_path, 2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes", "worker-0", "worker-1"]
    assert (tmp_path / "worker-1" / "file").exists()
