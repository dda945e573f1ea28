"""The web UI under test: one in-process hubproxy per module with accounts and hosted repos
seeded through the API (repos created and committed to with the Hub's own wire format).

Principals (a token each): `root` (platform admin, admin-scoped token), `lead` (admin of the
private project `team`), `developer` and `viewer` of `team`, `outsider` (no role in `team`).
`open` is a public hosted project. Repos:
- `team/secret-model`: private to `team`; its card, a file name and a commit message carry
  XSS attempts;
- `open/public-model`: readable by anyone, with a 10-file folder and a card with front matter.
"""

import base64
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import in_process
from tests.fake_upstream import FakeHubServer
from tests.support.accounts import Accounts
from tests.support.inprocess import InProcessServer

XSS_CARD = """---
license: apache-2.0
base_model: meta/base-7b
datasets:
  - team/corpus
tags:
  - text-generation
  - "<script>alert('tag')</script>"
metrics:
  - accuracy
---
# Secret model

<script>alert('card')</script>
<img src="x" onerror="alert('img')">
[click](javascript:alert('link'))

| a | b |
|---|---|
| 1 | 2 |
"""
PUBLIC_CARD = """---
license: mit
tags: [demo]
---
# Public model

A model anyone may read.
"""
XSS_FILE = "<img src=x onerror=alert(1)>.txt"
XSS_COMMIT = "Add weights <script>alert('commit')</script>"


def commit_lines(summary: str, files: dict[str, bytes]) -> bytes:
    """The NDJSON body of `create_commit` with regular (inline) files."""
    lines = [{"key": "header", "value": {"summary": summary, "description": ""}}]
    lines += [
        {
            "key": "file",
            "value": {"path": path, "encoding": "base64",
                      "content": base64.b64encode(content).decode()},
        }
        for path, content in files.items()
    ]  # fmt: skip
    return b"\n".join(json.dumps(line).encode() for line in lines)


def create_repo(client: httpx.Client, repo_id: str, *, private: bool = False) -> None:
    organization, name = repo_id.split("/")
    answer = client.post(
        "/api/repos/create",
        json={"name": name, "organization": organization, "type": "model", "private": private},
    )
    assert answer.status_code == 200, answer.text


def commit(client: httpx.Client, repo_id: str, summary: str, files: dict[str, bytes]) -> str:
    answer = client.post(
        f"/api/models/{repo_id}/commit/main",
        content=commit_lines(summary, files),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    sha: str = answer.json()["commitOid"]
    return sha


@dataclass
class WebSite:
    server: InProcessServer
    tokens: dict[str, str]
    secret_commit: str

    def client(self, principal: str | None = None) -> httpx.Client:
        """A client of the API (bearer token) as `principal`."""
        return self.server.client(self.tokens[principal] if principal else None)

    @contextlib.contextmanager
    def browser(self, principal: str | None = None) -> Iterator[httpx.Client]:
        """A client with cookies, signed in through the login form as `principal`."""
        with self.server.client() as client:
            if principal is not None:
                sign_in(client, self.tokens[principal])
            yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None, page
    return found.group(1)


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    form = client.get("/login")
    return client.post("/login", data={"token": token, "csrf": csrf_of(form.text), "next": "/"})


def seed(site: WebSite) -> None:
    with site.client("developer") as developer:
        create_repo(developer, "team/secret-model", private=True)
        commit(developer, "team/secret-model", "Add card", {"README.md": XSS_CARD.encode()})
        site.secret_commit = commit(
            developer,
            "team/secret-model",
            XSS_COMMIT,
            {XSS_FILE: b"hello", "config.json": b'{"hidden_size": 8}\n'},
        )
        create_repo(developer, "open/public-model")
        folder = {f"shards/part-{index:02}.bin": bytes([index]) * 10 for index in range(10)}
        commit(
            developer, "open/public-model", "Initial", {"README.md": PUBLIC_CARD.encode(), **folder}
        )


def site_accounts() -> Accounts:
    """The principals of the module docstring."""
    return (
        Accounts()
        .user("root", admin=True)
        .project("team", "hosted")
        .project("open", "hosted", public=True)
        .users("lead", "developer", "viewer", "outsider")
        .member("team", "lead", "admin")
        .member("team", "developer", "developer")
        .member("team", "viewer", "viewer")
        .member("open", "developer", "developer")
        .token("root", "root", "admin")
        .token("lead", "lead", "write")
        .token("developer", "developer", "write")
        .token("viewer", "viewer", "read")
        .token("outsider", "outsider", "read")
    )


@pytest.fixture(scope="module")
def site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebSite]:
    data_dir = tmp_path_factory.mktemp("web") / "data"
    tokens = site_accounts().create(data_dir)
    server = in_process(data_dir, fake_hub_server.url)
    with server:
        website = WebSite(server, tokens, "")
        seed(website)
        yield website
    assert "Traceback" not in server.log(), server.log()
