"""Concurrency, upstream faults, restarts, crashes and offline mode, through real processes."""

import hashlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_download, snapshot_download

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, FakeHubServer, GeneratedFile
from tests.support.proxy import ProxyProcess, free_port

pytestmark = pytest.mark.clients

BIG = GeneratedFile(3_000_000, seed=11)  # twelve 256 KiB chunks
CONFIG = b'{"model_type": "bert"}'


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def model(upstream: FakeHub, repo_id: str) -> str:
    upstream.add_repo(repo_id, {"config.json": CONFIG, "big.bin": BIG})
    return repo_id


def test_concurrent_cold_clients_pull_the_file_once(
    proxy: ProxyProcess, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    upstream.cdn_bytes_per_second_per_connection = (
        20_000_000  # slow enough for the clients to overlap
    )

    def download(number: int) -> str:
        return file_sha256(
            hf_hub_download(model, "big.bin", cache_dir=tmp_path / f"client-{number}")
        )

    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(download, range(8)))
    assert digests == [BIG.sha256()] * 8
    cold_bytes = upstream.file_bytes_served()
    assert BIG.size <= cold_bytes <= 1.05 * BIG.size
    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(download, range(8, 16)))
    assert digests == [BIG.sha256()] * 8
    assert upstream.file_bytes_served() == cold_bytes  # warm round: nothing from upstream


def test_cut_upstream_stream_is_resumed_not_cached_corrupt(
    proxy: ProxyProcess, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    upstream.cut_next_bodies(2, after_bytes=100_000)
    first = hf_hub_download(model, "big.bin", cache_dir=tmp_path / "a")
    assert file_sha256(first) == BIG.sha256()
    second = hf_hub_download(model, "big.bin", cache_dir=tmp_path / "b")
    assert file_sha256(second) == BIG.sha256()


def test_persistent_upstream_failure_breaks_the_client_connection_and_caches_nothing(
    proxy_factory: ProxyFactory,
    upstream: FakeHub,
    fake_hub_server: FakeHubServer,
    model: str,
    tmp_path: Path,
) -> None:
    server = proxy_factory("--read-ahead-chunks", "0")
    url = f"{server.url}/{model}/resolve/main/big.bin"
    assert httpx.get(url, headers={"Range": "bytes=0-9"}).status_code == 206  # chunk 0 cached
    upstream.cut_next_bodies(1000, after_bytes=0)  # from now on upstream breaks every body
    # Never a whole file: a proper error before any byte (the cached first chunk is held back
    # until the file can be verified), or a body that breaks short of Content-Length.
    with httpx.stream("GET", url, timeout=60) as response:
        if response.status_code == 200:
            with pytest.raises(httpx.HTTPError):
                response.read()
        else:
            assert response.status_code == 502
            assert response.headers["x-error-code"] == "UpstreamUnavailable"
    # Nothing cached at all: a proper error response before any byte.
    cold = httpx.get(
        f"{server.url}/{model}/resolve/main/big.bin",
        headers={"Range": "bytes=2000000-2000009"},
        timeout=60,
    )
    assert cold.status_code == 502
    assert cold.headers["x-error-code"] == "UpstreamUnavailable"
    # The CDN's host, not the hub's, and what broke.
    cdn_host = fake_hub_server.cdn_url.removeprefix("http://")
    assert cold.headers["x-error-message"].startswith(f"Upstream {cdn_host}: file fetch failed: ")
    while upstream.take_cut() is not None:
        pass
    healed = hf_hub_download(model, "big.bin", cache_dir=tmp_path, endpoint=server.url)
    assert file_sha256(healed) == BIG.sha256()
    deadline = time.monotonic() + 30
    while httpx.head(url).headers["x-hubproxy-cache"] != "hit":  # fills may still be landing
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.2)
    assert not list((server.data_dir / "staging").iterdir())


