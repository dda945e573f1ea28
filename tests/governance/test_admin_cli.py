"""`hubproxy admin` on a data dir: output for people and scripts, exit codes, cascades."""

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import InProcessFactory, ProxyFactory
from tests.governance.conftest import admin, admin_json, new_token

LLAMA_MIRROR = [
    "project",
    "create",
    "llama",
    "--kind",
    "proxy",
    "--upstream-namespace",
    "meta-llama",
]


@pytest.fixture
def fresh_dir(tmp_path: Path) -> Path:
    """A data dir that does not exist yet: the admin CLI bootstraps it."""
    return tmp_path / "fresh" / "data"


@pytest.fixture
def data_dir(fresh_dir: Path) -> Path:
    """A new data dir with its first platform admin, `root`."""
    admin(fresh_dir, "user", "create", "root", "--admin")
    return fresh_dir


@pytest.mark.sqlite_file
def test_bootstrap_and_listings(fresh_dir: Path) -> None:
    data_dir = fresh_dir
    created = admin(data_dir, "user", "create", "alice", "--admin", "--email", "a@x.io")
    assert created.stdout == "created user alice (admin)\n"
    plain = admin(data_dir, "token", "create", "alice", "--scope", "admin", "--name", "laptop")
    lines = plain.stdout.splitlines()
    assert lines[-1].startswith("hp_")
    assert len(lines[-1]) == 43
    assert "tok_" in lines[0]
    scripted = json.loads(admin(data_dir, "token", "create", "alice", "--json").stdout)
    assert scripted["token"].startswith("hp_")
    assert (scripted["owner"], scripted["scope"], scripted["revoked"]) == ("alice", "read", False)

    table = admin(data_dir, "token", "list").stdout.splitlines()
    assert table[0].split() == [
        "ID", "OWNER", "KIND", "NAME", "SCOPE", "STATUS", "CREATED", "EXPIRES", "LAST", "USED",
    ]  # fmt: skip
    assert len(table) == 3
    # Columns are aligned: every row starts its second column at the same offset.
    offsets = {line.index("alice") for line in table[1:]}
    assert offsets == {table[0].index("OWNER")}
    assert lines[-1] not in admin(data_dir, "token", "list").stdout
    assert all(
        "secret" not in key for token in admin_json(data_dir, "token", "list") for key in token
    )
    users = admin_json(data_dir, "user", "list")
    assert users == [
        {
            "name": "alice", "fullname": "", "email": "a@x.io", "is_admin": True,
            "disabled": False, "created": users[0]["created"],
        }
    ]  # fmt: skip

    # Only the hash is stored.
    database = sqlite3.connect(data_dir / "hubproxy.sqlite3")
    stored = [row[0] for row in database.execute("SELECT secret_hash FROM tokens")]
    database.close()
    assert all(len(value) == 64 for value in stored)
    assert scripted["token"] not in stored


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (("user", "create", "bad name"), 2, "user name"),
        (("user", "create", "taken"), 4, "already exists"),
        (("user", "disable", "nobody"), 3, "no user"),
        (("token", "create", "nobody"), 3, "no user"),
        (("token", "create", "taken", "--scope", "root"), 2, "unknown scope"),
        (("token", "create", "taken", "--expires", "someday"), 2, "not a duration"),
        (("token", "revoke", "tok_missing"), 3, "no token"),
        (("project", "create", "p", "--kind", "mirror"), 2, "unknown project kind"),
        (("project", "create", "p", "--upstream-namespace", "x"), 2, "only for proxy"),
        (
            ("project", "create", "p", "--kind", "proxy", "--upstream-namespace", "meta-llama"),
            4,
            "already mirrored by 'llama'",
        ),
        (("member", "add", "nowhere", "taken"), 3, "no project"),
        (("member", "add", "team", "taken", "--role", "owner"), 2, "unknown role"),
        (("member", "remove", "team", "taken"), 3, "not a member"),
        (("robot", "create", "team", "bot", "-p", "fly"), 2, "robot permissions"),
        (("robot", "create", "team", "taken"), 4, "already a user name"),
        (("policy", "set", "--mode", "open"), 2, "unknown mode"),
    ],
)
def test_errors_are_clear_with_exit_codes(
    data_dir: Path, arguments: tuple[str, ...], code: int, message: str
) -> None:
    admin(data_dir, "user", "create", "taken")
    admin(data_dir, "project", "create", "team")
    if "meta-llama" in arguments:
        admin(data_dir, *LLAMA_MIRROR)
    failed = admin(data_dir, *arguments, check=False)
    assert failed.returncode == code, failed.stderr
    assert failed.stdout == ""
    assert failed.stderr.startswith("hubproxy admin: ")
    assert message in failed.stderr
    assert "Traceback" not in failed.stderr


