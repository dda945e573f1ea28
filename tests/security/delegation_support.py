"""A running hubproxy for the delegation, signed-link, ref and URL attacks: set up with
`hubproxy admin` on its data dir (one interpreter for all commands), with helpers that read the
server's audit records back."""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.governance.conftest import admin_json
from tests.hub.conftest import admin_batch, token_of
from tests.support.proxy import ProxyProcess


@dataclass
class SecuritySite:
    """The server under attack, its data dir and a token per principal name."""

    process: ProxyProcess
    data_dir: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.process.url

    def request(
        self, principal: str | None, method: str, path: str, **arguments: Any
    ) -> httpx.Response:
        headers = dict(arguments.pop("headers", {}))
        if principal is not None:
            headers["Authorization"] = f"Bearer {self.tokens[principal]}"
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **arguments)

    def denials(self) -> list[dict[str, Any]]:
        """The server's audit records of refused requests."""
        records = admin_json(self.data_dir, "audit", "--limit", "100000", "--denied")
        return [record for record in records if record["actor_kind"] != "cli"]


def create_tokens(data_dir: Path, commands: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Run `hubproxy admin` token/robot creations; the token of each name."""
    outputs = admin_batch(data_dir, list(commands.values()))
    return {name: token_of(output) for name, output in zip(commands, outputs, strict=True)}


def setup(data_dir: Path, commands: list[tuple[str, ...]]) -> None:
    admin_batch(data_dir, [("user", "create", "root", "--admin"), *commands])


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Audit records reach the file through the server's queue within moments."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def running(
    data_dir: Path, upstream_url: str, *extra: str, environment: dict[str, str] | None = None
) -> Iterator[ProxyProcess]:
    """The server for a module's tests (a generator for a fixture)."""
    process = ProxyProcess(data_dir, upstream_url, extra_args=extra, environment=environment or {})
    with process:
        yield process
    assert "Traceback" not in process.log(), process.log()


def as_json(response: httpx.Response) -> Any:
    return json.loads(response.text)