def test_upstream_down_serves_cached_main_marked_stale(
    proxy_factory: ProxyFactory, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    server = proxy_factory("--revision-ttl", "0")
    snapshot_download(model, cache_dir=tmp_path / "warm", endpoint=server.url)
    upstream.down = True
    upstream.reset_stats()
    folder = Path(snapshot_download(model, cache_dir=tmp_path / "cold-client", endpoint=server.url))
    assert file_sha256(folder / "big.bin") == BIG.sha256()
    head = httpx.head(f"{server.url}/{model}/resolve/main/config.json")
    assert head.status_code == 200
    assert head.headers["x-hubproxy-stale"] == "true"
    # Not cached at all: a clear upstream error, not a hang or a 500.
    missing = httpx.get(f"{server.url}/api/models/acme/never-seen")
    assert missing.status_code == 502
    assert missing.headers["x-error-code"] == "UpstreamUnavailable"
    upstream.down_mode = "reset"
    assert httpx.head(f"{server.url}/{model}/resolve/main/big.bin").status_code == 200


@pytest.mark.storage_independent
def test_branch_moves_after_the_ttl(
    proxy_factory: ProxyFactory, upstream: FakeHub, model: str
) -> None:
    server = proxy_factory("--revision-ttl", "1")
    url = f"{server.url}/{model}/resolve/main/config.json"
    first = httpx.get(url)
    new_commit = upstream.commit(model, {"config.json": b'{"model_type": "gpt2"}'})
    assert httpx.get(url).content == CONFIG  # within the TTL: the known commit
    time.sleep(1.2)
    moved = httpx.get(url)
    assert moved.headers["x-repo-commit"] == new_commit
    assert moved.content == b'{"model_type": "gpt2"}'
    # The old commit stays addressable forever.
    pinned = httpx.get(f"{server.url}/{model}/resolve/{first.headers['x-repo-commit']}/config.json")
    assert pinned.content == CONFIG


def test_restart_keeps_the_cache(
    proxy_factory: ProxyFactory, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    server = proxy_factory()
    snapshot_download(model, cache_dir=tmp_path / "before", endpoint=server.url)
    server.stop()
    upstream.reset_stats()
    server.start()
    folder = Path(
        snapshot_download(model, revision=None, cache_dir=tmp_path / "after", endpoint=server.url)
    )
    assert file_sha256(folder / "big.bin") == BIG.sha256()
    assert upstream.file_bytes_served() == 0


def test_sigkill_mid_download_leaves_a_clean_cache(
    proxy_factory: ProxyFactory, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    # The restarted server takes the killed one's fill leases over after lease_seconds: 3 s
    # here, not the default 30 s of waiting.
    server = proxy_factory("--lease-seconds", "3")
    upstream.cdn_bytes_per_second_per_connection = 1_000_000  # ~1 s per chunk
    received = threading.Event()

    def partial_download() -> None:
        try:
            with httpx.stream(
                "GET", f"{server.url}/{model}/resolve/main/big.bin", timeout=30
            ) as response:
                for _ in response.iter_bytes():
                    received.set()
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=partial_download)
    thread.start()
    assert received.wait(20)
    server.kill()
    thread.join(30)
    upstream.cdn_bytes_per_second_per_connection = None
    server.start()
    leftovers = [path for path in (server.data_dir / "storage").rglob("*") if ".tmp-" in path.name]
    assert leftovers == []
    assert list((server.data_dir / "staging").iterdir()) == []
    path = hf_hub_download(model, "big.bin", cache_dir=tmp_path, endpoint=server.url)
    assert file_sha256(path) == BIG.sha256()


def test_offline_mode_serves_only_the_cache(
    proxy_factory: ProxyFactory, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    online = proxy_factory()
    snapshot_download(model, cache_dir=tmp_path / "warm", endpoint=online.url)
    assert not hf_hub_download_exists(online.url, model, "optional.json")  # absence recorded
    online.stop()
    upstream.reset_stats()
    offline = proxy_factory("--offline", data_dir=online.data_dir)
    folder = Path(snapshot_download(model, cache_dir=tmp_path / "offline", endpoint=offline.url))
    assert file_sha256(folder / "big.bin") == BIG.sha256()
    assert not hf_hub_download_exists(offline.url, model, "optional.json")
    not_cached = httpx.get(f"{offline.url}/api/models/acme/other")
    assert not_cached.status_code == 504
    assert not_cached.headers["x-error-code"] == "OfflineMiss"
    assert upstream.count() == 0


def hf_hub_download_exists(endpoint: str, repo_id: str, filename: str) -> bool:
    response = httpx.head(f"{endpoint}/{repo_id}/resolve/main/{filename}")
    if response.status_code == 404:
        assert response.headers["x-error-code"] == "EntryNotFound"
        assert response.headers["x-repo-commit"]
        return False
    return response.status_code == 200


@pytest.mark.storage_independent
def test_expired_or_revoked_cdn_urls_are_refreshed(
    proxy_factory: ProxyFactory, upstream: FakeHub, model: str
) -> None:
    server = proxy_factory("--read-ahead-chunks", "0")
    url = f"{server.url}/{model}/resolve/main/big.bin"
    expected = BIG.read(0, BIG.size)
    assert httpx.get(url, headers={"Range": "bytes=0-9"}).content == expected[:10]
    upstream.secret = b"rotated"  # every URL signed so far is now refused by the CDN (403)
    later = httpx.get(url, headers={"Range": "bytes=1000000-1000009"})
    assert later.status_code == 206
    assert later.content == expected[1_000_000:1_000_010]
    refused = [
        record for record in upstream.requests if record.origin == "cdn" and record.status == 403
    ]
    assert len(refused) == 1
    upstream.cdn_url_ttl = 5  # short-lived URLs are refreshed before they expire
    assert hashlib.sha256(httpx.get(url).content).hexdigest() == BIG.sha256()


def test_full_download_keeps_filling_after_the_client_leaves(
    proxy_factory: ProxyFactory, upstream: FakeHub, model: str
) -> None:
    server = proxy_factory()
    upstream.cdn_bytes_per_second_per_connection = 3_000_000
    url = f"{server.url}/{model}/resolve/main/big.bin"
    with httpx.stream("GET", url, timeout=30) as response:
        next(response.iter_bytes())  # first bytes, then hang up
    deadline = time.monotonic() + 30
    while httpx.head(url).headers["x-hubproxy-cache"] != "hit":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert upstream.file_bytes_served() == BIG.size
    assert hashlib.sha256(httpx.get(url).content).hexdigest() == BIG.sha256()
    assert upstream.file_bytes_served() == BIG.size


def test_cache_max_bytes_evicts_least_recently_used_files(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    server = proxy_factory("--cache-max-bytes", "2500KB")
    files = {
        f"file-{number}.bin": GeneratedFile(1_000_000, seed=50 + number) for number in range(4)
    }
    upstream.add_repo(repo_id, files)
    for name in files:
        assert len(httpx.get(f"{server.url}/{repo_id}/resolve/main/{name}").content) == 1_000_000
        time.sleep(0.05)

    def status(name: str) -> str:
        return httpx.head(f"{server.url}/{repo_id}/resolve/main/{name}").headers["x-hubproxy-cache"]

    deadline = time.monotonic() + 15
    while status("file-0.bin") != "miss":  # eviction runs as the last fill commits
        assert time.monotonic() < deadline
        time.sleep(0.1)
    statuses = {
        name: httpx.head(f"{server.url}/{repo_id}/resolve/main/{name}").headers["x-hubproxy-cache"]
        for name in files
    }
    assert statuses["file-0.bin"] == "miss"  # the oldest went first
    assert statuses["file-3.bin"] == "hit"
    stored = sum(
        path.stat().st_size for path in (server.data_dir / "storage").rglob("*") if path.is_file()
    )
    assert stored <= 2_500_000


class MisbehavingUpstream:
    """A TCP server on 127.0.0.1 that fails every connection one way.

    `reset`: reads the request, then aborts the connection (RST). `silent`: reads the request
    and never answers. `plain`: answers in plain HTTP, so a TLS client fails its handshake.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _address = self.listener.accept()
            except OSError:
                return  # closed
            connection.recv(65536)
            if self.mode == "reset":
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()
            elif self.mode == "plain":
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                connection.close()
            else:
                self._connections.append(connection)  # held open, unanswered, until close()

    def close(self) -> None:
        self.listener.close()
        for connection in self._connections:
            connection.close()


@pytest.fixture
def misbehaving() -> Iterator[list[MisbehavingUpstream]]:
    servers: list[MisbehavingUpstream] = []
    yield servers
    for server in servers:
        server.close()


@pytest.mark.parametrize(
    ("fault", "status", "cause"),
    [
        ("refused", 502, "connection refused"),
        ("reset", 502, "connection reset"),
        ("silent", 504, "timeout"),
        ("tls", 502, "TLS error"),
        ("http", 502, "HTTP status 503"),
    ],
)
@pytest.mark.storage_independent
def test_upstream_failures_name_host_operation_and_cause(
    proxy_factory: ProxyFactory,
    upstream: FakeHub,
    fake_hub_server: FakeHubServer,
    misbehaving: list[MisbehavingUpstream],
    fault: str,
    status: int,
    cause: str,
) -> None:
    if fault == "refused":
        upstream_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    elif fault == "http":
        upstream.down = True  # the fake hub answers 503
        upstream_url = fake_hub_server.url
    else:
        server = MisbehavingUpstream({"tls": "plain"}.get(fault, fault))
        misbehaving.append(server)
        scheme = "https" if fault == "tls" else "http"
        upstream_url = f"{scheme}://127.0.0.1:{server.port}"
    host = upstream_url.split("://")[1]
    proxy = proxy_factory("--upstream", upstream_url, "--upstream-timeout", "1")
    answer = httpx.get(f"{proxy.url}/api/models/acme/never-seen", timeout=30)
    assert answer.status_code == status
    message = answer.headers["x-error-message"]
    assert message.startswith(f"Upstream {host}: repo info failed: {cause}"), message
    proxy.stop()
    assert f"upstream {host}: repo info failed: {cause}" in proxy.log()
