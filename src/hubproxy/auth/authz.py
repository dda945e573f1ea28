"""Authorization: one decision per request, from (principal, namespace, repo, action).

`hf_api` derives the action from the matched route and calls `authorize` before any handler
runs; handlers never check permissions. Grants come from `roles.ROLE_ACTIONS` (plus read for
public projects, for the repos in them that are not private or gated); denials are applied
afterwards and always win:

- a robot acts only inside its own project;
- a proxy project is a read-only mirror, whatever the role;
- a token's scope bounds its owner's roles (a `read` token never writes);
- namespaces that are not projects are read-only and subject to the upstream policy;
- `require_auth` refuses anonymous requests everywhere.

Every user has a personal namespace, their name (`accounts.personal_project`): an implicit
public hosted project whose one admin is that user (`roles.PERSONAL_ROLE`); it has no members
and no robots, so `manage_members` is refused there. Visibility is per repo as well as per
project: the caller passes the repo's `RepoVisibility` (hosted repos that exist); a private
project makes every repo private whatever the repo says.

A principal that may not read a repo gets the answer a missing repo gets (401 when anonymous,
404 otherwise, both `RepoNotFound`), so private names do not leak.

Platform administration (`/api/hubproxy/admin/...`) is decided by `authorize_platform`: only a
platform admin (an admin user with an admin-scoped token) may `administer`; `review` (listings
and the audit log) is also open to project admins, limited to the projects they administer
(`Decision.within`). Anonymous callers get 401, robots and everybody else 403.

Delegation (roles, robots, tokens; `may_grant`, `may_create_robot`, `may_revoke_robot`,
`may_create_token`, `may_revoke_token`) is bounded by what the delegator holds; see the section
at the end. Those decisions need the request body, so handlers take them and `enforce` them:
a refusal raises `Refused`, which the dispatcher audits as a denial.
"""

import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from hubproxy.auth.accounts import AccountsSnapshot, Policy, Project
from hubproxy.auth.authn import principal_for
from hubproxy.auth.principal import ANONYMOUS, Principal
from hubproxy.auth.roles import (
    ACTIONS,
    CONTENT_CHANGES,
    MANAGE_MEMBERS,
    MANAGE_REFS,
    PERSONAL_ROLE,
    READ,
    REVIEW,
    ROLE_ACTIONS,
    SCOPE_ACTIONS,
    SCOPES,
    WRITE,
    Action,
    PlatformAction,
)
from hubproxy.errors import (
    AuthenticationRequired,
    Forbidden,
    GatedRepo,
    GatedRepoUnauthenticated,
    HubError,
    NotFound,
    NotImplementedYet,
    RepoNotFound,
    RepoNotFoundUnauthenticated,
    TokenRefused,
    Unauthorized,
)
from hubproxy.naming import canonical_name

WRITE_SCOPE = "write"
ADMIN_SCOPE = "admin"


@dataclass(frozen=True, slots=True)
class RepoVisibility:
    """What a hosted repo's own settings say about who may read it: `private` (members only),
    `gated` ('' not gated; `auto`: any signed-in user; `manual`: members only, the others
    see it exists and get 403 `GatedRepo`)."""

    private: bool = False
    gated: str = ""


PUBLIC_REPO: Final = RepoVisibility()


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


def role_in(principal: Principal, project: Project) -> str | None:
    """The role a user holds in `project` (a personal namespace: its owner's), or None."""
    if principal.kind != "user":
        return None
    if project.personal:
        return PERSONAL_ROLE if principal.name == project.name else None
    return principal.roles.get(project.name)


