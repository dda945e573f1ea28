"""Uploads with the real huggingface_hub client: `upload_file`, `upload_folder` (nested
directories, README.md, both the Xet pipeline with small files and the legacy single-commit path
with an LFS file) and `create_commit` with add, delete (file and folder) and copy (regular and
LFS) operations. Preupload splits files at the threshold; small files travel "regular", large
ones through the LFS batch API. Commits are real git objects: a regular file's tree entry oid is
its `git hash-object`, an LFS file's is the oid of its git-lfs pointer, a directory's is the git
tree of its entries. With Xet enabled (the client default) "lfs" files go through hubproxy's Xet
CAS (`tests/xet`).
"""

import base64
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    RepoFile,
)
from huggingface_hub.utils._runtime import is_xet_available

from tests.hub.conftest import (
    LFS_THRESHOLD,
    Hub,
    git_blob_oid,
    git_tree_oid,
    lfs_pointer,
    random_bytes,
    sha256,
    write_files,
    xet_disabled,
)

SHA = re.compile(r"[0-9a-f]{40}")
README = b"---\nlicense: apache-2.0\ntags:\n- test\n---\n# A model\n"


LFS_BYTES = 'hubproxy_hub_uploaded_bytes_total{transfer="lfs"}'
COMMITS_CREATED = 'hubproxy_hub_commits_total{outcome="created"}'


def metric(hub: Hub, sample: str) -> float:
    """A sample of the server's /metrics (0 before it was first counted)."""
    for line in httpx.get(f"{hub.url}/metrics", timeout=30).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def download(hub: Hub, repo_id: str, filename: str, cache_dir: Path, **options: Any) -> bytes:
    path = hub.api("developer").hf_hub_download(repo_id, filename, cache_dir=cache_dir, **options)
    return Path(path).read_bytes()


def tree_json(hub: Hub, repo_id: str, path: str = "", revision: str = "main") -> list[Any]:
    """The raw JSON of `GET /api/models/{repo}/tree/{revision}/{path}` (one page)."""
    url = f"{hub.url}/api/models/{repo_id}/tree/{revision}" + (f"/{path}" if path else "")
    response = httpx.get(url, headers=hub.headers(), timeout=30)
    assert response.status_code == 200, response.text
    entries: list[Any] = response.json()
    return entries


