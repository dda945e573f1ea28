"""`hubproxy cache ...` on the data dir of a real server: ls, pin/unpin, evict, gc, verify."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, GeneratedFile
from tests.support.databases import database_environment

pytestmark = [pytest.mark.clients, pytest.mark.local_storage]

WEIGHTS = GeneratedFile(700_000, seed=31)  # three 256 KiB chunks


def cache_cli(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("HUBPROXY_")
    }
    environment.update(database_environment(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "hubproxy", "cache", *arguments, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, env=environment,
    )  # fmt: skip


def cache_json(data_dir: Path, *arguments: str) -> Any:
    result = cache_cli(data_dir, *arguments, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def chunk_dir(data_dir: Path, content: GeneratedFile) -> Path:
    digest = hashlib.sha256(content.read(0, content.size)).hexdigest()
    return data_dir / "storage" / "chunks" / "sha256" / digest[:2] / digest[2:4] / digest


def test_cache_management(proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str) -> None:
    other, checked = repo_id + "-other", repo_id + "-checked"
    other_file, checked_file = GeneratedFile(300_000, seed=32), GeneratedFile(200_000, seed=33)
    upstream.add_repo(repo_id, {"config.json": b"{}", "model.safetensors": WEIGHTS})
    upstream.add_repo(other, {"w.bin": other_file})
    upstream.add_repo(checked, {"w.bin": checked_file})
    server = proxy_factory()
    for path in (
        f"{repo_id}/resolve/main/config.json",
        f"{repo_id}/resolve/main/model.safetensors",
        f"{other}/resolve/main/w.bin",
        f"{checked}/resolve/main/w.bin",
    ):
        assert httpx.get(f"{server.url}/{path}").status_code == 200
    server.stop()
    data_dir = server.data_dir

    listing = {item["repo_id"]: item for item in cache_json(data_dir, "ls")}
    assert listing[repo_id]["cached_bytes"] == WEIGHTS.size + 2
    assert listing[repo_id]["files"] == 2
    assert listing[repo_id]["revisions"]["main"]
    assert listing[other]["cached_bytes"] == 300_000
    table = cache_cli(data_dir, "ls")
    assert repo_id in table.stdout
    assert "REPO" in table.stdout

    assert cache_cli(data_dir, "pin", repo_id).returncode == 0
    assert cache_json(data_dir, "evict", repo_id) == {"files": 0, "bytes": 0}  # pinned: kept
    assert cache_cli(data_dir, "unpin", repo_id).returncode == 0
    assert cache_cli(data_dir, "unpin", repo_id).returncode == 2  # not pinned any more
    evicted = cache_json(data_dir, "evict", f"{repo_id}@main")
    assert evicted == {"files": 2, "bytes": WEIGHTS.size + 2}
    assert {item["repo_id"]: item for item in cache_json(data_dir, "ls")}[repo_id][
        "cached_bytes"
    ] == 0

    # verify: corrupt one chunk (same size, other bytes).
    corrupted = chunk_dir(data_dir, checked_file) / "00000000"
    corrupted.write_bytes(bytes(255 - byte for byte in corrupted.read_bytes()))
    result = cache_cli(data_dir, "verify", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["corrupt"] == [f"sha256:{checked_file.sha256()}"]
    assert report["checked"] == 2  # the corrupted file and the other repo's
    assert not corrupted.exists()

    # gc: an object no record points at, and a record whose object was lost.
    other_chunks = chunk_dir(data_dir, other_file)
    orphan = other_chunks / "00000042"
    orphan.write_bytes(b"stray")
    (other_chunks / "00000001").unlink()
    report = cache_json(data_dir, "gc")
    assert report == {
        "orphan_chunks": 1,
        "orphan_bytes": 5,
        "incomplete_objects": 0,
        "dangling_records": 1,
        "hosted": {"released": 0, "deleted": 0, "deleted_bytes": 0},
        "xet": {"files": 0, "xorbs": 0, "xorb_bytes": 0, "orphan_objects": 0},
    }
    assert not orphan.exists()

    # Whatever was dropped comes back from upstream, byte for byte.
    server.start()
    for path, content in (
        (f"{repo_id}/resolve/main/model.safetensors", WEIGHTS),
        (f"{other}/resolve/main/w.bin", other_file),
        (f"{checked}/resolve/main/w.bin", checked_file),
    ):
        assert (
            hashlib.sha256(httpx.get(f"{server.url}/{path}").content).hexdigest()
            == content.sha256()
        )


@pytest.mark.sqlite_file  # a data dir without its SQLite file is "no hubproxy data"
def test_cache_cli_errors(tmp_path: Path) -> None:
    missing = cache_cli(tmp_path / "nothing", "ls")
    assert missing.returncode == 2
    assert "no hubproxy data" in missing.stderr
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "hubproxy.sqlite3").touch()
    bad = cache_cli(tmp_path / "data", "pin", "../etc")
    assert bad.returncode == 2
    assert "Invalid repo id" in bad.stderr
