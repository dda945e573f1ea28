"""Delegation is bounded by what the delegator holds: attempts to hand on more than that
(roles above a robot's permissions, tokens wider or longer-lived than the token asking,
revocations by a read token, absurd lifetimes). Every attempt is refused with a precise 4xx and
every 403 is audited as a denial; nothing refused changes the accounts."""

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hubproxy.auth.roles import ACTIONS
from tests.fake_upstream import FakeHubServer
from tests.governance.conftest import admin_json
from tests.security.delegation_support import SecuritySite, eventually, running, with_root

MEMBERS = "/api/organizations/acme/members"
ROBOTS = "/api/organizations/acme/robots"
TOKENS = "/api/hubproxy/tokens"


@pytest.fixture(scope="module")
def site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuritySite]:
    data_dir = tmp_path_factory.mktemp("delegation") / "data"
    accounts = (
        with_root()
        .project("acme")
        .users("lead", "dev", "outsider", "target")
        .member("acme", "lead", "admin")
        .member("acme", "dev", "developer")
        .token("root", "root", "admin")
        .token("lead", "lead", "write")
        .token("lead-read", "lead", "read", name="reader")
        .token("lead-hour", "lead", "write", expires_in=3600)
        .token("dev", "dev", "write")
        # Manages members but may only read: may add viewers, nothing more.
        .robot("keeper", "acme", "keeper", ["read", "manage_members"])
        .robot("builder", "acme", "builder", ["read", "write", "manage_members"])
        .robot("strong", "acme", "strong", ACTIONS)
    )
    yield from running(data_dir, fake_hub_server.url, accounts)


def _role_of(site: SecuritySite, user: str) -> str | None:
    members = admin_json(site.data_dir, "member", "list", "acme")
    return next((member["role"] for member in members if member["user"] == user), None)


# (principal, method, path, body): each hands on more than the principal holds.
ESCALATIONS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("keeper", "PUT", f"{MEMBERS}/outsider", {"role": "admin"}),
    ("keeper", "PUT", f"{MEMBERS}/outsider", {"role": "maintainer"}),
    ("keeper", "PUT", f"{MEMBERS}/outsider", {"role": "developer"}),
    ("builder", "PUT", f"{MEMBERS}/outsider", {"role": "admin"}),
    ("builder", "PUT", f"{MEMBERS}/outsider", {"role": "maintainer"}),
    # Touching a member above oneself: demoting or removing the project admin.
    ("keeper", "PUT", f"{MEMBERS}/lead", {"role": "viewer"}),
    ("builder", "PUT", f"{MEMBERS}/lead", {"role": "developer"}),
    ("keeper", "DELETE", f"{MEMBERS}/lead", None),
    ("builder", "DELETE", f"{MEMBERS}/dev", None),
    # Robots with more than the creator, or taking out a stronger robot.
    ("keeper", "POST", ROBOTS, {"name": "made-by-keeper", "permissions": ["read", "write"]}),
    ("builder", "DELETE", f"{ROBOTS}/strong", None),
    # Tokens wider or longer-lived than the token asking.
    ("lead-read", "POST", TOKENS, {"name": "wider", "scope": "write"}),
    ("lead", "POST", TOKENS, {"name": "wider", "scope": "admin"}),
    ("lead-hour", "POST", TOKENS, {"name": "longer", "scope": "read", "expires_in": 7200}),
    (
        "lead-hour",
        "POST",
        ROBOTS,
        {"name": "outliver", "permissions": ["read"], "expires_in": 86400},
    ),
    ("dev", "POST", TOKENS, {"name": "for-lead", "user": "lead"}),
]


