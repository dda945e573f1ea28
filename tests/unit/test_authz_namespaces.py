"""`auth.authz` decisions about personal namespaces and per-repo visibility on their own."""

from hubproxy.auth.accounts import AccountsSnapshot, Project, User
from hubproxy.auth.authz import (
    RepoVisibility,
    administered_projects,
    allowed_actions,
    authorize,
    authorize_listing,
    readable,
)
from hubproxy.auth.principal import ANONYMOUS, Principal
from hubproxy.auth.roles import ACTIONS, MANAGE_MEMBERS, READ, ROLE_ACTIONS, WRITE
from hubproxy.errors import Forbidden, GatedRepo, GatedRepoUnauthenticated, RepoNotFound

ALICE = User("alice", "Alice A.", "", False, False, 0.0)
BOB = User("bob", "", "", False, False, 0.0)
OPEN = Project("open", "hosted", True, None, 0.0, fullname="Open Lab")
TEAM = Project("team", "hosted", False, None, 0.0)
SNAPSHOT = AccountsSnapshot(
    users={"alice": ALICE, "bob": BOB},
    projects={"open": OPEN, "team": TEAM},
    roles={"bob": {"open": "developer", "team": "viewer"}},
)
PRIVATE = RepoVisibility(private=True)


def principal(name: str, scope: str = "write") -> Principal:
    return Principal("user", name, "tok_1", scope=scope, roles=SNAPSHOT.roles.get(name, {}))


def test_a_user_administers_their_namespace_without_members() -> None:
    alice = principal("alice")
    owned = allowed_actions(alice, "alice", SNAPSHOT)
    assert owned == ROLE_ACTIONS["admin"] - {MANAGE_MEMBERS}
    refused = authorize(alice, MANAGE_MEMBERS, "alice/", SNAPSHOT)
    assert isinstance(refused.error, Forbidden)
    assert administered_projects(alice, SNAPSHOT) == frozenset()
    # In any letter case, and the decision names the namespace in its own spelling.
    decision = authorize(alice, WRITE, "ALICE/model", SNAPSHOT)
    assert decision.allowed
    assert decision.project is not None
    assert decision.project.name == "alice"
    assert decision.project.personal


def test_others_read_public_personal_repos_only() -> None:
    bob = principal("bob")
    assert authorize(bob, READ, "alice/model", SNAPSHOT).allowed
    assert authorize(ANONYMOUS, READ, "alice/model", SNAPSHOT).allowed
    assert isinstance(authorize(bob, WRITE, "alice/model", SNAPSHOT).error, Forbidden)
    hidden = authorize(bob, READ, "alice/model", SNAPSHOT, repo=PRIVATE)
    assert type(hidden.error) is RepoNotFound
    assert authorize(principal("alice"), READ, "alice/model", SNAPSHOT, repo=PRIVATE).allowed


def test_robots_have_no_namespace_and_stay_in_their_project() -> None:
    robot = Principal(
        "robot", "ci", "tok_2", robot_project="team", robot_permissions=frozenset(ACTIONS)
    )
    assert SNAPSHOT.personal_namespace("ci") is None
    assert not authorize(robot, READ, "alice/model", SNAPSHOT).allowed


def test_a_private_repo_in_a_public_project_is_for_members() -> None:
    outsider = principal("alice")
    member = principal("bob")
    assert type(authorize(outsider, READ, "open/x", SNAPSHOT, repo=PRIVATE).error) is RepoNotFound
    assert authorize(member, READ, "open/x", SNAPSHOT, repo=PRIVATE).allowed
    # A private project stays private whatever the repo says.
    assert not authorize(outsider, READ, "team/x", SNAPSHOT, repo=RepoVisibility()).allowed
    assert readable(outsider, {"open/a": RepoVisibility(), "open/b": PRIVATE}, SNAPSHOT) == [
        "open/a"
    ]


def test_gated_repos_are_seen_and_read_by_the_right_callers() -> None:
    manual, auto = RepoVisibility(gated="manual"), RepoVisibility(gated="auto")
    outsider = principal("alice")
    assert isinstance(authorize(outsider, READ, "open/x", SNAPSHOT, repo=manual).error, GatedRepo)
    assert authorize(principal("bob"), READ, "open/x", SNAPSHOT, repo=manual).allowed
    assert authorize(outsider, READ, "open/x", SNAPSHOT, repo=auto).allowed
    anonymous = authorize(ANONYMOUS, READ, "open/x", SNAPSHOT, repo=auto)
    assert isinstance(anonymous.error, GatedRepoUnauthenticated)
    assert readable(outsider, {"open/g": manual}, SNAPSHOT) == ["open/g"]


def test_a_personal_namespace_is_listed_like_a_hosted_project() -> None:
    decision = authorize_listing(principal("bob"), "Alice", SNAPSHOT)
    assert decision.allowed
    assert decision.project is not None
    assert decision.project.name == "alice"
    assert SNAPSHOT.project_of("open") is OPEN
    assert OPEN.display_name == "Open Lab"


def test_a_project_named_like_a_user_wins_in_older_data() -> None:
    shadowed = AccountsSnapshot(
        users={"team": User("team", "", "", False, False, 0.0)}, projects={"team": TEAM}
    )
    assert shadowed.project_of("team") is TEAM
    assert shadowed.personal_namespace("team") is None
