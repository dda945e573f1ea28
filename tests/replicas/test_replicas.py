"""`hubproxy serve` replicas on one PostgreSQL database and one S3 bucket behave as one hub:
commits racing for one branch from both replicas all land or get 412 (none lost), what one
replica commits the others serve at once, a token made on one works on another at once, its
revocation and a role change are seen there within a second (a change notice: the replicas
poll only every minute here), the audit log is one (what one replica audits another's admin
API and the CLI list), and a database restart fails requests cleanly (503 with `X-Error-Code`,
the readiness probe of the Helm chart too) until it is back, losing no audit record of a
request answered meanwhile.
"""

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from tests.replicas.conftest import Replicas
from tests.support.cli import run_cli

WRITERS = 6
COMMITS_PER_WRITER = 4


def test_commits_racing_from_two_replicas_land_or_get_412(replicas: Replicas) -> None:
    repo_id = f"team/racing-{uuid.uuid4().hex[:8]}"
    replicas.api(0).create_repo(repo_id)

    def writer(index: int) -> tuple[list[str], list[int]]:
        api = replicas.api(index % 2)
        landed: list[str] = []
        refused: list[int] = []
        for attempt in range(COMMITS_PER_WRITER):
            head = api.repo_info(repo_id).sha
            operations = [
                CommitOperationAdd(f"w{index}-{attempt}.txt", b"%d %d\n" % (index, attempt))
            ]
            try:
                landed.append(
                    api.create_commit(
                        repo_id, operations, commit_message=f"{index}.{attempt}", parent_commit=head
                    ).oid
                )
            except HfHubHTTPError as error:
                refused.append(error.response.status_code)
        return landed, refused

    with ThreadPoolExecutor(WRITERS) as pool:
        outcomes = list(pool.map(writer, range(WRITERS)))
    landed = [oid for result, _ in outcomes for oid in result]
    refused = [status for _, statuses in outcomes for status in statuses]
    assert set(refused) <= {412}, refused
    assert len(landed) + len(refused) == WRITERS * COMMITS_PER_WRITER
    assert landed  # the race is real, yet commits get through
    # Every landed commit is on the branch, as the other replica serves it, and nothing else.
    for index in (0, 1):
        history = replicas.api(index).list_repo_commits(repo_id)
        assert {commit.commit_id for commit in history[:-1]} == set(landed)
        assert len(history) == len(landed) + 1
    files = replicas.api(1).list_repo_files(repo_id)
    assert len(files) == len(landed) + 1  # .gitattributes and one file per landed commit


def test_hosted_content_written_on_one_replica_is_read_on_the_other(replicas: Replicas) -> None:
    repo_id = f"team/shared-{uuid.uuid4().hex[:8]}"
    replicas.api(0).create_repo(repo_id)
    body = bytes(range(256)) * 4096  # 1 MiB: an LFS file, chunks in the shared bucket
    replicas.api(0).upload_file(path_or_fileobj=body, path_in_repo="weights.bin", repo_id=repo_id)
    url = f"{replicas.processes[1].url}/{repo_id}/resolve/main/weights.bin"
    headers = {"Authorization": f"Bearer {replicas.tokens['developer']}"}
    response = httpx.get(url, headers=headers, follow_redirects=True, timeout=30)
    assert response.status_code == 200
    assert response.content == body


def test_a_token_made_on_one_replica_works_on_the_other(replicas: Replicas) -> None:
    developer = {"Authorization": f"Bearer {replicas.tokens['developer']}"}
    first, second = (process.url for process in replicas.processes[:2])
    created = httpx.post(
        f"{first}/api/hubproxy/tokens", headers=developer, json={"name": "ci", "scope": "read"}
    )
    assert created.status_code == 201, created.text
    secret, token_id = created.json()["token"], created.json()["id"]
    # At once: an unknown token makes the replica check the accounts serial.
    whoami = httpx.get(f"{second}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"})
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["name"] == "developer"

    revoked = httpx.delete(f"{first}/api/hubproxy/tokens/{token_id}", headers=developer)
    assert revoked.status_code in (200, 204), revoked.text
    assert _first_status_within(
        NOTICE_SECONDS,
        lambda: (
            httpx.get(
                f"{second}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}
            ).status_code
        ),
        401,
    )


