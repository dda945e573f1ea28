"""Personal namespaces with the real huggingface_hub client: every user has one, their name.
`create_repo("name")` creates `<user>/name` (public, as on huggingface.co); only its owner
writes there; repo ids resolve in any letter case to the stored spelling; robots have none;
users and projects share one name space, compared case-insensitively; a personal namespace
has no members; listings and the audit log treat it as a project.
"""

import json
import uuid
from pathlib import Path

import pytest
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RepositoryNotFoundError

from tests.governance.conftest import admin
from tests.hub.conftest import Hub


def status_of(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert error.value.response is not None
    return error.value.response.status_code


def test_a_bare_name_is_created_in_the_callers_namespace(hub: Hub, tmp_path: Path) -> None:
    api = hub.api("developer")
    name = f"Mine-{uuid.uuid4().hex[:8]}"

    url = api.create_repo(name)

    assert url.repo_id == f"developer/{name}"
    assert api.whoami()["name"] == "developer"
    api.upload_file(path_or_fileobj=b"hello\n", path_in_repo="a.txt", repo_id=url.repo_id)
    # Public by default, read by anybody, in any letter case, answered in the stored spelling.
    for reader in ("outsider", "anonymous"):
        info = hub.api(reader).model_info(f"DEVELOPER/{name.lower()}")
        assert info.id == f"developer/{name}"
    path = hub.api("anonymous").hf_hub_download(
        f"developer/{name.upper()}", "a.txt", cache_dir=tmp_path
    )
    assert Path(path).read_bytes() == b"hello\n"
    listed = [model.id for model in hub.api("outsider").list_models(author="developer")]
    assert url.repo_id in listed
    # Creating it again in another letter case is the same repo.
    with pytest.raises(HfHubHTTPError) as again:
        api.create_repo(name.lower())
    assert status_of(again) == 409
    assert api.create_repo(name.lower(), exist_ok=True).repo_id == f"developer/{name}"


def test_only_the_owner_writes_in_a_personal_namespace(hub: Hub) -> None:
    repo_id = hub.api("developer").create_repo(f"owned-{uuid.uuid4().hex[:8]}").repo_id

    with pytest.raises(HfHubHTTPError) as refused:
        hub.api("outsider").upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert status_of(refused) == 403
    with pytest.raises(HfHubHTTPError) as create:
        hub.api("outsider").create_repo(f"developer/theirs-{uuid.uuid4().hex[:8]}")
    assert status_of(create) == 403
    # The owner administers it: deletes too.
    hub.api("developer").delete_repo(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hub.api("developer").model_info(repo_id)


def test_robots_have_no_personal_namespace(hub: Hub) -> None:
    with pytest.raises(BadRequestError) as refused:
        hub.api("robot-team").create_repo(f"bare-{uuid.uuid4().hex[:8]}")
    assert "personal namespace" in str(refused.value)
    with pytest.raises(RepositoryNotFoundError):
        hub.api("robot-team").create_repo(f"developer/bot-{uuid.uuid4().hex[:8]}")


def test_users_and_projects_share_one_name_space(hub: Hub) -> None:
    for command in (
        ("user", "create", "TEAM"),
        ("user", "create", "Developer"),
        ("project", "create", "developer", "--kind", "hosted"),
        ("project", "create", "Outsider", "--kind", "hosted"),
    ):
        failed = admin(hub.data_dir, *command, check=False)
        assert failed.returncode == 4, (command, failed.stderr)
    # A personal namespace has no members (it is not a stored project).
    failed = admin(hub.data_dir, "member", "add", "developer", "outsider", check=False)
    assert failed.returncode == 3, failed.stderr


def test_personal_repos_are_audited_under_their_id(hub: Hub) -> None:
    repo_id = hub.api("outsider").create_repo(f"audited-{uuid.uuid4().hex[:8]}").repo_id

    listed = admin(hub.data_dir, "audit", "--repo", repo_id, "--json")
    records = json.loads(listed.stdout)
    assert [(r["action"], r["actor_name"], r["decision"]) for r in records] == [
        ("repo_create", "outsider", "allow")
    ]