def grants(
    principal: Principal, project: Project, repo: RepoVisibility = PUBLIC_REPO
) -> frozenset[Action]:
    """What `principal` may do in `project` (on a repo with `repo`'s settings) before
    denials. Anybody reads a public project's repos that are neither private nor gated;
    signed-in callers also those gated `auto`."""
    if principal.is_admin:
        granted: frozenset[Action] = frozenset(ACTIONS)
    elif principal.kind == "robot":
        granted = principal.robot_permissions
    else:
        granted = ROLE_ACTIONS.get(role_in(principal, project) or "", frozenset())
    public_read = project.public and not repo.private
    if public_read and (not repo.gated or (repo.gated == "auto" and not principal.is_anonymous)):
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
    repo: RepoVisibility = PUBLIC_REPO,
) -> Decision:
    """May `principal` do `action` on `repo_id` (`namespace/name`, or a canonical `name`)?

    Project-level actions (members, robots) pass `"{project}/"`. `repo`: the settings of the
    hosted repo, when it exists (a repo yet to be created has none).
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
    granted = grants(principal, project, repo)
    if READ not in granted:
        if project.public and repo.gated and not repo.private:
            # A gated repo is seen to exist (as on huggingface.co): 401 or 403 `GatedRepo`.
            return Decision(False, f"gated repo ({repo.gated})", _gated(principal), project)
        return _hidden(principal, f"no role in project {project.name}", project)
    if action == MANAGE_MEMBERS and project.personal:
        return _refused(
            principal,
            "a personal namespace has no members or robots",
            f"{project.name} is a personal namespace: it has no members or robots",
            project,
        )
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
        role = role_in(principal, project) or "none"
        return _refused(
            principal,
            f"role {role} lacks {action}",
            f"Your role in {project.name} ({role}) does not allow {action}",
            project,
        )
    return Decision(True, "role" if not principal.is_admin else "platform admin", project=project)


def _gated(principal: Principal) -> HubError:
    if principal.is_anonymous:
        return GatedRepoUnauthenticated(
            "Access to this repo is restricted: sign in (a hubproxy token) to access it"
        )
    return GatedRepo(
        "Access to this repo is restricted and you are not in the authorized list:"
        " ask a member of its namespace for access"
    )


def authorize_moved(
    principal: Principal,
    action: Action,
    repo_id: str,
    snapshot: AccountsSnapshot,
    *,
    require_auth: bool = False,
    repo: RepoVisibility = PUBLIC_REPO,
) -> Decision:
    """May `principal` do `action` on `repo_id`, the id upstream answered with for a proxied
    repo asked by another name (a rename)? Decided as for that id; an upstream name never
    leads into a hosted project, whose repos upstream cannot know."""
    decision = authorize(principal, action, repo_id, snapshot, require_auth=require_auth, repo=repo)
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
    repos: Mapping[str, RepoVisibility],
    snapshot: AccountsSnapshot,
    *,
    require_auth: bool = False,
) -> list[str]:
    """The repos of `repos` (id -> its settings) that `principal` may read or see (a gated
    repo is listed, as on huggingface.co): what a listing may show."""
    return [
        repo_id
        for repo_id, visibility in repos.items()
        if _listable(
            authorize(
                principal, READ, repo_id, snapshot, require_auth=require_auth, repo=visibility
            )
        )
    ]


def _listable(decision: Decision) -> bool:
    return decision.allowed or isinstance(decision.error, GatedRepo)


def authorize_listing(
    principal: Principal,
    author: str | None,
    snapshot: AccountsSnapshot,
    *,
    require_auth: bool = False,
) -> Decision:
    """Listing hosted repos (`list_models(author=...)` & co.); the listing itself then shows
    only what `readable` lets through. A token is needed when authentication is required.
    An `author` must be a hosted project the principal may read (matched case-insensitively;
    the decision's `project` is it); one it may not read is refused exactly like a name that
    is no project at all, so private names stay unknown."""
    if principal.is_anonymous and (require_auth or snapshot.policy.require_auth):
        return Decision(False, "anonymous listing with require_auth", AuthenticationRequired())
    if author is None:
        return Decision(True, "listing")
    project = snapshot.project_of(author)
    readable_project = (
        project is not None
        and project.kind == "hosted"
        and authorize(principal, READ, f"{project.name}/", snapshot).allowed
    )
    if not readable_project:
        error = NotImplementedYet(
            f"{author!r} is not a hosted project: hubproxy lists the repos of hosted"
            " projects only (upstream repos are downloaded through it, not listed)"
        )
        return Decision(False, f"no hosted project {author!r} readable by the caller", error)
    return Decision(True, "listing", project=project)


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


# Delegation: what a principal hands on (roles, robots, tokens) is bounded by what it holds.
#
# A project role or a robot's permissions is a set of actions; a granter may hand on a set only
# if it holds every action of it in that project, denials applied (`allowed_actions`): a project
# admin may grant any role, a robot with `manage_members` only roles within its own
# permissions (so a `read` + `manage_members` robot adds viewers, never admins). Changing or
# removing a member needs the same of the role they hold now: nobody demotes someone above
# them. Platform admins may grant anything. What is delegated never outlives the token that
# delegates it: a new token or robot expires no later than the caller's token.


class Refused(Exception):
    """A refusal decided while a handler runs (delegation checks need the request body): the
    dispatcher audits it as a denial with `decision.reason` and answers `decision.error`."""

    def __init__(self, decision: Decision) -> None:
        assert not decision.allowed
        assert decision.error is not None
        super().__init__(decision.reason)
        self.decision = decision
        self.error: HubError = decision.error


def enforce(decision: Decision) -> Decision:
    """`decision` if allowed; raises `Refused` otherwise."""
    if not decision.allowed:
        raise Refused(decision)
    return decision


def _beyond(wanted: Iterable[Action], held: frozenset[Action]) -> list[str]:
    return sorted(set(wanted) - held)


def _outlives(principal: Principal, expires: float | None) -> bool:
    """Whether something expiring at `expires` (None: never) would outlive `principal`'s token."""
    if principal.token_expires is None:
        return False
    return expires is None or expires > principal.token_expires


def may_grant(
    principal: Principal,
    project: str,
    role: str | None,
    snapshot: AccountsSnapshot,
    *,
    current_role: str | None = None,
) -> Decision:
    """May `principal` give a member of `project` `role` (None: remove them), replacing
    `current_role` (None: not a member yet)?"""
    if principal.is_admin:
        return Decision(True, "platform admin")
    held = allowed_actions(principal, project, snapshot)
    for what, name in (("grant", role), ("change the role of a member with", current_role)):
        if name is None:
            continue
        beyond = _beyond(ROLE_ACTIONS.get(name, frozenset(ACTIONS)), held)
        if beyond:
            return _refused(
                principal,
                f"cannot {what} role {name}: lacks {', '.join(beyond)}",
                f"You cannot {what} the {name!r} role in {project}: it allows "
                f"{', '.join(beyond)}, which you do not hold there",
            )
    return Decision(True, "within the granter's own actions")


def may_create_robot(
    principal: Principal,
    project: str,
    permissions: Iterable[str],
    expires: float | None,
    snapshot: AccountsSnapshot,
) -> Decision:
    """May `principal` create a robot of `project` with `permissions`, expiring at `expires`?"""
    held = allowed_actions(principal, project, snapshot)
    beyond = sorted(set(permissions) - set(held))
    if beyond and not principal.is_admin:
        return _refused(
            principal,
            f"robot permissions beyond the creator's: {', '.join(beyond)}",
            f"A robot can only get permissions you hold here; not {', '.join(beyond)}",
        )
    if _outlives(principal, expires):
        return _refused(
            principal,
            "robot would outlive the creator's token",
            "A robot cannot expire later than the token creating it",
        )
    return Decision(True, "within the creator's own permissions")


def may_revoke_robot(
    principal: Principal, project: str, permissions: Iterable[Action], snapshot: AccountsSnapshot
) -> Decision:
    """May `principal` revoke a robot of `project` holding `permissions`? Only one whose
    permissions it holds itself (a robot cannot take out a more powerful one)."""
    beyond = _beyond(permissions, allowed_actions(principal, project, snapshot))
    if beyond and not principal.is_admin:
        return _refused(
            principal,
            f"robot to revoke holds more: {', '.join(beyond)}",
            f"You cannot revoke a robot with permissions you do not hold ({', '.join(beyond)})",
        )
    return Decision(True, "within the revoker's own permissions")


def may_manage_tokens_of(principal: Principal, owner: str) -> Decision:
    """May `principal` list or create the tokens of user `owner`? Its own, or anybody's for a
    platform admin."""
    if owner != principal.name and not principal.is_admin:
        return _refused(
            principal, "tokens of another user", "Only platform admins manage other users' tokens"
        )
    return Decision(True, "own tokens" if owner == principal.name else "platform admin")


def may_create_token(
    principal: Principal, owner: str, scope: str, expires: float | None
) -> Decision:
    """May `principal` create a token for user `owner` with `scope`, expiring at `expires`?
    A token makes tokens of no wider scope that expire no later than itself; only platform
    admins make tokens for other users."""
    mine = may_manage_tokens_of(principal, owner)
    if not mine.allowed:
        return mine
    if scope not in SCOPES or SCOPES.index(scope) > SCOPES.index(principal.scope):
        return _refused(
            principal,
            f"token scope {principal.scope} cannot create scope {scope}",
            f"A {principal.scope!r} token cannot create a {scope!r} token",
        )
    if _outlives(principal, expires):
        return _refused(
            principal,
            "new token would outlive the creating token",
            "A token cannot create a token that expires later than itself",
        )
    return Decision(True, "within the creating token")


def may_revoke_token(principal: Principal, owner: str, token_id: str) -> Decision:
    """May `principal` revoke token `token_id` of user `owner`? Needs a `write` (or `admin`)
    token; another user's token is "not found", in the very words a missing one gets, unless a
    platform admin asks."""
    if owner != principal.name and not principal.is_admin:
        return Decision(False, "token of another user", NotFound(f"no token {token_id!r}"))
    if principal.scope not in (WRITE_SCOPE, ADMIN_SCOPE):
        return _refused(
            principal,
            f"token scope {principal.scope} cannot revoke",
            f"Revoking a token needs a 'write' token, not a {principal.scope!r} one",
        )
    return Decision(True, "own token" if owner == principal.name else "platform admin")


# Discussions and pull requests. Reading them is reading the repo; opening one, commenting and
# pushing to a pull request is `write` (developers); merging is `manage_refs` (maintainers),
# decided from the endpoint table. What depends on who wrote a discussion or a comment is
# decided here, by the handler that has read it: its author may rename, close and reopen a
# discussion and edit or hide their own comments; maintainers (`manage_refs`) may rename,
# close, reopen and hide anybody's; nobody edits another's words.


def _is_author(principal: Principal, author: str) -> bool:
    return not principal.is_anonymous and principal.name == author


def may_moderate_discussion(
    principal: Principal,
    author: str,
    what: str,
    repo_id: str,
    snapshot: AccountsSnapshot,
    *,
    require_auth: bool = False,
    repo: RepoVisibility = PUBLIC_REPO,
) -> Decision:
    """May `principal` `what` (rename, close, reopen, hide) something `author` wrote in a
    discussion of `repo_id`? Its author, or a principal allowed `manage_refs` there."""
    if _is_author(principal, author):
        return Decision(True, "author")
    decision = authorize(
        principal, MANAGE_REFS, repo_id, snapshot, require_auth=require_auth, repo=repo
    )
    if decision.allowed:
        return Decision(True, f"{decision.reason}: manage_refs", project=decision.project)
    return _refused(
        principal,
        f"not the author ({author}) and {decision.reason}",
        f"Only its author ({author}) or a maintainer may {what} this",
        decision.project,
    )


def may_edit_comment(principal: Principal, author: str) -> Decision:
    """May `principal` edit a comment `author` wrote? Only its author."""
    if _is_author(principal, author):
        return Decision(True, "author")
    return _refused(
        principal,
        f"comment by {author}",
        f"Only its author ({author}) may edit this comment",
    )


def _reauthorize_minter(
    token_id: str,
    action: Action,
    repo_id: str,
    snapshot: AccountsSnapshot,
    now: float,
    *,
    what: str,
    refusal: HubError,
    require_auth: bool,
    repo: RepoVisibility = PUBLIC_REPO,
) -> Decision:
    """May whoever minted `what` with token `token_id` ("" for an anonymous caller) still
    `action` on `repo_id`, as of now? The token not revoked or expired, its user not disabled
    (its robot not revoked), and the role still there; every refusal answers `refusal`."""
    principal = ANONYMOUS
    if token_id:
        token = snapshot.tokens_by_id.get(token_id)
        if token is None:
            return Decision(False, f"{what} of an unknown token", refusal)
        try:
            principal = principal_for(snapshot, token, now)
        except TokenRefused as refused:
            return Decision(
                False, f"{what} minted by a token now refused: {refused.reason}", refusal
            )
    decision = authorize(principal, action, repo_id, snapshot, require_auth=require_auth, repo=repo)
    if not decision.allowed:
        reason = f"{what}'s minter may no longer {action}: {decision.reason}"
        return Decision(False, reason, refusal, decision.project)
    return Decision(True, f"{what}'s minter may still {action}", project=decision.project)


def authorize_upload_link(
    token_id: str,
    repo_id: str,
    snapshot: AccountsSnapshot,
    now: float,
    *,
    require_auth: bool = False,
) -> Decision:
    """May the upload link minted with token `token_id` still be used on `repo_id`? The link
    carries no credentials of its own, so whoever minted it is authorized again, as of now.
    A refusal is a 403 whatever the reason (the link is the caller's only credential, so "not
    found" would hide nothing)."""
    if not token_id:
        return Decision(False, "upload link without a token", Forbidden(_LINK_REFUSED))
    return _reauthorize_minter(
        token_id,
        WRITE,
        repo_id,
        snapshot,
        now,
        what="upload link",
        refusal=Forbidden(_LINK_REFUSED),
        require_auth=require_auth,
    )


_LINK_REFUSED = "This upload link is no longer valid: ask for a new one"


def authorize_xet(
    token_id: str,
    action: Action,
    repo_id: str,
    snapshot: AccountsSnapshot,
    now: float,
    *,
    require_auth: bool = False,
    repo: RepoVisibility = PUBLIC_REPO,
) -> Decision:
    """May a Xet access token (or signed xorb-range URL) minted for hubproxy token `token_id`
    ("" for an anonymous reader) still `action` on `repo_id` (with `repo`'s settings now: a
    repo made private since stops its readers' tokens)? Like an upload link, it carries
    no credentials of its own: the minter is authorized again, as of now, so a revoked token,
    a disabled user or a lost role stops it. Refusals are 401 `Unauthorized` (hf_xet then asks
    for a new token, which the hub refuses with the real reason)."""
    return _reauthorize_minter(
        token_id,
        action,
        repo_id,
        snapshot,
        now,
        what="Xet token",
        refusal=Unauthorized(_XET_REFUSED),
        require_auth=require_auth,
        repo=repo,
    )


_XET_REFUSED = "This Xet token is no longer valid: ask the hub for a new one"


def authorize_metrics(principal: Principal, *, require_token: bool) -> Decision:
    """May `principal` read `/metrics`? Open by default; with `metrics_require_auth` any
    authenticated principal may (a read-scoped token or a `read` robot is enough, so a scraper
    needs no powerful credential: the metrics count operations, they name no repo)."""
    if require_token and principal.is_anonymous:
        return Decision(False, "anonymous metrics scrape", AuthenticationRequired())
    return Decision(True, "metrics")
