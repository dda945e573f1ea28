"""Behaviours huggingface_hub's own hub tests rely on, each of which hubproxy once got wrong
(README, "Compatibility with huggingface_hub's own tests"), with the real client:

- a card whose metadata block follows blank lines is validated (an invalid `model-index`
  is refused before anything is uploaded);
- a path starting with `..\\` is a 422 like `../x` (further in, it is stored);
- a commit or pull request against a commit sha is a 404 `RevisionNotFoundError`;
- `super_squash_history` squashes a pull request's `refs/pr/N`;
- a pull request already opened by its first commit can be opened again, then merged;
- likes: `POST .../like`, `unlike`, `list_liked_repos`, which shows only repos the caller may read;
- a new space starts with a README.md naming its SDK (huggingface_hub's card helpers update it).
"""

from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from tests.hub.conftest import Hub, unique_repo_id

INVALID_CARD = b"\n---\nmodel-index: foo\n---\n\nA card with invalid metadata.\n"


def test_card_metadata_after_blank_lines_is_validated(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("card-blank")
    with pytest.raises(ValueError, match=r"Invalid metadata in README\.md") as refused:
        api.upload_file(path_or_fileobj=INVALID_CARD, path_in_repo="README.md", repo_id=repo_id)
    assert '"model-index" must be a list' in str(refused.value)
    assert "README.md" not in api.list_repo_files(repo_id)


def test_a_path_starting_with_dot_dot_backslash_is_a_422(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("dotdot")
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_file(path_or_fileobj=b"content", path_in_repo="..\\ddd", repo_id=repo_id)
    assert refused.value.response is not None
    assert refused.value.response.status_code == 422
    # Further in, as on huggingface.co, it is stored: the client refuses to download it.
    api.upload_file(path_or_fileobj=b"x", path_in_repo="folder/..\\..\\file", repo_id=repo_id)
    assert "folder/..\\..\\file" in api.list_repo_files(repo_id)


def test_commits_against_a_sha_name_no_revision(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("sha-target")
    head = hub.head(repo_id)
    for create_pr in (True, False):
        with pytest.raises(RevisionNotFoundError):
            api.create_commit(
                repo_id,
                [CommitOperationAdd("file.txt", b"content")],
                commit_message="against a sha",
                revision=head,
                create_pr=create_pr,
            )
    assert hub.head(repo_id) == head


def test_pull_requests_squash_reopen_and_merge(hub: Hub) -> None:
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    repo_id = hub.new_repo("pr-squash")
    pull_request = developer.create_pull_request(repo_id, title="Squash me")
    reference = pull_request.git_reference
    assert reference is not None
    for content in (b"one", b"two"):
        developer.upload_file(
            path_or_fileobj=content, path_in_repo="file.txt", repo_id=repo_id, revision=reference
        )
    assert len(developer.list_repo_commits(repo_id, revision=reference)) == 3

    maintainer.super_squash_history(repo_id, branch=reference)
    [squashed] = developer.list_repo_commits(repo_id, revision=reference)
    assert developer.list_repo_files(repo_id, revision=reference).count("file.txt") == 1

    developer.change_discussion_status(repo_id, pull_request.num, new_status="open")
    maintainer.merge_pull_request(repo_id, pull_request.num)
    details = developer.get_discussion_details(repo_id, pull_request.num)
    assert details.status == "merged"
    assert details.merge_commit_oid is not None
    assert squashed.commit_id != details.merge_commit_oid
    with pytest.raises(HfHubHTTPError):  # a merged pull request stays merged
        developer.change_discussion_status(repo_id, pull_request.num, new_status="open")


def test_likes_are_listed_to_those_who_may_read_the_repo(hub: Hub) -> None:
    developer, outsider = hub.api("developer"), hub.api("outsider")
    repo_id = hub.new_repo("liked")
    # huggingface_hub has no `like` (the Hub's web pages like): the same request by hand.
    for _ in range(2):  # liking twice changes nothing
        answer = httpx.post(
            f"{hub.url}/api/models/{repo_id}/like", headers=hub.headers(), timeout=30
        )
        assert answer.status_code == 200, answer.text
    likes = developer.list_liked_repos()
    assert likes.user == "developer"
    assert likes.models.count(repo_id) == 1
    # `team` is private: its repos' names are not shown to a non-member.
    assert repo_id not in outsider.list_liked_repos("developer").models
    refused = httpx.post(
        f"{hub.url}/api/models/{repo_id}/like", headers=hub.headers("outsider"), timeout=30
    )
    assert refused.status_code == 404

    developer.unlike(repo_id)
    assert repo_id not in developer.list_liked_repos().models
    with pytest.raises(RepositoryNotFoundError):
        developer.unlike("team/missing-repo-id")


def test_a_new_space_starts_with_a_card_naming_its_sdk(hub: Hub, tmp_path: Path) -> None:
    api = hub.api("developer")
    repo_id = unique_repo_id("team", "space")
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    assert sorted(api.list_repo_files(repo_id, repo_type="space")) == [
        ".gitattributes",
        "README.md",
    ]
    card = api.hf_hub_download(repo_id, "README.md", repo_type="space", cache_dir=tmp_path)
    assert "sdk: static" in Path(card).read_text()
    # huggingface_hub checks the SDK itself: an unknown one sent by hand.
    body = {"name": unique_repo_id("team", "space").split("/")[1], "organization": "team"}
    answer = httpx.post(
        f"{hub.url}/api/repos/create",
        json={**body, "type": "space", "sdk": "php"},
        headers=hub.headers(),
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["x-error-code"]
