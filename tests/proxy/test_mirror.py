"""`hubproxy mirror preload`: fill a cache ahead of need, idempotently, then serve it offline."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import snapshot_download

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, GeneratedFile

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
