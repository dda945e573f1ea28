"""Authorization: one decision per request, from (principal, namespace, repo, action).

`hf_api` derives the action from the matched route and calls `authorize` before any handler
runs; handlers never check permissions. Grants come from `roles.ROLE_ACTIONS` (plus read for
public projects); denials are applied afterwards and always win:

- a robot acts only inside its own project;
- a proxy project is a read-only mirror, whatever the role;
- a token's scope bounds its owner's roles (a `read` token never writes);
- namespaces that are not projects are read-only and subject to the upstream policy;
- `require_auth` refuses anonymous requests everywhere.

A principal that may not read a repo gets the answer a missing repo gets (401 when anonymous,
404 otherwise, both `RepoNotFound`), so private names do not leak.

Platform administration (`/api/hubproxy/admin/...`) is decided by `authorize_platform`: only a
platform admin (an admin user with an admin-scoped token) may `administer`; `review` (listings
and the audit log) is also open to project admins, limited to the projects they administer
(`Decision.within`). Anonymous callers get 401, robots and everybody else 403.
"""

import dataclasses
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from hubproxy.auth.accounts import AccountsSnapshot, Policy, Project
from hubproxy.auth.principal import Principal
from hubproxy.auth.roles import (
    ACTIONS,
    CONTENT_CHANGES,
    MANAGE_MEMBERS,
    READ,
    REVIEW,
    ROLE_ACTIONS,
    SCOPE_ACTIONS,
    Action,
    PlatformAction,
)
from hubproxy.errors import Forbidden, HubError, RepoNotFound, Unauthorized
from hubproxy.naming import canonical_name


class RepoNotFoundUnauthenticated(RepoNotFound):
    """401 `RepoNotFound`: what an anonymous caller gets for a repo it may not see."""

    status = 401


