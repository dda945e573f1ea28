"""Commits, refs and files as huggingface.co words and orders them, through the real client:
`Reference refs/heads/x already exists`, `Invalid rev id: …`, `Cannot delete refs/heads/main`,
the 412 text of a stale `parentCommit`, a missing revision (404) before an invalid tag name
(400), tags on a (short) commit oid, `super_squash_history`, implicit folder deletes, paths
with backslashes and `..` (422), `expand=True` listings with `lastCommit`, and card metadata
validated by `validate-yaml` and at commit time.
"""

import json
import uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, RepoFile, RepoFolder
from huggingface_hub.errors import (
    BadRequestError,
    HfHubHTTPError,
    RevisionNotFoundError,
)

from tests.hub.conftest import Hub


def status_of(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert error.value.response is not None
    return error.value.response.status_code


def raw_commit(hub: Hub, repo_id: str, lines: list[dict[str, object]]) -> httpx.Response:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    return httpx.post(
        f"{hub.url}/api/models/{repo_id}/commit/main",
        content=body.encode(),
        headers={**hub.headers("maintainer"), "Content-Type": "application/x-ndjson"},
        timeout=30,
    )


HEADER = {"key": "header", "value": {"summary": "raw"}}


def test_ref_errors_are_worded_and_ordered_as_on_huggingface_co(hub: Hub) -> None:
    api = hub.api("maintainer")
    repo_id = hub.new_repo("refs")
    api.create_branch(repo_id, branch="cool-branch")

    with pytest.raises(HfHubHTTPError, match=r"Reference refs/heads/cool-branch already exists"):
        api.create_branch(repo_id, branch="cool-branch")
    with pytest.raises(HfHubHTTPError, match=r"Reference refs/heads/main already exists") as main:
        api.create_branch(repo_id, branch="main")
    assert status_of(main) == 409
    api.create_branch(repo_id, branch="cool-branch", exist_ok=True)
    with pytest.raises(HfHubHTTPError, match="Cannot delete refs/heads/main"):
        api.delete_branch(repo_id, branch="main")
    with pytest.raises(HfHubHTTPError, match="Invalid rev id"):
        api.delete_branch(repo_id, branch="missing-branch")
    api.create_tag(repo_id, tag="cool-tag")
    with pytest.raises(HfHubHTTPError, match="Invalid rev id"):
        api.delete_branch(repo_id, branch="cool-tag")  # a tag is not a branch
    api.create_branch(repo_id, branch="cool-tag")  # a branch may share a tag's name
    with pytest.raises(HfHubHTTPError, match="Reference refs/tags/cool-tag already exists"):
        api.create_tag(repo_id, tag="cool-tag")

    # A missing revision is reported before an invalid tag name.
    with pytest.raises(RevisionNotFoundError):
        api.create_tag(repo_id, tag="invalid tag", revision="foobar")
    with pytest.raises(BadRequestError):
        api.create_tag(repo_id, tag="invalid tag")
    with pytest.raises(RevisionNotFoundError):
        api.delete_tag(repo_id, tag="v0")


def test_tags_on_commit_oids_long_and_short(hub: Hub) -> None:
    api = hub.api("maintainer")
    repo_id = hub.new_repo("oids")
    first = api.create_commit(
        repo_id, [CommitOperationAdd("readme.md", b"one")], commit_message="one"
    ).oid
    second = api.create_commit(
        repo_id, [CommitOperationAdd("config.json", b"{}")], commit_message="two"
    ).oid

    api.create_tag(repo_id, tag="commit_1", revision=first)
    api.create_tag(repo_id, tag="commit_2", revision=second[:7])

    assert api.model_info(repo_id, revision="commit_1").sha == first
    assert api.model_info(repo_id, revision="commit_2").sha == second
    assert api.model_info(repo_id, revision=first[:10]).sha == first


def test_a_stale_parent_commit_is_a_412_in_huggingface_cos_words(hub: Hub) -> None:
    api = hub.api("maintainer")
    repo_id = hub.new_repo("stale")
    parent = hub.head(repo_id)
    api.upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id=repo_id)

    with pytest.raises(HfHubHTTPError) as stale:
        api.create_commit(
            repo_id,
            [CommitOperationAdd("buffer", b"data")],
            commit_message="late",
            parent_commit=parent,
        )
    assert status_of(stale) == 412
    assert "A commit has happened since" in str(stale.value)
    assert (
        "The branch was updated since you opened this page. Please refresh and try again."
        in str(stale.value)
    )


def test_super_squash_history_leaves_one_commit_with_the_same_files(hub: Hub) -> None:
    api = hub.api("maintainer")
    repo_id = hub.new_repo("squash")
    for number in range(3):
        api.upload_file(
            path_or_fileobj=f"v{number}".encode(), path_in_repo="file.txt", repo_id=repo_id
        )
    files = sorted(api.list_repo_files(repo_id))

    api.super_squash_history(repo_id, commit_message="Squashed")

    commits = api.list_repo_commits(repo_id)
    assert [commit.title for commit in commits] == ["Squashed"]
    assert sorted(api.list_repo_files(repo_id)) == files
    with pytest.raises(HfHubHTTPError) as refused:
        hub.api("developer").super_squash_history(repo_id)
    assert status_of(refused) == 403


