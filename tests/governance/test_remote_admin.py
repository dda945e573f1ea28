"""`hubproxy admin --endpoint URL --token hp_...`: every command group through the admin API of a
running server prints what it prints on the data dir, is authorized by role, and is audited
with the principal as the actor (refusals too). One server for the whole module."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import SERVER_ENVIRONMENT, TEST_CHUNK_SIZE
from tests.fake_upstream import FakeHubServer
from tests.governance.conftest import PUBLIC_REPO, add_upstream_repos, admin, admin_json, new_token
from tests.support.proxy import ProxyProcess


@dataclass
class RemoteSite:
    """A running hubproxy, its data dir and a token per principal."""

    process: ProxyProcess
    data_dir: Path
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return self.process.url

    def local(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return admin(self.data_dir, *arguments, check=check)

    def remote(
        self, principal: str, *arguments: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The same command through the server, as `principal`."""
        endpoint = ("--endpoint", self.url, "--token", self.tokens[principal])
        return admin(self.data_dir, *endpoint, *arguments, check=check)

    def local_json(self, *arguments: str) -> Any:
        return admin_json(self.data_dir, *arguments)

    def remote_json(self, principal: str, *arguments: str) -> Any:
        return json.loads(self.remote(principal, *arguments, "--json").stdout)

    def token_id(self, owner: str, name: str) -> str:
        listed = self.local_json("token", "list", "--user", owner)
        return next(token["id"] for token in listed if token["name"] == name)


@pytest.fixture(scope="module")
def site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RemoteSite]:
    data_dir = tmp_path_factory.mktemp("remote-admin") / "data"
    admin(data_dir, "user", "create", "root", "--admin")  # a new data dir starts with it
    for project, extra in (
        ("acme", ()),
        ("other", ()),
        ("mirror", ("--kind", "proxy", "--upstream-namespace", "openly", "--public")),
    ):
        admin(data_dir, "project", "create", project, *extra)
    tokens: dict[str, str] = {}
    for user, role_args in (
        ("lead", ()),
        ("dev", ()),
        ("outsider", ()),
        ("idle", ()),
    ):
        admin(data_dir, "user", "create", user, *role_args)
    tokens["root"] = new_token(
        data_dir, "token", "create", "root", "--scope", "admin", "--name", "root"
    )
    # A platform admin's token without the admin scope has no platform powers.
    tokens["root-write"] = new_token(
        data_dir, "token", "create", "root", "--scope", "write", "--name", "root-write"
    )
    for user in ("lead", "dev", "outsider", "idle"):
        tokens[user] = new_token(
            data_dir, "token", "create", user, "--scope", "write", "--name", user
        )
    for project in ("acme", "mirror"):
        admin(data_dir, "member", "add", project, "lead", "--role", "admin")
    admin(data_dir, "member", "add", "acme", "dev", "--role", "developer")
    admin(data_dir, "member", "add", "other", "idle", "--role", "admin")
    tokens["robot"] = new_token(data_dir, "robot", "create", "acme", "acme-ci", "-p", "read")
    new_token(data_dir, "robot", "create", "other", "other-ci", "-p", "read")
    process = ProxyProcess(
        data_dir,
        fake_hub_server.url,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment=SERVER_ENVIRONMENT,
    )
    with process:
        yield RemoteSite(process, data_dir, tokens)
    assert "Traceback" not in process.log(), process.log()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Audit records reach the file through the server's queue within moments."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def server_records(site: RemoteSite, *filters: str) -> list[dict[str, Any]]:
    """Audit records written by the server (not by the admin CLI on the data dir)."""
    records = admin_json(site.data_dir, "audit", "--limit", "100000", *filters)
    return [record for record in records if record["actor_kind"] != "cli"]


@pytest.mark.parametrize(
    "arguments",
    [
        ("user", "list"),
        ("project", "list"),
        ("robot", "list"),
        ("robot", "list", "--project", "acme"),
        ("member", "list", "acme"),
        ("policy", "show"),
        ("token", "list", "--user", "idle"),
        ("audit", "--action", "project_create"),
        ("audit", "--repo", "acme", "--since", "1d", "--limit", "2"),
    ],
)
@pytest.mark.parametrize("output", ["table", "json"])
def test_listings_are_the_same_through_the_server(
    site: RemoteSite, arguments: tuple[str, ...], output: str
) -> None:
    flags = ("--json",) if output == "json" else ()
    local = site.local(*arguments, *flags)
    remote = site.remote("root", *arguments, *flags)
    assert remote.stdout == local.stdout
    assert remote.stderr == ""
    assert len(local.stdout.splitlines()) >= (2 if output == "table" else 1)


