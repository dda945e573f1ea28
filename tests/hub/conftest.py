"""The private hub under test: one real `hubproxy serve` with hosted projects (driven with the
real huggingface_hub client), its accounts seeded in one batch (`tests/support/accounts.py`),
and helpers that compute what git and git-lfs say the objects of a commit must be.

Principals (a token each, "anonymous" has none):
- `viewer`, `developer`, `maintainer`, `admin`: members of the private hosted project `team`
  with that role;
- `outsider`: no role in `team`; a developer of the public hosted project `open`;
- `robot-team`: a robot of `team` with read and write; `robot-other`: the same in `other`.

The server answers preupload with `"lfs"` from `LFS_THRESHOLD` bytes on, so small test files
exercise both upload modes.
"""

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from huggingface_hub import HfApi

from tests.conftest import SERVER_ENVIRONMENT, TEST_CHUNK_SIZE
from tests.fake_upstream import FakeHubServer
from tests.governance.conftest import Site
from tests.support.accounts import Accounts
from tests.support.cli import run_cli
from tests.support.proxy import ProxyProcess

LFS_THRESHOLD = 1024
HUB_ENVIRONMENT = {
    **SERVER_ENVIRONMENT,
    "HUBPROXY_UPLOAD_LFS_THRESHOLD": str(LFS_THRESHOLD),
    # Webhook receivers of the tests listen on loopback, which hubproxy refuses by default.
    "HUBPROXY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
}
ROLES = ("viewer", "developer", "maintainer", "admin")
LFS_JSON = "application/vnd.git-lfs+json"


def admin_batch(data_dir: Path, commands: list[tuple[str, ...]]) -> list[str]:
    """Run each `hubproxy admin --data-dir DATA_DIR COMMAND...`; the stdout of each."""
    outputs = []
    for command in commands:
        completed = run_cli("admin", "--data-dir", str(data_dir), *command)
        if completed.returncode != 0:
            raise AssertionError(f"admin {command} failed: {completed.stderr}")
        outputs.append(completed.stdout)
    return outputs


def token_of(output: str) -> str:
    """`token create` / `robot create` print the token on their last line."""
    token = output.strip().splitlines()[-1]
    assert token.startswith("hp_"), output
    return token


def populate_hub(data_dir: Path) -> dict[str, str | None]:
    """Projects, users of each role and robots (see the module docstring), in one batch; a
    token each."""
    users = (*ROLES, "outsider")
    accounts = (
        # A new data dir starts with its first platform admin.
        Accounts()
        .user("root", admin=True)
        .project("team", "hosted")
        .project("open", "hosted", public=True)
        .project("other", "hosted")
        .users(*users)
    )
    for role in ROLES:
        accounts.member("team", role, role)
    accounts.member("open", "developer", "developer").member("open", "outsider", "developer")
    for user in users:
        accounts.token(user, user, "write")
    accounts.robot("robot-team", "team", "team-ci", ["read", "write"])
    accounts.robot("robot-other", "other", "other-ci", ["read", "write"])
    tokens: dict[str, str | None] = {"anonymous": None}
    tokens.update(accounts.create(data_dir))
    return tokens


class Hub(Site):
    """The running private hub: its process, data dir and a token per principal."""

    def api(self, principal: str = "developer") -> HfApi:
        """A huggingface_hub client acting as `principal` (no token at all for anonymous)."""
        return HfApi(endpoint=self.url, token=self.tokens[principal] or False)

    def headers(self, principal: str = "developer") -> dict[str, str]:
        token = self.tokens[principal]
        return {"Authorization": f"Bearer {token}"} if token else {}

    def new_repo(self, prefix: str, *, project: str = "team", repo_type: str = "model") -> str:
        """Create a repo with a name no other test uses (as the developer); its id."""
        repo_id = unique_repo_id(project, prefix)
        self.api("developer").create_repo(repo_id, repo_type=repo_type)
        return repo_id

    def head(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str:
        """The commit `revision` points to, as the developer sees it."""
        sha = self.api("developer").repo_info(repo_id, revision=revision, repo_type=repo_type).sha
        assert sha is not None
        return sha


def unique_repo_id(project: str, prefix: str) -> str:
    return f"{project}/{prefix}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def running_hub(data_dir: Path, upstream: FakeHubServer) -> Iterator[Hub]:
    """A private hub on `data_dir` (`populate_hub`'s accounts), served until the block ends;
    the server must have logged no traceback."""
    tokens = populate_hub(data_dir)
    process = ProxyProcess(
        data_dir,
        upstream.url,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment=HUB_ENVIRONMENT,
    )
    with process:
        yield Hub(process, data_dir, tokens)
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture(scope="session")
def hub(fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("private-hub") / "data", fake_hub_server) as running:
        yield running


@contextlib.contextmanager
def xet_disabled() -> Iterator[None]:
    """What `HF_HUB_DISABLE_XET=1` does: huggingface_hub reads the variable at import into
    `constants.HF_HUB_DISABLE_XET`, which `is_xet_available()` consults on every upload, so
    "lfs" files go through the LFS batch API instead of Xet."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
        yield


@pytest.fixture
def no_xet() -> Iterator[None]:
    with xet_disabled():
        yield


# What git and git-lfs say the objects are.


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_object_oid(kind: str, body: bytes) -> str:
    header = f"{kind} {len(body)}\0".encode()
    return hashlib.sha1(header + body, usedforsecurity=False).hexdigest()


def git_blob_oid(data: bytes) -> str:
    """`git hash-object` of `data`."""
    return git_object_oid("blob", data)


def lfs_pointer(data: bytes) -> bytes:
    """The git-lfs pointer file committed in place of `data`."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(data)}\nsize {len(data)}\n"
    ).encode()


def git_tree_oid(entries: list[tuple[str, str, bool]]) -> str:
    """The oid of a git tree of `(name, oid, is_directory)` entries (files: mode 100644)."""

    def order(entry: tuple[str, str, bool]) -> bytes:
        # git sorts a directory as if its name ended with "/".
        name, _, is_directory = entry
        return name.encode() + (b"/" if is_directory else b"")

    body = b"".join(
        (b"40000 " if is_directory else b"100644 ") + name.encode() + b"\0" + bytes.fromhex(oid)
        for name, oid, is_directory in sorted(entries, key=order)
    )
    return git_object_oid("tree", body)


def random_bytes(size: int) -> bytes:
    """Content no other test uploads (the blob store is shared, content-addressed)."""
    return os.urandom(size)


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root
