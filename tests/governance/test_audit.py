"""The audit log holds exactly one record per audited action, with the bytes actually sent,
and loses none under load or across a graceful shutdown (read back with `hubproxy admin audit`).
"""

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import InProcessFactory, ProxyFactory
from tests.fake_upstream import FakeHub, GeneratedFile
from tests.governance.conftest import admin, new_token

BIG = GeneratedFile(48 * 1024 * 1024, seed=11)


def audit_records(data_dir: Path, *filters: str) -> list[dict[str, Any]]:
    completed = admin(data_dir, "audit", "--json", "--limit", "100000", *filters)
    records: list[dict[str, Any]] = json.loads(completed.stdout)
    return records


def wait_for_records(
    data_dir: Path, count: int, *filters: str, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """The request records (not the admin CLI's own), once `count` have been written."""
    deadline = time.monotonic() + timeout
    while True:
        records = [r for r in audit_records(data_dir, *filters) if r["actor_kind"] != "cli"]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def test_one_record_per_action_with_the_bytes_sent(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    upstream.add_repo(repo_id, {"small.txt": b"hello audit", "big.bin": BIG})
    process = proxy_factory()
    data_dir = process.data_dir
    admin(data_dir, "user", "create", "alice")
    token = new_token(data_dir, "token", "create", "alice", "--scope", "write")
    auth = {"Authorization": f"Bearer {token}"}
    big_url = f"{process.url}/{repo_id}/resolve/main/big.bin"
    ids: dict[str, str] = {}

    # A full download with huggingface_hub (its HEAD is not a download).
    path = hf_hub_download(
        repo_id, "small.txt", endpoint=process.url, token=token, cache_dir=tmp_path / "client"
    )
    assert Path(path).read_bytes() == b"hello audit"
    with httpx.Client(timeout=60) as client:
        response = client.get(big_url)  # anonymous, full, cold
        assert hashlib.sha256(response.content).hexdigest() == BIG.sha256()
        ids["full"] = response.headers["x-request-id"]
        response = client.get(big_url, headers={"Range": "bytes=1000-1999", **auth})
        assert response.status_code == 206
        ids["range"] = response.headers["x-request-id"]
        with client.stream("GET", big_url, headers=auth) as streamed:
            ids["aborted"] = streamed.headers["x-request-id"]
            received = 0
            for piece in streamed.iter_raw():
                received += len(piece)
                if received >= 1024 * 1024:
                    break
        response = client.get(big_url, headers={"Authorization": "Bearer hp_not-a-real-token"})
        assert response.status_code == 401
        ids["bad-token"] = response.headers["x-request-id"]
    with pytest.raises(HfHubHTTPError) as denied:
        HfApi(endpoint=process.url, token=token).create_commit(
            repo_id, [CommitOperationAdd("x.txt", b"x")], commit_message="not allowed"
        )
    assert denied.value.response is not None
    # A namespace that is not a project answers writes like a repo the caller cannot see.
    assert denied.value.response.status_code == 404
    assert HfApi(endpoint=process.url).whoami(token=token)["name"] == "alice"

    records = wait_for_records(data_dir, 7)
    by_id = {record["request_id"]: record for record in records}
    assert len(records) == 7, [(r["action"], r["route"], r["status"]) for r in records]
    assert len(by_id) == 7

    small = next(r for r in records if r["path"] == "small.txt")
    assert (small["action"], small["decision"], small["status"]) == ("download", "allow", 200)
    assert (small["actor_kind"], small["actor_name"]) == ("user", "alice")
    assert small["bytes_sent"] == len(b"hello audit")
    assert small["token_id"].startswith("tok_")
    assert small["commit_sha"] == upstream.repos[("model", repo_id)].branches["main"]

    full = by_id[ids["full"]]
    assert (full["actor_name"], full["status"], full["bytes_sent"]) == ("anonymous", 200, BIG.size)
    assert (full["cache"], full["sha256"], full["reason"]) == ("miss", BIG.sha256(), "")
    ranged = by_id[ids["range"]]
    assert (ranged["status"], ranged["bytes_sent"], ranged["cache"]) == (206, 1000, "hit")
    aborted = by_id[ids["aborted"]]
    assert aborted["status"] == 200
    assert 1024 * 1024 <= aborted["bytes_sent"] < BIG.size
    assert aborted["reason"].startswith("incomplete")
    bad = by_id[ids["bad-token"]]
    assert (bad["action"], bad["decision"], bad["status"]) == ("download", "deny", 401)
    assert bad["reason"] == "unknown token"
    upload = next(r for r in records if r["action"] == "upload")
    assert (upload["decision"], upload["status"], upload["actor_name"]) == ("deny", 404, "alice")
    login = next(r for r in records if r["action"] == "login")
    assert (login["decision"], login["status"]) == ("allow", 200)

    # The filters of `hubproxy admin audit`.
    assert {r["request_id"] for r in audit_records(data_dir, "--denied")} == {
        ids["bad-token"], upload["request_id"],
    }  # fmt: skip
    assert len(audit_records(data_dir, "--user", "alice", "--action", "download")) == 3
    assert len(audit_records(data_dir, "--repo", repo_id)) == 6
    assert audit_records(data_dir, "--since", "2099-01-01") == []
    assert len(audit_records(data_dir, "--since", "1h")) == 9  # + user and token creation


def test_no_record_lost_under_load_and_across_a_graceful_shutdown(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    """2,000 concurrent downloads through a tiny audit queue (so requests must wait for the
    writer); the server is stopped gracefully in the middle and started again."""
    upstream.add_repo(repo_id, {"small.bin": b"s" * 1024})
    process = proxy_factory("--audit-queue-size", "16")
    url = f"{process.url}/{repo_id}/resolve/main/small.bin"
    assert httpx.get(url).status_code == 200  # warm the cache
    total = 2000
    completed: dict[int, str] = {}  # request number -> request id
    failures: list[int] = []

    async def run() -> None:
        stop_requested, server_down = asyncio.Event(), asyncio.Event()

        async def download(client: httpx.AsyncClient, number: int) -> None:
            if number < total // 2:
                # Arrivals spread over ~2 s, so that the shutdown finds some in flight.
                await asyncio.sleep(number * 0.002)
            else:
                # The second half arrives while the server is away: they must retry.
                await server_down.wait()
                await asyncio.sleep((number - total // 2) * 0.001)
            while True:
                try:
                    response = await client.get(url, headers={"User-Agent": f"load/{number}"})
                except httpx.TransportError:
                    failures.append(number)
                    await asyncio.sleep(0.2)  # the server is restarting
                    continue
                if response.status_code == 200 and response.content == b"s" * 1024:
                    completed[number] = response.headers["x-request-id"]
                    if len(completed) >= total // 4:
                        stop_requested.set()
                    return
                await asyncio.sleep(0.2)

        async def restart() -> None:
            await stop_requested.wait()
            # SIGTERM: drains requests, flushes the audit log.
            await asyncio.to_thread(process.stop)
            server_down.set()
            await asyncio.to_thread(process.start)

        limits = httpx.Limits(max_connections=total, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            restarter = asyncio.create_task(restart())
            await asyncio.gather(*(download(client, number) for number in range(total)))
            await restarter

    asyncio.run(run())
    assert len(completed) == total
    # The shutdown really happened in the middle: requests found the server away.
    assert failures
    assert process.log().count("hubproxy ready") == 2
    records = wait_for_records(process.data_dir, total + 1, "--action", "download")
    loaded = [r for r in records if (r["user_agent"] or "").startswith("load/")]
    request_ids = [r["request_id"] for r in loaded]
    assert len(request_ids) == len(set(request_ids))
    # Every completed download has its record, and nothing else was recorded as completed.
    assert set(completed.values()) <= set(request_ids)
    assert all(r["bytes_sent"] == 1024 for r in loaded if r["request_id"] in completed.values())
    assert len([r for r in loaded if r["status"] == 200 and r["bytes_sent"] == 1024]) == total


def test_a_stale_answer_is_recorded_as_such(
    in_process_factory: InProcessFactory, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"config.json": repo_id.encode()})
    server = in_process_factory(revision_ttl=0)
    url = f"/{repo_id}/resolve/main/config.json"
    with server.client() as client:
        assert client.get(url).status_code == 200
        upstream.down = True
        response = client.get(url)
    assert response.headers["x-hubproxy-stale"] == "true"
    records = {r["request_id"]: r for r in wait_for_records(server.data_dir, 2)}
    assert records[response.headers["x-request-id"]]["cache"] == "stale"
    assert [r["cache"] for r in records.values()] == ["miss", "stale"]
