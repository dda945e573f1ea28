"""`hubproxy mirror preload`: fill a cache ahead of need, idempotently, then serve it offline."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import snapshot_download

from tests.conftest import TEST_CHUNK_SIZE, UPSTREAM_TOKEN, ProxyFactory
from tests.fake_upstream import FakeHub, FakeHubServer, GeneratedFile
from tests.support.databases import database_environment

pytestmark = pytest.mark.clients

WEIGHTS = GeneratedFile(1_500_000, seed=71)


def preload(endpoint: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("HUBPROXY_", "HF_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "hubproxy", "mirror", "preload", *arguments, "--endpoint", endpoint],
        capture_output=True, text=True, timeout=120, env=environment,
    )  # fmt: skip


def test_preload_then_serve_offline(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    config = b'{"model_type": "bert"}'
    upstream.add_repo(
        repo_id,
        {"config.json": config, "model.safetensors": WEIGHTS, "extra/unused.bin": b"x" * 50_000},
    )
    server = proxy_factory()
    result = preload(server.url, repo_id, "--exclude", "*.bin", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "2 of 2 files complete" in result.stdout
    assert upstream.file_bytes_served() == len(config) + WEIGHTS.size

    again = preload(server.url, f"{repo_id}@main", "--exclude", "*.bin")
    assert again.returncode == 0
    assert upstream.file_bytes_served() == len(config) + WEIGHTS.size  # idempotent: all cached

    server.stop()
    offline = proxy_factory("--offline", data_dir=server.data_dir)
    folder = Path(
        snapshot_download(
            repo_id,
            allow_patterns=["*.json", "*.safetensors"],
            cache_dir=tmp_path,
            endpoint=offline.url,
        )
    )
    assert (folder / "config.json").read_bytes() == config
    assert (
        hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == WEIGHTS.sha256()
    )


def test_preload_reports_what_is_missing(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    server = proxy_factory()
    missing = preload(server.url, "acme/no-such-repo")
    assert missing.returncode == 2
    assert "acme/no-such-repo@main" in missing.stderr
    upstream.add_repo(repo_id, {"a.bin": GeneratedFile(600_000, seed=72)})
    upstream.down = True  # the listing is not cached either
    down = preload(server.url, repo_id)
    assert down.returncode == 2
    upstream.down = False
    listing = tmp_path / "repos.txt"
    listing.write_text(f"# models to carry across\n{repo_id}@main\n")
    ok = preload(server.url, "--list", str(listing))
    assert ok.returncode == 0
    assert "1 of 1 files complete" in ok.stdout


@pytest.mark.local_storage
def test_preload_directly_on_a_data_dir_with_pins(
    proxy_factory: ProxyFactory,
    fake_hub_server: FakeHubServer,
    upstream: FakeHub,
    repo_id: str,
    tmp_path: Path,
) -> None:
    """No server running: preload starts one in-process on the data dir, pins the commit, and
    a server started later on that data dir serves it offline. A running server holds its data
    dir: a second server or a direct preload on it is refused with a clear message."""
    commit = upstream.add_repo(repo_id, {"config.json": b"{}", "model.safetensors": WEIGHTS})
    data_dir = tmp_path / "direct"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HUBPROXY_", "HF_"))},
        "HUBPROXY_UPSTREAM": fake_hub_server.url,
        "HUBPROXY_UPSTREAM_TOKEN": UPSTREAM_TOKEN,
        "HUBPROXY_CHUNK_SIZE": TEST_CHUNK_SIZE,
        # The data dir's database, wherever the suite keeps it (the server below shares it).
        **database_environment(data_dir),
    }

    def hubproxy(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hubproxy", *arguments],
            capture_output=True, text=True, timeout=120, env=environment,
        )  # fmt: skip

    loaded = hubproxy("mirror", "preload", repo_id, "--data-dir", str(data_dir), "--pin")
    assert loaded.returncode == 0, loaded.stderr
    assert "2 of 2 files complete" in loaded.stdout
    assert upstream.file_bytes_served() == 2 + WEIGHTS.size
    listed = hubproxy("cache", "ls", "--json", "--data-dir", str(data_dir))
    [usage] = json.loads(listed.stdout)
    assert (usage["repo_id"], usage["files"], usage["pins"]) == (repo_id, 2, [commit])

    upstream.reset_stats()
    offline = proxy_factory("--offline", data_dir=data_dir)
    folder = Path(snapshot_download(repo_id, cache_dir=tmp_path / "c", endpoint=offline.url))
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == (
        WEIGHTS.sha256()
    )
    assert upstream.requests == []

    second = hubproxy("serve", "--data-dir", str(data_dir), "--port", "1")
    assert second.returncode == 1
    assert "is in use by another hubproxy server (pid" in second.stderr
    refused = hubproxy("mirror", "preload", repo_id, "--data-dir", str(data_dir))
    assert refused.returncode == 2
    assert "--endpoint" in refused.stderr
