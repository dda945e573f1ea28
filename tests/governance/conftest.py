"""A hubproxy with accounts, projects and roles: seeded in one batch before the server starts
(`tests/support/accounts.py`), then changed with `hubproxy admin` on the data dir while it
runs, the way an administrator does it. `site` is a real server (for huggingface_hub clients),
`governed_site` the same accounts in process (`tests/support/inprocess.py`)."""

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SERVER_ENVIRONMENT, TEST_CHUNK_SIZE, in_process
from tests.fake_upstream import FakeHub, FakeHubServer
from tests.support.accounts import Accounts
from tests.support.cli import run_cli
from tests.support.inprocess import InProcessServer, running
from tests.support.proxy import ProxyProcess

# Upstream content: a public namespace, and a gated one only the proxy's own token may read.
PUBLIC_REPO = "openly/tiny"
GATED_UPSTREAM_REPO = "gatedorg/tiny"
FILES = {"config.json": b'{"model_type": "tiny"}', "weights.bin": bytes(range(256)) * 4096}


def admin(data_dir: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `hubproxy admin --data-dir DATA_DIR ARGUMENTS...` (the real command line, in this
    process: `tests/support/cli.py`)."""
    completed = run_cli("admin", "--data-dir", str(data_dir), *arguments)
    if check and completed.returncode != 0:
        raise AssertionError(f"admin {arguments} failed: {completed.stderr}")
    return completed


def admin_json(data_dir: Path, *arguments: str) -> Any:
    return json.loads(admin(data_dir, *arguments, "--json").stdout)


def new_token(data_dir: Path, *arguments: str) -> str:
    """`token create` / `robot create`: the token is the last line of stdout."""
    token = admin(data_dir, *arguments).stdout.strip().splitlines()[-1]
    assert token.startswith("hp_"), token
    return token


def add_upstream_repos(hub: FakeHub) -> None:
    for repo_id, gated in ((PUBLIC_REPO, False), (GATED_UPSTREAM_REPO, True)):
        if ("model", repo_id) not in hub.repos:
            hub.add_repo(repo_id, FILES, gated=gated)


@dataclass
class Site:
    """The governed hubproxy: its server, data dir and a token per principal name."""

    process: ProxyProcess | InProcessServer
    data_dir: Path
    tokens: dict[str, str | None] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.process.url

    def admin(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return admin(self.data_dir, *arguments, check=check)

    def client(self, principal: str = "anonymous") -> httpx.Client:
        """A client of the server acting as `principal`."""
        return self.process.client(self.tokens[principal])


def populate(data_dir: Path) -> dict[str, str | None]:
    """Projects, users with each role, robots (one batch); returns a token per principal."""
    accounts = (
        # A new data dir starts with its first platform admin.
        Accounts()
        .user("root", admin=True)
        .token("platform-admin", "root", "admin")
        .project("acme", "hosted")
        .project("acmepub", "hosted", public=True)
        .project("llama", "proxy", upstream_namespace="gatedorg")
        .project("mirror", "proxy", upstream_namespace="openly", public=True)
        .user("outsider")
        .token("outsider", "outsider", "write")
    )
    for role in ("viewer", "developer", "maintainer", "admin"):
        accounts.user(role)
        for project in ("acme", "acmepub", "llama", "mirror"):
            accounts.member(project, role, role)
        accounts.token(role, role, "write")
    accounts.token("developer-read-token", "developer", "read")
    accounts.robot("robot-acme", "acme", "acme-ci", ["read", "write"])
    accounts.robot("robot-llama", "llama", "llama-ci", ["read"])
    tokens: dict[str, str | None] = {"anonymous": None}
    tokens.update(accounts.create(data_dir))
    return tokens


@pytest.fixture(scope="session")
def site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A real server: the role matrix and the policy tests drive it with huggingface_hub."""
    data_dir = tmp_path_factory.mktemp("governed") / "data"
    tokens = populate(data_dir)
    process = ProxyProcess(
        data_dir,
        fake_hub_server.url,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment=SERVER_ENVIRONMENT,
    )
    with process:
        yield Site(process, data_dir, tokens)
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture(scope="session")
def governed_site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The same site in process, for the tests that speak HTTP themselves."""
    data_dir = tmp_path_factory.mktemp("governed-in-process") / "data"
    tokens = populate(data_dir)
    for server in running(in_process(data_dir, fake_hub_server.url)):
        yield Site(server, data_dir, tokens)


@pytest.fixture
def governed_hub(fake_hub_server: FakeHubServer) -> FakeHub:
    """The fake hub with this package's upstream repos present (other tests reset it)."""
    add_upstream_repos(fake_hub_server.hub)
    return fake_hub_server.hub