def test_no_principal_hands_on_more_than_it_holds(site: SecuritySite) -> None:
    before = admin_json(site.data_dir, "member", "list", "acme")
    robots_before = {robot["name"] for robot in admin_json(site.data_dir, "robot", "list")}
    tokens_before = len(admin_json(site.data_dir, "token", "list"))
    got_through = []
    for principal, method, path, body in ESCALATIONS:
        response = site.request(principal, method, path, json=body)
        if response.status_code != 403 or response.headers.get("x-error-code") != "Forbidden":
            got_through.append((principal, method, path, body, response.status_code))
    assert got_through == [], got_through
    assert admin_json(site.data_dir, "member", "list", "acme") == before
    assert {robot["name"] for robot in admin_json(site.data_dir, "robot", "list")} == robots_before
    assert len(admin_json(site.data_dir, "token", "list")) == tokens_before

    # Every refusal is in the audit log as a denial with its reason.
    def audited() -> bool:
        return len([r for r in site.denials() if r["status"] == 403]) >= len(ESCALATIONS)

    eventually(audited)
    reasons = [record["reason"] for record in site.denials()]
    assert any("cannot grant role admin" in (reason or "") for reason in reasons), reasons
    assert any("outlive" in (reason or "") for reason in reasons), reasons


def test_within_bounds_delegation_still_works(site: SecuritySite) -> None:
    # The read + manage_members robot adds a viewer: its grantable set is its permissions.
    answer = site.request("keeper", "PUT", f"{MEMBERS}/target", json={"role": "viewer"})
    assert answer.status_code == 200, answer.text
    assert _role_of(site, "target") == "viewer"
    # The project admin may grant its own role.
    answer = site.request("lead", "PUT", f"{MEMBERS}/target", json={"role": "admin"})
    assert answer.status_code == 200, answer.text
    # A robot with write and manage_members makes a robot with write.
    answer = site.request(
        "builder", "POST", ROBOTS, json={"name": "made-by-builder", "permissions": ["write"]}
    )
    assert answer.status_code == 201, answer.text


def test_an_expiring_token_delegates_no_further_than_itself(site: SecuritySite) -> None:
    hour_token = next(
        token
        for token in admin_json(site.data_dir, "token", "list", "--user", "lead")
        if token["expires"] is not None
    )
    # Without expires_in, the new token and robot inherit the caller's expiry.
    answer = site.request("lead-hour", "POST", TOKENS, json={"name": "inherits"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["expires"] == pytest.approx(hour_token["expires"])
    answer = site.request(
        "lead-hour", "POST", ROBOTS, json={"name": "inheriting", "permissions": ["read"]}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["expires"] == pytest.approx(hour_token["expires"])
    answer = site.request("lead-hour", "POST", TOKENS, json={"name": "shorter", "expires_in": 60})
    assert answer.status_code == 201, answer.text
    assert answer.json()["expires"] <= time.time() + 61


def test_revoking_needs_a_write_token(site: SecuritySite) -> None:
    created = site.request("lead", "POST", TOKENS, json={"name": "to-revoke"}).json()
    answer = site.request("lead-read", "DELETE", f"{TOKENS}/{created['id']}")
    assert answer.status_code == 403, answer.text
    assert answer.headers["x-error-code"] == "Forbidden"
    listed = admin_json(site.data_dir, "token", "list", "--user", "lead")
    assert next(token for token in listed if token["id"] == created["id"])["revoked"] is False
    eventually(lambda: any(r["action"] == "token_revoke" for r in site.denials()))
    # Somebody else's token stays invisible.
    answer = site.request("dev", "DELETE", f"{TOKENS}/{created['id']}")
    assert answer.status_code == 404, answer.text
    answer = site.request("lead", "DELETE", f"{TOKENS}/{created['id']}")
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (TOKENS, b'{"name": "t", "expires_in": 1e300}'),
        (TOKENS, b'{"name": "t", "expires_in": 315360000}'),  # ten years
        (TOKENS, b'{"name": "t", "expires_in": 31622400.5}'),  # a year and a day
        (TOKENS, b'{"name": "t", "expires_in": NaN}'),
        (TOKENS, b'{"name": "t", "expires_in": -Infinity}'),
        (TOKENS, b'{"name": "t", "expires_in": 0}'),
        (ROBOTS, b'{"name": "r", "permissions": ["read"], "expires_in": 1e300}'),
        (ROBOTS, b'{"name": "r", "permissions": ["read"], "expires_in": 99999999999}'),
    ],
)
def test_absurd_lifetimes_are_a_400(site: SecuritySite, path: str, content: bytes) -> None:
    answer = site.request(
        "lead", "POST", path, content=content, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["x-error-code"] == "BadRequest"