def test_preupload_answers_regular_below_the_threshold_and_lfs_from_it(hub: Hub) -> None:
    repo_id = hub.new_repo("preupload")
    sizes = {
        "empty.txt": 0,
        "tiny.txt": 10,
        "below.txt": LFS_THRESHOLD - 1,
        "at.txt": LFS_THRESHOLD,
        "above.txt": 5 * LFS_THRESHOLD,
    }
    files = [
        {"path": path, "sample": base64.b64encode(b"a" * min(size, 512)).decode(), "size": size}
        for path, size in sizes.items()
    ]

    response = httpx.post(
        f"{hub.url}/api/models/{repo_id}/preupload/main",
        json={"files": files},
        headers=hub.headers(),
        timeout=30,
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    modes = {
        entry["path"]: (entry["uploadMode"], entry["shouldIgnore"]) for entry in answer["files"]
    }
    assert modes == {
        "empty.txt": ("regular", False),
        "tiny.txt": ("regular", False),
        "below.txt": ("regular", False),
        "at.txt": ("lfs", False),
        "above.txt": ("lfs", False),
    }
    assert answer["commitOid"] == hub.head(repo_id)


def test_a_small_file_is_committed_as_a_regular_git_blob(hub: Hub, tmp_path: Path) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("regular")
    # Text (a NUL byte would make it binary, hence LFS) under the size threshold, in a path no
    # `.gitattributes` pattern tracks.
    content = random_bytes(LFS_THRESHOLD).hex().encode()[: LFS_THRESHOLD - 1]
    parent = hub.head(repo_id)

    info = api.upload_file(
        path_or_fileobj=content, path_in_repo="small.txt", repo_id=repo_id, commit_message="Add it"
    )

    assert SHA.fullmatch(info.oid)
    assert info.oid != parent
    assert info.commit_url.endswith(f"/{repo_id}/commit/{info.oid}")
    assert info.repo_url.repo_id == repo_id
    assert hub.head(repo_id) == info.oid
    [entry] = [item for item in tree_json(hub, repo_id) if item["path"] == "small.txt"]
    assert entry == {
        **entry,
        "type": "file",
        "oid": git_blob_oid(content),
        "size": len(content),
    }
    assert "lfs" not in entry
    assert sha256(download(hub, repo_id, "small.txt", tmp_path)) == sha256(content)
    commits = api.list_repo_commits(repo_id)
    assert [(commit.commit_id, commit.title) for commit in commits] == [
        (info.oid, "Add it"),
        (parent, "initial commit"),
    ]


@pytest.mark.usefixtures("no_xet")
def test_a_large_file_is_committed_as_an_lfs_pointer(hub: Hub, tmp_path: Path) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("lfs")
    content = random_bytes(LFS_THRESHOLD)
    pointer = lfs_pointer(content)
    lfs_bytes, commits = metric(hub, LFS_BYTES), metric(hub, COMMITS_CREATED)

    info = api.upload_file(path_or_fileobj=content, path_in_repo="big.bin", repo_id=repo_id)

    # The hub's own counters (tests run one at a time against the shared server).
    assert metric(hub, LFS_BYTES) - lfs_bytes == len(content)
    assert metric(hub, COMMITS_CREATED) - commits == 1

    assert SHA.fullmatch(info.oid)
    assert hub.head(repo_id) == info.oid
    [entry] = [item for item in tree_json(hub, repo_id) if item["path"] == "big.bin"]
    assert (entry["type"], entry["size"]) == ("file", len(content))
    assert entry["oid"] == git_blob_oid(pointer)
    assert entry["lfs"] == {
        "oid": sha256(content),
        "size": len(content),
        "pointerSize": len(pointer),
    }
    assert "xetHash" not in entry
    [repo_file] = [item for item in api.list_repo_tree(repo_id) if item.path == "big.bin"]
    assert isinstance(repo_file, RepoFile)
    assert repo_file.lfs is not None
    assert (repo_file.lfs.sha256, repo_file.lfs.size, repo_file.lfs.pointer_size) == (
        sha256(content), len(content), len(pointer),
    )  # fmt: skip
    assert sha256(download(hub, repo_id, "big.bin", tmp_path)) == sha256(content)


def test_xet_write_tokens_are_real_and_preupload_no_longer_warns(hub: Hub) -> None:
    repo_id = hub.new_repo("xet")
    assert is_xet_available(), "hf_xet is installed and enabled by default"
    token_response = httpx.get(
        f"{hub.url}/api/models/{repo_id}/xet-write-token/main", headers=hub.headers(), timeout=30
    )
    assert token_response.status_code == 200, token_response.text
    body = token_response.json()
    assert set(body) == {"accessToken", "exp", "casUrl"}
    assert token_response.headers["x-xet-access-token"] == body["accessToken"]
    preupload = httpx.post(
        f"{hub.url}/api/models/{repo_id}/preupload/main",
        json={"files": [{"path": "big.bin", "size": 2 * LFS_THRESHOLD, "sample": ""}]},
        headers=hub.headers(),
        timeout=30,
    )
    assert preupload.json()["files"][0]["uploadMode"] == "lfs"
    assert "x-hf-warning" not in preupload.headers


FOLDER_SMALL = {
    "top.txt": b"top level\n",
    "README.md": README,
    "a/one.txt": b"one\n",
    "a/b/two.txt": b"two\n",
    "a/b/c/three.json": b'{"three": 3}\n',
}


@pytest.mark.parametrize("path", ["xet-pipeline", "legacy-with-lfs"])
def test_upload_folder_keeps_the_nested_layout(hub: Hub, tmp_path: Path, path: str) -> None:
    """With hf_xet the client's pipelined upload runs (small files only: all regular); without
    it, the legacy single commit with an LFS file among them."""
    api = hub.api("developer")
    repo_id = hub.new_repo("folder")
    files = dict(FOLDER_SMALL)
    if path == "legacy-with-lfs":
        files["a/b/weights.bin"] = random_bytes(3 * LFS_THRESHOLD)
    folder = write_files(tmp_path / "folder", files)

    if path == "legacy-with-lfs":
        with xet_disabled():
            info = api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="Folder")
    else:
        info = api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="Folder")

    assert hub.head(repo_id) == info.oid
    assert api.list_repo_files(repo_id) == sorted([".gitattributes", *files])
    for name, content in files.items():
        assert sha256(download(hub, repo_id, name, tmp_path / "client")) == sha256(content), name
    assert api.list_repo_commits(repo_id)[0].title == "Folder"


def test_validate_yaml_answers_json(hub: Hub) -> None:
    response = httpx.post(
        f"{hub.url}/api/validate-yaml",
        json={"content": README.decode(), "repoType": "model"},
        headers=hub.headers(),
        timeout=30,
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json(), dict)


