"""Pull requests and discussions with the real huggingface_hub client (hf-protocol.md §12).

- `upload_file(create_pr=True)` opens `refs/pr/N` and leaves `main` alone; the pull request
  reads like any revision (downloads, `HfFileSystem`, refs), shows its commit and diff, and is
  commented on, then merged by a maintainer into `main`;
- a merge whose files changed on `main` since is refused (409) and changes nothing;
- `create_pull_request` opens a draft at `main`'s head that commits to `refs/pr/N` publish;
- every step is audited, refusals too;
- discussions are renamed, closed and reopened by their author or a maintainer, comments are
  edited only by their author; viewers read but do not open or comment, developers do not
  merge; a private repo's discussions answer like a missing repo to those who cannot read it.
"""

import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfFileSystem
from huggingface_hub.community import DiscussionComment, DiscussionCommit
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.hub.conftest import LFS_THRESHOLD, Hub, random_bytes
from tests.hub.test_governance import audit_records


def status_of(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert error.value.response is not None
    return error.value.response.status_code


def test_open_comment_merge(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.new_repo("pr-flow")
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    main_before = hub.head(repo_id)
    weights = random_bytes(LFS_THRESHOLD * 2)  # through Xet: `xet-write-token/None?create_pr=1`

    info = developer.create_commit(
        repo_id,
        [
            CommitOperationAdd("config.json", b'{"layers": 2}\n'),
            CommitOperationAdd("model.bin", weights),
        ],
        commit_message="Add weights",
        commit_description="Two layers",
        create_pr=True,
    )

    assert info.pr_revision is not None
    assert info.pr_num is not None
    assert info.pr_revision == f"refs/pr/{info.pr_num}"
    assert hub.head(repo_id) == main_before  # main untouched
    assert hub.head(repo_id, info.pr_revision) == info.oid
    config = developer.hf_hub_download(
        repo_id, "config.json", revision=info.pr_revision, cache_dir=tmp_path
    )
    assert Path(config).read_bytes() == b'{"layers": 2}\n'
    weights_path = developer.hf_hub_download(
        repo_id, "model.bin", revision=info.pr_revision, cache_dir=tmp_path
    )
    assert Path(weights_path).read_bytes() == weights
    file_system = HfFileSystem(endpoint=hub.url, token=hub.tokens["developer"])
    assert file_system.cat(f"{repo_id}@{info.pr_revision}/config.json") == b'{"layers": 2}\n'
    refs = developer.list_repo_refs(repo_id, include_pull_requests=True)
    assert [(ref.ref, ref.target_commit) for ref in refs.pull_requests] == [
        (info.pr_revision, info.oid)
    ]

    details = developer.get_discussion_details(repo_id, info.pr_num)
    assert details.is_pull_request
    assert details.status == "open"
    assert details.title == "Add weights"
    assert details.author == "developer"
    assert details.target_branch == "refs/heads/main"
    assert details.conflicting_files == []
    assert details.diff is not None
    assert "diff --git a/config.json b/config.json" in details.diff
    assert '+{"layers": 2}' in details.diff
    assert "Binary files /dev/null and b/model.bin differ" in details.diff
    comments = [event for event in details.events if isinstance(event, DiscussionComment)]
    assert [comment.content for comment in comments] == ["Two layers"]
    commits = [event for event in details.events if isinstance(event, DiscussionCommit)]
    assert [(commit.summary, commit.oid) for commit in commits] == [("Add weights", info.oid)]

    comment = developer.comment_discussion(repo_id, info.pr_num, "Ready for review")
    assert comment.content == "Ready for review"
    assert comment.author == "developer"
    listed = list(maintainer.get_repo_discussions(repo_id, discussion_type="pull_request"))
    assert [(item.num, item.status, item.is_pull_request) for item in listed] == [
        (info.pr_num, "open", True)
    ]

    with pytest.raises(HfHubHTTPError) as refused:
        developer.merge_pull_request(repo_id, info.pr_num)  # developers do not merge
    assert status_of(refused) == 403
    maintainer.merge_pull_request(repo_id, info.pr_num, comment="Thanks!")

    merged = maintainer.get_discussion_details(repo_id, info.pr_num)
    assert merged.status == "merged"
    main_after = hub.head(repo_id)
    assert merged.merge_commit_oid == main_after
    assert [event.new_status for event in merged.events if event.type == "status-change"] == [
        "merged"
    ]
    assert set(developer.list_repo_files(repo_id)) == {".gitattributes", "config.json", "model.bin"}
    commits_on_main = developer.list_repo_commits(repo_id)
    assert commits_on_main[0].commit_id == main_after
    assert commits_on_main[0].title == "Add weights"
    with pytest.raises(HfHubHTTPError) as again:
        maintainer.merge_pull_request(repo_id, info.pr_num)
    assert status_of(again) == 400


def test_a_conflicting_merge_is_refused(hub: Hub) -> None:
    repo_id = hub.new_repo("pr-conflict")
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    developer.upload_file(path_or_fileobj=b"v1\n", path_in_repo="notes.txt", repo_id=repo_id)
    first = developer.upload_file(
        path_or_fileobj=b"v2 from one\n", path_in_repo="notes.txt", repo_id=repo_id, create_pr=True
    )
    second = developer.upload_file(
        path_or_fileobj=b"v2 from two\n", path_in_repo="notes.txt", repo_id=repo_id, create_pr=True
    )
    assert first.pr_num is not None
    assert second.pr_num is not None
    assert second.pr_num == first.pr_num + 1
    maintainer.merge_pull_request(repo_id, first.pr_num)
    head = hub.head(repo_id)

    details = maintainer.get_discussion_details(repo_id, second.pr_num)
    assert details.conflicting_files == ["notes.txt"]
    with pytest.raises(HfHubHTTPError) as conflict:
        maintainer.merge_pull_request(repo_id, second.pr_num)
    assert status_of(conflict) == 409
    assert "conflicts with the target branch" in str(conflict.value)
    assert "notes.txt" in str(conflict.value)
    assert hub.head(repo_id) == head
    assert maintainer.get_discussion_details(repo_id, second.pr_num).status == "open"


def test_a_draft_pull_request_takes_commits_then_merges(hub: Hub) -> None:
    repo_id = hub.new_repo("pr-draft")
    developer = hub.api("developer")
    pull_request = developer.create_pull_request(repo_id, title="Add a card")
    assert pull_request.status == "draft"
    assert pull_request.git_reference is not None
    assert hub.head(repo_id, pull_request.git_reference) == hub.head(repo_id)
    with pytest.raises(HfHubHTTPError) as empty:
        hub.api("maintainer").merge_pull_request(repo_id, pull_request.num)
    assert status_of(empty) == 400

    pushed = developer.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n# A card\n",
        path_in_repo="README.md",
        repo_id=repo_id,
        revision=pull_request.git_reference,
    )
    details = developer.get_discussion_details(repo_id, pull_request.num)
    assert details.status == "open"
    assert [event.oid for event in details.events if isinstance(event, DiscussionCommit)] == [
        pushed.oid
    ]
    hub.api("maintainer").merge_pull_request(repo_id, pull_request.num)
    assert "README.md" in developer.list_repo_files(repo_id)


def test_discussions_follow_roles(hub: Hub) -> None:
    repo_id = hub.new_repo("discussion-roles")
    developer, maintainer, viewer = (
        hub.api(name) for name in ("developer", "maintainer", "viewer")
    )
    opened = developer.create_discussion(repo_id, title="Which license?", description="MIT?")
    assert not opened.is_pull_request
    assert opened.status == "open"
    first = opened.events[0]
    assert isinstance(first, DiscussionComment)

    assert [item.title for item in viewer.get_repo_discussions(repo_id)] == ["Which license?"]
    for refused_call in (
        lambda: viewer.comment_discussion(repo_id, opened.num, "+1"),
        lambda: viewer.create_discussion(repo_id, title="A viewer's question"),
        lambda: viewer.change_discussion_status(repo_id, opened.num, "closed"),
        lambda: maintainer.edit_discussion_comment(repo_id, opened.num, first.id, "edited"),
    ):
        with pytest.raises(HfHubHTTPError) as refused:
            refused_call()
        assert status_of(refused) == 403

    edited = developer.edit_discussion_comment(repo_id, opened.num, first.id, "MIT or Apache?")
    assert edited.edited
    assert edited.content == "MIT or Apache?"
    renamed = developer.rename_discussion(repo_id, opened.num, "Which license, then?")
    assert (renamed.old_title, renamed.new_title) == ("Which license?", "Which license, then?")
    closed = maintainer.change_discussion_status(repo_id, opened.num, "closed", comment="Done")
    assert closed.new_status == "closed"
    reopened = developer.change_discussion_status(repo_id, opened.num, "open")
    assert reopened.new_status == "open"
    with pytest.raises(HfHubHTTPError) as short:
        developer.rename_discussion(repo_id, opened.num, "no")
    assert status_of(short) == 400

    details = developer.get_discussion_details(repo_id, opened.num)
    assert details.title == "Which license, then?"
    assert [event.type for event in details.events] == [
        "comment", "title-change", "comment", "status-change", "status-change",
    ]  # fmt: skip
    assert list(developer.get_repo_discussions(repo_id, discussion_status="closed")) == []


def test_private_discussions_answer_like_a_missing_repo(hub: Hub) -> None:
    repo_id = hub.new_repo("discussion-hidden")
    num = hub.api("developer").create_discussion(repo_id, title="Internal").num
    for stranger in ("outsider", "anonymous"):
        with pytest.raises(RepositoryNotFoundError):
            list(hub.api(stranger).get_repo_discussions(repo_id))
        with pytest.raises(RepositoryNotFoundError):
            hub.api(stranger).get_discussion_details(repo_id, num)
        with pytest.raises(RepositoryNotFoundError):
            hub.api(stranger).comment_discussion(repo_id, num, "hello")
    missing = httpx.get(
        f"{hub.url}/api/models/{repo_id}/discussions/999", headers=hub.headers(), timeout=30
    )
    assert missing.status_code == 404
    assert missing.headers["x-error-code"] == "NotFound"
    assert missing.headers["x-error-message"] == "Discussion not found"


def test_every_step_is_audited(hub: Hub) -> None:
    repo_id = hub.new_repo("pr-audited")
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    info = developer.upload_file(
        path_or_fileobj=b"audited\n", path_in_repo="audited.txt", repo_id=repo_id, create_pr=True
    )
    assert info.pr_num is not None
    developer.comment_discussion(repo_id, info.pr_num, "Please merge")
    with pytest.raises(HfHubHTTPError):
        hub.api("viewer").comment_discussion(repo_id, info.pr_num, "me too")
    with pytest.raises(HfHubHTTPError):
        developer.merge_pull_request(repo_id, info.pr_num)
    opened = developer.create_discussion(repo_id, title="A question")
    developer.rename_discussion(repo_id, opened.num, "A better question")
    maintainer.change_discussion_status(repo_id, opened.num, "closed")
    maintainer.merge_pull_request(repo_id, info.pr_num)

    wanted = {
        ("commit", "allow", "developer", f"refs/pr/{info.pr_num}"),
        ("discussion_comment", "allow", "developer", f"discussions/{info.pr_num}"),
        ("discussion_comment", "deny", "viewer", f"discussions/{info.pr_num}"),
        ("discussion_merge", "deny", "developer", f"discussions/{info.pr_num}"),
        ("discussion_create", "allow", "developer", f"discussions/{opened.num}"),
        ("discussion_edit", "allow", "developer", f"discussions/{opened.num}"),
        ("discussion_status", "allow", "maintainer", f"discussions/{opened.num}"),
        ("discussion_merge", "allow", "maintainer", f"discussions/{info.pr_num}"),
    }

    def summary() -> set[tuple[str, str, str, str]]:
        return {
            (
                record["action"],
                record["decision"],
                record["actor_name"],
                record["reason"] if record["action"] == "commit" else record["path"],
            )
            for record in audit_records(hub, repo_id)
        }

    deadline = time.monotonic() + 10
    while not wanted <= summary() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert wanted <= summary(), summary()


def test_upload_folder_with_create_pr(hub: Hub, tmp_path: Path) -> None:
    repo_id = hub.new_repo("pr-folder")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_bytes(b"a\n")
    (tmp_path / "weights.bin").write_bytes(random_bytes(LFS_THRESHOLD * 2))
    main = hub.head(repo_id)
    info = hub.api("developer").upload_folder(
        repo_id=repo_id, folder_path=tmp_path, create_pr=True, commit_message="Add a folder"
    )
    assert info.pr_revision is not None
    assert hub.head(repo_id) == main
    files = hub.api("developer").list_repo_files(repo_id, revision=info.pr_revision)
    assert set(files) == {".gitattributes", "sub/a.txt", "weights.bin"}
    assert info.pr_num is not None
    assert hub.api("developer").get_discussion_details(repo_id, info.pr_num).status == "open"
