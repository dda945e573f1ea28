"""The zero-copy warm path: cached, verified chunks go from their files to the socket with
sendfile(2), with the same bytes, headers, audit record and disconnect handling as the copy
path (`hf_api/streaming.py`, `cli/zerocopy.py`)."""

import json
import os
import socket
import struct
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, GeneratedFile
from tests.proxy.test_metrics import scrape, value
from tests.support.cli import run_cli
from tests.support.databases import fetch_all

WEIGHTS = GeneratedFile(1_000_000, seed=71)  # four 256 KiB chunks, the last one short
LARGE = GeneratedFile(24 * 1024 * 1024, seed=72)  # more than a loopback socket buffers
RANGES = [
    ("bytes=0-99", 0, 100),
    ("bytes=300000-", 300000, WEIGHTS.size),
    ("bytes=-10", WEIGHTS.size - 10, WEIGHTS.size),
    ("bytes=262140-262150", 262140, 262151),  # across a chunk boundary
    ("bytes=100-800000", 100, 800001),  # three chunk files in one response
]

pytestmark = pytest.mark.local_storage


def sent_with_sendfile(url: str) -> float:
    return value(scrape(url), "hubproxy_sendfile_bytes_total")


def warm_up(data_dir: Path, url: str, file: GeneratedFile) -> None:
    """Download once (cold, the copy path), then wait until the blob is verified: a warm
    read then goes out with sendfile (unless `--no-sendfile`)."""
    assert len(httpx.get(url, timeout=60).content) == file.size
    deadline = time.monotonic() + 30
    while True:
        rows = fetch_all(
            data_dir, "SELECT verified FROM blobs WHERE blob_id = ?", (f"sha256:{file.sha256()}",)
        )
        row = rows[0] if rows else None
        if (row is not None and row[0]) or time.monotonic() > deadline:
            assert row is not None
            assert row[0]
            return
        time.sleep(0.05)


def audit(data_dir: Path) -> list[dict[str, object]]:
    completed = run_cli("admin", "--data-dir", str(data_dir), "audit", "--json", "--limit", "1000")
    records: list[dict[str, object]] = json.loads(completed.stdout)
    return [record for record in records if record["actor_kind"] != "cli"]


def wait_for_audit(data_dir: Path, request_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 15
    while True:
        found = [r for r in audit(data_dir) if r["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            assert found, request_id
            return found[0]
        time.sleep(0.1)


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "copy"])
def test_warm_downloads_are_byte_identical_on_both_paths(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str, sendfile: bool
) -> None:
    upstream.add_repo(repo_id, {"model.safetensors": WEIGHTS})
    server = proxy_factory(*(() if sendfile else ("--no-sendfile",)))
    url = f"{server.url}/{repo_id}/resolve/main/model.safetensors"
    warm_up(server.data_dir, url, WEIGHTS)
    before = scrape(server.url)
    expected = WEIGHTS.read(0, WEIGHTS.size)

    full = httpx.get(url)
    assert full.status_code == 200
    assert full.headers["content-length"] == str(WEIGHTS.size)
    assert full.headers["x-hubproxy-cache"] == "hit"
    assert full.content == expected
    total = WEIGHTS.size
    for header, start, end in RANGES:
        response = httpx.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{WEIGHTS.size}"
        assert response.headers["content-length"] == str(end - start)
        assert response.content == expected[start:end], header
        total += end - start
    head = httpx.head(url)
    assert head.headers["content-length"] == str(WEIGHTS.size)
    assert not head.content

    after = scrape(server.url)
    zero_copy = value(after, "hubproxy_sendfile_bytes_total") - value(
        before, "hubproxy_sendfile_bytes_total"
    )
    bodies = value(after, "hubproxy_download_bodies_total", path="sendfile") - value(
        before, "hubproxy_download_bodies_total", path="sendfile"
    )
    # Every warm byte went out with sendfile, or none did; the metrics count the same bytes.
    assert zero_copy == (total if sendfile else 0)
    assert bodies == (1 + len(RANGES) if sendfile else 0)
    served = value(after, "hubproxy_served_bytes_total", source="cache") - value(
        before, "hubproxy_served_bytes_total", source="cache"
    )
    assert served == total
    assert upstream.file_bytes_served() == WEIGHTS.size

    record = wait_for_audit(server.data_dir, full.headers["x-request-id"])
    assert (record["status"], record["bytes_sent"], record["cache"]) == (200, WEIGHTS.size, "hit")
    assert record["reason"] == ""
    assert "Traceback" not in server.log()


def chunk_files_open(pid: int) -> int:
    count = 0
    for entry in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{entry}")
        except OSError:
            continue
        if "/storage/chunks/" in target:
            count += 1
    return count


def test_a_client_leaving_mid_sendfile_frees_everything_at_once(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"large.bin": LARGE})
    server = proxy_factory()
    path = f"/{repo_id}/resolve/main/large.bin"
    warm_up(server.data_dir, server.url + path, LARGE)
    before = sent_with_sendfile(server.url)

    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # a slow reader
    client.connect(("127.0.0.1", server.port))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    received = b""
    while len(received) < 512 * 1024:
        received += client.recv(64 * 1024)
    head = received.split(b"\r\n\r\n", 1)[0].decode()
    request_id = next(
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")
        if line.lower().startswith("x-request-id:")
    )
    time.sleep(0.2)  # the server is now blocked in sendfile on a full socket buffer
    assert chunk_files_open(server.pid) >= 1
    # Reset, not a polite close: the server's next sendfile fails at once.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()

    deadline = time.monotonic() + 10
    while chunk_files_open(server.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert chunk_files_open(server.pid) == 0
    record = wait_for_audit(server.data_dir, request_id)
    assert record["status"] == 200
    assert isinstance(record["bytes_sent"], int)
    assert len(received) - len(head) <= record["bytes_sent"] < LARGE.size
    assert str(record["reason"]).startswith("incomplete")
    assert before < sent_with_sendfile(server.url) < before + LARGE.size
    # The server carries on: the next download is whole.
    assert httpx.get(server.url + path, timeout=60).content == LARGE.read(0, LARGE.size)
    assert "Traceback" not in server.log()