def test_projects_members_robots_and_the_audit_of_changes(data_dir: Path) -> None:
    admin(data_dir, *LLAMA_MIRROR, "--public")
    admin(data_dir, "project", "create", "acme")
    listed = admin(data_dir, "project", "list").stdout
    assert "meta-llama" in listed
    assert "public" in listed
    admin(data_dir, "user", "create", "bob")
    admin(data_dir, "member", "add", "acme", "bob", "--role", "developer")
    admin(data_dir, "member", "add", "acme", "bob", "--role", "maintainer")  # replaces
    assert admin_json(data_dir, "member", "list", "acme") == [{"user": "bob", "role": "maintainer"}]
    new_token(
        data_dir,
        "robot",
        "create",
        "acme",
        "builder",
        "-p",
        "read",
        "-p",
        "write",
        "--expires",
        "30d",
    )
    robots = admin_json(data_dir, "robot", "list", "--project", "acme")
    assert [(r["name"], r["permissions"]) for r in robots] == [("builder", ["read", "write"])]

    # Deleting a project takes its members and robots, and revokes the robots' tokens.
    admin(data_dir, "project", "delete", "acme")
    assert admin_json(data_dir, "robot", "list") == []
    tokens = admin_json(data_dir, "token", "list")
    assert [(t["owner"], t["revoked"]) for t in tokens] == [("builder", True)]

    actions = [r["action"] for r in admin_json(data_dir, "audit")]
    assert actions == [
        "user_create", "project_create", "project_create", "user_create", "member_add",
        "member_add", "robot_create", "project_delete",
    ]  # fmt: skip
    actors = {r["actor_kind"] for r in admin_json(data_dir, "audit")}
    assert actors == {"cli"}


def test_project_admins_manage_members_and_robots_through_a_running_server(
    proxy_factory: ProxyFactory,
) -> None:
    process = proxy_factory()
    data_dir = process.data_dir
    admin(data_dir, "project", "create", "acme")
    admin(data_dir, "project", "create", "mirror", "--kind", "proxy")
    for user in ("lead", "dev"):
        admin(data_dir, "user", "create", user)
    admin(data_dir, "member", "add", "acme", "lead", "--role", "admin")
    admin(data_dir, "member", "add", "mirror", "lead", "--role", "admin")
    lead = new_token(data_dir, "token", "create", "lead", "--scope", "write")
    remote = ("--endpoint", process.url, "--token", lead)

    admin(data_dir, *remote, "member", "add", "acme", "dev", "--role", "developer")
    assert admin_json(data_dir, *remote, "member", "list", "acme") == [
        {"user": "dev", "role": "developer"},
        {"user": "lead", "role": "admin"},
    ]
    created = admin(
        data_dir, *remote, "robot", "create", "acme", "deployer", "-p", "read", "-p", "write"
    )
    robot_token = created.stdout.splitlines()[-1]
    assert robot_token.startswith("hp_")
    assert (
        httpx.get(
            f"{process.url}/api/whoami-v2", headers={"Authorization": f"Bearer {robot_token}"}
        ).json()["name"]
        == "deployer"
    )
    robots = admin_json(data_dir, *remote, "robot", "list", "--project", "acme")
    assert [(r["name"], r["permissions"], r["created_by"]) for r in robots] == [
        ("deployer", ["read", "write"], "lead")
    ]

    # A robot gets only what its creator holds: nobody writes to a proxy project.
    beyond = admin(
        data_dir, *remote, "robot", "create", "mirror", "pusher", "-p", "write", check=False
    )
    assert beyond.returncode == 1
    assert "only get permissions you hold" in beyond.stderr
    # A developer cannot manage members; an unknown project is not found.
    dev = new_token(data_dir, "token", "create", "dev", "--scope", "write")
    refused = admin(
        data_dir,
        "--endpoint",
        process.url,
        "--token",
        dev,
        "member",
        "remove",
        "acme",
        "lead",
        check=False,
    )
    assert (refused.returncode, "403" in refused.stderr) == (1, True)
    missing = admin(data_dir, *remote, "member", "list", "nowhere", check=False)
    assert missing.returncode == 3
    # Users are a platform admin's to manage, through the server as on the data dir.
    platform_only = admin(data_dir, *remote, "user", "list", check=False)
    assert platform_only.returncode == 1
    assert "403: Only platform admins may" in platform_only.stderr

    admin(data_dir, *remote, "robot", "revoke", "deployer", "--project", "acme")
    admin(data_dir, *remote, "member", "remove", "acme", "dev")
    records = [
        r
        for r in admin_json(data_dir, "audit")
        if r["actor_kind"] != "cli" and r["action"] != "login"
    ]
    seen = [(r["action"], r["decision"], r["actor_name"], r["repo_id"], r["path"]) for r in records]
    assert seen == [
        ("member_add", "allow", "lead", "acme", "dev"),
        ("robot_create", "allow", "lead", "acme", "deployer"),
        ("robot_create", "deny", "lead", "mirror", "pusher"),
        ("member_remove", "deny", "dev", "acme", "lead"),
        ("read", "deny", "lead", "nowhere", None),
        ("read", "deny", "lead", None, None),
        ("robot_revoke", "allow", "lead", "acme", "deployer"),
        ("member_remove", "allow", "lead", "acme", "dev"),
    ]


