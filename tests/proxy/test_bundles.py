"""Export / import bundles: preload online, carry a directory across, serve offline, identically."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfFileSystem, snapshot_download

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, GeneratedFile
from tests.proxy.test_mirror import preload
from tests.support.databases import command_environment, database_environment

pytestmark = [pytest.mark.clients, pytest.mark.local_storage]

WEIGHTS = GeneratedFile(1_200_000, seed=81)
CONFIG = b'{"model_type": "bert"}'


def mirror(*arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("HUBPROXY_")
    }
    environment.update(command_environment(arguments))
    return subprocess.run(
        [sys.executable, "-m", "hubproxy", "mirror", *arguments],
        capture_output=True, text=True, timeout=120, env=environment,
    )  # fmt: skip


def flip_byte(path: Path, offset: int) -> None:
    """Corrupt one byte of a bundle file in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundle_round_trip_incremental_and_corrupt(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    first_commit = upstream.add_repo(
        repo_id, {"config.json": CONFIG, "model.safetensors": WEIGHTS, "sub/notes.txt": b"notes"}
    )
    online = proxy_factory()
    assert preload(online.url, repo_id).returncode == 0
    online.stop()
    bundle = tmp_path / "bundle"
    exported = mirror("export", repo_id, "--to", str(bundle), "--data-dir", str(online.data_dir))
    assert exported.returncode == 0, exported.stderr
    assert "3 files" in exported.stdout

    # The offline site: a fresh data dir, no upstream at all.
    site = tmp_path / "site"
    imported = mirror("import", str(bundle), "--data-dir", str(site))
    assert imported.returncode == 0, imported.stderr
    assert (
        mirror("import", str(bundle), "--data-dir", str(site)).stdout.count("0 files") == 1
    )  # no-op
    offline = proxy_factory("--offline", data_dir=site)
    for revision in ("main", first_commit):
        folder = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=tmp_path / f"client-{revision[:4]}",
                endpoint=offline.url,
            )
        )
        assert (folder / "config.json").read_bytes() == CONFIG
        assert sha256(folder / "model.safetensors") == WEIGHTS.sha256()
        assert (folder / "sub" / "notes.txt").read_bytes() == b"notes"
        assert first_commit in str(folder)
    head = httpx.head(f"{offline.url}/{repo_id}/resolve/main/model.safetensors")
    assert head.headers["x-repo-commit"] == first_commit
    assert head.headers["x-linked-etag"] == f'"{WEIGHTS.sha256()}"'
    ranged = httpx.get(
        f"{offline.url}/{repo_id}/resolve/main/model.safetensors",
        headers={"Range": "bytes=1000-1099"},
    )
    assert ranged.content == WEIGHTS.read(1000, 1100)
    assert httpx.get(f"{offline.url}/api/models/{repo_id}").json()["sha"] == first_commit
    loaded = subprocess.run(
        [sys.executable, "-c", f"from transformers import AutoConfig; print(AutoConfig.from_pretrained({repo_id!r}).model_type)"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_ENDPOINT": offline.url, "HF_HOME": str(tmp_path / "transformers-home")},
    )  # fmt: skip
    assert loaded.stdout.strip() == "bert", loaded.stderr
    fs = HfFileSystem(endpoint=offline.url, skip_instance_cache=True)
    assert sorted(fs.ls(repo_id, detail=False)) == sorted(
        f"{repo_id}/{name}" for name in ("config.json", "model.safetensors", "sub")
    )
    with fs.open(f"{repo_id}/model.safetensors", "rb", block_size=100_000) as handle:
        handle.seek(700_000)
        assert handle.read(1000) == WEIGHTS.read(700_000, 701_000)

    # Incremental: a new upstream commit adds one file; the new bundle carries only that file.
    upstream.commit(repo_id, {"extra.bin": GeneratedFile(300_000, seed=82)})
    refreshed = proxy_factory("--revision-ttl", "0", data_dir=online.data_dir)  # sees the new main
    assert preload(refreshed.url, repo_id).returncode == 0
    refreshed.stop()
    delta = tmp_path / "delta"
    incremental = mirror(
        "export",
        repo_id,
        "--to",
        str(delta),
        "--data-dir",
        str(online.data_dir),
        "--since",
        str(bundle / "manifest.json"),
    )
    assert incremental.returncode == 0, incremental.stderr
    assert "1 files (300000 bytes)" in incremental.stdout
    assert len(list((delta / "blobs").rglob("*"))) == 2  # one algorithm directory, one blob
    lonely = mirror("import", str(delta), "--data-dir", str(tmp_path / "lonely"))
    assert lonely.returncode == 2
    assert "import the earlier bundle first" in lonely.stderr
    offline.stop()
    assert mirror("import", str(delta), "--data-dir", str(site)).returncode == 0
    offline.start()
    assert httpx.get(f"{offline.url}/{repo_id}/resolve/main/extra.bin").content == GeneratedFile(
        300_000, seed=82
    ).read(0, 300_000)

    # One flipped byte: the whole bundle is refused and nothing is imported.
    blob_file = next(
        path
        for path in (bundle / "blobs").rglob("*")
        if path.is_file() and path.stat().st_size == WEIGHTS.size
    )
    flip_byte(blob_file, 500_000)
    corrupt_site = tmp_path / "corrupt-site"
    refused = mirror("import", str(bundle), "--data-dir", str(corrupt_site))
    assert refused.returncode == 2
    assert "corrupt" in refused.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "hubproxy", "cache", "ls", "--json", "--data-dir", str(corrupt_site)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, **database_environment(corrupt_site)},
    )  # fmt: skip
    assert json.loads(listing.stdout) == []
    assert (
        not list((corrupt_site / "storage").rglob("*"))
        if (corrupt_site / "storage").exists()
        else True
    )


def test_an_export_of_files_not_all_cached_is_refused_unless_partial(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    """An offline site must learn at import, never at read time, that a bundle is partial."""
    upstream.add_repo(repo_id, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    online = proxy_factory()
    assert preload(online.url, repo_id, "--include", "*.json").returncode == 0
    online.stop()

    refused = mirror("export", repo_id, "--to", str(tmp_path / "b"), "--data-dir",
                     str(online.data_dir))  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("hubproxy mirror: 1 selected files are not completely cached")
    assert f"{repo_id}@" in refused.stderr
    assert "model.safetensors" in refused.stderr
    assert not (tmp_path / "b" / "manifest.json").exists()

    # What was preloaded can be exported whole, selected the same way.
    selected = mirror("export", repo_id, "--include", "*.json", "--to", str(tmp_path / "json"),
                      "--data-dir", str(online.data_dir))  # fmt: skip
    assert selected.returncode == 0, selected.stderr
    assert "partial" not in selected.stdout

    partial = mirror("export", repo_id, "--allow-partial", "--to", str(tmp_path / "p"),
                     "--data-dir", str(online.data_dir))  # fmt: skip
    assert partial.returncode == 0, partial.stderr
    assert "lacks 1 selected files" in partial.stdout
    [repo] = json.loads((tmp_path / "p" / "manifest.json").read_text())["repos"]
    assert repo["missing"] == ["model.safetensors"]
    assert [entry["path"] for entry in repo["entries"]] == ["config.json"]

    site = tmp_path / "site"
    imported = mirror("import", str(tmp_path / "p"), "--data-dir", str(site))
    assert imported.returncode == 0, imported.stderr
    assert "partial bundle:" in imported.stdout
    assert "lacks 1 files, not served here: model.safetensors" in imported.stdout
