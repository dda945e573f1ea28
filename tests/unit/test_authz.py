"""`auth.authz.authorize` on its own: roles as data, and denials that always win."""

import itertools

import pytest

from hubproxy.auth.accounts import (
    AccountConflict,
    AccountError,
    AccountNotFound,
    AccountsSnapshot,
    InvalidAccountInput,
    Policy,
    Project,
    User,
    exit_code_for_status,
)
from hubproxy.auth.authz import authorize, authorize_platform, upstream_allowed
from hubproxy.auth.principal import ANONYMOUS, Principal
from hubproxy.auth.roles import (
    ACTIONS,
    ADMINISTER,
    MANAGE_MEMBERS,
    PLATFORM_ACTIONS,
    READ,
    REVIEW,
    ROLE_ACTIONS,
    WRITE,
)
from hubproxy.errors import Forbidden, RepoNotFound, Unauthorized

HOSTED = Project("acme", "hosted", False, None, 0.0)
PROXY = Project("llama", "proxy", True, "meta-llama", 0.0)
SNAPSHOT = AccountsSnapshot(
    projects={"acme": HOSTED, "llama": PROXY}, mirrored={"meta-llama": PROXY}
)


def user(role: str | None = None, *, scope: str = "write", admin: bool = False) -> Principal:
    roles = {"acme": role, "llama": role} if role else {}
    return Principal("user", "someone", "tok_1", scope=scope, is_admin=admin, roles=roles)


def test_roles_are_ordered_by_privilege() -> None:
    names = list(ROLE_ACTIONS)
    assert names == ["viewer", "developer", "maintainer", "admin"]
    for lower, higher in itertools.pairwise(names):
        assert ROLE_ACTIONS[lower] < ROLE_ACTIONS[higher]
    assert ROLE_ACTIONS["admin"] == frozenset(ACTIONS)


@pytest.mark.parametrize("role", list(ROLE_ACTIONS))
def test_each_role_gets_exactly_its_actions_in_a_hosted_project(role: str) -> None:
    allowed = {
        action for action in ACTIONS if authorize(user(role), action, "acme/x", SNAPSHOT).allowed
    }
    assert allowed == ROLE_ACTIONS[role]


def test_members_are_managed_by_project_admins_only() -> None:
    assert authorize(user("admin"), MANAGE_MEMBERS, "acme/x", SNAPSHOT).allowed
    refused = authorize(user("maintainer"), MANAGE_MEMBERS, "acme/x", SNAPSHOT)
    assert isinstance(refused.error, Forbidden)
    # A proxy project's admin manages its members, though nobody may change its content.
    assert authorize(user("admin"), MANAGE_MEMBERS, "llama/x", SNAPSHOT).allowed
    assert not authorize(user("admin"), WRITE, "llama/x", SNAPSHOT).allowed


def test_denials_win_over_every_grant() -> None:
    platform_admin = user(admin=True, scope="admin")
    assert authorize(platform_admin, WRITE, "acme/x", SNAPSHOT).allowed
    assert not authorize(platform_admin, WRITE, "llama/x", SNAPSHOT).allowed  # read-only mirror
    assert not authorize(platform_admin, WRITE, "openly/x", SNAPSHOT).allowed  # not a project
    read_token = user("admin", scope="read")
    decision = authorize(read_token, WRITE, "acme/x", SNAPSHOT)
    assert isinstance(decision.error, Forbidden)
    assert "scope" in decision.reason
    policy = AccountsSnapshot(projects=SNAPSHOT.projects, policy=Policy("deny-list", ("openly/*",)))
    assert isinstance(authorize(platform_admin, READ, "openly/x", policy).error, RepoNotFound)


def test_invisible_repos_answer_as_missing() -> None:
    anonymous = authorize(ANONYMOUS, READ, "acme/x", SNAPSHOT)
    assert anonymous.error is not None
    assert (anonymous.error.status, anonymous.error.code) == (401, "RepoNotFound")
    outsider = authorize(user(), WRITE, "acme/x", SNAPSHOT)
    assert outsider.error is not None
    assert (outsider.error.status, outsider.error.code) == (404, "RepoNotFound")
    # Visible (public) but not writable: a plain refusal.
    assert isinstance(authorize(ANONYMOUS, WRITE, "llama/x", SNAPSHOT).error, Unauthorized)


def test_a_mirrored_upstream_namespace_is_governed_by_its_project() -> None:
    private = Project("llama", "proxy", False, "meta-llama", 0.0)
    snapshot = AccountsSnapshot(projects={"llama": private}, mirrored={"meta-llama": private})
    for repo in ("llama/x", "meta-llama/x"):
        assert isinstance(authorize(user(), READ, repo, snapshot).error, RepoNotFound)
        assert authorize(user("viewer"), READ, repo, snapshot).allowed


