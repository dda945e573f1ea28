"""Hosted repos cross the air gap too: their whole history, refs and LFS files, with the same
commit shas on the offline site; every id is re-derived on import, so tampering is refused."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem, snapshot_download

from tests.conftest import ProxyFactory
from tests.fake_upstream import GeneratedFile
from tests.governance.conftest import admin, admin_json, new_token
from tests.proxy.test_bundles import flip_byte, mirror

pytestmark = [pytest.mark.clients, pytest.mark.local_storage]

WEIGHTS = GeneratedFile(1_200_000, seed=91)
EXTRA = GeneratedFile(300_000, seed=92)
CONFIG = b'{"model_type": "bert"}'


def member_token(data_dir: Path, user: str, role: str) -> str:
    admin(data_dir, "user", "create", user)
    admin(data_dir, "member", "add", "labs", user, "--role", role)
    return new_token(data_dir, "token", "create", user, "--scope", "write")


def test_hosted_repo_round_trip_incremental_and_tampered(
    proxy_factory: ProxyFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Git LFS rather than Xet for the large file (hubproxy has no Xet endpoint yet).
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DISABLE_XET", True)
    online_dir = tmp_path / "online"
    admin(online_dir, "user", "create", "root", "--admin")
    admin(online_dir, "project", "create", "labs", "--kind", "hosted")
    token = member_token(online_dir, "alice", "maintainer")
    lfs = {"HUBPROXY_UPLOAD_LFS_THRESHOLD": "100000"}
    online = proxy_factory(data_dir=online_dir, environment=lfs)
    api = HfApi(endpoint=online.url, token=token)
    api.create_repo("labs/model")
    first = api.create_commit(
        "labs/model",
        [
            CommitOperationAdd("config.json", CONFIG),
            CommitOperationAdd("model.safetensors", WEIGHTS.read(0, WEIGHTS.size)),
        ],
        commit_message="weights",
    ).oid
    api.create_tag("labs/model", tag="v1")
    api.create_branch("labs/model", branch="dev")
    head = api.create_commit(
        "labs/model", [CommitOperationAdd("sub/notes.txt", b"notes")], commit_message="notes"
    ).oid
    online_refs = api.list_repo_refs("labs/model")
    online_history = [commit.commit_id for commit in api.list_repo_commits("labs/model")]
    online.stop()

    bundle = tmp_path / "bundle"
    exported = mirror("export", "labs/model", "--to", str(bundle), "--data-dir", str(online_dir))
    assert exported.returncode == 0, exported.stderr
    assert "labs/model (hosted, whole history)" in exported.stdout
    assert "4 files" in exported.stdout  # .gitattributes, config, weights, notes

    site = tmp_path / "site"
    imported = mirror("import", str(bundle), "--data-dir", str(site))
    assert imported.returncode == 0, imported.stderr
    assert "created hosted project 'labs' (private" in imported.stdout
    again = mirror("import", str(bundle), "--data-dir", str(site))
    assert again.returncode == 0
    assert "0 files" in again.stdout
    reader = member_token(site, "bob", "viewer")
    offline = proxy_factory("--offline", data_dir=site)
    offline_api = HfApi(endpoint=offline.url, token=reader)
    assert offline_api.model_info("labs/model").sha == head
    assert offline_api.list_repo_refs("labs/model") == online_refs
    assert [c.commit_id for c in offline_api.list_repo_commits("labs/model")] == online_history
    for revision, commit in (("main", head), ("v1", first), ("dev", first), (first, first)):
        folder = Path(
            snapshot_download(
                "labs/model", revision=revision, token=reader, endpoint=offline.url,
                cache_dir=tmp_path / f"client-{revision[:8]}",
            )
        )  # fmt: skip
        assert folder.name == commit
        assert (folder / "config.json").read_bytes() == CONFIG
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        assert digest == WEIGHTS.sha256()
        assert (folder / "sub" / "notes.txt").exists() == (commit == head)
    metadata = httpx.head(
        f"{offline.url}/labs/model/resolve/v1/model.safetensors",
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert metadata.headers["x-repo-commit"] == first
    assert metadata.headers["x-linked-etag"] == f'"{WEIGHTS.sha256()}"'
    fs = HfFileSystem(endpoint=offline.url, token=reader, skip_instance_cache=True)
    assert sorted(fs.ls("labs/model@v1", detail=False)) == [
        "labs/model@v1/.gitattributes", "labs/model@v1/config.json",
        "labs/model@v1/model.safetensors",
    ]  # fmt: skip
    with fs.open("labs/model/model.safetensors", "rb", block_size=100_000) as handle:
        handle.seek(700_000)
        assert handle.read(1000) == WEIGHTS.read(700_000, 701_000)
    loaded = subprocess.run(
        [sys.executable, "-c", "from transformers import AutoConfig; "
         "print(AutoConfig.from_pretrained('labs/model', revision='v1').model_type)"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_ENDPOINT": offline.url, "HF_TOKEN": reader,
             "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0", "HF_HOME": str(tmp_path / "transformers-home")},
    )  # fmt: skip
    assert loaded.stdout.strip() == "bert", loaded.stderr
    # Bob may read what was imported, but not write to it (he is a viewer).
    with pytest.raises(Exception, match="403"):
        offline_api.create_tag("labs/model", tag="v2")

    # Incremental: one new LFS file on the connected site; the delta carries only that blob.
    online.start()
    api.create_commit(
        "labs/model", [CommitOperationAdd("extra.bin", EXTRA.read(0, EXTRA.size))],
        commit_message="extra",
    )  # fmt: skip
    online.stop()
    delta = tmp_path / "delta"
    incremental = mirror(
        "export", "labs/model", "--to", str(delta), "--data-dir", str(online_dir),
        "--since", str(bundle / "manifest.json"),
    )  # fmt: skip
    assert incremental.returncode == 0, incremental.stderr
    assert "1 files (300000 bytes)" in incremental.stdout
    offline.stop()
    assert mirror("import", str(delta), "--data-dir", str(site)).returncode == 0
    offline.start()
    extra = httpx.get(
        f"{offline.url}/labs/model/resolve/main/extra.bin",
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert extra.content == EXTRA.read(0, EXTRA.size)

    # Tampering: a commit message edited in the manifest, or one flipped byte in an LFS file.
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["hosted"][0]["commits"][-1]["message"] = "edited"
    edited = tmp_path / "edited"
    edited.mkdir()
    for entry in bundle.iterdir():
        (edited / entry.name).symlink_to(entry)
    (edited / "manifest.json").unlink()
    (edited / "manifest.json").write_text(json.dumps(manifest))
    refused = mirror("import", str(edited), "--data-dir", str(tmp_path / "edited-site"))
    assert refused.returncode == 2
    assert "does not match its content" in refused.stderr
    flip_byte(bundle / "blobs" / "sha256" / WEIGHTS.sha256(), 123_456)
    corrupt_site = tmp_path / "corrupt-site"
    refused = mirror("import", str(bundle), "--data-dir", str(corrupt_site))
    assert refused.returncode == 2
    assert "corrupt" in refused.stderr
    assert admin_json(corrupt_site, "project", "list") == []

    # The offline project cannot be deleted by mistake with its repos in it.
    offline.stop()
    kept = admin(site, "project", "delete", "labs", check=False)
    assert kept.returncode == 4
    assert "holds 1 hosted repos" in kept.stderr
    admin(site, "project", "delete", "labs", "--delete-repos")
