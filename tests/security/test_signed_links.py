"""Signed upload links are authorized again when used: a link minted before its member was
removed, its token revoked, its user disabled, its robot revoked or its repo deleted and
created again is refused; tampered links are refused; LFS objects above `max_upload_bytes` are
refused at batch time and on the PUT. Nothing refused is stored, and refusals are audited."""

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_upstream import FakeHubServer
from tests.governance.conftest import admin, admin_json
from tests.hub.conftest import LFS_JSON
from tests.security.delegation_support import SecuritySite, eventually, running, with_root

MAX_UPLOAD_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuritySite]:
    data_dir = tmp_path_factory.mktemp("signed-links") / "data"
    users = ("owner", "removed", "revoked", "disabled", "recreator")
    accounts = with_root().project("acme").users(*users)
    for user in users:
        accounts.member("acme", user, "admin").token(user, user, "write")
    accounts.robot("robot", "acme", "uploader", ["read", "write"])
    yield from running(data_dir, fake_hub_server.url, accounts, max_upload_bytes=MAX_UPLOAD_BYTES)


def _new_repo(site: SecuritySite, name: str, principal: str = "owner") -> str:
    answer = site.request(
        principal, "POST", "/api/repos/create", json={"name": name, "organization": "acme"}
    )
    assert answer.status_code == 200, answer.text
    return f"acme/{name}"


def _batch(site: SecuritySite, principal: str, repo_id: str, objects: list[dict[str, Any]]) -> Any:
    answer = site.request(
        principal,
        "POST",
        f"/{repo_id}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": objects},
        headers={"Accept": LFS_JSON, "Content-Type": LFS_JSON},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["objects"]


def _link(site: SecuritySite, principal: str, repo_id: str, data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    (answer,) = _batch(site, principal, repo_id, [{"oid": oid, "size": len(data)}])
    href: str = answer["actions"]["upload"]["href"]
    return href


def _put(site: SecuritySite, href: str, data: bytes) -> httpx.Response:
    """PUT `data` to an upload link, as the client holding the link does (no token)."""
    return site.request(None, "PUT", href, content=data)


def _refused_until_stale(site: SecuritySite, principal: str) -> None:
    """Wait until the server's accounts snapshot refuses `principal`'s token."""
    eventually(lambda: site.request(principal, "GET", "/api/whoami-v2").status_code == 401)


def test_links_are_reauthorized_when_used(site: SecuritySite) -> None:
    repo_id = _new_repo(site, "reauthorized")
    data = {name: os.urandom(2048) for name in ("removed", "revoked", "disabled", "robot")}
    links = {name: _link(site, name, repo_id, data[name]) for name in data}

    admin(site.data_dir, "member", "remove", "acme", "removed")
    token_id = next(
        token["id"] for token in admin_json(site.data_dir, "token", "list", "--user", "revoked")
    )
    admin(site.data_dir, "token", "revoke", token_id)
    admin(site.data_dir, "user", "disable", "disabled")
    admin(site.data_dir, "robot", "revoke", "uploader")
    _refused_until_stale(site, "robot")
    _refused_until_stale(site, "disabled")
    eventually(lambda: site.request("removed", "GET", f"/api/models/{repo_id}").status_code == 404)

    got_through = []
    for name, href in links.items():
        answer = _put(site, href, data[name])
        if answer.status_code != 403 or answer.headers.get("x-error-code") != "Forbidden":
            got_through.append((name, answer.status_code, answer.text))
    assert got_through == [], got_through
    # Nothing was stored: a valid principal still has to upload every object.
    for name in data:
        oid = hashlib.sha256(data[name]).hexdigest()
        (answer,) = _batch(site, "owner", repo_id, [{"oid": oid, "size": len(data[name])}])
        assert "actions" in answer, (name, answer)

    def audited() -> bool:
        reasons = [r["reason"] or "" for r in site.denials() if r["route"] == "lfs_upload"]
        return len([reason for reason in reasons if "upload link" in reason]) >= len(links)

    eventually(audited)


def test_a_recreated_repo_refuses_links_of_the_old_one(site: SecuritySite) -> None:
    repo_id = _new_repo(site, "recreated", "recreator")
    payload = os.urandom(4096)
    href = _link(site, "recreator", repo_id, payload)
    body = {"name": "recreated", "organization": "acme"}
    answer = site.request("owner", "DELETE", "/api/repos/delete", json=body)
    assert answer.status_code == 200, answer.text
    _new_repo(site, "recreated", "owner")
    answer = _put(site, href, payload)
    assert answer.status_code == 403, answer.text
    assert answer.headers["x-error-code"] == "Forbidden"


def test_tampered_links_are_refused(site: SecuritySite) -> None:
    repo_id = _new_repo(site, "tampered")
    payload = os.urandom(3000)
    href = _link(site, "owner", repo_id, payload)
    # Another token's id, another uploader, a later expiry: each breaks the signature.
    other_token = next(iter(site.tokens))
    tampered = [
        href.replace("by=user%3Aowner", "by=user%3Arecreator"),
        href.replace("token=", f"token=x{other_token[:4]}"),
        href.replace("expires=", "expires=9"),
        href.replace("&token=", "&ignored="),
    ]
    got_through = [
        url for url in tampered if _put(site, url, payload).status_code not in (400, 403)
    ]
    assert got_through == [], got_through


def test_objects_above_max_upload_bytes_are_refused(site: SecuritySite) -> None:
    repo_id = _new_repo(site, "large")
    big = MAX_UPLOAD_BYTES + 1
    oid = hashlib.sha256(b"x" * big).hexdigest()
    answers = _batch(
        site,
        "owner",
        repo_id,
        [
            {"oid": oid, "size": big},
            {"oid": "a" * 64, "size": 10**15},
            {"oid": "b" * 64, "size": 5},
        ],
    )
    got_through = [answer for answer in answers[:2] if "actions" in answer]
    assert got_through == [], got_through
    assert all(answer["error"]["code"] == 422 for answer in answers[:2])
    assert "actions" in answers[2]
    # A Content-Length above the maximum is a 413 before any byte is read: announced, not
    # sent (a body shorter than announced would be another error).
    payload = os.urandom(1000)
    href = _link(site, "owner", repo_id, payload)
    answer = site.request(None, "PUT", href, headers={"Content-Length": str(big)})
    assert answer.status_code == 413, answer.text