def test_a_role_change_on_one_replica_holds_on_the_other_within_a_second(
    replicas: Replicas,
) -> None:
    first, second = (process.url for process in replicas.processes[:2])
    viewer = {"Authorization": f"Bearer {replicas.tokens['viewer']}"}
    repo_id = f"team/by-viewer-{uuid.uuid4().hex[:8]}"

    def create() -> int:
        body = {"name": repo_id.split("/")[1], "organization": "team", "type": "model"}
        return httpx.post(f"{second}/api/repos/create", headers=viewer, json=body).status_code

    assert create() == 403  # a viewer creates no repo
    promoted = httpx.put(
        f"{first}/api/organizations/team/members/viewer",
        headers={"Authorization": f"Bearer {replicas.tokens['admin']}"},
        json={"role": "developer"},
    )
    assert promoted.status_code == 200, promoted.text
    try:
        assert _first_status_within(NOTICE_SECONDS, create, 200)
    finally:
        httpx.put(
            f"{first}/api/organizations/team/members/viewer",
            headers={"Authorization": f"Bearer {replicas.tokens['admin']}"},
            json={"role": "viewer"},
        )


def test_a_download_on_one_replica_is_audited_for_the_other_and_the_cli(
    replicas: Replicas, tmp_path: Path
) -> None:
    repo_id = _repo_with_a_file(replicas)
    downloaded = _download(replicas, 0, repo_id)
    assert downloaded.status_code == 200
    request_id = downloaded.headers["X-Request-Id"]

    records = _audited_downloads(replicas, 1, repo_id, {request_id})
    (record,) = [item for item in records if item["request_id"] == request_id]
    assert (record["action"], record["actor_name"], record["path"]) == (
        "download",
        "developer",
        "weights.bin",
    )
    assert record["status"] == 200

    # `hubproxy admin --database-url`, from a data dir holding no audit log of its own.
    listed = run_cli(
        "admin", "--data-dir", str(tmp_path / "elsewhere"), "--database-url",
        replicas.database_url, "audit", "--repo", repo_id, "--json",
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert request_id in {item["request_id"] for item in json.loads(listed.stdout)}
    assert not (tmp_path / "elsewhere" / "audit.sqlite3").exists()


def test_a_database_restart_fails_requests_cleanly_then_recovers(replicas: Replicas) -> None:
    headers = {"Authorization": f"Bearer {replicas.tokens['developer']}"}
    url = f"{replicas.processes[0].url}/api/hubproxy/tokens"
    assert httpx.get(url, headers=headers).status_code == 200
    replicas.database.halt()
    try:
        with ThreadPoolExecutor(4) as pool:
            down = list(pool.map(lambda _: httpx.get(url, headers=headers, timeout=30), range(8)))
        assert {response.status_code for response in down} == {503}
        assert {response.headers.get("X-Error-Code") for response in down} == {
            "DatabaseUnavailable"
        }
        # The path of the chart's readinessProbe (tests/deploy): the replica leaves its Service.
        for process in replicas.processes:
            ready = httpx.get(f"{process.url}/health/ready", timeout=30)
            assert ready.status_code == 503
            assert ready.headers.get("X-Error-Code") == "DatabaseUnavailable"
            assert ready.json()["storage"] == "ok"
    finally:
        replicas.database.resume()
    # Back: the very next request reconnects, on either replica (the other's connection died
    # idle while the server was down).
    for process in replicas.processes:
        back = httpx.get(f"{process.url}/api/hubproxy/tokens", headers=headers, timeout=30)
        assert back.status_code == 200, back.text
    for process in replicas.processes:
        ready = httpx.get(f"{process.url}/health/ready", timeout=30)
        assert ready.status_code == 200
        assert "X-Error-Code" not in ready.headers


def test_audit_records_of_requests_answered_while_the_database_was_down_are_kept(
    replicas: Replicas,
) -> None:
    repo_id = _repo_with_a_file(replicas)
    answered: dict[str, int] = {}

    def download() -> None:
        response = _download(replicas, 0, repo_id)
        answered[response.headers["X-Request-Id"]] = response.status_code

    for _ in range(3):
        download()
    replicas.database.halt()
    try:
        for _ in range(12):  # audited too (as failures), queued while the database is away
            download()
    finally:
        replicas.database.resume()
    for _ in range(3):
        download()
    assert set(answered.values()) >= {200, 503}  # the outage was real
    records = _audited_downloads(replicas, 1, repo_id, set(answered))
    statuses = {item["request_id"]: item["status"] for item in records}
    assert statuses == answered  # every answered request, once, with what it was answered


def test_change_notices_come_again_after_the_database_restarts(replicas: Replicas) -> None:
    """After the restarts above (the listeners reconnect on their own), a revocation on one
    replica still holds on the other within a second."""
    developer = {"Authorization": f"Bearer {replicas.tokens['developer']}"}
    first, second = (process.url for process in replicas.processes[:2])
    created = httpx.post(
        f"{first}/api/hubproxy/tokens", headers=developer, json={"name": "late", "scope": "read"}
    )
    assert created.status_code == 201, created.text
    bearer = {"Authorization": f"Bearer {created.json()['token']}"}
    assert httpx.get(f"{second}/api/whoami-v2", headers=bearer).status_code == 200
    revoked = httpx.delete(f"{first}/api/hubproxy/tokens/{created.json()['id']}", headers=developer)
    assert revoked.status_code in (200, 204), revoked.text
    assert _first_status_within(
        NOTICE_SECONDS,
        lambda: httpx.get(f"{second}/api/whoami-v2", headers=bearer).status_code,
        401,
    )


# A change on one replica reaches the other within this (the bound).
NOTICE_SECONDS = 1.0


def _first_status_within(seconds: float, probe: Callable[[], int], wanted: int) -> bool:
    """Whether `probe()` gives `wanted` within `seconds` of now (probed until then)."""
    deadline = time.monotonic() + seconds
    while True:
        if probe() == wanted:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _repo_with_a_file(replicas: Replicas) -> str:
    """A new hosted repo of the team holding `weights.bin` (an LFS file), made on replica 0."""
    repo_id = f"team/audited-{uuid.uuid4().hex[:8]}"
    replicas.api(0).create_repo(repo_id)
    replicas.api(0).upload_file(
        path_or_fileobj=bytes(range(256)) * 64, path_in_repo="weights.bin", repo_id=repo_id
    )
    return repo_id


def _download(replicas: Replicas, index: int, repo_id: str) -> httpx.Response:
    url = f"{replicas.processes[index].url}/{repo_id}/resolve/main/weights.bin"
    headers = {"Authorization": f"Bearer {replicas.tokens['developer']}"}
    return httpx.get(url, headers=headers, follow_redirects=False, timeout=30)


def _audited_downloads(
    replicas: Replicas, index: int, repo_id: str, request_ids: set[str]
) -> list[dict[str, Any]]:
    """The download records of `repo_id` through replica `index`'s admin API (as the team's
    admin), once those of `request_ids` are all there (written in batches, after the answer)
    or 15 s passed."""
    url = f"{replicas.processes[index].url}/api/hubproxy/admin/audit"
    headers = {"Authorization": f"Bearer {replicas.tokens['admin']}"}
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(
            url, headers=headers, params={"repo": repo_id, "action": "download"}, timeout=30
        )
        assert response.status_code == 200, response.text
        records: list[dict[str, Any]] = response.json()
        if request_ids <= {item["request_id"] for item in records}:
            return records
        if time.monotonic() > deadline:
            return records
        time.sleep(0.1)
