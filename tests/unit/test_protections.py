"""`auth.protections.decide`: what protection rules and aliases allow, as a table."""

import pytest

from hubproxy.auth.protections import RefActor, decide
from hubproxy.errors import RefProtected
from hubproxy.ref_rules import Change, ProtectionRule, RefChange, Via

RELEASES = ProtectionRule("v*", "maintainer", immutable=True)
PRODUCTION = ProtectionRule("production", "developer", via_pr=True, scope="project")
RULES = [RELEASES, PRODUCTION]


@pytest.mark.parametrize(
    ("role", "kind", "name", "change", "via", "allowed"),
    [
        ("maintainer", "tag", "v1", "create", "ref", True),
        ("developer", "tag", "v1", "create", "ref", False),  # below the rule's role
        ("admin", "tag", "v1", "delete", "ref", False),  # immutable, whoever asks
        ("admin", "tag", "v1", "move", "import", False),
        ("developer", "tag", "nightly", "delete", "ref", True),  # no rule matches
        ("developer", "branch", "production", "move", "commit", False),  # only by merge
        ("admin", "branch", "production", "move", "squash", False),
        ("developer", "branch", "production", "move", "merge", False),  # a maintainer merges
        ("maintainer", "branch", "production", "move", "merge", True),
        ("developer", "branch", "production", "create", "ref", True),
        (None, "branch", "feature", "move", "commit", True),
    ],
)
def test_rules(
    role: str | None, kind: str, name: str, change: Change, via: Via, allowed: bool
) -> None:
    decision = decide(RefActor("someone", role), RefChange(kind, name, change, via), RULES)
    assert decision.allowed is allowed, decision.reason
    if not allowed:
        assert isinstance(decision.error, RefProtected)
        assert decision.error.status == 403


@pytest.mark.parametrize(
    ("change", "via", "allowed"),
    [
        ("move", "promotion", True),
        ("create", "promotion", True),
        ("move", "commit", False),
        ("move", "merge", False),
        ("move", "squash", False),
        ("delete", "ref", False),  # removed as an alias, not as a branch
        ("delete", "promotion", True),
    ],
)
def test_aliases_move_only_by_promotion(change: Change, via: Via, allowed: bool) -> None:
    actor = RefActor("maintainer", "maintainer")
    decision = decide(actor, RefChange("branch", "champion", change, via), [], alias=True)
    assert decision.allowed is allowed


def test_an_alias_rule_still_applies_to_promotions() -> None:
    rule = ProtectionRule("champion", "admin")
    change = RefChange("branch", "champion", "move", "promotion")
    assert not decide(RefActor("m", "maintainer"), change, [rule], alias=True).allowed
    assert decide(RefActor("a", "admin"), change, [rule], alias=True).allowed
