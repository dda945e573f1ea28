"""Warm HEADs answered by the connection (`hf_api/warm_heads.py`, `cli/connections.py`): the
same answer as the full path, authorized again on every reuse, never where the answer could
differ, in request order on a connection."""

import socket
import time
from collections.abc import Callable

import httpx
import pytest
from huggingface_hub import get_hf_file_metadata, hf_hub_url

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, GeneratedFile
from tests.governance.conftest import admin, admin_json, new_token
from tests.proxy.test_metrics import scrape, value
from tests.support.proxy import ProxyProcess

WEIGHTS = GeneratedFile(600_000, seed=91)
# Headers every answer has its own value of.
PER_ANSWER = frozenset({"date", "x-request-id"})


def warm_answers(server: ProxyProcess) -> float:
    return value(scrape(server.url), "hubproxy_warm_head_answers_total")


def head_requests(server: ProxyProcess, status: int = 200) -> float:
    samples = scrape(server.url)
    return value(
        samples, "hubproxy_requests_total", route="resolve", method="HEAD", status=str(status)
    )


def raw_exchange(server: ProxyProcess, *requests: str) -> list[bytes]:
    """Send `requests` pipelined on one connection (all at once); their answers (head, and
    body but for HEADs), in the order they came."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall("".join(requests).encode())
        received = b""
        answers: list[bytes] = []
        for request in requests:
            while b"\r\n\r\n" not in received:
                piece = sock.recv(65536)
                assert piece, f"connection closed after {answers}"
                received += piece
            head, received = received.split(b"\r\n\r\n", 1)
            fields = dict(header_lines(head))
            length = 0 if request.startswith("HEAD") else int(fields["content-length"])
            while len(received) < length:
                piece = sock.recv(65536)
                assert piece, "connection closed within a body"
                received += piece
            answers.append(head + b"\r\n\r\n" + received[:length])
            received = received[length:]
        return answers


def header_lines(answer: bytes) -> list[tuple[str, str]]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status, *lines = head.split("\r\n")
    pairs = [tuple(line.split(": ", 1)) for line in lines]
    return [("status", status), *((name, field) for name, field in pairs)]


def head(url: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token:
        headers["authorization"] = f"Bearer {token}"
    return httpx.head(url, headers=headers)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture
def warm_file(upstream: FakeHub, repo_id: str) -> str:
    upstream.add_repo(repo_id, {"model.safetensors": WEIGHTS, "config.json": b'{"a": 1}'})
    return f"/{repo_id}/resolve/main/model.safetensors"


def test_a_repeated_head_gets_the_full_paths_answer_from_the_connection(
    proxy_factory: ProxyFactory, warm_file: str
) -> None:
    server = proxy_factory()
    assert len(httpx.get(server.url + warm_file, timeout=60).content) == WEIGHTS.size
    request = f"HEAD {warm_file} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    (full,) = raw_exchange(server, request)  # answered, and remembered, by the full path
    before, heads_before = warm_answers(server), head_requests(server)
    (warm,) = raw_exchange(server, request)
    assert warm_answers(server) == before + 1
    # Counted like any answer: route, method, status.
    assert head_requests(server) == heads_before + 1
    same = [pair for pair in header_lines(full) if pair[0] not in PER_ANSWER]
    assert [pair for pair in header_lines(warm) if pair[0] not in PER_ANSWER] == same
    assert ("x-hubproxy-cache", "hit") in same
    assert ("content-length", str(WEIGHTS.size)) in same
    ids = [dict(header_lines(answer))["x-request-id"] for answer in (full, warm)]
    assert ids[0] != ids[1]
    # An HTTP client's HEAD (`Host` with the port: another key), remembered, then reused.
    head(server.url + warm_file)
    response = head(server.url + warm_file)
    assert response.headers["etag"] == f'"{WEIGHTS.sha256()}"'
    assert response.headers["x-linked-size"] == str(WEIGHTS.size)
    assert warm_answers(server) == before + 2
    # huggingface_hub's own HEAD (what every download starts with; the same key as httpx's
    # above), twice: the second at least is warm.
    repo_id, filename = warm_file.split("/resolve/main/")
    url = hf_hub_url(repo_id.strip("/"), filename, endpoint=server.url)
    metadata = [get_hf_file_metadata(url) for _ in range(2)]
    assert metadata[0] == metadata[1]
    assert (metadata[1].etag, metadata[1].size) == (WEIGHTS.sha256(), WEIGHTS.size)
    assert warm_answers(server) >= before + 3


def test_heads_whose_answer_could_differ_take_the_full_path(
    proxy_factory: ProxyFactory, warm_file: str
) -> None:
    server = proxy_factory()
    url = server.url + warm_file
    httpx.get(url, timeout=60)
    assert head(url).status_code == 200
    before = warm_answers(server)
    ranged = head(url, Range="bytes=0-9")
    assert (ranged.status_code, ranged.headers["content-length"]) == (206, "10")
    assert head(url, **{"X-Forwarded-Proto": "https"}).status_code == 200
    assert head(url, Cookie="hubproxy_session=x").status_code == 200
    assert head(url.replace("127.0.0.1", "localhost")).status_code == 200  # another Host
    assert warm_answers(server) == before
    # A file not cached yet is never remembered: its first HEAD is a miss.
    config = url.replace("model.safetensors", "config.json")
    assert head(config).headers["x-hubproxy-cache"] == "miss"
    assert head(config).headers["x-hubproxy-cache"] == "miss"
    assert warm_answers(server) == before


def test_nothing_is_remembered_when_branches_are_always_rechecked(
    proxy_factory: ProxyFactory, warm_file: str
) -> None:
    server = proxy_factory("--revision-ttl", "0")
    url = server.url + warm_file
    httpx.get(url, timeout=60)
    for _ in range(3):
        assert head(url).status_code == 200
    assert warm_answers(server) == 0


def test_pipelined_requests_are_answered_in_order(
    proxy_factory: ProxyFactory, warm_file: str
) -> None:
    server = proxy_factory()
    httpx.get(server.url + warm_file, timeout=60)
    config = warm_file.replace("model.safetensors", "config.json")
    httpx.get(server.url + config)
    head_request = f"HEAD {warm_file} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    raw_exchange(server, head_request)
    before = warm_answers(server)
    # HEAD (warm), GET (full path), HEAD (after the GET: must wait for it), HEAD.
    get_request = f"GET {config} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answers = raw_exchange(server, head_request, get_request, head_request, head_request)
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    assert statuses == [b"HTTP/1.1 200 OK"] * 4
    assert answers[1].endswith(b'{"a": 1}')
    for index in (0, 2, 3):
        assert dict(header_lines(answers[index]))["content-length"] == str(WEIGHTS.size)
    assert warm_answers(server) >= before + 1


def test_every_reuse_is_authorized_again(proxy_factory: ProxyFactory, warm_file: str) -> None:
    server = proxy_factory()
    data_dir = server.data_dir
    admin(data_dir, "user", "create", "carol", "--admin")
    token = new_token(data_dir, "token", "create", "carol", "--scope", "admin")
    url = server.url + warm_file
    httpx.get(url, timeout=60)
    for _ in range(3):
        assert head(url, token).status_code == 200
        assert head(url).status_code == 200
    assert warm_answers(server) >= 4

    # A change made through this server replaces its accounts at once: the very next HEAD,
    # well inside the answer's second, is decided anew.
    policy = httpx.patch(
        f"{server.url}/api/hubproxy/admin/policy",
        json={"requireAuth": True},
        headers={"authorization": f"Bearer {token}"},
    )
    assert policy.status_code == 200, policy.text
    refused = head(url)
    assert (refused.status_code, refused.headers["x-error-code"]) == (401, "Unauthorized")
    assert head(url, token).status_code == 200

    token_id = next(t["id"] for t in admin_json(data_dir, "token", "list"))
    admin(data_dir, "token", "revoke", token_id)
    eventually(lambda: head(url, token).status_code == 401)
    before = warm_answers(server)
    assert head(url, token).status_code == 401
    assert head(url).status_code == 401
    assert warm_answers(server) == before
    # The refusals were decided and audited by the full path.
    reasons = {record["reason"] for record in admin_json(data_dir, "audit", "--denied")}
    assert {"token revoked", "anonymous access is disabled"} <= reasons