def _without_times(document: Any) -> Any:
    return {key: value for key, value in document.items() if key != "created"}


def test_changes_through_the_server_match_the_data_dir_and_are_audited_as_the_caller(
    site: RemoteSite,
) -> None:
    # Each change made once on the data dir and once through the server: same output.
    pairs = [
        ("user", "create", "{}", "--fullname", "Carol", "--email", "c@x.io"),
        ("user", "disable", "{}"),
        ("user", "enable", "{}"),
        # Users and projects share one name space: the project is named apart.
        (
            "project",
            "create",
            "lab-{}",
            "--kind",
            "proxy",
            "--upstream-namespace",
            "up-{}",
            "--public",
        ),
        ("project", "delete", "lab-{}"),
    ]
    for template in pairs:
        local = site.local(*(part.format("carol-local") for part in template))
        remote = site.remote("root", *(part.format("carol-remote") for part in template))
        assert remote.stdout == local.stdout.replace("carol-local", "carol-remote")
    scripted_local = site.local("user", "create", "dana-local", "--json")
    scripted_remote = site.remote("root", "user", "create", "dana-remote", "--json")
    assert _without_times(json.loads(scripted_remote.stdout)) == {
        **_without_times(json.loads(scripted_local.stdout)),
        "name": "dana-remote",
    }
    # Another platform admin can be made through the server; the first one never is.
    site.remote("root", "user", "create", "second-root", "--admin")
    assert {u["name"]: u["is_admin"] for u in site.local_json("user", "list")}["second-root"]

    changed = site.remote("root", "policy", "set", "--mode", "deny-list", "--pattern", "blocked/*")
    assert changed.stdout == site.local("policy", "show").stdout
    restored = site.remote("root", "policy", "set", "--mode", "allow-all", "--pattern", "")
    assert restored.stdout.startswith("mode          allow-all")
    site.local("policy", "set", "--pattern", "")  # the data-dir twin of the two changes above
    assert site.remote("root", "prune-audit", "--before", "2001-01-01").stdout == (
        "deleted 0 audit records\n"
    )
    site.local("prune-audit", "--before", "2001-01-01")

    # The server's records: the same actions, targets and reasons as the CLI's, with the
    # token's owner as the actor and the token id.
    actions = (
        "user_create", "user_disable", "user_enable", "project_create", "project_delete",
        "policy_change", "audit_prune",
    )  # fmt: skip

    def fields(record: dict[str, Any]) -> tuple[Any, ...]:
        named = json.dumps([record["repo_id"], record["path"], record["reason"]])
        return (record["action"], *json.loads(named.replace("-remote", "-local")))

    def written() -> list[dict[str, Any]]:
        return [
            record
            for record in server_records(site)
            if record["action"] in actions and record["actor_name"] == "root"
        ]

    eventually(lambda: len(written()) == 10)
    by_server = written()
    assert {(r["actor_kind"], r["token_id"], r["decision"]) for r in by_server} == {
        ("user", site.token_id("root", "root"), "allow")
    }
    by_cli = [
        record
        for record in admin_json(site.data_dir, "audit", "--limit", "100000")
        if record["actor_kind"] == "cli" and record["action"] in actions
        and ("local" in json.dumps(record) or record["action"] in ("policy_change", "audit_prune"))
    ]  # fmt: skip
    expected = [fields(record) for record in by_cli]
    seen = [fields(record) for record in by_server if "second-root" not in json.dumps(record)]
    # The two policy changes of the server are one change on the data dir.
    assert [f for f in seen if f[0] != "policy_change"] == [
        f for f in expected if f[0] != "policy_change"
    ]
    assert [f for f in seen if f[0] == "policy_change"][-1] == next(
        f for f in expected if f[0] == "policy_change"
    )


