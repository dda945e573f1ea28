"""A hubproxy with accounts, projects and roles, set up the way an administrator does it:
with `hubproxy admin` on the data dir before the server starts, then more while it runs."""

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_CHUNK_SIZE, UPSTREAM_TOKEN
from tests.fake_upstream import FakeHub, FakeHubServer
from tests.support.cli import run_cli
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
    """The governed hubproxy: its process, data dir and a token per principal name."""

    process: ProxyProcess
    data_dir: Path
    tokens: dict[str, str | None] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.process.url

    def admin(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return admin(self.data_dir, *arguments, check=check)


def populate(data_dir: Path) -> dict[str, str | None]:
    """Projects, users with each role, robots; returns a token per principal."""
    tokens: dict[str, str | None] = {"anonymous": None}
    # A new data dir starts with its first platform admin.
    admin(data_dir, "user", "create", "root", "--admin")
    tokens["platform-admin"] = new_token(data_dir, "token", "create", "root", "--scope", "admin")
    for project, kind, extra in (
        ("acme", "hosted", ()),
        ("acmepub", "hosted", ("--public",)),
        ("llama", "proxy", ("--upstream-namespace", "gatedorg")),
        ("mirror", "proxy", ("--upstream-namespace", "openly", "--public")),
    ):
        admin(data_dir, "project", "create", project, "--kind", kind, *extra)
    admin(data_dir, "user", "create", "outsider")
    tokens["outsider"] = new_token(data_dir, "token", "create", "outsider", "--scope", "write")
    for role in ("viewer", "developer", "maintainer", "admin"):
        admin(data_dir, "user", "create", role)
        for project in ("acme", "acmepub", "llama", "mirror"):
            admin(data_dir, "member", "add", project, role, "--role", role)
        tokens[role] = new_token(data_dir, "token", "create", role, "--scope", "write")
    tokens["developer-read-token"] = new_token(
        data_dir, "token", "create", "developer", "--scope", "read"
    )
    tokens["robot-acme"] = new_token(
        data_dir, "robot", "create", "acme", "acme-ci", "-p", "read", "-p", "write"
    )
    tokens["robot-llama"] = new_token(
        data_dir, "robot", "create", "llama", "llama-ci", "-p", "read"
    )
    return tokens


@pytest.fixture(scope="session")
def site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("governed") / "data"
    tokens = populate(data_dir)
    process = ProxyProcess(
        data_dir,
        fake_hub_server.url,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment={"HUBPROXY_UPSTREAM_TOKEN": UPSTREAM_TOKEN},
    )
    with process:
        yield Site(process, data_dir, tokens)
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture
def governed_hub(fake_hub_server: FakeHubServer) -> FakeHub:
    """The fake hub with this package's upstream repos present (other tests reset it)."""
    add_upstream_repos(fake_hub_server.hub)
    return fake_hub_server.hub
