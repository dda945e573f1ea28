"""No body is read before authentication and authorization, nor past the endpoint's cap.

A 64 MiB POST to `/api/repos/create` used to be buffered whole before its answer; now an
anonymous one is refused (401) unread and an authenticated one by its Content-Length (413),
and the server's resident memory does not grow by the body's size. Chunked bodies, which
declare no length, are counted as they arrive and refused at the cap.
"""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_upstream import FakeHubServer
from tests.security.conftest import TARGET_REPO, Fortress, start_fortress
from tests.support.proxy import ProxyProcess

BODY_SIZE = 64 * 1024 * 1024
PIECE = b"{" + b" " * (1024 * 1024 - 1)
# Generous: the refusal needs no more than the headers.
QUICKLY_SECONDS = 20


@pytest.fixture(scope="module")
def fortress(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fortress]:
    """A real server: its resident memory is measured, and a raw socket lies about lengths."""
    yield from start_fortress(fake_hub_server, tmp_path_factory.mktemp("body-limits") / "data")


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def server_pid(fortress: Fortress) -> int:
    assert isinstance(fortress.process, ProxyProcess)
    process = fortress.process._process
    assert process is not None
    return process.pid


def chunked_body() -> Iterator[bytes]:
    for _ in range(BODY_SIZE // len(PIECE)):
        yield PIECE


def post_create(fortress: Fortress, token: str | None, *, chunked: bool) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    content = chunked_body() if chunked else b"{" + b" " * (BODY_SIZE - 1)
    started = time.monotonic()
    try:
        answer = httpx.post(
            f"{fortress.url}/api/repos/create", content=content, headers=headers, timeout=60
        )
    finally:
        assert time.monotonic() - started < QUICKLY_SECONDS
    return answer


def test_large_anonymous_bodies_are_refused_unread(fortress: Fortress) -> None:
    pid = server_pid(fortress)
    before = resident_bytes(pid)
    for chunked in (False, True):
        answer = post_create(fortress, None, chunked=chunked)
        # Declared too large: 413 by the header alone; chunked: 401, nothing read.
        assert answer.status_code == (401 if chunked else 413), answer.text
        assert answer.headers["x-error-code"] == ("Unauthorized" if chunked else "PayloadTooLarge")
    # Nothing close to the body's size was kept.
    assert resident_bytes(pid) - before < BODY_SIZE // 4


def test_large_authenticated_bodies_are_refused_at_the_cap(fortress: Fortress) -> None:
    pid = server_pid(fortress)
    before = resident_bytes(pid)
    for chunked in (False, True):
        answer = post_create(fortress, fortress.developer_token, chunked=chunked)
        assert answer.status_code == 413, answer.text
        assert answer.headers["x-error-code"] == "PayloadTooLarge"
    assert resident_bytes(pid) - before < BODY_SIZE // 4


def raw_request(fortress: Fortress, head: str) -> bytes:
    """Send `head` (request line and headers, no body) and read the answer's head."""
    with socket.create_connection(("127.0.0.1", fortress.process.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    return answer


def test_declared_lengths_over_every_cap_are_refused_before_reading(fortress: Fortress) -> None:
    # A Content-Length over the cap and no body sent: answered without waiting for the body.
    paths = [
        ("POST", "/api/hubproxy/tokens"),
        ("POST", f"/api/models/{TARGET_REPO}/paths-info/main"),
        ("POST", f"/api/models/{TARGET_REPO}/preupload/main"),
        ("POST", f"/{TARGET_REPO}.git/info/lfs/objects/batch"),
        ("POST", "/api/hubproxy/admin/users"),
        ("POST", "/api/repos/create"),
    ]
    for method, path in paths:
        answer = raw_request(
            fortress,
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fortress.admin_token}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {10**12}\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 413 "), (path, answer)
        assert b"x-error-code: PayloadTooLarge" in answer.lower().replace(
            b"payloadtoolarge", b"PayloadTooLarge"
        )
