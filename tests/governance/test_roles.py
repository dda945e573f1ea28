"""The role matrix: every principal, action and kind of namespace, through the real server with
the real huggingface_hub client, compared with an explicit table of expected outcomes.

Outcomes: `ok` (read: the bytes arrived; writes: done), `409` (creating a repo that exists:
authorized, refused only because it exists), `404`/`401nf` (`RepositoryNotFoundError`, 404 or
401: what a missing repo gets, so invisible repos do not leak), `403`/`401` (`HfHubHTTPError`:
visible, but the role, token scope or a read-only namespace refuses it). In hosted projects each
principal acts on a repo of its own, created beforehand by a platform admin, so that one
principal's deletion is not the next one's 404.
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import UPSTREAM_TOKEN
from tests.fake_upstream import FakeHub
from tests.governance.conftest import FILES, Site

ACTIONS = ("read", "upload", "tag", "create_repo", "delete_repo")
PRINCIPALS = (
    "anonymous", "outsider", "viewer", "developer", "maintainer", "admin", "platform-admin",
    "developer-read-token", "robot-acme", "robot-llama",
)  # fmt: skip

_MEMBERS_READ_ONLY = dict.fromkeys(
    ("viewer", "developer", "maintainer", "admin", "platform-admin", "developer-read-token"),
    "ok 403 403 403 403",
)
_HOSTED_MEMBERS = {
    "viewer": "ok 403 403 403 403",
    "developer": "ok ok 403 409 403",
    "maintainer": "ok ok ok 409 ok",
    "admin": "ok ok ok 409 ok",
    "platform-admin": "ok ok ok 409 ok",
    "developer-read-token": "ok 403 403 403 403",
}
NOWHERE = "404 404 404 404 404"
# Creating or deleting a repo anonymously is refused before the body naming the repo is read:
# the same 401 for every namespace, so it tells nothing about private ones either.
ANONYMOUS_PRIVATE = "401nf 401nf 401nf 401 401"
HOSTED_PROJECTS = ("acme", "acmepub")

# Per target repo: principal -> outcomes of ACTIONS in order.
EXPECTED: dict[str, dict[str, str]] = {
    # A namespace that is not a project: public upstream, read-only, no robots.
    "openly/tiny": {
        "anonymous": "ok 401 401 401 401",
        "outsider": "ok 403 403 403 403",
        **_MEMBERS_READ_ONLY,
        "robot-acme": NOWHERE,
        "robot-llama": NOWHERE,
    },
    # A private proxy project mirroring a gated upstream namespace (`gatedorg`).
    "llama/tiny": {
        "anonymous": ANONYMOUS_PRIVATE,
        "outsider": NOWHERE,
        **_MEMBERS_READ_ONLY,
        "robot-acme": NOWHERE,
        "robot-llama": "ok 403 403 403 403",
    },
    # The upstream namespace a private proxy project mirrors: just as private under its own name.
    "gatedorg/tiny": {
        "anonymous": ANONYMOUS_PRIVATE,
        "outsider": NOWHERE,
        **_MEMBERS_READ_ONLY,
        "robot-acme": NOWHERE,
        "robot-llama": "ok 403 403 403 403",
    },
    # A public proxy project (`openly` upstream).
    "mirror/tiny": {
        "anonymous": "ok 401 401 401 401",
        "outsider": "ok 403 403 403 403",
        **_MEMBERS_READ_ONLY,
        "robot-acme": NOWHERE,
        "robot-llama": NOWHERE,
    },
    # A private hosted project.
    "acme/repo": {
        "anonymous": ANONYMOUS_PRIVATE,
        "outsider": NOWHERE,
        **_HOSTED_MEMBERS,
        "robot-acme": "ok ok 403 403 403",
        "robot-llama": NOWHERE,
    },
    # A public hosted project: visible to all, writable by roles only.
    "acmepub/repo": {
        "anonymous": "ok 401 401 401 401",
        "outsider": "ok 403 403 403 403",
        **_HOSTED_MEMBERS,
        "robot-acme": NOWHERE,
        "robot-llama": NOWHERE,
    },
}


def _status(error: HfHubHTTPError) -> int | None:
    return error.response.status_code if error.response is not None else None


def outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except RepositoryNotFoundError as error:
        return "401nf" if _status(error) == 401 else "404"
    except HfHubHTTPError as error:
        return str(_status(error))
    return "ok"


def run_action(site: Site, token: str | None, action: str, repo_id: str, cache: Path) -> str:
    api = HfApi(endpoint=site.url, token=token if token else False)
    if action == "read":

        def read() -> None:
            path = hf_hub_download(
                repo_id, "weights.bin", endpoint=site.url, token=token or False, cache_dir=cache
            )
            data = Path(path).read_bytes()
            assert hashlib.sha256(data).digest() == hashlib.sha256(FILES["weights.bin"]).digest()

        return outcome(read)
    calls: dict[str, Callable[[], object]] = {
        "upload": lambda: api.create_commit(
            repo_id, [CommitOperationAdd("notes.txt", b"hello")], commit_message="add notes"
        ),
        "create_repo": lambda: api.create_repo(repo_id),
        "delete_repo": lambda: api.delete_repo(repo_id),
        "tag": lambda: api.create_tag(repo_id, tag="v1"),
    }
    return outcome(calls[action])


@pytest.mark.parametrize("repo_id", list(EXPECTED))
def test_role_matrix(site: Site, governed_hub: FakeHub, repo_id: str, tmp_path: Path) -> None:
    actual: dict[str, str] = {}
    hosted = repo_id.split("/")[0] in HOSTED_PROJECTS
    for principal in PRINCIPALS:
        token = site.tokens[principal]
        target = f"{repo_id}-{principal}" if hosted else repo_id
        if hosted:
            _hosted_repo_with_files(site, target)
        # A fresh client cache per principal: nothing read by one may serve another.
        cache = tmp_path / principal
        actual[principal] = " ".join(
            run_action(site, token, action, target, cache) for action in ACTIONS
        )
    assert actual == EXPECTED[repo_id]


def _hosted_repo_with_files(site: Site, repo_id: str) -> None:
    api = HfApi(endpoint=site.url, token=site.tokens["platform-admin"])
    api.create_repo(repo_id)
    operations = [CommitOperationAdd(path, content) for path, content in FILES.items()]
    api.create_commit(repo_id, operations, commit_message="the files every principal reads")


def test_gated_upstream_is_read_with_the_proxy_token_only(
    site: Site, governed_hub: FakeHub
) -> None:
    """Members read the gated model through the project; the client never held an HF token."""
    governed_hub.reset_stats()
    path = hf_hub_download(
        "llama/tiny", "config.json", endpoint=site.url, token=site.tokens["viewer"],
        cache_dir=site.data_dir.parent / "viewer-cache",
    )  # fmt: skip
    assert Path(path).read_bytes() == FILES["config.json"]
    seen = {record.authorization for record in governed_hub.requests}
    # Upstream saw the proxy's own credential, never the client's hubproxy token.
    assert seen == {f"Bearer {UPSTREAM_TOKEN}"}
