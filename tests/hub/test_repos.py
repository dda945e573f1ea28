"""Repo lifecycle in hosted projects with the real huggingface_hub client: `create_repo` makes a
repo whose one commit ("initial commit") holds `.gitattributes` on `main`; creating it again is a
409 (and `exist_ok=True` passes); dataset repos are separate from model repos; role gates on
create (developer) and delete (maintainer); a deleted repo is gone, and a new repo of the same
name starts from scratch.
"""

import json
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, RepoFile, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.hub.conftest import (
    Hub,
    git_blob_oid,
    random_bytes,
    sha256,
    unique_repo_id,
    xet_disabled,
)

SHA = re.compile(r"[0-9a-f]{40}")


def status_of(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert error.value.response is not None
    return error.value.response.status_code


def test_a_new_repo_has_one_initial_commit_holding_gitattributes(hub: Hub, tmp_path: Path) -> None:
    api = hub.api("developer")
    repo_id = unique_repo_id("team", "created")

    url = api.create_repo(repo_id)

    assert (url.endpoint, url.repo_id, url.repo_type) == (hub.url, repo_id, "model")
    assert url == f"{hub.url}/{repo_id}"
    commits = api.list_repo_commits(repo_id)
    assert [commit.title for commit in commits] == ["initial commit"]
    sha = commits[0].commit_id
    assert SHA.fullmatch(sha)
    info = api.model_info(repo_id)
    assert info.sha == sha
    assert info.siblings is not None
    assert [sibling.rfilename for sibling in info.siblings] == [".gitattributes"]
    refs = api.list_repo_refs(repo_id)
    assert [(branch.name, branch.ref, branch.target_commit) for branch in refs.branches] == [
        ("main", "refs/heads/main", sha)
    ]
    assert (refs.tags, refs.converts) == ([], [])

    [entry] = list(api.list_repo_tree(repo_id))
    assert isinstance(entry, RepoFile)
    assert (entry.path, entry.lfs) == (".gitattributes", None)
    content = Path(
        api.hf_hub_download(repo_id, ".gitattributes", cache_dir=tmp_path / "client")
    ).read_bytes()
    assert entry.size == len(content)
    assert entry.blob_id == git_blob_oid(content)


def test_a_dataset_repo_is_not_a_model_repo(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = unique_repo_id("team", "dataset")

    url = api.create_repo(repo_id, repo_type="dataset")

    assert (url.repo_id, url.repo_type) == (repo_id, "dataset")
    assert url == f"{hub.url}/datasets/{repo_id}"
    info = api.dataset_info(repo_id)
    assert info.sha is not None
    assert SHA.fullmatch(info.sha)
    assert api.list_repo_files(repo_id, repo_type="dataset") == [".gitattributes"]
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo_id)


def test_creating_an_existing_repo_conflicts_unless_exist_ok(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("twice")
    sha = hub.head(repo_id)

    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(repo_id)
    assert status_of(conflict) == 409
    url = api.create_repo(repo_id, exist_ok=True)

    assert (url.repo_id, url.endpoint) == (repo_id, hub.url)
    assert hub.head(repo_id) == sha
    assert [commit.commit_id for commit in api.list_repo_commits(repo_id)] == [sha]


def test_a_viewer_cannot_create_a_repo(hub: Hub) -> None:
    repo_id = unique_repo_id("team", "by-viewer")

    with pytest.raises(HfHubHTTPError) as refused:
        hub.api("viewer").create_repo(repo_id)

    assert status_of(refused) == 403
    with pytest.raises(RepositoryNotFoundError):
        hub.api("developer").model_info(repo_id)


def test_delete_needs_a_maintainer_and_leaves_nothing_behind(hub: Hub) -> None:
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    repo_id = hub.new_repo("deleted")
    developer.upload_file(path_or_fileobj=b"content", path_in_repo="file.txt", repo_id=repo_id)

    with pytest.raises(HfHubHTTPError) as refused:
        developer.delete_repo(repo_id)
    assert status_of(refused) == 403
    assert "file.txt" in developer.list_repo_files(repo_id)

    maintainer.delete_repo(repo_id)

    with pytest.raises(RepositoryNotFoundError):
        developer.model_info(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        maintainer.delete_repo(repo_id)
    maintainer.delete_repo(repo_id, missing_ok=True)

    # The same name again is a new, empty repo.
    developer.create_repo(repo_id)
    assert developer.list_repo_files(repo_id) == [".gitattributes"]
    assert [commit.title for commit in developer.list_repo_commits(repo_id)] == ["initial commit"]


def test_uploading_to_a_missing_repo_is_repository_not_found(hub: Hub) -> None:
    repo_id = unique_repo_id("team", "never-created")

    with pytest.raises(RepositoryNotFoundError):
        hub.api("developer").upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id
        )
    with pytest.raises(RepositoryNotFoundError):
        hub.api("developer").model_info(repo_id)


def test_listings_show_the_repos_each_caller_may_read(hub: Hub) -> None:
    """`list_models` / `list_datasets` list hosted repos, filtered by what the caller may read;
    an author that is not a hosted project is a clear 501, not an empty list."""
    marker = uuid.uuid4().hex[:8]
    private = hub.new_repo(f"listed-{marker}")
    public = hub.new_repo(f"listed-{marker}", project="open")
    dataset = hub.new_repo(f"listed-{marker}", repo_type="dataset")

    def listed(principal: str, **filters: str) -> set[str]:
        models = hub.api(principal).list_models(search=marker, **filters)
        return {model.id for model in models}

    assert listed("viewer") == {private, public}
    assert listed("viewer", author="team") == {private}
    assert listed("outsider") == {public}
    assert listed("anonymous") == {public}
    assert listed("robot-other") == set()
    assert {item.id for item in hub.api("viewer").list_datasets(search=marker)} == {dataset}
    [info] = hub.api("viewer").list_models(author="team", search=marker)
    assert info.sha == hub.head(private)
    with pytest.raises(HfHubHTTPError) as refused:
        list(hub.api("viewer").list_models(author="openai-community"))
    assert status_of(refused) == 501


def blob_rows(hub: Hub, blob_id: str) -> tuple[int, int]:
    """(blob records, chunk records) of `blob_id` in the server's database."""
    with sqlite3.connect(hub.data_dir / "hubproxy.sqlite3") as connection:
        blobs = connection.execute("SELECT COUNT(*) FROM blobs WHERE blob_id = ?", (blob_id,))
        chunks = connection.execute("SELECT COUNT(*) FROM chunks WHERE blob_id = ?", (blob_id,))
        return int(blobs.fetchone()[0]), int(chunks.fetchone()[0])


@pytest.mark.sqlite_file
def test_cache_gc_deletes_the_files_of_deleted_repos_only(hub: Hub, tmp_path: Path) -> None:
    """After `delete_repo`, `hubproxy cache gc` deletes the files only that repo held (also the
    content of a refused commit); a file another repo still has stays, and still downloads."""
    api, maintainer = hub.api("developer"), hub.api("maintainer")
    doomed, kept, again = hub.new_repo("doomed"), hub.new_repo("kept"), hub.new_repo("again")
    shared, alone = random_bytes(3000), random_bytes(2000)
    with xet_disabled():
        for repo_id, files in ((doomed, (shared, alone)), (kept, (shared,))):
            operations = [
                CommitOperationAdd(f"file-{number}.bin", content)
                for number, content in enumerate(files)
            ]
            api.create_commit(repo_id, operations, commit_message="files")
    maintainer.delete_repo(doomed)
    alone_blob, shared_blob = f"sha256:{sha256(alone)}", f"sha256:{sha256(shared)}"
    assert blob_rows(hub, alone_blob)[1] > 0

    collected = subprocess.run(
        [sys.executable, "-m", "hubproxy", "cache", "gc", "--json", "--hosted-grace", "0",
         "--data-dir", str(hub.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert collected.returncode == 0, collected.stderr
    assert json.loads(collected.stdout)["hosted"]["deleted"] >= 1
    assert blob_rows(hub, alone_blob) == (0, 0)
    assert blob_rows(hub, shared_blob)[1] > 0
    for number, (repo_id, content) in enumerate(((kept, shared), (again, alone))):
        if repo_id == again:
            # The server still remembered the deleted file: it must store it anew.
            with xet_disabled():
                api.upload_file(path_or_fileobj=alone, path_in_repo="file-0.bin", repo_id=again)
        path = hf_hub_download(
            repo_id, "file-0.bin", endpoint=hub.url, token=hub.tokens["developer"],
            cache_dir=tmp_path / str(number),
        )  # fmt: skip
        assert sha256(Path(path).read_bytes()) == sha256(content)
