"""Hosted repos name blobs, trees and commits exactly as git does: checked against `git`."""

import os
import subprocess
from pathlib import Path

from hubproxy.hub.gitobjects import Signature, commit_id, git_blob_oid, lfs_pointer, tree_ids

FILES = {
    "README.md": b"# model\n",
    "config.json": b'{"a": 1}',
    "sub/dir/weights.bin": bytes(range(256)) * 3,
    "sub.txt": b"sorted before sub/ in git's order",
    "sub/z": b"",
    "a-b/c": b"dash sorts before slash",
}


def git(repository: Path, *arguments: str, stdin: bytes | None = None) -> str:
    environment = {
        **os.environ,
        "GIT_AUTHOR_NAME": "alice",
        "GIT_AUTHOR_EMAIL": "alice@hubproxy",
        "GIT_AUTHOR_DATE": "1700000000 +0000",
        "GIT_COMMITTER_NAME": "alice",
        "GIT_COMMITTER_EMAIL": "alice@hubproxy",
        "GIT_COMMITTER_DATE": "1700000000 +0000",
    }
    completed = subprocess.run(
        ["git", *arguments], cwd=repository, input=stdin, capture_output=True, check=True,
        env=environment,
    )  # fmt: skip
    return completed.stdout.decode().strip()


def test_ids_match_git(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    for path, content in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
        assert git_blob_oid(content) == git(tmp_path, "hash-object", path)
    git(tmp_path, "add", "-A")
    root = git(tmp_path, "write-tree")
    ids = tree_ids({path: git_blob_oid(content) for path, content in FILES.items()})
    assert ids[""] == root
    assert ids["sub/dir"] == git(tmp_path, "rev-parse", f"{root}:sub/dir")
    assert ids["sub"] == git(tmp_path, "rev-parse", f"{root}:sub")
    first = git(tmp_path, "commit-tree", root, "-m", "initial commit")
    author = Signature("alice", "alice@hubproxy", 1_700_000_000)
    assert commit_id(root, [], author, "initial commit") == first
    message = "Upload weights\n\nwith a description"
    second = git(tmp_path, "commit-tree", root, "-p", first, stdin=message.encode() + b"\n")
    assert commit_id(root, [first], author, message) == second


def test_lfs_pointer_is_what_git_lfs_writes() -> None:
    sha256 = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
    pointer = lfs_pointer(sha256, 12345)
    assert pointer == (
        b"version https://git-lfs.github.com/spec/v1\n"
        b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        b"size 12345\n"
    )
    assert tree_ids({}) == {"": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"}
