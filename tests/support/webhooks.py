"""A webhook receiver for tests: a local HTTP server on 127.0.0.1 that records every request
(headers and JSON body) and can be told to fail."""

import http.server
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

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
    """A receiver for one test."""
    started = Receiver()
    yield started
    started.close()
