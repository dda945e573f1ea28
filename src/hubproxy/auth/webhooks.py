"""Who may manage webhooks, watch what, and receive which events.

- Webhooks are a user's own: robots and anonymous callers manage none (refused before the
  handler runs, `users_only`); listing needs any token of the user, creating, changing and
  deleting one needs a `write` (or `admin`) token. A webhook of another user is answered as
  missing (404), so ids do not tell whose they are; platform admins are no exception (a
  webhook's secret is its owner's).
- Watching needs read access to what is watched: a repo the owner may read, or a user's or
  project's namespace the owner may read in (a public project, a project they are a member of,
  any user's personal namespace, whose private repos they still never hear of).
- Receiving is decided again for every delivery, with the accounts as they are then: the
  owner must still exist, be enabled and be allowed to read the repo (with its visibility as
  it was when the event happened). A member removed from a project stops receiving its events,
  including those already queued.
"""

from hubproxy.auth.accounts import AccountsSnapshot
from hubproxy.auth.authz import Decision, RepoVisibility, authorize
from hubproxy.auth.principal import Principal
from hubproxy.auth.roles import READ
from hubproxy.errors import Forbidden, NotFound

WEBHOOK_NOT_FOUND = "Webhook not found"
CHANGE_SCOPES = frozenset({"write", "admin"})


def may_manage_webhooks(principal: Principal, *, change: bool) -> Decision:
    """May `principal` (a user: the dispatcher refused everybody else) list its webhooks, or,
    with `change`, create, change or delete them?"""
    if change and principal.scope not in CHANGE_SCOPES:
        return Decision(
            False,
            f"token scope {principal.scope}",
            Forbidden(f"This token has the {principal.scope!r} scope: webhooks need 'write'"),
        )
    return Decision(True, "own webhooks")


def may_manage_webhook(principal: Principal, owner: str) -> Decision:
    """May `principal` see or change a webhook of `owner`? Only its owner."""
    if owner != principal.name:
        return Decision(False, "webhook of another user", NotFound(WEBHOOK_NOT_FOUND))
    return Decision(True, "own webhook")


def may_watch(
    principal: Principal,
    kind: str,
    name: str,
    snapshot: AccountsSnapshot,
    repo: RepoVisibility | None = None,
) -> Decision:
    """May `principal` watch `name` of `kind` (user, org, model, dataset, space)? `repo`: the
    visibility of the hosted repo `name` names (None: no such hosted repo)."""
    missing = f"Cannot watch {kind} {name!r}: not found"
    if kind in ("user", "org"):
        project = snapshot.project_of(name)
        if project is None or project.personal != (kind == "user"):
            return Decision(False, f"watch: no {kind} {name}", NotFound(missing))
        decision = authorize(principal, READ, f"{project.name}/", snapshot)
    elif repo is None:
        return Decision(False, f"watch: no hosted {kind} {name}", NotFound(missing))
    else:
        decision = authorize(principal, READ, name, snapshot, repo=repo)
    if not decision.allowed:
        return Decision(False, f"watch {kind} {name}: {decision.reason}", NotFound(missing))
    return decision


def webhook_owner(snapshot: AccountsSnapshot, owner: str) -> Principal | None:
    """The principal a webhook of `owner` receives events as (what a `read` token of theirs
    may see), or None when the user is gone or disabled."""
    user = snapshot.users.get(owner)
    if user is None or user.disabled:
        return None
    return Principal("user", user.name, scope="read", roles=snapshot.roles.get(user.name, {}))


def may_receive(
    snapshot: AccountsSnapshot,
    owner: str,
    repo_id: str,
    repo: RepoVisibility,
    *,
    require_auth: bool = False,
) -> Decision:
    """May a webhook of `owner` be told of an event on `repo_id` (see the module docstring)?"""
    principal = webhook_owner(snapshot, owner)
    if principal is None:
        return Decision(False, f"owner {owner} is gone or disabled")
    return authorize(principal, READ, repo_id, snapshot, require_auth=require_auth, repo=repo)
