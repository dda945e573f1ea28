"""Who may do what to hosted repos, through the real client: the role matrix (create, upload,
branch, tag, delete), a viewer downloads but cannot
upload (403), an outsider cannot even see a private project's repo, anonymous callers read a
public hosted project but cannot upload (401), a project's robot uploads and another project's
robot cannot; and `hubproxy admin audit` holds the allowed repo_create, upload, commit (with
the commit sha; "upload" is the PUT of LFS bytes) and download records and the viewer's denied
upload.
"""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.governance.conftest import admin
from tests.hub.conftest import (
    LFS_THRESHOLD,
    Hub,
    random_bytes,
    sha256,
    unique_repo_id,
    xet_disabled,
)


def status_of(error: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert error.value.response is not None
    return error.value.response.status_code


def download(hub: Hub, principal: str, repo_id: str, filename: str, cache_dir: Path) -> str:
    path = hub.api(principal).hf_hub_download(repo_id, filename, cache_dir=cache_dir)
    return sha256(Path(path).read_bytes())


def published(hub: Hub, project: str, prefix: str) -> str:
    """A repo in `project` holding `model.txt`, uploaded by the developer."""
    repo_id = hub.new_repo(prefix, project=project)
    hub.api("developer").upload_file(
        path_or_fileobj=b"model\n", path_in_repo="model.txt", repo_id=repo_id
    )
    return repo_id


def test_a_viewer_downloads_but_cannot_upload(hub: Hub, tmp_path: Path) -> None:
    repo_id = published(hub, "team", "viewed")
    before = hub.head(repo_id)

    assert download(hub, "viewer", repo_id, "model.txt", tmp_path) == sha256(b"model\n")
    with pytest.raises(HfHubHTTPError) as refused:
        hub.api("viewer").upload_file(
            path_or_fileobj=b"nope", path_in_repo="nope.txt", repo_id=repo_id
        )

    assert status_of(refused) == 403
    assert not isinstance(refused.value, RepositoryNotFoundError)
    assert hub.head(repo_id) == before


def test_an_outsider_sees_nothing_of_a_private_project(hub: Hub, tmp_path: Path) -> None:
    repo_id = published(hub, "team", "hidden")
    outsider = hub.api("outsider")
    before = hub.head(repo_id)

    with pytest.raises(RepositoryNotFoundError):
        outsider.model_info(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        outsider.hf_hub_download(repo_id, "model.txt", cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        outsider.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hub.api("anonymous").model_info(repo_id)
    assert hub.head(repo_id) == before


def test_anonymous_reads_a_public_hosted_project_but_cannot_upload(
    hub: Hub, tmp_path: Path
) -> None:
    repo_id = published(hub, "open", "public")
    anonymous = hub.api("anonymous")
    before = hub.head(repo_id)

    assert anonymous.model_info(repo_id).sha == before
    assert download(hub, "anonymous", repo_id, "model.txt", tmp_path) == sha256(b"model\n")
    assert anonymous.list_repo_files(repo_id) == [".gitattributes", "model.txt"]
    with pytest.raises(HfHubHTTPError) as refused:
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)

    assert status_of(refused) == 401
    assert hub.head(repo_id) == before
    with pytest.raises(HfHubHTTPError) as not_created:
        anonymous.create_repo(unique_repo_id("open", "anonymous"))
    assert status_of(not_created) == 401


def test_a_projects_robot_uploads_and_another_projects_robot_cannot(
    hub: Hub, tmp_path: Path
) -> None:
    repo_id = published(hub, "team", "robots")

    info = hub.api("robot-team").upload_file(
        path_or_fileobj=b"from ci\n", path_in_repo="ci.txt", repo_id=repo_id
    )

    assert hub.head(repo_id) == info.oid
    assert download(hub, "developer", repo_id, "ci.txt", tmp_path) == sha256(b"from ci\n")
    with pytest.raises(RepositoryNotFoundError):
        hub.api("robot-other").upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id
        )
    with pytest.raises(RepositoryNotFoundError):
        hub.api("robot-other").model_info(repo_id)
    assert hub.head(repo_id) == info.oid


# Per principal: the status of create repo, upload, create branch, create tag, delete repo on a
# repo of `team` ("ok" = done; 404 = the repo is invisible to the principal).
ROLE_MATRIX = {
    "viewer": "403 403 403 403 403",
    "developer": "ok ok ok 403 403",
    "maintainer": "ok ok ok ok ok",
    "admin": "ok ok ok ok ok",
    "outsider": "404 404 404 404 404",
}


@pytest.mark.parametrize("principal", sorted(ROLE_MATRIX))
def test_what_each_role_may_do(hub: Hub, principal: str) -> None:
    api = hub.api(principal)
    repo_id = unique_repo_id("team", f"role-{principal}")
    steps: dict[str, Callable[[], object]] = {
        "create": lambda: api.create_repo(repo_id),
        "upload": lambda: api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id
        ),
        "branch": lambda: api.create_branch(repo_id, branch="feature"),
        "tag": lambda: api.create_tag(repo_id, tag="v1", revision=hub.head(repo_id)),
        "delete": lambda: api.delete_repo(repo_id),
    }
    outcomes = []
    for step, call in steps.items():
        try:
            call()
        except HfHubHTTPError as error:
            outcomes.append(str(error.response.status_code))
        else:
            outcomes.append("ok")
        if step == "create" and outcomes[-1] != "ok":
            hub.api("maintainer").create_repo(repo_id)
    assert " ".join(outcomes) == ROLE_MATRIX[principal]