def test_folders_are_deleted_with_or_without_a_slash(hub: Hub) -> None:
    api = hub.api("maintainer")
    repo_id = hub.new_repo("folders")
    api.create_commit(
        repo_id,
        [
            CommitOperationAdd("1/a.txt", b"a"),
            CommitOperationAdd("1/b/c.txt", b"c"),
            CommitOperationAdd("2/d.txt", b"d"),
            CommitOperationAdd("keep.txt", b"k"),
        ],
        commit_message="tree",
    )

    api.delete_folder("1", repo_id=repo_id)
    api.delete_file("2", repo_id=repo_id)  # a file line naming a folder deletes it

    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "keep.txt"]


def test_backslashes_are_legal_and_dot_dot_is_a_422(hub: Hub, tmp_path: Path) -> None:
    api = hub.api("maintainer")
    repo_id = hub.new_repo("paths")
    api.upload_file(path_or_fileobj=b"slashy", path_in_repo="a\\b.txt", repo_id=repo_id)

    assert "a\\b.txt" in api.list_repo_files(repo_id)
    path = api.hf_hub_download(repo_id, "a\\b.txt", cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"slashy"
    for bad in ("../x.txt", "a/../x.txt"):
        answer = raw_commit(
            hub,
            repo_id,
            [
                HEADER,
                {"key": "file", "value": {"path": bad, "content": "eA==", "encoding": "base64"}},
            ],
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["x-error-code"]


def test_expanded_listings_carry_the_last_commit_of_each_path(hub: Hub) -> None:
    api = hub.api("maintainer")
    repo_id = hub.new_repo("expand")
    first = api.create_commit(
        repo_id,
        [CommitOperationAdd("sub/a.txt", b"a"), CommitOperationAdd("b.txt", b"b")],
        commit_message="first",
    ).oid
    second = api.create_commit(
        repo_id, [CommitOperationAdd("b.txt", b"b2")], commit_message="second"
    ).oid

    entries = {entry.path: entry for entry in api.list_repo_tree(repo_id, expand=True)}
    assert isinstance(entries["b.txt"], RepoFile)
    assert entries["b.txt"].last_commit is not None
    assert entries["b.txt"].last_commit.oid == second
    assert entries["b.txt"].last_commit.title == "second"
    assert entries["b.txt"].security is not None
    assert isinstance(entries["sub"], RepoFolder)
    assert entries["sub"].last_commit is not None
    assert entries["sub"].last_commit.oid == first
    assert entries[".gitattributes"].last_commit is not None
    assert entries[".gitattributes"].last_commit.title == "initial commit"

    [info] = api.get_paths_info(repo_id, ["sub/a.txt"], expand=True)
    assert isinstance(info, RepoFile)
    assert info.last_commit is not None
    assert info.last_commit.oid == first
    plain = api.get_paths_info(repo_id, ["sub/a.txt"])[0]
    assert plain.last_commit is None


def test_card_metadata_is_validated_like_huggingface_co(hub: Hub) -> None:
    api = hub.api("maintainer")
    repo_id = hub.new_repo(f"card-{uuid.uuid4().hex[:6]}")
    invalid = b"---\nlicense: [mit, {a: b}]\ntags: 12\n---\n# Card\n"

    with pytest.raises(ValueError, match=r"Invalid metadata in README\.md") as refused:
        api.upload_file(path_or_fileobj=invalid, path_in_repo="README.md", repo_id=repo_id)
    assert '"license" must be a string or a list of strings' in str(refused.value)
    # The commit itself refuses it too (a client that skips validate-yaml).
    answer = raw_commit(
        hub,
        repo_id,
        [
            HEADER,
            {
                "key": "file",
                "value": {
                    "path": "README.md",
                    "content": "LS0tCmxpY2Vuc2U6IFttaXQsIHthOiBifV0KLS0tCg==",
                    "encoding": "base64",
                },
            },
        ],
    )
    assert answer.status_code == 400
    assert "Invalid metadata in README.md" in answer.text

    broken = httpx.post(
        f"{hub.url}/api/validate-yaml",
        json={"content": "---\nlicense: [unclosed\n---\n", "repoType": "model"},
        timeout=30,
    )
    assert broken.status_code == 400
    assert broken.json()["errors"][0]["message"].startswith("Invalid YAML")
    empty = httpx.post(
        f"{hub.url}/api/validate-yaml", json={"content": "# no metadata"}, timeout=30
    )
    assert empty.status_code == 200
    assert empty.json()["warnings"][0]["message"].startswith("empty or missing yaml metadata")
    good = b"---\nlicense: apache-2.0\ntags:\n- test\n---\n# Card\n"
    api.upload_file(path_or_fileobj=good, path_in_repo="README.md", repo_id=repo_id)
