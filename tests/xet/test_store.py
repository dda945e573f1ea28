"""`XetStore` over memory storage and an in-memory database: what hf_xet uploads is stored,
verified and read back byte-identical (whole and by range); anything that does not verify is
refused and leaves nothing behind."""

import hashlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hubproxy.cache.storage import MemoryBackend, Storage
from hubproxy.cas.store import XetStore
from hubproxy.db import Database
from hubproxy.errors import InvalidShard, InvalidXorb, PayloadTooLarge
from hubproxy.naming import RepoRef
from hubproxy.xet.hashing import from_hex
from hubproxy.xet.shards import parse_shard
from hubproxy.xet.xorbs import MAX_XORB_BYTES
from tests.xet.support import (
    MiB,
    capture_cas,
    mixed,
    random_data,
    serialize_shard,
    upload_with_hf_xet,
)

REPO = RepoRef("model", "team/weights")
OTHER = RepoRef("model", "team/other")


@pytest.fixture(scope="module")
def uploaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[bytes, dict[str, bytes], bytes, str]:
    """A 6 MiB mixed file as hf_xet uploads it: content, xorbs, shard, file hash."""
    path = tmp_path_factory.mktemp("xet-store") / "weights.bin"
    content = mixed(6 * MiB, 11) + random_data(1234, 12)
    path.write_bytes(content)
    with capture_cas() as (url, captured):
        [xet_hash] = upload_with_hf_xet(url, [path])
    [shard] = captured.shards
    return content, dict(captured.xorbs), shard, xet_hash


