"""Hosted repos survive the server: after a graceful restart, and after a SIGKILL, every branch,
tag, commit and file (regular and LFS, at every revision) is still there byte for byte, and
new commits continue the history.
"""

from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from tests.conftest import ProxyFactory
from tests.hub.conftest import (
    HUB_ENVIRONMENT,
    LFS_THRESHOLD,
    admin_batch,
    random_bytes,
    sha256,
    token_of,
)

FILES_V1 = {
    "config.json": b'{"version": 1}\n',
    "weights/model.bin": random_bytes(5 * LFS_THRESHOLD),
}
FILES_V2 = {"config.json": b'{"version": 2}\n', "notes/readme.txt": b"second\n"}
ON_DEV = {"dev.bin": random_bytes(3 * LFS_THRESHOLD)}


def snapshot_of(api: HfApi, repo_id: str, cache_dir: Path) -> dict[str, Any]:
    """Everything a client can see of the repo: refs, history, and file hashes per revision."""
    refs = api.list_repo_refs(repo_id)
    state: dict[str, Any] = {
        "branches": sorted((ref.name, ref.target_commit) for ref in refs.branches),
        "tags": sorted((ref.name, ref.target_commit) for ref in refs.tags),
    }
    for revision in ("main", "dev", "v1"):
        state[f"commits@{revision}"] = [
            (commit.commit_id, commit.title)
            for commit in api.list_repo_commits(repo_id, revision=revision)
        ]
        files = api.list_repo_files(repo_id, revision=revision)
        state[f"files@{revision}"] = {
            name: sha256(
                Path(
                    api.hf_hub_download(
                        repo_id, name, revision=revision, cache_dir=cache_dir, force_download=True
                    )
                ).read_bytes()
            )
            for name in files
        }
    return state


@pytest.mark.usefixtures("no_xet")
def test_repos_survive_a_restart_and_a_crash(proxy_factory: ProxyFactory, tmp_path: Path) -> None:
    process = proxy_factory(start=False, environment=HUB_ENVIRONMENT)
    outputs = admin_batch(
        process.data_dir,
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
    repo_id = "team/durable"
    api.create_repo(repo_id)
    first = api.create_commit(
        repo_id, [CommitOperationAdd(path, data) for path, data in FILES_V1.items()],
        commit_message="Version 1",
    )  # fmt: skip
    api.create_tag(repo_id, tag="v1", revision=first.oid)
    api.create_branch(repo_id, branch="dev")
    api.create_commit(
        repo_id, [CommitOperationAdd(path, data) for path, data in ON_DEV.items()],
        commit_message="On dev", revision="dev",
    )  # fmt: skip
    second = api.create_commit(
        repo_id, [CommitOperationAdd(path, data) for path, data in FILES_V2.items()],
        commit_message="Version 2",
    )  # fmt: skip
    before = snapshot_of(api, repo_id, tmp_path / "before")
    assert before["files@main"] == {
        ".gitattributes": before["files@v1"][".gitattributes"],
        "config.json": sha256(FILES_V2["config.json"]),
        "weights/model.bin": sha256(FILES_V1["weights/model.bin"]),
        "notes/readme.txt": sha256(FILES_V2["notes/readme.txt"]),
    }

    process.stop()
    process.start()
    assert snapshot_of(api, repo_id, tmp_path / "after-restart") == before

    process.kill()
    process.start()
    assert snapshot_of(api, repo_id, tmp_path / "after-crash") == before

    third = api.upload_file(path_or_fileobj=b"third\n", path_in_repo="third.txt", repo_id=repo_id)
    history = [commit.commit_id for commit in api.list_repo_commits(repo_id)]
    assert history[:3] == [third.oid, second.oid, first.oid]
