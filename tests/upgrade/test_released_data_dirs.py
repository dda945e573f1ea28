"""A data dir written by every earlier release (tests/fixtures/datadir-v*/, made by
tests/fixtures/make_datadir.py with that release) opens with this one: the real server starts
on a copy, and accounts, tokens, hosted repos (history, branches, tags, regular and LFS files),
cached files and audit records are all there and correct."""

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from tests.conftest import ProxyFactory
from tests.governance.conftest import admin_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RELEASES = sorted(path.name for path in FIXTURES.glob("datadir-v*"))
HOSTED_REPO = "team/history"
CACHED_REPO = "openly/tiny"


def test_there_is_a_fixture_of_the_first_release() -> None:
    assert "datadir-v0.1.0" in RELEASES


@pytest.mark.parametrize("release", RELEASES)
def test_a_released_data_dir_opens_with_everything_in_it(
    release: str, proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    expected: dict[str, Any] = json.loads((FIXTURES / release / "expected.json").read_text())
    data_dir = tmp_path / "data"
    shutil.copytree(FIXTURES / release / "data", data_dir)
    # Offline: the cached repo must come from the data dir alone, never from upstream.
    process = proxy_factory("--offline", data_dir=data_dir)
    token = expected["token"]
    api = HfApi(endpoint=process.url, token=token)

    assert api.whoami()["name"] == "owner"
    refs = api.list_repo_refs(HOSTED_REPO)
    assert {ref.name: ref.target_commit for ref in refs.branches} == expected["refs"]["branches"]
    assert {ref.name: ref.target_commit for ref in refs.tags} == expected["refs"]["tags"]
    for revision, history in expected["history"].items():
        commits = api.list_repo_commits(HOSTED_REPO, revision=revision)
        assert [[commit.commit_id, commit.title] for commit in commits] == history
    for revision, files in expected["files"].items():
        assert sorted(api.list_repo_files(HOSTED_REPO, revision=revision)) == sorted(files)
        for name, digest in files.items():
            path = hf_hub_download(
                HOSTED_REPO, name, revision=revision, endpoint=process.url, token=token,
                cache_dir=tmp_path / "client", force_download=True,
            )  # fmt: skip
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest, (revision, name)
    # The robot's token still works, for what it was given.
    robot = HfApi(endpoint=process.url, token=expected["robot_token"])
    assert robot.repo_info(HOSTED_REPO).sha == expected["refs"]["branches"]["main"]
    anonymous = httpx.get(f"{process.url}/api/models/{HOSTED_REPO}", timeout=10)
    assert anonymous.status_code in (401, 404)

    for name, digest in expected["cached_files"].items():
        response = httpx.get(f"{process.url}/{CACHED_REPO}/resolve/main/{name}", timeout=10)
        assert response.status_code == 200, (name, response.headers.get("x-error-message"))
        assert hashlib.sha256(response.content).hexdigest() == digest
        assert response.headers["x-repo-commit"] == expected["cached_commit"]
    process.stop()

    users = admin_json(data_dir, "user", "list")
    assert [(user["name"], user["fullname"]) for user in users] == [("owner", "Repo Owner")]
    assert len(admin_json(data_dir, "token", "list")) == expected["tables"]["tokens"]
    assert [
        robot["name"] for robot in admin_json(data_dir, "robot", "list", "--project", "team")
    ] == ["team-ci"]
    members = admin_json(data_dir, "member", "list", "team")
    assert [(member["user"], member["role"]) for member in members] == [("owner", "maintainer")]

    records = admin_json(data_dir, "audit", "--limit", "100000")
    old = [
        {key: record[key] for key in ("event_id", "action", "decision", "actor_name", "repo_id")}
        for record in records[: len(expected["audit"])]
    ]
    assert old == expected["audit"]
    # The server appended its own records after the released ones (same table, upgraded).
    assert len(records) > len(expected["audit"])
    assert any(
        record["action"] == "download" and record["repo_id"] == CACHED_REPO
        for record in records[len(expected["audit"]) :]
    )

    database = sqlite3.connect(data_dir / "hubproxy.sqlite3")
    history = database.execute("SELECT from_version FROM schema_history").fetchall()
    held = sorted(row[0] for row in database.execute("SELECT blob_id FROM blobs WHERE held = 1"))
    database.close()
    assert history == [(expected["schema_version"],)]
    assert held == expected["held_blobs"]
