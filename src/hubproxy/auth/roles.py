"""Actions, roles and token scopes, as data.

A role is the set of actions it allows on the repos of one project; roles are referred to by
name and listed here in order of privilege. Platform admins may do everything everywhere;
platform-level actions (`PlatformAction`: users, policy, the audit log) are decided apart from
repo actions, by `authz.authorize_platform`. Deny rules (read-only proxy projects, token
scopes, robots outside their project, the upstream policy) are applied by `authz` after these
grants and always win.
"""

from typing import Final, Literal

Action = Literal["read", "write", "create_repo", "delete_repo", "manage_refs", "manage_members"]

READ: Final = "read"
WRITE: Final = "write"  # commits, uploads, new branches
CREATE_REPO: Final = "create_repo"
DELETE_REPO: Final = "delete_repo"
MANAGE_REFS: Final = "manage_refs"  # tags, deleting branches
MANAGE_MEMBERS: Final = "manage_members"  # members and robots of the project

# What a role or robot may be granted in a project (not `audit.AUDITED_ACTIONS`).
ACTIONS: Final[tuple[Action, ...]] = (
    READ,
    WRITE,
    CREATE_REPO,
    DELETE_REPO,
    MANAGE_REFS,
    MANAGE_MEMBERS,
)

# Actions that change repo content: refused in proxy (mirror) projects for every role.
CONTENT_CHANGES: Final[frozenset[Action]] = frozenset(
    {WRITE, CREATE_REPO, DELETE_REPO, MANAGE_REFS}
)

ROLE_ACTIONS: Final[dict[str, frozenset[Action]]] = {
    "viewer": frozenset({READ}),
    "developer": frozenset({READ, WRITE, CREATE_REPO}),
    "maintainer": frozenset({READ, WRITE, CREATE_REPO, DELETE_REPO, MANAGE_REFS}),
    "admin": frozenset(ACTIONS),
}
ROLES: Final[tuple[str, ...]] = tuple(ROLE_ACTIONS)
# A user's role in their personal namespace (which has no members or robots, so its
# `manage_members` is denied by `authz`).
PERSONAL_ROLE: Final = "admin"

# Token scopes bound what a token may do whatever its owner's roles: `read` only reads,
# `write` is everything the owner's project roles allow, `admin` adds platform-admin powers.
SCOPES: Final[tuple[str, ...]] = ("read", "write", "admin")
SCOPE_ACTIONS: Final[dict[str, frozenset[Action]]] = {
    "read": frozenset({READ}),
    "write": frozenset(ACTIONS),
    "admin": frozenset(ACTIONS),
}

# Platform-level actions: not about repos, so never granted by a project role or to a robot.
PlatformAction = Literal["administer", "review"]
# Users, the upstream policy, creating and deleting projects, pruning the audit log:
# platform admins only.
ADMINISTER: Final = "administer"
# Listing projects and robots and reading the audit log: platform admins see everything,
# project admins what concerns the projects they administer.
REVIEW: Final = "review"
PLATFORM_ACTIONS: Final[tuple[PlatformAction, ...]] = (ADMINISTER, REVIEW)

PROJECT_KINDS: Final[tuple[str, ...]] = ("hosted", "proxy")
UPSTREAM_MODES: Final[tuple[str, ...]] = ("allow-all", "allow-list", "deny-list")