async def body_of(data: bytes, piece: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[XetStore]:
    database = Database(None)
    await database.open()

    def repos(connection: object) -> None:
        for ref in (REPO, OTHER):
            connection.execute(  # type: ignore[attr-defined]
                "INSERT INTO hub_repos (repo_type, repo_id, private, created, created_by)"
                " VALUES (?, ?, 1, ?, 'test')",
                (ref.repo_type, ref.repo_id, time.time()),
            )

    await database.run(repos)
    storage = Storage(MemoryBackend())
    yield XetStore(storage, database, tmp_path)
    await database.aclose()


async def stored_keys(store: XetStore) -> list[str]:
    return [key async for key in store.storage.list("")]


async def read_all(store: XetStore, file_hash: str, start: int, end: int) -> bytes:
    file = await store.file(file_hash)
    assert file is not None
    return b"".join([piece async for piece in store.read(file, start, end)])


async def test_upload_verify_register_and_read_back(
    store: XetStore, uploaded: tuple[bytes, dict[str, bytes], bytes, str]
) -> None:
    content, xorbs, shard, xet_hash = uploaded
    for name, body in xorbs.items():
        assert await store.put_xorb(name, body_of(body)) is True
        assert await store.put_xorb(name, body_of(body)) is False  # known: not read again
    assert sorted(await stored_keys(store)) == sorted(f"xorbs/{name[:2]}/{name}" for name in xorbs)
    result = await store.put_shard(body_of(shard), REPO)
    assert result.new
    [file] = result.files
    assert (file.hash, file.size, file.sha256) == (
        xet_hash,
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert (await store.put_shard(body_of(shard), REPO)).new is False
    assert await store.repo_file(REPO, file.sha256) == file
    assert await store.repo_file(OTHER, file.sha256) is None
    assert await store.in_repo(REPO, xet_hash)
    assert not await store.in_repo(OTHER, xet_hash)
    assert await read_all(store, xet_hash, 0, len(content)) == content
    for start, end in [
        (0, 1),
        (1, 70_000),
        (65_000, 200_000),
        (len(content) - 10, len(content)),
        (3 * MiB, 4 * MiB + 17),
    ]:
        assert await read_all(store, xet_hash, start, end) == content[start:end], (start, end)


async def test_reconstruction_segments_cover_exactly_the_range(
    store: XetStore, uploaded: tuple[bytes, dict[str, bytes], bytes, str]
) -> None:
    _, xorbs, shard, xet_hash = uploaded
    for name, body in xorbs.items():
        await store.put_xorb(name, body_of(body))
    await store.put_shard(body_of(shard), REPO)
    file = await store.file(xet_hash)
    assert file is not None
    whole = await store.segments(file, 0, file.size)
    assert whole[0].skip == 0
    assert sum(segment.size for segment in whole) == file.size
    middle = await store.segments(file, 100_000, 100_001)
    assert len(middle) == 1
    assert middle[0].end_chunk - middle[0].first_chunk == 1
    assert middle[0].skip < middle[0].size


async def test_a_xorb_that_does_not_hash_to_its_name_is_not_stored(
    store: XetStore, uploaded: tuple[bytes, dict[str, bytes], bytes, str]
) -> None:
    _, xorbs, _, _ = uploaded
    name, body = next(iter(xorbs.items()))
    other = "0" * 63 + "1"
    with pytest.raises(InvalidXorb, match="hashes to"):
        await store.put_xorb(other, body_of(body))
    corrupted = body[:100] + bytes([body[100] ^ 1]) + body[101:]
    with pytest.raises(InvalidXorb):
        await store.put_xorb(name, body_of(corrupted))
    assert await stored_keys(store) == []
    assert not await store.has_xorb(name)


async def test_an_oversized_xorb_body_is_refused_while_it_arrives(store: XetStore) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield bytes(MiB)

    with pytest.raises(PayloadTooLarge):
        await store.put_xorb("1" * 64, endless())
    assert await stored_keys(store) == []
    assert 64 * MiB < MAX_XORB_BYTES <= 64 * MiB + 64 * 1024


def crafted(shard: bytes, **changes: object) -> bytes:
    """The uploaded shard's (only) file re-serialized with some parts changed."""
    [file] = parse_shard(io.BytesIO(shard), len(shard)).files
    assert file.verification is not None
    parts = {
        "file_hash": file.hash,
        "terms": [(t.xorb_hash, t.unpacked_bytes, t.chunk_start, t.chunk_end) for t in file.terms],
        "verification": list(file.verification),
        "sha256": from_hex(file.sha256) if file.sha256 else None,
    }
    parts.update(changes)
    return serialize_shard(
        [(parts["file_hash"], parts["terms"], parts["verification"], parts["sha256"])]
    )  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing-xorb", "which was not uploaded"),
        ("wrong-verification", "Verification hash of term 0"),
        ("no-verification", "no verification entries"),
        ("wrong-length", "chunks hold"),
        ("too-many-chunks", "which has"),
        ("wrong-file-hash", "another file hash"),
        ("wrong-sha256", "has sha256"),
    ],
)
async def test_shards_that_do_not_check_out_register_nothing(
    store: XetStore, uploaded: tuple[bytes, dict[str, bytes], bytes, str], change: str, message: str
) -> None:
    content, xorbs, shard, xet_hash = uploaded
    [file] = parse_shard(io.BytesIO(shard), len(shard)).files
    terms = [(t.xorb_hash, t.unpacked_bytes, t.chunk_start, t.chunk_end) for t in file.terms]
    assert file.verification is not None
    changes: dict[str, object] = {
        "missing-xorb": {"terms": [(b"\x07" * 32, *terms[0][1:]), *terms[1:]]},
        "wrong-verification": {"verification": [b"\x01" * 32, *file.verification[1:]]},
        "no-verification": {"verification": None},
        "wrong-length": {"terms": [(terms[0][0], terms[0][1] + 1, *terms[0][2:]), *terms[1:]]},
        "too-many-chunks": {"terms": [(*terms[0][:3], 100_000), *terms[1:]]},
        "wrong-file-hash": {"file_hash": b"\x02" * 32},
        "wrong-sha256": {"sha256": from_hex(hashlib.sha256(b"other").hexdigest())},
    }[change]  # type: ignore[assignment]
    for name, body in xorbs.items():
        await store.put_xorb(name, body_of(body))
    with pytest.raises(InvalidShard, match=message):
        await store.put_shard(body_of(crafted(shard, **changes)), REPO)  # type: ignore[arg-type]
    assert await store.file(xet_hash) is None
    assert await store.repo_file(REPO, hashlib.sha256(content).hexdigest()) is None
