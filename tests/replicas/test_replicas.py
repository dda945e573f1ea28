"""`hubproxy serve` replicas on one PostgreSQL database and one S3 bucket behave as one hub:
commits racing for one branch from both replicas all land or get 412 (none lost), what one
replica commits the other serves at once, a token made on one works on the other at once and
its revocation is seen there within the accounts refresh, and a database restart fails requests
cleanly (503 with `X-Error-Code`, the readiness probe of the Helm chart too) until it is back.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from tests.replicas.conftest import Replicas

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
    deadline = time.monotonic() + 5  # the refresh is 1 s; generous for a loaded machine
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = httpx.get(
            f"{second}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        time.sleep(0.05)
    assert status == 401


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
