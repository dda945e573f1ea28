"""Branches and tags of hosted repos with the real client: create a branch from `main` or from a
commit, 409 on an existing one (`exist_ok=True` passes), commit to a branch without moving
`main`, delete it; `main` cannot be deleted (403, `Cannot delete refs/heads/main`). Tags point at a commit, need a maintainer
(a developer gets 403), resolve for downloads and disappear when deleted.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

from tests.hub.conftest import Hub, sha256


def status_of(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert error.value.response is not None
    return error.value.response.status_code


def upload(hub: Hub, repo_id: str, path: str, content: bytes, revision: str | None = None) -> str:
    info = hub.api("developer").upload_file(
        path_or_fileobj=content, path_in_repo=path, repo_id=repo_id, revision=revision
    )
    return info.oid


def content_at(hub: Hub, repo_id: str, path: str, revision: str, cache_dir: Path) -> str:
    file = hub.api("developer").hf_hub_download(
        repo_id, path, revision=revision, cache_dir=cache_dir
    )
    return sha256(Path(file).read_bytes())


def test_branches(hub: Hub, tmp_path: Path) -> None:
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    repo_id = hub.new_repo("branches")
    first = upload(hub, repo_id, "file.txt", b"version 1\n")
    second = upload(hub, repo_id, "file.txt", b"version 2\n")

    developer.create_branch(repo_id, branch="dev")
    developer.create_branch(repo_id, branch="old", revision=first)
    with pytest.raises(HfHubHTTPError) as conflict:
        developer.create_branch(repo_id, branch="dev")
    assert status_of(conflict) == 409
    developer.create_branch(repo_id, branch="dev", exist_ok=True)

    branches = {ref.name: ref for ref in developer.list_repo_refs(repo_id).branches}
    assert {name: ref.target_commit for name, ref in branches.items()} == {
        "main": second, "dev": second, "old": first,
    }  # fmt: skip
    assert branches["dev"].ref == "refs/heads/dev"
    assert content_at(hub, repo_id, "file.txt", "old", tmp_path) == sha256(b"version 1\n")

    on_dev = upload(hub, repo_id, "dev-only.txt", b"on dev\n", revision="dev")
    assert hub.head(repo_id, "dev") == on_dev
    assert hub.head(repo_id, "main") == second
    assert developer.list_repo_commits(repo_id, revision="dev")[1].commit_id == second
    assert "dev-only.txt" in developer.list_repo_files(repo_id, revision="dev")
    assert "dev-only.txt" not in developer.list_repo_files(repo_id)
    assert content_at(hub, repo_id, "dev-only.txt", "dev", tmp_path) == sha256(b"on dev\n")

    maintainer.delete_branch(repo_id, branch="dev")
    assert sorted(ref.name for ref in developer.list_repo_refs(repo_id).branches) == [
        "main", "old",
    ]  # fmt: skip
    with pytest.raises(RevisionNotFoundError):
        developer.hf_hub_download(
            repo_id, "dev-only.txt", revision="dev", cache_dir=tmp_path / "after"
        )
    with pytest.raises(HfHubHTTPError) as refused:
        maintainer.delete_branch(repo_id, branch="main")
    assert status_of(refused) == 403
    assert "Cannot delete refs/heads/main" in str(refused.value)
    assert hub.head(repo_id, "main") == second


def test_tags(hub: Hub, tmp_path: Path) -> None:
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    repo_id = hub.new_repo("tags")
    first = upload(hub, repo_id, "file.txt", b"release 1\n")
    upload(hub, repo_id, "file.txt", b"release 2\n")

    with pytest.raises(HfHubHTTPError) as refused:
        developer.create_tag(repo_id, tag="v1", revision=first)
    assert status_of(refused) == 403
    maintainer.create_tag(repo_id, tag="v1", revision=first, tag_message="First release")

    refs = developer.list_repo_refs(repo_id)
    assert [(ref.name, ref.ref, ref.target_commit) for ref in refs.tags] == [
        ("v1", "refs/tags/v1", first)
    ]
    assert hub.head(repo_id, "v1") == first
    assert content_at(hub, repo_id, "file.txt", "v1", tmp_path) == sha256(b"release 1\n")

    maintainer.delete_tag(repo_id, tag="v1")
    assert developer.list_repo_refs(repo_id).tags == []
    with pytest.raises(RevisionNotFoundError):
        developer.hf_hub_download(repo_id, "file.txt", revision="v1", cache_dir=tmp_path / "gone")


def test_a_branch_name_with_a_slash(hub: Hub, tmp_path: Path) -> None:
    """Clients send `feature/x` percent-encoded as one path segment (`feature%2Fx`)."""
    developer = hub.api("developer")
    repo_id = hub.new_repo("slashed")
    developer.create_branch(repo_id, branch="feature/x")

    on_branch = upload(hub, repo_id, "feature.txt", b"feature\n", revision="feature/x")

    assert hub.head(repo_id, "feature/x") == on_branch
    assert content_at(hub, repo_id, "feature.txt", "feature/x", tmp_path) == sha256(b"feature\n")
    branches = {ref.name: ref.target_commit for ref in developer.list_repo_refs(repo_id).branches}
    assert branches["feature/x"] == on_branch
    assert "feature.txt" not in developer.list_repo_files(repo_id)


# Names `git check-ref-format` refuses: hosted refs are git refs.
INVALID_REF_NAMES = ("two..dots", "name.lock", "tilde~1", "colon:name", "with space", "at@{1}")


@pytest.mark.parametrize("name", INVALID_REF_NAMES)
def test_ref_names_git_refuses_are_refused(hub: Hub, name: str) -> None:
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    repo_id = hub.new_repo("ref-names")

    def status(call: Callable[[], object]) -> int:
        try:
            call()
        except HfHubHTTPError as error:
            return error.response.status_code
        return 200

    statuses = (
        status(lambda: developer.create_branch(repo_id, branch=name)),
        status(lambda: maintainer.create_tag(repo_id, tag=name)),
    )

    assert statuses == (400, 400)
    refs = developer.list_repo_refs(repo_id)
    assert [ref.name for ref in refs.branches] == ["main"]
    assert refs.tags == []
