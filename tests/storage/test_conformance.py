"""The storage contract (cache/storage/base.py), checked against every backend."""

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from hubproxy.cache.storage import InvalidKey, ObjectNotFound, Storage

KEY = "chunks/sha256/ab/cd/abcd/00000000"


async def read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([bytes(piece) async for piece in storage.read(key, start, end)])


async def test_absent_keys(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.stat(KEY)
    with pytest.raises(ObjectNotFound):
        await read_all(storage, KEY)
    await storage.delete(KEY)  # deleting what is not there is fine


async def test_round_trip_and_stat(storage: Storage) -> None:
    info = await storage.put_bytes(KEY, b"hello world")
    assert (info.key, info.size) == (KEY, 11)
    assert (await storage.stat(KEY)).size == 11
    assert await storage.get_bytes(KEY) == b"hello world"
    await storage.delete(KEY)
    with pytest.raises(ObjectNotFound):
        await storage.stat(KEY)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, b"0123456789"),
        (3, 7, b"3456"),
        (0, 1, b"0"),
        (9, None, b"9"),
        (5, 5, b""),
        (8, 100, b"89"),
        (10, None, b""),
    ],
)
async def test_ranges(storage: Storage, start: int, end: int | None, expected: bytes) -> None:
    await storage.put_bytes(KEY, b"0123456789")
    try:
        assert await read_all(storage, KEY, start, end) == expected
    finally:
        await storage.delete(KEY)


async def test_invalid_ranges_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError, match="range"):
        await read_all(storage, KEY, 5, 2)
    with pytest.raises(ValueError, match="range"):
        await read_all(storage, KEY, -1)


async def test_writer_is_invisible_until_commit(storage: Storage) -> None:
    writer = await storage.open_writer(KEY)
    await writer.write(b"part one, ")
    await writer.write(memoryview(b"part two"))
    with pytest.raises(ObjectNotFound):
        await storage.stat(KEY)
    assert [key async for key in storage.list("chunks/")] == []
    await writer.commit()
    assert await storage.get_bytes(KEY) == b"part one, part two"
    await storage.delete(KEY)


async def test_abort_leaves_nothing(storage: Storage, tmp_path: Path) -> None:
    writer = await storage.open_writer(KEY)
    await writer.write(b"x" * 1000)
    await writer.abort()
    await writer.abort()  # twice is fine
    with pytest.raises(ObjectNotFound):
        await storage.stat(KEY)
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


async def test_commit_replaces_atomically(storage: Storage) -> None:
    await storage.put_bytes(KEY, b"old content")
    writer = await storage.open_writer(KEY)
    await writer.write(b"new content!")
    assert await storage.get_bytes(KEY) == b"old content"
    await writer.commit()
    assert await storage.get_bytes(KEY) == b"new content!"
    await storage.delete(KEY)


async def test_concurrent_writers_of_one_key(storage: Storage) -> None:
    contents = [bytes([number]) * 300_000 for number in range(4)]

    async def write(content: bytes) -> None:
        writer = await storage.open_writer(KEY)
        for offset in range(0, len(content), 70_000):
            await writer.write(content[offset : offset + 70_000])
            await asyncio.sleep(0)
        await writer.commit()

    await asyncio.gather(*(write(content) for content in contents))
    assert await storage.get_bytes(KEY) in contents
    await storage.delete(KEY)


async def test_list_by_prefix(storage: Storage) -> None:
    keys = [
        "chunks/sha256/ab/cd/x/00000000",
        "chunks/sha256/ab/cd/x/00000001",
        "chunks/gitsha1/ab/cd/y/00000000",
        "meta/doc",
    ]
    for key in keys:
        await storage.put_bytes(key, key.encode())
    try:
        assert sorted([key async for key in storage.list("chunks/sha256/")]) == keys[:2]
        assert sorted([key async for key in storage.list("chunks/")]) == sorted(keys[:3])
        assert sorted([key async for key in storage.list("")]) == sorted(keys)
        assert [key async for key in storage.list("nothing/")] == []
    finally:
        for key in keys:
            await storage.delete(key)


async def test_large_object_in_uneven_pieces(storage: Storage) -> None:
    data = os.urandom(20 * 1024 * 1024 + 17)
    writer = await storage.open_writer(KEY)
    for offset in range(0, len(data), 3_333_333):
        await writer.write(data[offset : offset + 3_333_333])
    info = await writer.commit()
    try:
        assert info.size == len(data)
        pieces = [bytes(piece) async for piece in storage.read(KEY)]
        assert max(len(piece) for piece in pieces) <= 8 * 1024 * 1024
        assert hashlib.sha256(b"".join(pieces)).digest() == hashlib.sha256(data).digest()
        start, end = 4 * 1024 * 1024 - 5, 12 * 1024 * 1024 + 5
        assert await read_all(storage, KEY, start, end) == data[start:end]
    finally:
        await storage.delete(KEY)


async def test_import_file_consumes_it(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "staged"
    source.write_bytes(b"staged bytes")
    info = await storage.import_file(KEY, source)
    assert info.size == 12
    assert not source.exists()
    assert await storage.get_bytes(KEY) == b"staged bytes"
    await storage.delete(KEY)


async def test_remove_incomplete_after_a_crash(storage: Storage) -> None:
    writer = await storage.open_writer(KEY)
    await writer.write(b"half")
    # The process dies here: no commit, no abort.
    await storage.remove_incomplete()
    with pytest.raises(ObjectNotFound):
        await storage.stat(KEY)
    await writer.abort()


@pytest.mark.parametrize(
    "key", ["", "../x", "/abs", "a//b", "A/upper", "a/../b", "a/\x00", "a/b/", "a b", ".hidden/x"]
)
async def test_invalid_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        await storage.put_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        await storage.stat(key)
