"""Who is asking: a user, a robot, or anonymous; with what their token allows."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from hubproxy.auth.roles import Action


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity a request acts as. Carries the token id (for audit), never the secret."""

    kind: str  # "anonymous", "user" or "robot"
    name: str
    token_id: str | None = None
    token_name: str = ""
    scope: str = "read"
    # When the token stops working (the earlier of token and robot expiry); None: never.
    # What it delegates (new tokens, robots) may not outlive it.
    token_expires: float | None = None
    # Platform-admin powers: an admin user presenting an admin-scoped token.
    is_admin: bool = False
    # Users: project -> role name.
    roles: Mapping[str, str] = field(default_factory=dict)
    # Robots: the one project they act in, and what they may do there.
    robot_project: str | None = None
    robot_permissions: frozenset[Action] = frozenset()

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Principal("anonymous", "anonymous")
