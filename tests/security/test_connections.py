"""Connection limits: request heads bounded in size and count; slow heads, idle connections
and silent bodies closed after their timeouts; slow but progressing downloads never cut.

The timeouts are set small here (seconds) and checked with generous margins.
"""

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fake_upstream import FakeHubServer
from tests.security.conftest import TARGET_REPO, Fortress, commit_body, start_fortress

HEADER_TIMEOUT = 2
IDLE_TIMEOUT = 2
BODY_TIMEOUT = 2
SLOW_CONNECTIONS = 50
BIG_FILE = bytes(range(256)) * (12 * 1024)  # 3 MiB


@pytest.fixture(scope="module")
def strict(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fortress]:
    yield from start_fortress(
        fake_hub_server,
        tmp_path_factory.mktemp("strict") / "data",
        "--header-timeout", str(HEADER_TIMEOUT), "--idle-timeout", str(IDLE_TIMEOUT),
        "--body-timeout", str(BODY_TIMEOUT), "--max-header-bytes", "16KiB", "--max-headers", "50",
    )  # fmt: skip


def connect(fortress: Fortress) -> socket.socket:
    return socket.create_connection(("127.0.0.1", fortress.process.port), timeout=30)


def answer_head(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        piece = sock.recv(65536)
        if not piece:
            break
        received += piece
    return received


def is_closed(sock: socket.socket) -> bool:
    """Whether the server closed `sock` (anything it sent before closing is skipped)."""
    sock.setblocking(False)
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


def test_huge_header_is_refused(strict: Fortress) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(64):  # up to 4 MiB, far past the limit
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        head = answer_head(sock)
    assert head.startswith(b"HTTP/1.1 431 "), head[:200]
    assert b"x-error-code: RequestHeaderFieldsTooLarge" in head


def test_too_many_headers_are_refused(strict: Fortress) -> None:
    with connect(strict) as sock:
        headers = "".join(f"X-{number}: 1\r\n" for number in range(200))
        sock.sendall(f"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        head = answer_head(sock)
    assert head.startswith(b"HTTP/1.1 431 "), head[:200]


def test_malformed_requests_get_a_code(strict: Fortress) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\r\n\r\n")
        head = answer_head(sock)
    assert head.startswith(b"HTTP/1.1 400 "), head[:200]
    assert b"x-error-code: BadRequest" in head


def test_slowloris_connections_are_closed_while_others_are_served(strict: Fortress) -> None:
    connections = [connect(strict) for _ in range(SLOW_CONNECTIONS)]
    request = b"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\nX-Slow: "
    try:
        started = time.monotonic()
        closed: set[int] = set()
        sent = 0
        # One header byte a second each, far longer than the header timeout allows.
        while time.monotonic() - started < HEADER_TIMEOUT * 5 and len(closed) < len(connections):
            for number, sock in enumerate(connections):
                if number in closed:
                    continue
                try:
                    sock.sendall(request[sent : sent + 1] if sent < len(request) else b"a")
                except (BrokenPipeError, ConnectionResetError):
                    closed.add(number)
                    continue
                if is_closed(sock):
                    closed.add(number)
            sent += 1
            # Meanwhile an ordinary request is served.
            assert httpx.get(f"{strict.url}/health/ready", timeout=10).status_code == 200
            time.sleep(1)
        assert len(closed) == len(connections)
        assert time.monotonic() - started < HEADER_TIMEOUT * 5
    finally:
        for sock in connections:
            sock.close()


def test_idle_connections_are_closed(strict: Fortress) -> None:
    with connect(strict) as silent, connect(strict) as kept_alive:
        kept_alive.sendall(b"GET /health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer_head(kept_alive).startswith(b"HTTP/1.1 200 ")
        time.sleep(IDLE_TIMEOUT * 3)
        assert is_closed(silent)
        assert is_closed(kept_alive)


def test_silent_bodies_are_cut_progressing_ones_are_not(strict: Fortress) -> None:
    url = f"/api/models/{TARGET_REPO}/commit/main"
    auth = f"Authorization: Bearer {strict.developer_token}\r\n"
    head = (
        f"POST {url} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/x-ndjson\r\n"
        "Content-Length: 100000\r\n\r\n"
    ).encode()
    with connect(strict) as sock:
        sock.sendall(head + b'{"key": "header", ')
        time.sleep(BODY_TIMEOUT * 3)
        assert is_closed(sock)
    # A body that keeps arriving, slower than the timeout in total: accepted.
    body = commit_body("slowly", {"slow.txt": b"s" * 2000})
    head = head.replace(b"Content-Length: 100000", f"Content-Length: {len(body)}".encode())
    with connect(strict) as sock:
        sock.sendall(head)
        pieces = [body[index : index + 500] for index in range(0, len(body), 500)]
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(BODY_TIMEOUT * 1.5 / len(pieces))
        assert answer_head(sock).startswith(b"HTTP/1.1 200 ")


def test_slow_downloads_are_not_cut(strict: Fortress) -> None:
    with strict.client(strict.developer_token) as client:
        answer = client.post(
            f"/api/models/{TARGET_REPO}/commit/main",
            content=commit_body("big", {"big.bin": BIG_FILE}),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert answer.status_code == 200, answer.text
    received = bytearray()
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {strict.developer_token}"}
    with httpx.stream(
        "GET", f"{strict.url}/{TARGET_REPO}/resolve/main/big.bin", headers=headers, timeout=60
    ) as stream:
        assert stream.status_code == 200
        for piece in stream.iter_bytes(256 * 1024):
            received += piece
            time.sleep(0.5)  # a slow reader: the whole download takes several timeouts
    assert bytes(received) == BIG_FILE
    assert time.monotonic() - started > max(HEADER_TIMEOUT, IDLE_TIMEOUT, BODY_TIMEOUT)
