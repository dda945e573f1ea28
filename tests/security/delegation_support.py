"""An in-process hubproxy for the delegation, signed-link, ref and URL attacks: accounts
seeded in one batch (`tests/support/accounts.py`), with helpers that read the server's audit
records back."""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import in_process
from tests.governance.conftest import admin_json
from tests.support.accounts import Accounts
from tests.support.inprocess import InProcessServer
from tests.support.inprocess import running as running_in_process


@dataclass
class SecuritySite:
    """The server under attack, its data dir and a token per principal name."""

    process: InProcessServer
    data_dir: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.process.url

    def request(
        self, principal: str | None, method: str, path: str, **arguments: Any
    ) -> httpx.Response:
        """`path` (or an absolute URL of the server) as `principal` (None: anonymous)."""
        with self.process.client(self.tokens[principal] if principal else None) as client:
            return client.request(method, path, **arguments)

    def denials(self) -> list[dict[str, Any]]:
        """The server's audit records of refused requests."""
        records = admin_json(self.data_dir, "audit", "--limit", "100000", "--denied")
        return [record for record in records if record["actor_kind"] != "cli"]


def with_root() -> Accounts:
    """The accounts of every site start with its first platform admin, `root`."""
    return Accounts().user("root", admin=True)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Audit records reach the file through the server's queue within moments."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def running(
    data_dir: Path, upstream_url: str, accounts: Accounts, **settings: Any
) -> Iterator[SecuritySite]:
    """The site of a module's tests (a generator for a fixture): `accounts` created, then the
    server started in process with `settings`."""
    tokens = accounts.create(data_dir)
    for server in running_in_process(in_process(data_dir, upstream_url, **settings)):
        yield SecuritySite(server, data_dir, tokens)


def as_json(response: httpx.Response) -> Any:
    return json.loads(response.text)