def audit_records(hub: Hub, repo_id: str) -> list[dict[str, Any]]:
    completed = admin(hub.data_dir, "audit", "--json", "--repo", repo_id)
    records: list[dict[str, Any]] = json.loads(completed.stdout)
    return records


def test_the_audit_log_records_the_writes_reads_and_denials(hub: Hub, tmp_path: Path) -> None:
    developer = hub.api("developer")
    repo_id = unique_repo_id("team", "audited")
    developer.create_repo(repo_id)
    weights = random_bytes(2 * LFS_THRESHOLD)
    with xet_disabled():
        info = developer.create_commit(
            repo_id,
            [
                CommitOperationAdd("audited.txt", b"audited\n"),
                CommitOperationAdd("weights.bin", weights),
            ],
            commit_message="Audited",
        )
    assert download(hub, "developer", repo_id, "audited.txt", tmp_path) == sha256(b"audited\n")
    with pytest.raises(HfHubHTTPError):
        hub.api("viewer").upload_file(
            path_or_fileobj=b"nope", path_in_repo="nope.txt", repo_id=repo_id
        )

    def summary(records: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {(record["action"], record["decision"], record["actor_name"]) for record in records}

    wanted = {
        ("repo_create", "allow", "developer"),
        ("upload", "allow", "developer"),
        ("commit", "allow", "developer"),
        ("download", "allow", "developer"),
        ("upload", "deny", "viewer"),
    }
    deadline = time.monotonic() + 10
    records = audit_records(hub, repo_id)
    while not wanted <= summary(records) and time.monotonic() < deadline:
        time.sleep(0.2)
        records = audit_records(hub, repo_id)
    assert wanted <= summary(records), [
        (record["action"], record["decision"], record["actor_name"]) for record in records
    ]

    commits = {record["commit_sha"]: record for record in records if record["action"] == "commit"}
    assert info.oid in commits, list(commits)
    commit = commits[info.oid]
    assert (commit["decision"], commit["status"], commit["repo_type"]) == ("allow", 200, "model")
    [download_record] = [record for record in records if record["action"] == "download"]
    assert (download_record["path"], download_record["status"]) == ("audited.txt", 200)
    assert download_record["commit_sha"] == info.oid
    assert download_record["bytes_sent"] == len(b"audited\n")
    # The LFS bytes arrive on a signed link, without a token: the link names the uploader.
    [upload] = [
        record
        for record in records
        if record["action"] == "upload" and record["decision"] == "allow"
    ]
    assert (upload["actor_name"], upload["sha256"], upload["status"]) == (
        "developer", sha256(weights), 200,
    )  # fmt: skip
    [denial] = [record for record in records if record["decision"] == "deny"]
    assert (denial["action"], denial["actor_name"], denial["status"]) == ("upload", "viewer", 403)
    assert all(record["repo_id"] == repo_id for record in records)