def test_robots_act_only_in_their_project_with_their_permissions() -> None:
    robot = Principal(
        "robot", "ci", "tok_2", scope="write", robot_project="acme",
        robot_permissions=frozenset({READ, WRITE}),
    )  # fmt: skip
    assert authorize(robot, WRITE, "acme/x", SNAPSHOT).allowed
    assert not authorize(robot, MANAGE_MEMBERS, "acme/x", SNAPSHOT).allowed
    for outside in ("llama/x", "openly/x", "gpt2"):
        assert isinstance(authorize(robot, READ, outside, SNAPSHOT).error, RepoNotFound)


def test_a_robots_refusal_speaks_of_its_permissions_not_of_a_role() -> None:
    robot = Principal(
        "robot", "ci", "tok_2", scope="write", robot_project="acme",
        robot_permissions=frozenset({READ}),
    )  # fmt: skip
    refused = authorize(robot, WRITE, "acme/x", SNAPSHOT)
    assert isinstance(refused.error, Forbidden)
    assert refused.error.message == "This robot's permissions in acme (read) do not include write"
    assert refused.reason == "robot permissions read lack write"
    assert "role" not in refused.error.message


def test_require_auth_closes_everything_to_anonymous() -> None:
    decision = authorize(ANONYMOUS, READ, "openly/x", SNAPSHOT, require_auth=True)
    assert isinstance(decision.error, Unauthorized)
    assert authorize(user(), READ, "openly/x", SNAPSHOT, require_auth=True).allowed


@pytest.mark.parametrize(
    ("mode", "patterns", "repo", "allowed"),
    [
        ("allow-all", (), "any/thing", True),
        ("allow-list", ("meta-llama/*", "gpt2"), "meta-llama/Llama-3", True),
        ("allow-list", ("meta-llama/*", "gpt2"), "gpt2", True),
        ("allow-list", ("meta-llama/*",), "mistralai/x", False),
        ("deny-list", ("bad/*",), "bad/x", False),
        ("deny-list", ("bad/*",), "good/x", True),
    ],
)
def test_upstream_policy_patterns(
    mode: str, patterns: tuple[str, ...], repo: str, allowed: bool
) -> None:
    assert upstream_allowed(Policy(mode, patterns), repo) is allowed


def test_platform_administration_is_for_platform_admins_and_reviews_for_project_admins() -> None:
    snapshot = AccountsSnapshot(
        users={"someone": User("someone", "", "", True, False, 0.0)},
        projects=SNAPSHOT.projects,
        mirrored=SNAPSHOT.mirrored,
    )
    platform_admin = user(admin=True, scope="admin")
    for action in PLATFORM_ACTIONS:
        decision = authorize_platform(platform_admin, action, snapshot)
        assert (decision.allowed, decision.within) == (True, None)
    # A project admin reviews its own projects only, and administers nothing.
    lead = Principal("user", "lead", "tok_3", scope="write", roles={"acme": "admin"})
    review = authorize_platform(lead, REVIEW, snapshot)
    assert (review.allowed, review.within) == (True, frozenset({"acme"}))
    assert isinstance(authorize_platform(lead, ADMINISTER, snapshot).error, Forbidden)
    # A read token manages no members, so it reviews nothing either.
    read_only = Principal("user", "lead", "tok_4", scope="read", roles={"acme": "admin"})
    assert isinstance(authorize_platform(read_only, REVIEW, snapshot).error, Forbidden)
    robot = Principal(
        "robot", "ci", "tok_2", scope="write", robot_project="acme",
        robot_permissions=frozenset(ACTIONS),
    )  # fmt: skip
    # An admin user with a write token; a developer; a robot with every permission; anonymous.
    for principal in (user(admin=False, scope="write"), user("developer"), robot):
        for action in PLATFORM_ACTIONS:
            assert isinstance(authorize_platform(principal, action, snapshot).error, Forbidden)
    refused = authorize_platform(user(), ADMINISTER, snapshot)
    assert refused.error is not None
    assert "admin-scoped" in refused.error.message
    for action in PLATFORM_ACTIONS:
        assert isinstance(authorize_platform(ANONYMOUS, action, snapshot).error, Unauthorized)


def test_account_errors_carry_their_hub_error_and_exit_code() -> None:
    cases = [
        (AccountNotFound("no user 'x'"), 404, 3),
        (AccountConflict("exists"), 409, 4),
        (InvalidAccountInput("bad name"), 400, 2),
        (AccountError("cannot"), 400, 1),
    ]
    for error, status, exit_code in cases:
        hub_error = error.as_hub_error()
        assert (hub_error.status, hub_error.message, error.exit_code) == (
            status,
            str(error),
            exit_code,
        )
    # Through the admin API the CLI sees only the status: the same exit codes.
    assert [exit_code_for_status(status) for status in (400, 404, 409, 401, 403, 500)] == [
        2, 3, 4, 1, 1, 1,
    ]  # fmt: skip
