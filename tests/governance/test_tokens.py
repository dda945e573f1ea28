"""Tokens: the huggingface_hub login flow, whoami, revocation, expiry, disabled users, robots,
and secrets that never appear anywhere but in the one line that shows them."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import InProcessFactory, ProxyFactory
from tests.fake_upstream import FakeHub
from tests.governance.conftest import admin, admin_json, new_token
from tests.support.inprocess import InProcessServer
from tests.support.proxy import ProxyProcess


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Account changes reach a running server within its accounts refresh (a second by
    default, `TEST_ACCOUNTS_REFRESH` in process)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def whoami_status(server: ProxyProcess | InProcessServer, token: str) -> int:
    with server.client(token) as client:
        return client.get("/api/whoami-v2").status_code


def test_hf_cli_login_and_whoami(proxy_factory: ProxyFactory, tmp_path: Path) -> None:
    process = proxy_factory()
    data_dir = process.data_dir
    admin(data_dir, "project", "create", "acme")
    admin(data_dir, "user", "create", "alice", "--fullname", "Alice A.", "--email", "a@acme.io")
    admin(data_dir, "member", "add", "acme", "alice", "--role", "maintainer")
    token = new_token(data_dir, "token", "create", "alice", "--scope", "write", "--name", "laptop")

    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("HF_")},
        "HF_ENDPOINT": process.url,
        "HF_HOME": str(tmp_path / "hf-home"),
    }

    def hf(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "huggingface_hub.cli.hf", *arguments],
            capture_output=True, text=True, env=environment, timeout=60,
        )  # fmt: skip

    login = hf("auth", "login", "--token", token)
    assert login.returncode == 0, login.stderr + login.stdout
    assert (tmp_path / "hf-home" / "token").read_text().strip() == token
    whoami = hf("auth", "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert "alice" in whoami.stdout

    info = HfApi(endpoint=process.url).whoami(token=token)
    assert info["type"] == "user"
    assert (info["name"], info["fullname"], info["email"]) == ("alice", "Alice A.", "a@acme.io")
    assert info["orgs"] == [
        {"type": "org", "name": "acme", "fullname": "acme", "roleInOrg": "maintainer"}
    ]
    assert info["auth"]["accessToken"] == {"displayName": "laptop", "role": "write"}

    robot_token = new_token(data_dir, "robot", "create", "acme", "acme-ci", "-p", "read")
    robot = HfApi(endpoint=process.url).whoami(token=robot_token)
    assert (robot["type"], robot["name"], robot["isRobot"]) == ("user", "acme-ci", True)
    assert [org["name"] for org in robot["orgs"]] == ["acme"]


def test_revoked_expired_and_disabled_tokens_are_refused(
    in_process_factory: InProcessFactory,
) -> None:
    server = in_process_factory()
    data_dir = server.data_dir
    admin(data_dir, "user", "create", "bob")
    revoked = new_token(data_dir, "token", "create", "bob")
    # Long enough to be seen working first (in process, a request takes milliseconds).
    expiring = new_token(data_dir, "token", "create", "bob", "--expires", "3s")
    kept = new_token(data_dir, "token", "create", "bob")
    for token in (revoked, expiring, kept):
        assert whoami_status(server, token) == 200

    token_id = next(t["id"] for t in admin_json(data_dir, "token", "list"))
    admin(data_dir, "token", "revoke", token_id)
    assert eventually(lambda: whoami_status(server, revoked) == 401)
    assert eventually(lambda: whoami_status(server, expiring) == 401, timeout=30)
    assert whoami_status(server, kept) == 200

    admin(data_dir, "user", "disable", "bob")
    assert eventually(lambda: whoami_status(server, kept) == 401)
    admin(data_dir, "user", "enable", "bob")
    assert eventually(lambda: whoami_status(server, kept) == 200)

    reasons = [r["reason"] for r in admin_json(data_dir, "audit", "--denied")]
    assert {"token revoked", "token expired", "user disabled"} <= set(reasons)
    listed = {t["id"]: t for t in admin_json(data_dir, "token", "list")}
    assert listed[token_id]["revoked"] is True
    # last_used is recorded (batched, within an accounts refresh or two).
    assert eventually(lambda: all(t["last_used"] for t in admin_json(data_dir, "token", "list")))


def test_foreign_bearer_tokens_are_ignored_not_forwarded(
    proxy: ProxyProcess, upstream: FakeHub, repo_id: str
) -> None:
    """A client with an huggingface.co token configured still downloads (anonymously here),
    and that token never travels upstream."""
    # Content unique to this test: the shared proxy deduplicates blobs across tests.
    upstream.add_repo(repo_id, {"a.txt": repo_id.encode()})
    response = httpx.get(
        f"{proxy.url}/{repo_id}/resolve/main/a.txt",
        headers={"Authorization": "Bearer hf_the_clients_own_token"},
    )
    assert response.status_code == 200
    assert "hf_the_clients_own_token" not in str([r.authorization for r in upstream.requests])


def test_a_robot_cannot_act_outside_its_project(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    upstream.add_repo(repo_id, {"a.txt": b"a"})
    upstream.add_repo("team/model", {"a.txt": b"a"})
    process = proxy_factory()
    data_dir = process.data_dir
    admin(data_dir, "project", "create", "team", "--kind", "proxy", "--public")
    admin(data_dir, "project", "create", "other", "--kind", "proxy", "--public")
    robot = new_token(data_dir, "robot", "create", "team", "team-bot", "-p", "read")
    path = hf_hub_download(
        "team/model", "a.txt", endpoint=process.url, token=robot, cache_dir=tmp_path / "c"
    )
    assert Path(path).read_bytes() == b"a"
    for outside in (repo_id, "other/model"):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=process.url, token=robot).model_info(outside)
    admin(data_dir, "robot", "revoke", "team-bot")
    assert eventually(lambda: whoami_status(process, robot) == 401)

    # The real client: an invalid token is an error, never a silent anonymous download (the
    # repo is public).
    with pytest.raises(HfHubHTTPError) as refused:
        hf_hub_download(
            "team/model", "a.txt", endpoint=process.url, token=robot, cache_dir=tmp_path / "d"
        )
    assert refused.value.response is not None
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["x-error-message"] == (
        "Invalid credentials in Authorization header"
    )
    assert refused.value.response.headers["www-authenticate"].startswith("Bearer")


def test_secrets_never_appear_in_logs_audit_errors_or_database(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"a.txt": b"a"})
    process = proxy_factory("--log-format", "json", "--log-level", "debug", "--audit-stdout")
    data_dir = process.data_dir
    admin(data_dir, "user", "create", "carol", "--admin")
    secrets = [
        new_token(data_dir, "token", "create", "carol", "--scope", "admin"),
        new_token(data_dir, "token", "create", "carol", "--expires", "1s"),
    ]
    time.sleep(1.2)
    bodies: list[str] = []
    for secret in secrets:
        headers = {"Authorization": f"Bearer {secret}"}
        for url in (
            f"{process.url}/{repo_id}/resolve/main/a.txt",
            f"{process.url}/{repo_id}/resolve/main/missing.txt",
            f"{process.url}/api/whoami-v2",
            f"{process.url}/api/models/{repo_id}/commit/main",
        ):
            response = (
                httpx.post(url, headers=headers)
                if "commit" in url
                else httpx.get(url, headers=headers)
            )
            bodies.append(response.text + str(response.headers))
    process.stop()  # flushes the audit log and the last-used times

    audit_lines = [line for line in process.log().splitlines() if '"audit"' in line]
    assert len(audit_lines) >= 5  # the JSON-lines sink printed the records
    places = {"responses": "\n".join(bodies), "server log": process.log()}
    for path in data_dir.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("latin-1")
    for secret in secrets:
        for place, text in places.items():
            assert secret not in text, f"a token secret leaked into {place}"
            assert secret[3:] not in text, f"a token secret leaked into {place}"
