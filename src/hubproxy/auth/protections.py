"""Protection of refs: may this actor make this change to this branch or tag?

One decision for every path that moves a ref of a hosted repo (commits, super-squash,
creating and deleting branches and tags, merging a pull request, importing a bundle,
promoting an alias): `hub.service.HostedRepoWriter` hands each change it is about to make to
the actor's `RefActor.check` (the writer's `ref_rules.RefGuard`), which raises the refusal
(`authz.Refused`: 403 `RefProtected`, audited by the dispatcher as a denial).

Rules are data (`ProtectionRule`), set per repo or per project; a rule applies to every ref
whose name matches its `pattern` (shell-style, `v*`), branches and tags alike. Every matching
rule must allow the change (deny wins):

- `min_role`: the actor's role in the project must be at least this one (`roles.ROLES` is in
  order of privilege);
- `immutable`: the ref may be created, then never moved or deleted;
- `via_pr`: the ref changes only by merging a pull request, and merging needs a maintainer
  (at least): direct commits, squashes, promotions and imports are refused.

Aliases are branches with one rule of their own: they move only by promotion (and are
deleted only as aliases), whatever else applies.
"""

from dataclasses import dataclass
from typing import Final

from hubproxy.auth.accounts import Project
from hubproxy.auth.authz import Decision, enforce, role_in
from hubproxy.auth.principal import Principal
from hubproxy.auth.roles import ROLE_ACTIONS, ROLES
from hubproxy.errors import RefProtected
from hubproxy.ref_rules import ProtectionRule, RefChange

# The least role that may merge into a `via_pr` ref: the approval of a maintainer.
MERGE_ROLE: Final = "maintainer"


@dataclass(frozen=True, slots=True)
class RefActor:
    """Who changes refs (a `ref_rules.RefGuard`): a name (what commits and promotions
    record) and the role they act with (None: no role in the project)."""

    name: str
    role: str | None

    def check(self, change: RefChange, rules: list[ProtectionRule], *, alias: bool) -> None:
        """Raises `authz.Refused` (audited as a denial) unless `decide` allows the change."""
        enforce(decide(self, change, rules, alias=alias))


# What the operator's own tools (bundle imports on the data dir) act as.
OPERATOR: Final = RefActor("import", "admin")


def _rank(role: str | None) -> int:
    return ROLES.index(role) if role in ROLES else -1


def actor_for(principal: Principal, project: Project | None) -> RefActor:
    """The role `principal` acts with in `project`: a platform admin's is `admin`, a user's
    their project role, a robot's the highest role whose actions it holds all of."""
    if principal.is_admin:
        return RefActor(principal.name, "admin")
    if project is None:
        return RefActor(principal.name, None)
    if principal.kind == "robot":
        held = principal.robot_permissions
        fitting = [role for role in ROLES if ROLE_ACTIONS[role] <= held]
        return RefActor(principal.name, fitting[-1] if fitting else None)
    return RefActor(principal.name, role_in(principal, project))


def invalid_rule(pattern: str, min_role: str) -> str | None:
    """Why a rule cannot be stored, or None."""
    if not pattern or len(pattern) > 200 or any(ord(c) < 0x21 or c == "\x7f" for c in pattern):
        return "'pattern' must be a ref name or a pattern such as 'v*' (no spaces)"
    if min_role not in ROLES:
        return f"'minRole' must be one of {', '.join(ROLES)}"
    return None


def decide(
    actor: RefActor, change: RefChange, rules: list[ProtectionRule], *, alias: bool = False
) -> Decision:
    """May `actor` make `change` to a ref, given the rules of its repo and project and
    whether it is an alias?"""
    name, via = change.name, change.via
    what = f"{change.kind} {name!r}"
    if alias and via != "promotion" and change.change != "create":
        if change.change == "delete":
            message = f"{name!r} is an alias: remove it as an alias, not as a branch"
        else:
            message = f"{name!r} is an alias: it moves only by promotion, not by {via}"
        return Decision(False, f"alias {name} {change.change} by {via}", RefProtected(message))
    for rule in rules:
        if not rule.matches(name):
            continue
        where = f"{rule.scope} rule {rule.pattern!r}"
        if rule.immutable and change.change != "create":
            verb = "deleted" if change.change == "delete" else "moved"
            return Decision(
                False,
                f"{where}: immutable {what} {verb}",
                RefProtected(f"{what} is immutable ({where}): it can never be {verb}"),
            )
        if rule.via_pr and change.change == "move" and via != "merge":
            return Decision(
                False,
                f"{where}: {what} changes only by pull request, not by {via}",
                RefProtected(
                    f"{what} changes only by merging a pull request ({where}): open one"
                    " (create_pr=True) and have a maintainer merge it"
                ),
            )
        needed = rule.min_role
        if rule.via_pr and via == "merge" and _rank(needed) < _rank(MERGE_ROLE):
            needed = MERGE_ROLE
        if _rank(actor.role) < _rank(needed):
            role = actor.role or "none"
            return Decision(
                False,
                f"{where}: role {role} below {needed}",
                RefProtected(
                    f"{what} is protected ({where}): it takes the {needed} role or above"
                    f" to {change.change} it, and yours is {role}"
                ),
            )
    return Decision(True, "protection rules allow it")