def test_audit_retention_by_the_server_and_by_hand(in_process_factory: InProcessFactory) -> None:
    server = in_process_factory(start=False)
    data_dir = server.data_dir
    admin(data_dir, "user", "create", "root", "--admin")
    admin(data_dir, "user", "create", "old")
    time.sleep(1.2)  # "old" is over a second old: what a 1 s retention deletes
    admin(data_dir, "user", "create", "recent")
    server.start(audit_retention="1s")  # prunes at start, then hourly
    deadline = time.monotonic() + 10
    while "audit_prune" not in {r["action"] for r in admin_json(data_dir, "audit")}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    remaining = admin_json(data_dir, "audit")
    assert [r["path"] for r in remaining if r["action"] == "user_create"] in ([], ["recent"])
    assert "old" not in [r["path"] for r in remaining]
    pruned = next(r for r in remaining if r["action"] == "audit_prune")
    assert (pruned["actor_kind"], pruned["actor_name"]) == ("system", "hubproxy")

    time.sleep(0.1)
    by_hand = admin_json(data_dir, "prune-audit", "--before", "2099-01-01")
    assert by_hand["deleted"] >= 1
    assert [r["action"] for r in admin_json(data_dir, "audit")] == ["audit_prune"]


def test_users_manage_their_own_tokens_through_a_running_server(
    proxy_factory: ProxyFactory,
) -> None:
    process = proxy_factory()
    data_dir = process.data_dir
    for user in ("bob", "alice"):
        admin(data_dir, "user", "create", user)
    admin(data_dir, "project", "create", "acme")
    bob = new_token(data_dir, "token", "create", "bob", "--scope", "write")
    alice_id = admin_json(data_dir, "token", "create", "alice")["id"]
    remote = ("--endpoint", process.url, "--token", bob)

    laptop = admin(
        data_dir, *remote, "token", "create", "bob", "--name", "laptop", "--expires", "7d"
    )
    secret = laptop.stdout.splitlines()[-1]
    assert secret.startswith("hp_")
    assert (
        httpx.get(
            f"{process.url}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}
        ).json()["name"]
        == "bob"
    )
    listed = admin_json(data_dir, *remote, "token", "list")
    assert sorted((t["owner"], t["name"], t["scope"]) for t in listed) == [
        ("bob", "", "write"),
        ("bob", "laptop", "read"),
    ]
    for arguments, code, message in (
        (("token", "create", "bob", "--scope", "admin"), 1, "cannot create a 'admin' token"),
        (("token", "create", "alice"), 1, "Only platform admins"),
        (("token", "revoke", alice_id), 3, "no token"),
        (("token", "list", "--user", "alice"), 1, "Only platform admins"),
    ):
        refused = admin(data_dir, *remote, *arguments, check=False)
        assert refused.returncode == code, refused.stderr
        assert message in refused.stderr
    laptop_id = next(t["id"] for t in listed if t["name"] == "laptop")
    admin(data_dir, *remote, "token", "revoke", laptop_id)
    assert (
        httpx.get(
            f"{process.url}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 401
    )

    # Robots and anonymous callers have no tokens of their own to manage.
    robot = new_token(data_dir, "robot", "create", "acme", "ci")
    assert (
        httpx.get(
            f"{process.url}/api/hubproxy/tokens", headers={"Authorization": f"Bearer {robot}"}
        ).status_code
        == 403
    )
    assert httpx.get(f"{process.url}/api/hubproxy/tokens").status_code == 401
    created = [
        r
        for r in admin_json(data_dir, "audit", "--action", "token_create")
        if r["actor_kind"] == "user"
    ]
    assert [(r["decision"], r["actor_name"], r["path"]) for r in created] == [
        ("allow", "bob", "bob"),
        ("deny", "bob", "bob"),
        ("deny", "bob", "alice"),
    ]
