"""A private hub with webhooks that may call 127.0.0.1, and a receiver to call.

The hub is `tests/hub/conftest.py`'s (same projects, users and tokens) in a server of this
package's own: the tests here restart it and change memberships. `Receiver` is a local HTTP
server that records every request (headers and JSON body) and can be told to fail.
"""

import http.server
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import TEST_CHUNK_SIZE
from tests.fake_upstream import FakeHubServer
from tests.hub.conftest import HUB_ENVIRONMENT, Hub, populate_hub
from tests.support.proxy import ProxyProcess, free_port

WEBHOOK_ENVIRONMENT = {**HUB_ENVIRONMENT, "HUBPROXY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]


class Receiver:
    """A webhook receiver on 127.0.0.1; `failures` answers of 500 come first."""

    def __init__(self, port: int = 0) -> None:
        self.received: queue.Queue[Received] = queue.Queue()
        self.failures = 0
        self.answered: list[int] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = 200
                if receiver.failures > 0:
                    receiver.failures -= 1
                    status = 500
                else:
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    receiver.received.put(Received(self.path, headers, json.loads(body)))
                receiver.answered.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def next(self, timeout: float = WAIT_SECONDS) -> Received:
        """The next request received (fails the test after `timeout` seconds)."""
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no webhook request within {timeout} s") from None

    def until(self, scope: str, action: str, repo: str | None = None) -> Received:
        """The next request of this event (skipping others)."""
        while True:
            got = self.next()
            event = got.payload["event"]
            if event == {"action": action, "scope": scope} and (
                repo is None or got.payload["repo"]["name"] == repo
            ):
                return got

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


@pytest.fixture(scope="session")
def webhook_hub(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    data_dir = tmp_path_factory.mktemp("webhook-hub") / "data"
    tokens = populate_hub(data_dir)
    process = ProxyProcess(
        data_dir,
        fake_hub_server.url,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment=WEBHOOK_ENVIRONMENT,
    )
    with process:
        yield Hub(process, data_dir, tokens)
    assert "Traceback" not in process.log(), process.log()


__all__ = ["Receiver", "free_port"]
