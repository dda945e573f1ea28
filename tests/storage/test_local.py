"""What only the local backend promises: temp files beside the target, ENOSPC as StorageFull."""

import errno
from pathlib import Path

import pytest

from hubproxy.cache.storage import LocalBackend, Storage, StorageFull
from hubproxy.cache.storage.local import TEMP_MARKER

KEY = "chunks/sha256/ab/cd/abcd/00000000"


async def test_writes_go_through_a_temp_file_in_the_same_directory(tmp_path: Path) -> None:
    storage = Storage(LocalBackend(tmp_path))
    writer = await storage.open_writer(KEY)
    await writer.write(b"data")
    directory = tmp_path / "chunks/sha256/ab/cd/abcd"
    temp_files = list(directory.iterdir())
    assert len(temp_files) == 1
    assert TEMP_MARKER in temp_files[0].name
    await writer.commit()
    assert [path.name for path in directory.iterdir()] == ["00000000"]


async def test_crash_leftovers_are_counted_and_removed(tmp_path: Path) -> None:
    storage = Storage(LocalBackend(tmp_path))
    writer = await storage.open_writer(KEY)
    await writer.write(b"data")
    assert await storage.remove_incomplete() == 1
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
    await writer.abort()


async def test_disk_full_is_storage_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = Storage(LocalBackend(tmp_path))
    writer = await storage.open_writer(KEY)

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer._handle, "write", full)  # type: ignore[attr-defined]
    with pytest.raises(StorageFull):
        await writer.write(b"data")
    await writer.abort()
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