@pytest.mark.usefixtures("no_xet")
def test_create_commit_adds_deletes_and_copies(hub: Hub, tmp_path: Path) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("operations")
    big = random_bytes(2 * LFS_THRESHOLD)
    first = {
        "keep.txt": b"keep\n",
        "old.txt": b"old\n",
        "small.txt": b"copy me\n",
        "big.bin": big,
        "dir/x.txt": b"x\n",
        "dir/sub/y.txt": b"y\n",
        "dirty.txt": b"not a folder\n",
    }
    api.create_commit(
        repo_id,
        [CommitOperationAdd(path, content) for path, content in first.items()],
        commit_message="First",
    )

    info = api.create_commit(
        repo_id,
        [
            CommitOperationAdd("new/added.txt", b"added\n"),
            CommitOperationDelete("old.txt"),
            CommitOperationDelete("dir/"),
            CommitOperationCopy("small.txt", "copies/small.txt"),
            CommitOperationCopy("big.bin", "copies/big.bin"),
        ],
        commit_message="Second",
    )

    assert hub.head(repo_id) == info.oid
    expected = {
        "keep.txt": b"keep\n",
        "small.txt": b"copy me\n",
        "big.bin": big,
        "dirty.txt": b"not a folder\n",
        "new/added.txt": b"added\n",
        "copies/small.txt": b"copy me\n",
        "copies/big.bin": big,
    }
    assert api.list_repo_files(repo_id) == sorted([".gitattributes", *expected])
    for name, content in expected.items():
        assert sha256(download(hub, repo_id, name, tmp_path / "client")) == sha256(content), name
    entries = {item["path"]: item for item in tree_json(hub, repo_id, "copies")}
    assert entries["copies/big.bin"]["lfs"]["oid"] == sha256(big)
    assert entries["copies/small.txt"]["oid"] == git_blob_oid(b"copy me\n")
    assert [commit.title for commit in api.list_repo_commits(repo_id)] == [
        "Second", "First", "initial commit",
    ]  # fmt: skip


@pytest.mark.usefixtures("no_xet")
def test_directory_entries_are_git_trees(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("trees")
    files = {
        "model/config.json": b'{"a": 1}\n',
        "model/weights.bin": random_bytes(LFS_THRESHOLD + 7),
        "model/sub/notes.txt": b"notes\n",
        "model/sub.txt": b"a file sorting next to the directory sub/\n",
    }
    api.create_commit(
        repo_id, [CommitOperationAdd(path, content) for path, content in files.items()],
        commit_message="Trees",
    )  # fmt: skip

    sub = tree_json(hub, repo_id, "model/sub")
    assert [(item["type"], item["path"]) for item in sub] == [("file", "model/sub/notes.txt")]
    sub_oid = git_tree_oid([("notes.txt", git_blob_oid(b"notes\n"), False)])
    model = {item["path"]: item for item in tree_json(hub, repo_id, "model")}
    assert model["model/sub"]["type"] == "directory"
    assert model["model/sub"]["oid"] == sub_oid
    model_oid = git_tree_oid(
        [
            ("config.json", git_blob_oid(files["model/config.json"]), False),
            ("weights.bin", git_blob_oid(lfs_pointer(files["model/weights.bin"])), False),
            ("sub", sub_oid, True),
            ("sub.txt", git_blob_oid(files["model/sub.txt"]), False),
        ]
    )
    root = {item["path"]: item for item in tree_json(hub, repo_id)}
    assert (root["model"]["type"], root["model"]["oid"]) == ("directory", model_oid)


def test_unusual_paths_and_an_empty_file(hub: Hub, tmp_path: Path) -> None:
    """Spaces, non-ASCII names, `#`, `?` and `%` survive URL encoding both ways; an empty file
    is a real empty file (HEAD says 0 bytes, the client writes 0 bytes)."""
    api = hub.api("developer")
    repo_id = hub.new_repo("paths")
    files = {
        "with space/naïve 文件.txt": b"unicode\n",
        "odd/hash#and?query%20.txt": b"odd\n",
        "empty.txt": b"",
    }

    api.create_commit(
        repo_id, [CommitOperationAdd(path, content) for path, content in files.items()],
        commit_message="Unusual",
    )  # fmt: skip

    assert api.list_repo_files(repo_id) == sorted([".gitattributes", *files])
    for name, content in files.items():
        assert sha256(download(hub, repo_id, name, tmp_path)) == sha256(content), name
    [entry] = [item for item in tree_json(hub, repo_id) if item["path"] == "empty.txt"]
    assert (entry["size"], entry["oid"]) == (0, git_blob_oid(b""))
