"""Per-repo visibility, gating, moves and auth checks with the real huggingface_hub client.

- `create_repo(private=True)` in the public project `open` (and in a personal namespace) makes
  a repo only members see; `update_repo_settings(private=False)` publishes it; a private
  project refuses public repos, at creation and in the settings;
- `gated="manual"` shows the repo exists but refuses non-members (`GatedRepoError`), `"auto"`
  lets any signed-in user read it; listings follow;
- `move_repo` renames within a namespace and across namespaces the caller administers, keeps
  the history, and leaves the old name pointing to the new one; the target is authorized too;
- `auth_check` answers as reads and writes are authorized;
- projects have a display name, shown in whoami's `orgs`.
"""

import json
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import (
    BadRequestError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
)

from tests.governance.conftest import admin
from tests.hub.conftest import Hub, unique_repo_id

Result = TypeVar("Result")


def eventually(attempt: Callable[[], Result]) -> Result:
    """`attempt()` once the server has picked up an account change (within a second)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return attempt()
        except (AssertionError, HfHubHTTPError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def status_of(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert error.value.response is not None
    return error.value.response.status_code


def listed(hub: Hub, principal: str, author: str) -> list[str]:
    return [model.id for model in hub.api(principal).list_models(author=author)]


def test_a_private_repo_in_a_public_project_is_for_members_only(hub: Hub) -> None:
    repo_id = unique_repo_id("open", "secret")
    hub.api("developer").create_repo(repo_id, private=True)

    assert hub.api("developer").model_info(repo_id).private is True
    assert hub.api("outsider").model_info(repo_id).private is True  # a developer of `open`
    for stranger in ("viewer", "anonymous"):
        with pytest.raises(RepositoryNotFoundError):
            hub.api(stranger).model_info(repo_id)
    assert repo_id not in listed(hub, "viewer", "open")
    assert repo_id in listed(hub, "outsider", "open")

    # Publishing it needs the maintainer's rights (`delete_repo`): a developer may not.
    with pytest.raises(HfHubHTTPError) as refused:
        hub.api("developer").update_repo_settings(repo_id, private=False)
    assert status_of(refused) == 403
    admin(hub.data_dir, "member", "add", "open", "maintainer", "--role", "maintainer")
    eventually(lambda: hub.api("maintainer").update_repo_settings(repo_id, private=False))
    assert hub.api("anonymous").model_info(repo_id).private is False
    assert repo_id in listed(hub, "viewer", "open")


def test_a_private_project_refuses_public_repos(hub: Hub) -> None:
    with pytest.raises(BadRequestError) as refused:
        hub.api("developer").create_repo(unique_repo_id("team", "public"), private=False)
    assert "private project" in str(refused.value)
    repo_id = hub.new_repo("stays-private")
    with pytest.raises(BadRequestError):
        hub.api("maintainer").update_repo_settings(repo_id, private=False)
    assert hub.api("developer").model_info(repo_id).private is True


def test_a_personal_repo_can_be_private(hub: Hub) -> None:
    name = f"diary-{uuid.uuid4().hex[:8]}"
    url = hub.api("outsider").create_repo(name, private=True)

    assert hub.api("outsider").model_info(url.repo_id).private is True
    with pytest.raises(RepositoryNotFoundError):
        hub.api("developer").model_info(url.repo_id)
    assert url.repo_id not in listed(hub, "developer", "outsider")


def test_gated_repos_are_seen_but_read_by_the_right_callers(hub: Hub) -> None:
    repo_id = hub.api("outsider").create_repo(f"gated-{uuid.uuid4().hex[:8]}").repo_id
    owner = hub.api("outsider")

    owner.update_repo_settings(repo_id, gated="manual")
    assert owner.model_info(repo_id).gated == "manual"
    with pytest.raises(GatedRepoError) as gated:
        hub.api("developer").model_info(repo_id)
    assert status_of(gated) == 403
    with pytest.raises(GatedRepoError):
        hub.api("developer").auth_check(repo_id)
    assert repo_id in listed(hub, "developer", "outsider")

    owner.update_repo_settings(repo_id, gated="auto")
    assert hub.api("developer").model_info(repo_id).gated == "auto"
    with pytest.raises(GatedRepoError) as anonymous:
        hub.api("anonymous").model_info(repo_id)
    assert status_of(anonymous) == 401

    owner.update_repo_settings(repo_id, gated=False)
    assert hub.api("anonymous").model_info(repo_id).gated is False


def test_auth_check_answers_as_authorization_does(hub: Hub) -> None:
    repo_id = hub.new_repo("checked")

    hub.api("viewer").auth_check(repo_id)
    hub.api("developer").auth_check(repo_id, write=True)
    with pytest.raises(HfHubHTTPError) as read_only:
        hub.api("viewer").auth_check(repo_id, write=True)
    assert status_of(read_only) == 403
    with pytest.raises(RepositoryNotFoundError):
        hub.api("outsider").auth_check(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hub.api("developer").auth_check(unique_repo_id("team", "missing"))


def test_move_repo_keeps_history_and_the_old_name_leads_to_the_new(hub: Hub) -> None:
    api = hub.api("maintainer")
    source = unique_repo_id("team", "before")
    api.create_repo(source)
    sha = api.create_commit(source, [CommitOperationAdd("a.txt", b"a")], commit_message="add a").oid
    api.create_tag(source, tag="v1")
    target = unique_repo_id("team", "after")

    api.move_repo(source, target)

    assert api.model_info(target).sha == sha
    assert [tag.name for tag in api.list_repo_refs(target).tags] == ["v1"]
    assert api.list_repo_commits(target)[0].title == "add a"
    assert api.model_info(source).id == target  # the old name leads to the new one
    # A new repo may take the old name again.
    api.create_repo(source)
    assert api.model_info(source).id == source


def test_move_across_namespaces_is_authorized_on_both_names(hub: Hub) -> None:
    # The outsider administers its own namespace and is a developer of `open`.
    mine = hub.api("outsider").create_repo(f"moving-{uuid.uuid4().hex[:8]}", private=True)
    into_team = unique_repo_id("team", "stolen")
    with pytest.raises(RepositoryNotFoundError):
        hub.api("outsider").move_repo(mine.repo_id, into_team)
    # A developer may create in `open`, but moving out of it needs more than a developer.
    in_open = unique_repo_id("open", "dev")
    hub.api("outsider").create_repo(in_open)
    with pytest.raises(HfHubHTTPError) as refused:
        hub.api("outsider").move_repo(in_open, f"outsider/taken-{uuid.uuid4().hex[:8]}")
    assert status_of(refused) == 403

    # The owner moves its repo into the public project it may create repos in; it stays private.
    target = unique_repo_id("open", "moved")
    hub.api("outsider").move_repo(mine.repo_id, target)
    assert hub.api("outsider").model_info(target).private is True
    with pytest.raises(RepositoryNotFoundError):
        hub.api("viewer").model_info(target)
    records = json.loads(admin(hub.data_dir, "audit", "--repo", mine.repo_id, "--json").stdout)
    moves = [
        (r["action"], r["decision"], r["reason"]) for r in records if r["action"] == "repo_move"
    ]
    assert ("repo_move", "allow", f"to {target}") in moves
    assert any(decision == "deny" for _, decision, _ in moves)


def test_projects_have_a_display_name_in_whoami(hub: Hub) -> None:
    name = f"disp-{uuid.uuid4().hex[:8]}"
    admin(hub.data_dir, "project", "create", name, "--fullname", "Display Corp")
    admin(hub.data_dir, "member", "add", name, "viewer")

    def orgs_of_viewer() -> dict[str, dict[str, str]]:
        orgs = {org["name"]: org for org in hub.api("viewer").whoami()["orgs"]}
        assert name in orgs
        return orgs

    orgs = eventually(orgs_of_viewer)

    assert orgs[name]["fullname"] == "Display Corp"
    assert orgs["team"]["fullname"] == "team"
    assert hub.api("viewer").whoami()["name"] == "viewer"
