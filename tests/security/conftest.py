"""A hubproxy under attack: a server with a hosted project, a user, an admin and a repo with
one commit. `fortress` (one per test module) runs in process (`tests/support/inprocess.py`);
`start_fortress` starts a real `hubproxy serve`, for the attacks on connections and sockets.

Principals: `admin` (platform admin), `developer` (developer of the hosted project `team`) and
anonymous callers. `team/target` holds `README.md` on `main`.
"""

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import SERVER_ENVIRONMENT, TEST_CHUNK_SIZE, in_process
from tests.fake_upstream import FakeHubServer
from tests.support.accounts import Accounts
from tests.support.inprocess import InProcessServer, running
from tests.support.proxy import ProxyProcess

TARGET_REPO = "team/target"
README = b"# target\n"


@dataclass
class Fortress:
    """The server under attack, its data dir and a token per principal."""

    process: ProxyProcess | InProcessServer
    data_dir: Path
    admin_token: str
    developer_token: str

    @property
    def url(self) -> str:
        return self.process.url

    def client(self, token: str | None = None) -> httpx.Client:
        return self.process.client(token)


def populate(data_dir: Path) -> tuple[str, str]:
    """The first admin, the project `team` and its developer; (admin token, developer token)."""
    tokens = (
        Accounts()
        .user("root", admin=True)
        .project("team")
        .user("developer")
        .member("team", "developer", "developer")
        .token("admin", "root", "admin")
        .token("developer", "developer", "write")
        .create(data_dir)
    )
    return tokens["admin"], tokens["developer"]


def commit_body(summary: str, files: dict[str, bytes]) -> bytes:
    """An NDJSON commit body adding `files` as regular files."""
    lines = [{"key": "header", "value": {"summary": summary, "description": ""}}]
    lines += [
        {
            "key": "file",
            "value": {
                "path": path,
                "content": base64.b64encode(data).decode(),
                "encoding": "base64",
            },
        }
        for path, data in files.items()
    ]
    return b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"


def _build_target(fortress: Fortress) -> None:
    """`TARGET_REPO` created and committed to through the running server."""
    with fortress.client(fortress.developer_token) as client:
        created = client.post("/api/repos/create", json={"name": TARGET_REPO})
        assert created.status_code == 200, created.text
        committed = client.post(
            f"/api/models/{TARGET_REPO}/commit/main",
            content=commit_body("first", {"README.md": README}),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert committed.status_code == 200, committed.text


def start_fortress(
    fake_hub_server: FakeHubServer, data_dir: Path, *extra_args: str
) -> Iterator[Fortress]:
    """A real `hubproxy serve` (for what needs its socket), options `extra_args`."""
    admin_token, developer_token = populate(data_dir)
    process = ProxyProcess(
        data_dir,
        fake_hub_server.url,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE, *extra_args),
        environment=SERVER_ENVIRONMENT,
    )
    with process:
        fortress = Fortress(process, data_dir, admin_token, developer_token)
        _build_target(fortress)
        yield fortress
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture(scope="module")
def fortress(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fortress]:
    """One in-process server per test module (each module attacks it its own way)."""
    data_dir = tmp_path_factory.mktemp("fortress") / "data"
    admin_token, developer_token = populate(data_dir)
    for server in running(in_process(data_dir, fake_hub_server.url)):
        fortress = Fortress(server, data_dir, admin_token, developer_token)
        _build_target(fortress)
        yield fortress


# The governed site of tests/governance (projects, roles, robots), for the name and existence tests.
from tests.governance.conftest import governed_hub, governed_site  # noqa: E402, F401
