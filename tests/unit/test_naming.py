"""Names from URLs: repo ids, revisions and paths are validated before they reach anything."""

import pytest

from hubproxy.errors import BadRequest
from hubproxy.naming import RepoRef, path_in_repo, repo_ref, revision


@pytest.mark.parametrize("repo_id", ["gpt2", "ns/name", "a.b_c-d/x.y", "A1/B2", "_private/x"])
def test_valid_repo_ids(repo_id: str) -> None:
    assert repo_ref("model", repo_id) == RepoRef("model", repo_id)


@pytest.mark.parametrize(
    "repo_id",
    [
        "a/b/c",
        "../x",
        "a--b/c",
        "a/b..c",
        "ns/name.git",
        "x" * 97,
        "/name",
        "ns/",
        "",
        "a b/c",
        "ns/na\x00me",
        "-ns/x",
        "ns/x-",
    ],
)
def test_invalid_repo_ids(repo_id: str) -> None:
    with pytest.raises(BadRequest):
        repo_ref("model", repo_id)


def test_url_path() -> None:
    assert repo_ref("dataset", "ns/d").url_path == "datasets/ns/d"
    assert repo_ref("model", "ns/m").url_path == "ns/m"


@pytest.mark.parametrize(
    "value",
    [
        "main",
        "refs/pr/1",
        "refs/convert/parquet",
        "v1.0",
        "0123456789abcdef0123456789abcdef01234567",
    ],
)
def test_valid_revisions(value: str) -> None:
    assert revision(value) == value


@pytest.mark.parametrize("value", ["", "..", "a/../b", "/main", "main/", "a\nb", "x" * 300])
def test_invalid_revisions(value: str) -> None:
    with pytest.raises(BadRequest):
        revision(value)


@pytest.mark.parametrize("value", ["a/b.txt", "a dir/f#1?.txt", "config.json", "ünïcode/名前.txt"])
def test_valid_paths(value: str) -> None:
    assert path_in_repo(value) == value


@pytest.mark.parametrize("value", ["../x", "/abs", "a//b", "a/./b", "a/\x00", "", "a/.."])
def test_invalid_paths(value: str) -> None:
    with pytest.raises(BadRequest):
        path_in_repo(value)


def test_root_path() -> None:
    assert path_in_repo("", allow_root=True) == ""
    assert path_in_repo("sub/dir/", allow_root=True) == "sub/dir"
