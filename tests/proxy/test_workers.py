"""`hubproxy serve --workers N`: several processes on one port and one data dir, one upstream
fetch per chunk across them, one lock for the server, account changes seen by all, and a
graceful stop that lets every worker finish what it sends."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, FakeHubServer, GeneratedFile
from tests.governance.conftest import admin, new_token
from tests.support.proxy import ProxyProcess

WEIGHTS = GeneratedFile(6 * 1024 * 1024, seed=81)  # 24 chunks of 256 KiB
WORKERS = ("--workers", "2")


def worker_pids(supervisor: int) -> set[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return {int(pid) for pid in children}


def test_cold_clients_on_several_workers_cost_one_upstream_fetch(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"model.safetensors": WEIGHTS})
    server = proxy_factory(*WORKERS)
    assert len(worker_pids(server.pid)) == 2
    url = f"{server.url}/{repo_id}/resolve/main/model.safetensors"
    expected = WEIGHTS.read(0, WEIGHTS.size)
    results: list[bytes] = []

    failures: list[BaseException] = []

    def download() -> None:
        # A connection of its own each: the kernel hands them to either worker.
        try:
            with httpx.Client(timeout=30) as client:
                results.append(client.get(url).content)
        except BaseException as error:  # reported below, with the server's log
            failures.append(error)

    threads = [threading.Thread(target=download) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, (failures, server.log()[-8000:])
    assert len(results) == 6
    assert all(result == expected for result in results)
    assert upstream.file_bytes_served() == WEIGHTS.size  # 1.00x, whichever worker asked
    for _ in range(6):  # warm, on any worker
        assert (
            httpx.get(url, headers={"Range": "bytes=1000-299999"}).content
            == (expected[1000:300000])
        )
    assert upstream.file_bytes_served() == WEIGHTS.size
    # Each worker writes its own audit records into the one log: none is lost.
    deadline = time.monotonic() + 15
    while True:
        records = [
            record
            for record in json.loads(admin(server.data_dir, "audit", "--json").stdout)
            if record["action"] == "download"
        ]
        if len(records) >= 12 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(record["bytes_sent"] for record in records) == ([299000] * 6 + [WEIGHTS.size] * 6)
    assert "Traceback" not in server.log()


@pytest.mark.storage_independent
def test_the_workers_share_the_lock_and_a_second_server_is_refused(
    proxy_factory: ProxyFactory, fake_hub_server: FakeHubServer
) -> None:
    server = proxy_factory(*WORKERS)
    for workers in ("1", "2"):
        second = ProxyProcess(server.data_dir, fake_hub_server.url)
        try:
            with pytest.raises(RuntimeError, match="in use by another hubproxy server"):
                second.start("--workers", workers)
        finally:
            second.stop()
    assert httpx.get(f"{server.url}/health/ready").status_code == 200


@pytest.mark.storage_independent
def test_account_changes_reach_every_worker(proxy_factory: ProxyFactory) -> None:
    server = proxy_factory(*WORKERS)
    admin(server.data_dir, "user", "create", "carol")
    token = new_token(server.data_dir, "token", "create", "carol")
    headers = {"Authorization": f"Bearer {token}"}

    def answers() -> set[int]:
        statuses = set()
        for _ in range(12):  # fresh connections: both workers answer some
            with httpx.Client(base_url=server.url, headers=headers) as client:
                statuses.add(client.get("/api/whoami-v2").status_code)
        return statuses

    deadline = time.monotonic() + 5
    while answers() != {200}:
        assert time.monotonic() < deadline
    admin(server.data_dir, "user", "disable", "carol")
    deadline = time.monotonic() + 5
    while answers() != {401}:
        assert time.monotonic() < deadline


def test_a_graceful_stop_lets_every_worker_finish_its_downloads(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"model.safetensors": WEIGHTS})
    server = proxy_factory(*WORKERS)
    url = f"{server.url}/{repo_id}/resolve/main/model.safetensors"
    assert len(httpx.get(url, timeout=60).content) == WEIGHTS.size
    workers = worker_pids(server.pid)
    received: list[int] = []

    def slow_download() -> None:
        with httpx.Client(timeout=60) as client, client.stream("GET", url) as response:
            total = 0
            for piece in response.iter_raw(64 * 1024):
                total += len(piece)
                time.sleep(0.002)
            received.append(total)

    threads = [threading.Thread(target=slow_download) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    os.kill(server.pid, signal.SIGTERM)
    for thread in threads:
        thread.join()
    assert received == [WEIGHTS.size] * 4
    process = server._process
    assert process is not None
    assert process.wait(timeout=15) == 0
    # The supervisor reaped every worker before it exited.
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def answering_workers(server: ProxyProcess, responses: list[httpx.Response]) -> list[int]:
    """The pid of the worker that answered each of `responses` (access records name it)."""
    wanted = {response.headers["x-request-id"] for response in responses}
    deadline = time.monotonic() + 10
    while True:
        found: dict[str, int] = {}
        for line in server.log().splitlines():
            if "request_id=" in line and " pid=" in line:
                request_id = line.split("request_id=", 1)[1].split()[0]
                if request_id in wanted:
                    found[request_id] = int(line.rsplit(" pid=", 1)[1].split()[0])
        if len(found) == len(wanted):
            return [found[response.headers["x-request-id"]] for response in responses]
        assert time.monotonic() < deadline, "no access record for some requests"
        time.sleep(0.05)


def connections_to_each_worker(server: ProxyProcess, per_worker: int) -> list[httpx.Client]:
    """`per_worker` open (keep-alive) connections to each worker, found by trying new ones."""
    found: dict[int, list[httpx.Client]] = {pid: [] for pid in worker_pids(server.pid)}
    for _ in range(20):
        if all(len(clients) >= per_worker for clients in found.values()):
            break
        batch = [httpx.Client(base_url=server.url, timeout=60) for _ in range(8)]
        responses = [client.get("/health/live") for client in batch]
        for client, pid in zip(batch, answering_workers(server, responses), strict=True):
            found[pid].append(client)
    chosen = [client for clients in found.values() for client in clients[:per_worker]]
    for clients in found.values():
        for client in clients[per_worker:]:
            client.close()
    assert len(chosen) == per_worker * len(found), "a worker took no connection"
    return chosen


def scrape_total(url: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` with `labels` (among others) in one /metrics scrape."""
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_one_metrics_scrape_counts_what_every_worker_served(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    small = GeneratedFile(300_000, seed=82)
    upstream.add_repo(repo_id, {"config.bin": small})
    server = proxy_factory(*WORKERS)
    path = f"/{repo_id}/resolve/main/config.bin"
    clients = connections_to_each_worker(server, 3)  # 3 on each worker
    for client in clients:
        assert client.get(path).content == small.read(0, small.size)
        client.close()
    # One scrape, answered by one worker, counts the downloads of both.
    resolves = {"route": "resolve", "method": "GET", "status": "200"}
    assert scrape_total(server.url, "hubproxy_requests_total", **resolves) == len(clients)
    served = scrape_total(server.url, "hubproxy_served_bytes_total")
    assert served == len(clients) * small.size
    assert scrape_total(server.url, "hubproxy_upstream_bytes_total") == small.size
    assert "hubproxy_build_info" in httpx.get(f"{server.url}/metrics").text


def test_upstream_concurrency_holds_for_all_workers_together(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    files = {f"shard-{index}.bin": GeneratedFile(512 * 1024, seed=90 + index) for index in range(8)}
    upstream.add_repo(repo_id, dict(files))
    # A slow CDN (50 ms to answer each fetch), so that fetches of different files overlap.
    upstream.cdn_latency_seconds = 0.05
    server = proxy_factory(*WORKERS, "--upstream-concurrency", "2")
    clients = connections_to_each_worker(server, 4)  # 8 cold files at once, 4 on each worker
    upstream.reset_stats()
    failures: list[BaseException] = []

    def download(client: httpx.Client, name: str, content: GeneratedFile) -> None:
        try:
            body = client.get(f"/{repo_id}/resolve/main/{name}").content
            assert body == content.read(0, content.size)
        except BaseException as error:  # reported below, with the server's log
            failures.append(error)
        finally:
            client.close()

    threads = [
        threading.Thread(target=download, args=(client, *item))
        for client, item in zip(clients, files.items(), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, (failures, server.log()[-8000:])
    assert upstream.file_bytes_served() == sum(content.size for content in files.values())
    assert upstream.most_cdn_gets_in_flight == 2  # the budget was used, never exceeded
    assert "Traceback" not in server.log()


def stored_chunk_bytes(data_dir: Path) -> int:
    return sum(path.stat().st_size for path in (data_dir / "storage").rglob("*") if path.is_file())


@pytest.mark.local_storage  # counts the chunk files on local disk
def test_cache_max_bytes_holds_for_all_workers_together(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    files = {f"part-{index}.bin": GeneratedFile(256 * 1024, seed=110 + index) for index in range(6)}
    upstream.add_repo(repo_id, dict(files))
    # Room for 4 of the 6 one-chunk files; each worker alone stores 3 of them.
    server = proxy_factory(*WORKERS, "--cache-max-bytes", str(1024 * 1024))
    clients = connections_to_each_worker(server, 3)
    for client, (name, content) in zip(clients, files.items(), strict=True):
        assert client.get(f"/{repo_id}/resolve/main/{name}").content == content.read(
            0, content.size
        )
        client.close()
    deadline = time.monotonic() + 15
    while stored_chunk_bytes(server.data_dir) > 1024 * 1024:  # checked within a second
        assert time.monotonic() < deadline, "the workers together stayed over cache_max_bytes"
        time.sleep(0.1)
    assert stored_chunk_bytes(server.data_dir) == 4 * 256 * 1024  # only what had to go went
    assert "Traceback" not in server.log()