def test_project_deletion_keeps_hosted_repos_unless_asked(site: RemoteSite) -> None:
    site.remote("root", "project", "create", "shortlived")
    HfApi(endpoint=site.url, token=site.tokens["root"]).create_repo("shortlived/weights")
    kept = site.remote("root", "project", "delete", "shortlived", check=False)
    assert kept.returncode == 4
    assert "holds 1 hosted repos" in kept.stderr
    deleted = site.remote("root", "project", "delete", "shortlived", "--delete-repos")
    assert deleted.stdout == "deleted project shortlived\n"
    assert "shortlived" not in site.local("project", "list").stdout
    missing = site.remote("root", "project", "delete", "shortlived", check=False)
    assert missing.returncode == 3


def test_project_admins_review_only_their_projects(
    site: RemoteSite, fake_hub_server: FakeHubServer
) -> None:
    add_upstream_repos(fake_hub_server.hub)
    # Records about the mirror project's upstream namespace are its admin's to read.
    response = httpx.get(f"{site.url}/{PUBLIC_REPO}/resolve/main/config.json")
    assert response.status_code == 200
    assert [p["name"] for p in site.remote_json("lead", "project", "list")] == ["acme", "mirror"]
    assert [r["name"] for r in site.remote_json("lead", "robot", "list")] == ["acme-ci"]
    assert [r["name"] for r in site.remote_json("idle", "robot", "list")] == ["other-ci"]
    eventually(lambda: bool(site.remote_json("lead", "audit", "--repo", PUBLIC_REPO)))
    seen = {record["repo_id"] for record in site.remote_json("lead", "audit", "--limit", "100000")}
    assert {"acme", "mirror", PUBLIC_REPO} <= seen
    assert all(
        repo_id in ("acme", "mirror") or repo_id.startswith(("acme/", "mirror/", "openly/"))
        for repo_id in seen
    )
    assert site.remote_json("lead", "audit", "--repo", "other") == []
    assert site.local_json("audit", "--repo", "other")

    for arguments in (
        ("user", "list"),
        ("policy", "show"),
        ("project", "create", "mine"),
        ("prune-audit", "--before", "2001-01-01"),
    ):
        refused = site.remote("lead", *arguments, check=False)
        assert refused.returncode == 1, (arguments, refused.stderr)
        assert "403" in refused.stderr
    # Projects and robots they cannot see are not found, as missing ones are.
    other = site.remote("lead", "robot", "list", "--project", "other", check=False)
    assert other.returncode == 3
    hidden = site.remote("lead", "robot", "revoke", "other-ci", check=False)
    assert (hidden.returncode, "no robot 'other-ci'" in hidden.stderr) == (3, True)
    # Somebody without an administered project reviews nothing.
    for principal in ("dev", "outsider", "robot", "root-write"):
        refused = site.remote(principal, "project", "list", check=False)
        assert refused.returncode == 1, (principal, refused.stderr)
        assert "403" in refused.stderr
    assert "admin-scoped token" in site.remote("root-write", "user", "list", check=False).stderr


def test_the_remaining_member_robot_and_token_options_work_through_the_server(
    site: RemoteSite,
) -> None:
    created = site.remote(
        "lead", "robot", "create", "acme", "nightly", "-p", "read", "--expires", "30d", "--json"
    )
    robot = json.loads(created.stdout)
    assert (robot["project"], robot["permissions"], robot["created_by"]) == (
        "acme", ["read"], "lead",
    )  # fmt: skip
    assert robot["expires"] > time.time() + 29 * 86400
    # Without --project: the robot's project is found among those the caller administers.
    revoked = site.remote("lead", "robot", "revoke", "nightly", "--json")
    assert json.loads(revoked.stdout)["revoked"] is True
    site.remote("lead", "member", "add", "acme", "outsider", "--role", "viewer")
    assert (
        site.remote("lead", "member", "list", "acme").stdout
        == site.local("member", "list", "acme").stdout
    )
    site.remote("lead", "member", "remove", "acme", "outsider")
    listed = site.remote_json("root", "token", "list", "--user", "idle")
    assert [token["name"] for token in listed] == ["idle"]
    made = site.remote(
        "root", "token", "create", "idle", "--name", "ci", "--scope", "read", "--expires", "1d"
    )
    assert made.stdout.splitlines()[-1].startswith("hp_")
    ci = next(
        t for t in site.remote_json("root", "token", "list", "--user", "idle") if t["name"] == "ci"
    )
    site.remote("root", "token", "revoke", ci["id"])
    assert site.local_json("token", "list", "--user", "idle")[-1]["revoked"] is True


