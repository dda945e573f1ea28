"""Protection rules of refs as data, shared by `auth.protections` (which decides) and
`hub` (which stores the rules and moves refs): a leaf, so the two stay apart.

`RefGuard` is how a ref change meets the decision: the hosted-repo writer hands every change
it is about to make, with the repo's rules and whether the ref is an alias, to the guard of
the actor making it; the guard raises the refusal.
"""

import fnmatch
from dataclasses import dataclass
from typing import Final, Literal, Protocol

Change = Literal["create", "move", "delete"]
# How the change is made.
Via = Literal["commit", "squash", "ref", "merge", "promotion", "import"]
CHANGES: Final[tuple[Change, ...]] = ("create", "move", "delete")
DEFAULT_MIN_ROLE: Final = "developer"


@dataclass(frozen=True, slots=True)
class ProtectionRule:
    """A protection of the refs matching `pattern` (shell-style: `v*`); `project` rules
    cover every repo of the project."""

    pattern: str
    min_role: str = DEFAULT_MIN_ROLE
    immutable: bool = False
    via_pr: bool = False
    scope: Literal["repo", "project"] = "repo"

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.pattern)

    def document(self) -> dict[str, object]:
        return {
            "pattern": self.pattern,
            "minRole": self.min_role,
            "immutable": self.immutable,
            "viaPr": self.via_pr,
            "scope": self.scope,
        }


@dataclass(frozen=True, slots=True)
class RefChange:
    """A change about to be made to branch or tag (`kind`) `name`."""

    kind: str
    name: str
    change: Change
    via: Via


class RefGuard(Protocol):
    """The actor changing refs: its `name` (what commits and promotions record) and the
    check of each change (raises the refusal; returns when allowed)."""

    @property
    def name(self) -> str: ...

    def check(self, change: RefChange, rules: list[ProtectionRule], *, alias: bool) -> None: ...
