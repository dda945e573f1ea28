"""Reads of a hosted repo with every huggingface_hub read path, byte-exact by sha256:
`hf_hub_download` at a branch and at exact commits, `snapshot_download`, file metadata (ETag is
the sha256 of an LFS file and the git oid of a regular one, exact size, commit), listings
(`list_repo_files`, `list_repo_tree` recursive or not, `get_paths_info`, `list_repo_refs`,
`list_repo_commits`, `model_info`), HfFileSystem `ls` and ranged reads, `file_exists`, raw
Range requests (206 + Content-Range), the 404s clients rely on, and dataset repos.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    HfFileSystem,
    RepoFile,
    RepoFolder,
    hf_hub_url,
)
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

from tests.hub.conftest import (
    LFS_THRESHOLD,
    Hub,
    git_blob_oid,
    lfs_pointer,
    random_bytes,
    sha256,
    xet_disabled,
)

# Larger than two test chunks (256 KiB), so ranges cross chunk boundaries.
WEIGHTS = random_bytes(600 * 1024 + 123)
CONFIG_V1 = b'{"model_type": "tiny", "version": 1}\n'
CONFIG_V2 = b'{"model_type": "tiny", "version": 2}\n'
TOKENIZER = b'{"vocab": ["a", "b"]}\n'
SMALL_LFS = random_bytes(LFS_THRESHOLD + 1)


@dataclass(frozen=True)
class Published:
    """A repo with two commits: `first` holds FIRST_FILES, `second` changes config.json and
    adds `extra.bin`."""

    repo_id: str
    first: str
    second: str

    @property
    def files(self) -> dict[str, bytes]:
        return {**FIRST_FILES, "config.json": CONFIG_V2, "extra.bin": SMALL_LFS}


FIRST_FILES = {
    "config.json": CONFIG_V1,
    "weights.bin": WEIGHTS,
    "nested/dir/tokenizer.json": TOKENIZER,
}


@pytest.fixture(scope="module")
def published(hub: Hub) -> Published:
    api = hub.api("developer")
    repo_id = hub.new_repo("reads")
    with xet_disabled():
        first = api.create_commit(
            repo_id,
            [CommitOperationAdd(path, content) for path, content in FIRST_FILES.items()],
            commit_message="First version",
        )
        second = api.create_commit(
            repo_id,
            [
                CommitOperationAdd("config.json", CONFIG_V2),
                CommitOperationAdd("extra.bin", SMALL_LFS),
            ],
            commit_message="Second version",
        )
    return Published(repo_id, first.oid, second.oid)


def downloaded(path: str) -> str:
    return sha256(Path(path).read_bytes())


def test_hf_hub_download_at_a_branch_and_at_exact_commits(
    hub: Hub, published: Published, tmp_path: Path
) -> None:
    api = hub.api("developer")
    repo_id = published.repo_id

    def fetch(filename: str, revision: str | None) -> str:
        return downloaded(
            api.hf_hub_download(repo_id, filename, revision=revision, cache_dir=tmp_path)
        )

    assert fetch("config.json", None) == sha256(CONFIG_V2)
    assert fetch("config.json", "main") == sha256(CONFIG_V2)
    assert fetch("config.json", published.second) == sha256(CONFIG_V2)
    assert fetch("config.json", published.first) == sha256(CONFIG_V1)
    assert fetch("weights.bin", published.first) == sha256(WEIGHTS)
    assert fetch("weights.bin", None) == sha256(WEIGHTS)
    assert fetch("nested/dir/tokenizer.json", None) == sha256(TOKENIZER)
    # The client names the snapshot after the commit the server reported.
    path = api.hf_hub_download(repo_id, "extra.bin", cache_dir=tmp_path / "other")
    assert Path(path).parent.name == published.second
    assert downloaded(path) == sha256(SMALL_LFS)


def test_snapshot_download_gets_every_file(hub: Hub, published: Published, tmp_path: Path) -> None:
    api = hub.api("developer")

    folder = Path(api.snapshot_download(published.repo_id, cache_dir=tmp_path))
    old = Path(
        api.snapshot_download(published.repo_id, revision=published.first, cache_dir=tmp_path)
    )

    assert folder.name == published.second
    found = {
        str(path.relative_to(folder)): sha256(path.read_bytes())
        for path in folder.rglob("*")
        if path.is_file()
    }
    assert found.pop(".gitattributes")
    assert found == {name: sha256(content) for name, content in published.files.items()}
    assert old.name == published.first
    assert sha256((old / "config.json").read_bytes()) == sha256(CONFIG_V1)
    assert not (old / "extra.bin").exists()


def test_file_metadata(hub: Hub, published: Published) -> None:
    api = hub.api("developer")

    def metadata(
        filename: str, revision: str = "main"
    ) -> tuple[str | None, int | None, str | None]:
        url = hf_hub_url(published.repo_id, filename, revision=revision, endpoint=hub.url)
        found = api.get_hf_file_metadata(url=url)
        assert found.xet_file_data is None
        return found.etag, found.size, found.commit_hash

    assert metadata("weights.bin") == (sha256(WEIGHTS), len(WEIGHTS), published.second)
    assert metadata("config.json") == (git_blob_oid(CONFIG_V2), len(CONFIG_V2), published.second)
    assert metadata("config.json", published.first) == (
        git_blob_oid(CONFIG_V1), len(CONFIG_V1), published.first,
    )  # fmt: skip


def test_head_and_range_requests(hub: Hub, published: Published) -> None:
    url = f"{hub.url}/{published.repo_id}/resolve/main/weights.bin"
    with httpx.Client(headers=hub.headers(), timeout=30, follow_redirects=True) as client:
        head = client.head(url)
        assert head.status_code == 200
        assert head.headers["x-repo-commit"] == published.second
        assert head.headers["content-length"] == str(len(WEIGHTS))
        assert head.headers["etag"].strip('"') == sha256(WEIGHTS)

        start, end = 256 * 1024 - 100, 512 * 1024 + 99  # across two chunk boundaries
        ranged = client.get(url, headers={"Range": f"bytes={start}-{end}"})
        assert ranged.status_code == 206
        assert ranged.headers["content-range"] == f"bytes {start}-{end}/{len(WEIGHTS)}"
        assert ranged.content == WEIGHTS[start : end + 1]

        suffix = client.get(url, headers={"Range": "bytes=-10"})
        assert suffix.status_code == 206
        assert suffix.content == WEIGHTS[-10:]

        regular = client.get(
            f"{hub.url}/{published.repo_id}/resolve/{published.first}/config.json",
            headers={"Range": "bytes=2-11"},
        )
        assert regular.status_code == 206
        assert regular.headers["content-range"] == f"bytes 2-11/{len(CONFIG_V1)}"
        assert regular.content == CONFIG_V1[2:12]


def test_listings(hub: Hub, published: Published) -> None:
    api = hub.api("developer")
    repo_id = published.repo_id

    assert api.list_repo_files(repo_id) == sorted([".gitattributes", *published.files])
    assert api.list_repo_files(repo_id, revision=published.first) == sorted(
        [".gitattributes", *FIRST_FILES]
    )
    top = {item.path: item for item in api.list_repo_tree(repo_id)}
    assert sorted(top) == [".gitattributes", "config.json", "extra.bin", "nested", "weights.bin"]
    assert isinstance(top["nested"], RepoFolder)
    weights = top["weights.bin"]
    assert isinstance(weights, RepoFile)
    assert weights.size == len(WEIGHTS)
    assert weights.blob_id == git_blob_oid(lfs_pointer(WEIGHTS))
    assert weights.lfs is not None
    assert weights.lfs.sha256 == sha256(WEIGHTS)
    config = top["config.json"]
    assert isinstance(config, RepoFile)
    assert (config.size, config.blob_id, config.lfs) == (
        len(CONFIG_V2), git_blob_oid(CONFIG_V2), None,
    )  # fmt: skip
    recursive = {item.path: type(item) for item in api.list_repo_tree(repo_id, recursive=True)}
    assert recursive == {
        ".gitattributes": RepoFile,
        "config.json": RepoFile,
        "extra.bin": RepoFile,
        "weights.bin": RepoFile,
        "nested": RepoFolder,
        "nested/dir": RepoFolder,
        "nested/dir/tokenizer.json": RepoFile,
    }
    inside = [item.path for item in api.list_repo_tree(repo_id, path_in_repo="nested/dir")]
    assert inside == ["nested/dir/tokenizer.json"]

    paths = api.get_paths_info(
        repo_id, ["config.json", "nested", "weights.bin", "missing.txt"], revision=published.first
    )
    by_path = {item.path: item for item in paths}
    assert sorted(by_path) == ["config.json", "nested", "weights.bin"]
    assert isinstance(by_path["nested"], RepoFolder)
    first_config = by_path["config.json"]
    assert isinstance(first_config, RepoFile)
    assert first_config.blob_id == git_blob_oid(CONFIG_V1)


def test_refs_commits_and_info(hub: Hub, published: Published) -> None:
    api = hub.api("developer")
    repo_id = published.repo_id

    refs = api.list_repo_refs(repo_id)
    assert [(ref.name, ref.target_commit) for ref in refs.branches] == [("main", published.second)]
    assert (refs.tags, refs.converts) == ([], [])

    commits = api.list_repo_commits(repo_id)
    assert [commit.title for commit in commits] == [
        "Second version", "First version", "initial commit",
    ]  # fmt: skip
    assert [commit.commit_id for commit in commits[:2]] == [published.second, published.first]
    assert "developer" in commits[0].authors
    assert commits[0].created_at >= commits[1].created_at >= commits[2].created_at
    older = api.list_repo_commits(repo_id, revision=published.first)
    assert [commit.commit_id for commit in older][:1] == [published.first]
    assert len(older) == 2

    info = api.model_info(repo_id)
    assert info.sha == published.second
    assert info.siblings is not None
    assert sorted(sibling.rfilename for sibling in info.siblings) == sorted(
        [".gitattributes", *published.files]
    )
    assert api.model_info(repo_id, revision=published.first).sha == published.first


def test_hf_file_system_lists_and_reads_ranges(hub: Hub, published: Published) -> None:
    token = hub.tokens["developer"]
    assert token is not None
    filesystem = HfFileSystem(endpoint=hub.url, token=token, skip_instance_cache=True)
    repo_id = published.repo_id

    listing: dict[str, dict[str, Any]] = {}
    for entry in filesystem.ls(repo_id, detail=True):
        assert isinstance(entry, dict)
        listing[entry["name"]] = entry
    assert sorted(listing) == sorted(
        f"{repo_id}/{name}"
        for name in (".gitattributes", "config.json", "extra.bin", "nested", "weights.bin")
    )
    assert listing[f"{repo_id}/weights.bin"]["size"] == len(WEIGHTS)
    assert listing[f"{repo_id}/nested"]["type"] == "directory"

    with filesystem.open(f"{repo_id}/weights.bin", "rb", block_size=4096) as handle:
        handle.seek(300_000)
        assert handle.read(5000) == WEIGHTS[300_000:305_000]
    assert filesystem.cat_file(f"{repo_id}/config.json") == CONFIG_V2
    assert filesystem.cat_file(f"{repo_id}@{published.first}/config.json") == CONFIG_V1


def test_file_exists_and_the_404s_clients_rely_on(
    hub: Hub, published: Published, tmp_path: Path
) -> None:
    api = hub.api("developer")
    repo_id = published.repo_id

    assert api.file_exists(repo_id, "weights.bin")
    assert api.file_exists(repo_id, "nested/dir/tokenizer.json")
    assert not api.file_exists(repo_id, "missing.txt")
    assert not api.file_exists(repo_id, "extra.bin", revision=published.first)
    with pytest.raises(EntryNotFoundError):
        api.hf_hub_download(repo_id, "missing.txt", cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        api.hf_hub_download(repo_id, "config.json", revision="no-such-branch", cache_dir=tmp_path)
    missing = httpx.head(
        f"{hub.url}/{repo_id}/resolve/main/missing.txt", headers=hub.headers(), timeout=30
    )
    assert missing.status_code == 404
    assert missing.headers["x-error-code"] == "EntryNotFound"
    assert missing.headers["x-repo-commit"] == published.second


def test_dataset_repos_read_like_model_repos(hub: Hub, tmp_path: Path) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("data", repo_type="dataset")
    rows = b"".join(b'{"text": "row %d"}\n' % index for index in range(200))
    with xet_disabled():
        info = api.upload_file(
            path_or_fileobj=rows, path_in_repo="data/train.jsonl", repo_id=repo_id,
            repo_type="dataset",
        )  # fmt: skip
    assert len(rows) >= LFS_THRESHOLD

    path = api.hf_hub_download(repo_id, "data/train.jsonl", repo_type="dataset", cache_dir=tmp_path)
    assert downloaded(path) == sha256(rows)
    folder = api.snapshot_download(repo_id, repo_type="dataset", cache_dir=tmp_path / "snapshot")
    assert sha256((Path(folder) / "data/train.jsonl").read_bytes()) == sha256(rows)
    assert api.dataset_info(repo_id).sha == info.oid
    token = hub.tokens["developer"]
    assert token is not None
    filesystem = HfFileSystem(endpoint=hub.url, token=token, skip_instance_cache=True)
    assert filesystem.ls(f"datasets/{repo_id}/data", detail=False) == [
        f"datasets/{repo_id}/data/train.jsonl"
    ]
    with filesystem.open(f"datasets/{repo_id}/data/train.jsonl", "rb") as handle:
        handle.seek(19)
        assert handle.read(19) == rows[19:38]
    assert os.path.getsize(path) == len(rows)