def test_refused_tokens_and_the_token_from_the_environment(site: RemoteSite) -> None:
    for token in ("hp_" + "x" * 40, "hp_short"):
        refused = admin(
            site.data_dir, "--endpoint", site.url, "--token", token, "user", "list", check=False
        )
        assert refused.returncode == 1
        assert refused.stderr.startswith("hubproxy admin: 401: ")
        assert "--token or HF_TOKEN" in refused.stderr
    anonymous = admin(site.data_dir, "--endpoint", site.url, "user", "list", check=False)
    assert (anonymous.returncode, "401" in anonymous.stderr) == (1, True)
    from_environment = subprocess.run(
        [sys.executable, "-m", "hubproxy", "admin", "--endpoint", site.url, "user", "list"],
        capture_output=True, text=True, timeout=60, cwd=site.data_dir.parent,
        env={**os.environ, "HF_TOKEN": site.tokens["root"]},
    )  # fmt: skip
    assert from_environment.returncode == 0, from_environment.stderr
    assert from_environment.stdout == site.local("user", "list").stdout


# Every admin API request a platform action guards, with a valid body (refusals come first).
GUARDED = [
    ("GET", "/users", None),
    ("POST", "/users", {"name": "intruder"}),
    ("PUT", "/users/dev/disabled", None),
    ("DELETE", "/users/dev/disabled", None),
    ("GET", "/projects", None),
    ("POST", "/projects", {"name": "intruded"}),
    ("DELETE", "/projects/acme", None),
    ("GET", "/robots", None),
    ("GET", "/policy", None),
    ("PATCH", "/policy", {"requireAuth": True}),
    ("GET", "/audit", None),
    ("DELETE", "/audit?before=4102444800", None),
]
# Open to project admins (for their projects): everything else is platform admins' only.
REVIEWS = {("GET", "/projects"), ("GET", "/robots"), ("GET", "/audit")}


def test_each_refusal_is_audited_as_a_denial(site: RemoteSite) -> None:
    expected: set[tuple[str, str, str, int]] = set()
    for principal in ("anonymous", "outsider", "dev", "robot", "root-write", "lead"):
        token = site.tokens.get(principal)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for method, path, body in GUARDED:
            if principal == "lead" and (method, path) in REVIEWS:
                continue
            response = httpx.request(
                method, f"{site.url}/api/hubproxy/admin{path}", json=body, headers=headers
            )
            status = 401 if principal == "anonymous" else 403
            assert response.status_code == status, (principal, method, path, response.text)
            code = "Unauthorized" if status == 401 else "Forbidden"
            assert response.headers["x-error-code"] == code
            actor = {"robot": "acme-ci", "root-write": "root"}.get(principal, principal)
            expected.add((method, path.split("?")[0], actor, status))

    routes = {
        "admin_users": "/users", "admin_user_disabled": "/users/dev/disabled",
        "admin_projects": "/projects", "admin_project": "/projects/acme",
        "admin_robots": "/robots", "admin_policy": "/policy", "admin_audit": "/audit",
    }  # fmt: skip

    def denials() -> set[tuple[str, str, str, int]]:
        return {
            (r["method"], routes[r["route"]], r["actor_name"], r["status"])
            for r in server_records(site, "--denied")
            if r["route"] in routes
        }

    eventually(lambda: expected <= denials())
    records = [r for r in server_records(site, "--denied") if r["route"] in routes]
    by_name = {(r["method"], r["route"]): r["action"] for r in records}
    # A refused change is recorded as the change it attempted.
    assert by_name[("POST", "admin_users")] == "user_create"
    assert by_name[("DELETE", "admin_project")] == "project_delete"
    assert by_name[("PATCH", "admin_policy")] == "policy_change"
    assert by_name[("DELETE", "admin_audit")] == "audit_prune"
    robot = next(r for r in records if r["actor_name"] == "acme-ci")
    assert (robot["actor_kind"], robot["token_id"]) == (
        "robot",
        site.token_id("acme-ci", "robot acme-ci"),
    )
    # Nothing refused happened.
    assert "intruder" not in site.local("user", "list").stdout
    assert "intruded" not in site.local("project", "list").stdout
    assert site.local_json("policy", "show")["require_auth"] is False