class AuthenticationRequired(Unauthorized):
    """401 `Unauthorized`: this hubproxy (or this action) needs a token."""

    default_message = "Authentication required: set HF_TOKEN to a hubproxy token"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome: allowed, or the error to answer with; `reason` goes to the audit log."""

    allowed: bool
    reason: str
    error: HubError | None = None
    project: Project | None = None
    # Platform `review`: the projects whose listings and audit records the principal may
    # see; None for all of them (a platform admin).
    within: frozenset[str] | None = None


def _hidden(principal: Principal, reason: str, project: Project | None = None) -> Decision:
    error = RepoNotFoundUnauthenticated() if principal.is_anonymous else RepoNotFound()
    return Decision(False, reason, error, project)


def _refused(
    principal: Principal, reason: str, message: str, project: Project | None = None
) -> Decision:
    if principal.is_anonymous:
        return Decision(False, reason, AuthenticationRequired(), project)
    return Decision(False, reason, Forbidden(message), project)


def as_seen_by(principal: Principal, error: HubError) -> HubError:
    """`error` as `principal` must see it: a missing repo answers an anonymous caller exactly
    like a private one it may not see (401 `RepoNotFound`), so the two cannot be told apart."""
    if principal.is_anonymous and type(error) is RepoNotFound:
        return RepoNotFoundUnauthenticated(error.message, headers=error.headers)
    return error


def upstream_allowed(policy: Policy, repo_id: str) -> bool:
    """Whether the upstream policy lets `repo_id` (of a namespace that is not a project) through."""
    if policy.mode == "allow-all":
        return True
    # Repo ids are case-insensitive (as on huggingface.co): so are the patterns.
    folded = canonical_name(repo_id)
    matched = any(
        fnmatch.fnmatchcase(folded, canonical_name(pattern)) for pattern in policy.patterns
    )
    return matched if policy.mode == "allow-list" else not matched


def grants(principal: Principal, project: Project) -> frozenset[Action]:
    """What `principal` may do in `project` before denials."""
    if principal.is_admin:
        granted: frozenset[Action] = frozenset(ACTIONS)
    elif principal.kind == "robot":
        granted = principal.robot_permissions
    else:
        granted = ROLE_ACTIONS.get(principal.roles.get(project.name, ""), frozenset())
    if project.public:
        granted |= {READ}
    return granted


def allowed_actions(
    principal: Principal, project: str, snapshot: AccountsSnapshot
) -> frozenset[Action]:
    """Everything `principal` may do in `project`, denials applied (what it may delegate)."""
    return frozenset(
        action
        for action in ACTIONS
        if authorize(principal, action, f"{project}/", snapshot).allowed
    )


def authorize(
    principal: Principal,
    action: Action,
    repo_id: str,
    snapshot: AccountsSnapshot,
    *,
    require_auth: bool = False,
) -> Decision:
    """May `principal` do `action` on `repo_id` (`namespace/name`, or a canonical `name`)?

    Project-level actions (members, robots) pass `"{project}/"`.
    """
    namespace = repo_id.split("/")[0] if "/" in repo_id else ""
    project = snapshot.project_of(namespace) if namespace else None
    if principal.is_anonymous and (require_auth or snapshot.policy.require_auth):
        return Decision(False, "anonymous access is disabled", AuthenticationRequired(), project)
    if principal.kind == "robot" and (project is None or project.name != principal.robot_project):
        return _hidden(principal, f"robot of project {principal.robot_project} acts outside it")
    if project is None:
        if action == MANAGE_MEMBERS:
            return _hidden(principal, "no such project")
        if not upstream_allowed(snapshot.policy, repo_id):
            return _hidden(principal, "upstream policy")
        if action != READ:
            # Answered like a private project the caller cannot see: a refusal that named
            # the namespace "proxied" would tell private projects from everything else.
            return _hidden(principal, "namespace is not a project: read-only")
        return Decision(True, "proxied namespace")
    granted = grants(principal, project)
    if READ not in granted:
        return _hidden(principal, f"no role in project {project.name}", project)
    if action in CONTENT_CHANGES and project.kind == "proxy":
        return _refused(
            principal,
            "proxy project is read-only",
            f"{project.name} is a proxy project (a read-only mirror)",
            project,
        )
    if action not in SCOPE_ACTIONS.get(principal.scope, frozenset()):
        return _refused(
            principal,
            f"token scope {principal.scope}",
            f"This token has the {principal.scope!r} scope, which does not allow {action}",
            project,
        )
    if action not in granted:
        if principal.kind == "robot":
            held = ", ".join(sorted(principal.robot_permissions)) or "none"
            return _refused(
                principal,
                f"robot permissions {held} lack {action}",
                f"This robot's permissions in {project.name} ({held}) do not include {action}",
                project,
            )
        role = principal.roles.get(project.name, "none")
        return _refused(
            principal,
            f"role {role} lacks {action}",
            f"Your role in {project.name} ({role}) does not allow {action}",
            project,
        )
    return Decision(True, "role" if not principal.is_admin else "platform admin", project=project)


def authorize_moved(
    principal: Principal,
    action: Action,
    repo_id: str,
    snapshot: AccountsSnapshot,
    *,
    require_auth: bool = False,
) -> Decision:
    """May `principal` do `action` on `repo_id`, the id upstream answered with for a proxied
    repo asked by another name (a rename)? Decided as for that id; an upstream name never
    leads into a hosted project, whose repos upstream cannot know."""
    decision = authorize(principal, action, repo_id, snapshot, require_auth=require_auth)
    if decision.allowed and decision.project is not None and decision.project.kind == "hosted":
        return _hidden(
            principal, f"upstream renamed a repo into hosted project {decision.project.name}"
        )
    if not decision.allowed:
        return dataclasses.replace(
            decision, reason=f"upstream renamed to {repo_id}: {decision.reason}"
        )
    return decision


def readable(
    principal: Principal,
    repo_ids: Iterable[str],
    snapshot: AccountsSnapshot,
    *,
    require_auth: bool = False,
) -> list[str]:
    """The repos of `repo_ids` that `principal` may read (what a listing may show)."""
    return [
        repo_id
        for repo_id in repo_ids
        if authorize(principal, READ, repo_id, snapshot, require_auth=require_auth).allowed
    ]


def administered_projects(principal: Principal, snapshot: AccountsSnapshot) -> frozenset[str]:
    """The projects whose members and robots `principal` manages (denials applied)."""
    return frozenset(
        name
        for name in principal.roles
        if name in snapshot.projects
        and authorize(principal, MANAGE_MEMBERS, f"{name}/", snapshot).allowed
    )


def authorize_platform(
    principal: Principal, action: PlatformAction, snapshot: AccountsSnapshot
) -> Decision:
    """May `principal` do the platform-level `action`? A project admin's `review` is allowed
    with `within` set to the projects it administers."""
    if principal.is_anonymous:
        return Decision(False, f"anonymous {action}", AuthenticationRequired())
    if principal.is_admin:
        return Decision(True, "platform admin")
    if principal.kind == "robot":
        return Decision(False, f"robot lacks {action}", Forbidden("Robots cannot administer"))
    if action == REVIEW:
        within = administered_projects(principal, snapshot)
        if within:
            return Decision(True, "project admin", within=within)
    user = snapshot.users.get(principal.name)
    if user is not None and user.is_admin:
        return Decision(
            False,
            f"token scope {principal.scope} lacks {action}",
            Forbidden("Platform administration needs an admin-scoped token"),
        )
    allowed = "platform admins" if action != REVIEW else "platform admins and project admins"
    return Decision(
        False, f"not a platform admin: lacks {action}", Forbidden(f"Only {allowed} may")
    )
