"""`hubproxy admin backup` while the server serves, and `hubproxy admin restore` into a fresh data
dir: a server started on the restore has the same repos, refs, history, file bytes and audit
records as the original had at the moment of the backup, and cached (proxied) files come back
from upstream."""

import getpass
import hashlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub
from tests.governance.conftest import admin_json
from tests.hub.conftest import (
    HUB_ENVIRONMENT,
    LFS_THRESHOLD,
    admin_batch,
    random_bytes,
    sha256,
    token_of,
)

REPO = "team/kept"
FIRST = {"config.json": b'{"v": 1}\n', "weights/model.bin": random_bytes(300 * 1024)}
SECOND = {"notes.txt": b"second\n", "big.bin": random_bytes(4 * LFS_THRESHOLD)}
CACHED = {"config.json": b'{"model_type": "cached"}\n', "weights.bin": random_bytes(70_000)}
# Backups are of a data dir's SQLite files (`hubproxy admin backup` refuses database_url).
pytestmark = pytest.mark.sqlite_file


def admin(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubproxy", "admin", *arguments],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def state_of(api: HfApi, url: str) -> dict[str, Any]:
    """What a client sees of REPO: refs, history per ref, and the bytes of every file."""
    refs = api.list_repo_refs(REPO)
    state: dict[str, Any] = {
        "branches": sorted((ref.name, ref.target_commit) for ref in refs.branches),
        "tags": sorted((ref.name, ref.target_commit) for ref in refs.tags),
        "repos": sorted(repo.id for repo in api.list_models(author="team")),
    }
    headers = {"Authorization": f"Bearer {api.token}"}
    for revision in ("main", "dev", "v1"):
        state[f"history@{revision}"] = [
            (commit.commit_id, commit.title)
            for commit in api.list_repo_commits(REPO, revision=revision)
        ]
        state[f"files@{revision}"] = {
            name: sha256(
                httpx.get(f"{url}/{REPO}/resolve/{revision}/{name}", headers=headers, timeout=30)
                .raise_for_status()
                .content
            )
            for name in api.list_repo_files(REPO, revision=revision)
        }
    return state


def audit_of(data_dir: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = admin_json(data_dir, "audit", "--limit", "100000")
    return records


@pytest.mark.usefixtures("no_xet")
def test_backup_while_serving_then_restore_into_a_fresh_data_dir(
    proxy_factory: ProxyFactory, upstream: FakeHub, tmp_path: Path
) -> None:
    cached_repo = "openly/backup-cached"
    upstream.add_repo(cached_repo, CACHED)
    process = proxy_factory(start=False, environment=HUB_ENVIRONMENT)
    source = process.data_dir
    outputs = admin_batch(
        source,
        [
            ("user", "create", "root", "--admin"),
            ("project", "create", "team", "--kind", "hosted"),
            ("user", "create", "owner"),
            ("member", "add", "team", "owner", "--role", "maintainer"),
            ("token", "create", "owner", "--scope", "write"),
        ],
    )
    token = token_of(outputs[-1])
    process.start()
    api = HfApi(endpoint=process.url, token=token)
    api.create_repo(REPO, private=True)
    first = api.create_commit(
        REPO, [CommitOperationAdd(p, d) for p, d in FIRST.items()], commit_message="First"
    )
    api.create_tag(REPO, tag="v1", revision=first.oid)
    api.create_branch(REPO, branch="dev", revision=first.oid)
    api.create_commit(
        REPO, [CommitOperationAdd(p, d) for p, d in SECOND.items()], commit_message="Second"
    )
    for name, data in CACHED.items():
        response = httpx.get(f"{process.url}/{cached_repo}/resolve/main/{name}", timeout=30)
        assert response.content == data
    before = state_of(api, process.url)

    # Downloads keep the server (and its audit writer) busy while the backup runs.
    stop = threading.Event()

    def keep_downloading() -> None:
        while not stop.is_set():
            httpx.get(f"{process.url}/{cached_repo}/resolve/main/weights.bin", timeout=30)

    busy = threading.Thread(target=keep_downloading)
    busy.start()
    backup_dir = tmp_path / "backup"
    try:
        completed = admin("--data-dir", str(source), "backup", "--to", str(backup_dir))
    finally:
        stop.set()
        busy.join()
    assert completed.returncode == 0, completed.stderr
    assert "cached (proxied) files are not in the backup" in completed.stdout
    assert "hosted repos 1, refs 3" in completed.stdout

    # Changes after the backup are not in it.
    api.create_commit(
        REPO, [CommitOperationAdd("late.txt", b"after the backup\n")], commit_message="Late"
    )
    refused = admin("--data-dir", str(source), "backup", "--to", str(backup_dir))
    assert refused.returncode == 4
    assert "not empty" in refused.stderr
    source_records = audit_of(source)
    process.stop()
    backups = [record for record in source_records if record["action"] == "backup"]
    assert [(r["actor_kind"], r["actor_name"], r["path"]) for r in backups] == [
        ("cli", getpass.getuser(), str(backup_dir))
    ]

    restored = tmp_path / "restored"
    completed = admin("restore", str(backup_dir), "--data-dir", str(restored))
    assert completed.returncode == 0, completed.stderr
    again = admin("restore", str(backup_dir), "--data-dir", str(restored))
    assert again.returncode == 4
    assert "is not empty" in again.stderr

    restored_records = audit_of(restored)
    restore_at = [i for i, r in enumerate(restored_records) if r["action"] == "restore"]
    assert len(restore_at) == 1
    assert restored_records[restore_at[0]]["actor_name"] == getpass.getuser()
    # Every record up to the backup, exactly; none written after it.
    copied = restored_records[: restore_at[0]]
    assert copied == source_records[: len(copied)]
    assert {"repo_create", "commit", "ref_create"} <= {r["action"] for r in copied}
    assert not any(r["action"] == "backup" for r in copied)
    # "First" and "Second"; not "Late", made after the backup.
    assert len([r for r in copied if r["action"] == "commit" and r["repo_id"] == REPO]) == 2

    server = proxy_factory(data_dir=restored, environment=HUB_ENVIRONMENT)
    restored_api = HfApi(endpoint=server.url, token=token)
    assert state_of(restored_api, server.url) == before
    # The cached file was left out of the backup: it is fetched from upstream again.
    requests_before = len(upstream.requests)
    response = httpx.get(f"{server.url}/{cached_repo}/resolve/main/weights.bin", timeout=30)
    assert hashlib.sha256(response.content).hexdigest() == sha256(CACHED["weights.bin"])
    assert len(upstream.requests) > requests_before


def test_a_corrupt_backup_restores_nothing(proxy_factory: ProxyFactory, tmp_path: Path) -> None:
    process = proxy_factory(start=False, environment=HUB_ENVIRONMENT)
    admin_batch(process.data_dir, [("user", "create", "someone", "--admin")])
    backup_dir = tmp_path / "backup"
    assert (
        admin("--data-dir", str(process.data_dir), "backup", "--to", str(backup_dir)).returncode
        == 0
    )
    database = backup_dir / "hubproxy.sqlite3"
    content = bytearray(database.read_bytes())
    content[-1] ^= 0xFF
    database.write_bytes(bytes(content))
    target = tmp_path / "restored"
    completed = admin("restore", str(backup_dir), "--data-dir", str(target))
    assert completed.returncode == 1
    assert "hubproxy.sqlite3 is corrupt in the backup: nothing was restored" in completed.stderr
    assert not target.exists() or not any(target.iterdir())