ADMIN_API = "/api/hubproxy/admin"


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", ADMIN_API + "/users", {"name": 5}),
        ("POST", ADMIN_API + "/users", {}),
        ("POST", ADMIN_API + "/users", {"name": "x" * 2000}),
        ("POST", ADMIN_API + "/users", {"name": "ok-name", "isAdmin": "yes"}),
        ("POST", ADMIN_API + "/users", {"name": "ok-name", "fullname": ["a"]}),
        ("POST", ADMIN_API + "/users", {"name": "bad name"}),
        ("POST", ADMIN_API + "/users", ["not", "an", "object"]),
        ("POST", ADMIN_API + "/users", b"{not json"),
        ("POST", ADMIN_API + "/users", b'{"name": NaN}'),
        ("POST", ADMIN_API + "/users", b'{"name": "' + b"x" * 70_000 + b'"}'),
        ("POST", ADMIN_API + "/projects", {"name": "p", "public": "true"}),
        ("POST", ADMIN_API + "/projects", {"name": "p", "kind": 1}),
        ("POST", ADMIN_API + "/projects", {"name": "p", "upstreamNamespace": 7}),
        ("DELETE", ADMIN_API + "/projects/acme?delete_repos=maybe", None),
        ("PUT", ADMIN_API + "/users/bad%20name/disabled", None),
        ("PATCH", ADMIN_API + "/policy", {"patterns": "blocked/*"}),
        ("PATCH", ADMIN_API + "/policy", {"patterns": [1]}),
        ("PATCH", ADMIN_API + "/policy", {"requireAuth": 1}),
        ("PATCH", ADMIN_API + "/policy", {"mode": ["allow-all"]}),
        ("PATCH", ADMIN_API + "/policy", {"mode": "open"}),
        ("GET", ADMIN_API + "/audit?limit=0", None),
        ("GET", ADMIN_API + "/audit?limit=100001", None),
        ("GET", ADMIN_API + "/audit?limit=ten", None),
        ("GET", ADMIN_API + "/audit?limit=-5", None),
        ("GET", ADMIN_API + "/audit?since=inf", None),
        ("GET", ADMIN_API + "/audit?since=nan", None),
        ("GET", ADMIN_API + "/audit?since=-1", None),
        ("DELETE", ADMIN_API + "/audit?before=1e300", None),
        ("GET", ADMIN_API + "/audit?since=yesterday", None),
        ("GET", ADMIN_API + "/audit?denied=maybe", None),
        ("GET", ADMIN_API + "/audit?user=" + "x" * 2000, None),
        ("DELETE", ADMIN_API + "/audit", None),
        ("DELETE", ADMIN_API + "/audit?before=1e999", None),
        ("POST", "/api/hubproxy/tokens", {"name": "t", "expires_in": True}),
        ("POST", "/api/hubproxy/tokens", b'{"name": "t", "expires_in": Infinity}'),
        ("POST", "/api/hubproxy/tokens", b'{"name": "t", "expires_in": 1e999}'),
        ("POST", "/api/organizations/acme/robots", {"name": "r", "permissions": [1]}),
        ("POST", "/api/organizations/acme/robots", {"name": "r", "permissions": [{}]}),
        ("POST", "/api/organizations/acme/robots", {"name": ["r"]}),
        ("PUT", "/api/organizations/acme/members/dev", {"role": 5}),
    ],
)
def test_invalid_input_is_a_400_never_a_500(
    site: RemoteSite, method: str, path: str, content: Any
) -> None:
    body = {"content": content} if isinstance(content, bytes) else {"json": content}
    headers = {"Authorization": f"Bearer {site.tokens['root']}"}
    response = httpx.request(method, f"{site.url}{path}", headers=headers, **body)
    # A body over the endpoint's cap is refused as such before it is read.
    too_large = isinstance(content, bytes) and len(content) > 65_536
    expected = (413, "PayloadTooLarge") if too_large else (400, "BadRequest")
    assert (response.status_code, response.headers["x-error-code"]) == expected, response.text
    assert response.headers["x-error-message"]
