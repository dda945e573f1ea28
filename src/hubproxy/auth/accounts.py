"""Users, projects, members, robots, tokens and the upstream policy, in the metadata database.

Users and projects share one name space, compared case-insensitively: every user has a
personal namespace, their name, which the snapshot represents as an implicit hosted project
(`Project.personal`) administered by that user alone (no members, no robots), so that every
decision in `authz` treats it as it treats a project.

Every function takes an open `sqlite3.Connection` inside a transaction (`Database.run` or
`run_sync`), so the server and the admin CLI (which works directly on the data dir) share one
implementation. Every change bumps `accounts_serial` in `meta`: a running server polls it and
reloads its in-memory `AccountsSnapshot`, which is what requests are checked against; on
PostgreSQL the change also sends a notice (`db/notifications.py`) on which every replica
reloads at once.
"""

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from hubproxy.auth.roles import ACTIONS, PROJECT_KINDS, ROLES, SCOPES, UPSTREAM_MODES, Action
from hubproxy.auth.tokens import new_secret, new_token_id, secret_hash
from hubproxy.db.notifications import ACCOUNTS_CHANNEL, notify
from hubproxy.errors import BadRequest, Conflict, HubError, NotFound
from hubproxy.naming import canonical_name, namespace

SERIAL_KEY = "accounts_serial"
FULLNAME_MAX_LENGTH = 256


class AccountError(Exception):
    """An account operation that cannot be done. `hub_error` is what an API client is told
    (`as_hub_error`); `exit_code` what the admin CLI exits with, on the data dir or through
    the admin API (`exit_code_for_status`)."""

    exit_code: ClassVar[int] = 1
    hub_error: ClassVar[type[HubError]] = BadRequest

    def as_hub_error(self) -> HubError:
        return self.hub_error(str(self))


class AccountNotFound(AccountError):
    """No such user, project, member, robot or token: 404, exit 3."""

    exit_code = 3
    hub_error = NotFound


class AccountConflict(AccountError):
    """It exists already, or something still depends on it: 409, exit 4."""

    exit_code = 4
    hub_error = Conflict


class InvalidAccountInput(AccountError):
    """A name, role, scope or duration that is not valid: 400, exit 2."""

    exit_code = 2
    hub_error = BadRequest


def exit_code_for_status(status: int) -> int:
    """The exit code of the account error the admin API answered with `status` (1 for
    anything else: a refusal, a server error)."""
    for error in (InvalidAccountInput, AccountNotFound, AccountConflict):
        if error.hub_error.status == status:
            return error.exit_code
    return AccountError.exit_code


@dataclass(frozen=True, slots=True)
class User:
    name: str
    fullname: str
    email: str
    is_admin: bool
    disabled: bool
    created: float


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    kind: str
    public: bool
    upstream_namespace: str | None
    created: float
    # The display name (whoami's `orgs[].fullname`); the name when empty.
    fullname: str = ""
    # A user's personal namespace: `name` is the user's, who administers it; not stored as a
    # project, never listed as one, without members or robots.
    personal: bool = False

    @property
    def display_name(self) -> str:
        return self.fullname or self.name

    @property
    def upstream(self) -> str:
        """The upstream namespace a proxy project mirrors (its own name by default)."""
        return self.upstream_namespace or self.name


@dataclass(frozen=True, slots=True)
class Robot:
    name: str
    project: str
    permissions: frozenset[Action]
    expires: float | None
    revoked: bool
    created: float
    created_by: str


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    owner_kind: str
    owner: str
    name: str
    scope: str
    created: float
    expires: float | None
    last_used: float | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class Policy:
    """What may be proxied from namespaces that are not projects."""

    mode: str = "allow-all"
    patterns: tuple[str, ...] = ()
    require_auth: bool = False


@dataclass(frozen=True, slots=True)
class AccountsSnapshot:
    """Everything authentication and authorization read, loaded at once."""

    serial: int = 0
    users: dict[str, User] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    # user -> project -> role
    roles: dict[str, dict[str, str]] = field(default_factory=dict)
    robots: dict[str, Robot] = field(default_factory=dict)
    tokens_by_hash: dict[str, Token] = field(default_factory=dict)
    # The same tokens by id: what a signed upload link names its minting token by.
    tokens_by_id: dict[str, Token] = field(default_factory=dict)
    policy: Policy = Policy()
    # Upstream namespace -> the proxy project that mirrors it under another name.
    mirrored: dict[str, Project] = field(default_factory=dict)
    # Case-folded namespace -> the project governing it (its name or its upstream namespace).
    _governing: dict[str, Project] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Personal namespaces first: a project or mirrored namespace of the same name (only in
        # data made before names were shared) wins, and that user has no namespace of their own.
        governing = {
            canonical_name(name): personal_project(user) for name, user in self.users.items()
        }
        governing.update(
            {canonical_name(upstream): project for upstream, project in self.mirrored.items()}
        )
        # A project's own name wins over a mirrored namespace; an exact (lower-case) name wins
        # over a case variant, where data made before names were compared case-insensitively
        # has both.
        for name, project in self.projects.items():
            governing[canonical_name(name)] = project
        for name, project in self.projects.items():
            if name == canonical_name(name):
                governing[name] = project
        object.__setattr__(self, "_governing", governing)

    def project_of(self, namespace: str) -> Project | None:
        """The project governing `namespace` in any letter case: its own, or the proxy project
        mirroring it (so that `meta-llama/x` and `Meta-Llama/x` are as private as `llama/x`
        when project `llama` mirrors it), or a user's personal namespace."""
        return self._governing.get(canonical_name(namespace))

    def personal_namespace(self, user: str) -> Project | None:
        """The personal namespace of `user`, if it has one (robots have none)."""
        project = self._governing.get(canonical_name(user))
        if project is not None and project.personal and project.name == user:
            return project
        return None


def personal_project(user: User) -> Project:
    """A user's personal namespace as a project: hosted, public (each repo is public or
    private, as on huggingface.co), administered by the user."""
    return Project(
        user.name,
        "hosted",
        public=True,
        upstream_namespace=None,
        created=user.created,
        fullname=user.fullname,
        personal=True,
    )


def _claimed_names(connection: sqlite3.Connection) -> dict[str, str]:
    """Every taken namespace, case-folded -> what takes it: users, projects and the upstream
    namespaces proxy projects mirror share one name space."""
    claimed: dict[str, str] = {}
    for row in connection.execute("SELECT name FROM users"):
        claimed.setdefault(canonical_name(row["name"]), f"user {row['name']!r}")
    for row in connection.execute("SELECT name, kind, upstream_namespace FROM projects"):
        claimed.setdefault(canonical_name(row["name"]), f"project {row['name']!r}")
        if row["kind"] == "proxy" and row["upstream_namespace"]:
            claimed.setdefault(
                canonical_name(row["upstream_namespace"]),
                f"upstream namespace {row['upstream_namespace']!r} (mirrored by {row['name']!r})",
            )
    return claimed


def _name(value: str, what: str) -> str:
    try:
        return namespace(value)
    except BadRequest as error:
        raise InvalidAccountInput(f"{what}: {error.message}") from None


def _bump_serial(connection: sqlite3.Connection) -> None:
    """Mark a change: the serial servers poll, and on PostgreSQL a notice to every replica
    (sent when the transaction commits) that reloads its snapshot at once."""
    connection.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') "
        "ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
        (SERIAL_KEY,),
    )
    notify(connection, ACCOUNTS_CHANNEL)


def read_serial(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT value FROM meta WHERE key = ?", (SERIAL_KEY,)).fetchone()
    return int(row[0]) if row else 0


# Users


def _user(row: sqlite3.Row) -> User:
    return User(
        row["name"],
        row["fullname"],
        row["email"],
        bool(row["is_admin"]),
        bool(row["disabled"]),
        row["created"],
    )


def create_user(
    connection: sqlite3.Connection,
    name: str,
    *,
    fullname: str = "",
    email: str = "",
    is_admin: bool = False,
) -> User:
    name = _name(name, "user name")
    taken = _claimed_names(connection).get(canonical_name(name))
    if taken is not None and taken.startswith("user "):
        raise AccountConflict(
            f"{taken} already exists"
            + ("" if taken == f"user {name!r}" else " (names are compared case-insensitively)")
        )
    if taken is not None:
        # A user's name is their namespace: it must not be a project's (or another user's).
        raise AccountConflict(
            f"{name!r} is taken by {taken}: users and projects share one name space"
            " (compared case-insensitively)"
        )
    try:
        connection.execute(
            "INSERT INTO users (name, fullname, email, is_admin, created) VALUES (?, ?, ?, ?, ?)",
            (name, fullname, email, int(is_admin), time.time()),
        )
    except sqlite3.IntegrityError:
        raise AccountConflict(f"user {name!r} already exists") from None
    _bump_serial(connection)
    return get_user(connection, name)


def get_user(connection: sqlite3.Connection, name: str) -> User:
    row = connection.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise AccountNotFound(f"no user {name!r}")
    return _user(row)


def list_users(connection: sqlite3.Connection) -> list[User]:
    return [_user(row) for row in connection.execute("SELECT * FROM users ORDER BY name")]


def set_user_disabled(connection: sqlite3.Connection, name: str, disabled: bool) -> User:
    """Disabling a user refuses all their tokens at once (they stay listed and audited)."""
    get_user(connection, name)
    connection.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
    _bump_serial(connection)
    return get_user(connection, name)


# Tokens


def _token(row: sqlite3.Row) -> Token:
    return Token(
        row["id"],
        row["owner_kind"],
        row["owner"],
        row["name"],
        row["scope"],
        row["created"],
        row["expires"],
        row["last_used"],
        bool(row["revoked"]),
    )


def _insert_token(
    connection: sqlite3.Connection,
    owner_kind: str,
    owner: str,
    name: str,
    scope: str,
    expires: float | None,
) -> tuple[Token, str]:
    secret = new_secret()
    token_id = new_token_id()
    connection.execute(
        "INSERT INTO tokens (id, secret_hash, owner_kind, owner, name, scope, created, expires) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (token_id, secret_hash(secret), owner_kind, owner, name, scope, time.time(), expires),
    )
    _bump_serial(connection)
    return get_token(connection, token_id), secret


def create_token(
    connection: sqlite3.Connection,
    user: str,
    *,
    name: str = "",
    scope: str = "read",
    expires: float | None = None,
) -> tuple[Token, str]:
    """A new token for `user`: the record and the secret, which is never retrievable again."""
    if scope not in SCOPES:
        raise InvalidAccountInput(f"unknown scope {scope!r} (one of {', '.join(SCOPES)})")
    get_user(connection, user)
    return _insert_token(connection, "user", user, name, scope, expires)


def list_tokens(connection: sqlite3.Connection, owner: str | None = None) -> list[Token]:
    if owner is None:
        rows = connection.execute("SELECT * FROM tokens ORDER BY created")
    else:
        rows = connection.execute("SELECT * FROM tokens WHERE owner = ? ORDER BY created", (owner,))
    return [_token(row) for row in rows]


def get_token(connection: sqlite3.Connection, token_id: str) -> Token:
    row = connection.execute("SELECT * FROM tokens WHERE id = ?", (token_id,)).fetchone()
    if row is None:
        raise AccountNotFound(f"no token {token_id!r}")
    return _token(row)


def revoke_token(connection: sqlite3.Connection, token_id: str) -> Token:
    get_token(connection, token_id)
    connection.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))
    _bump_serial(connection)
    return get_token(connection, token_id)


def record_token_use(connection: sqlite3.Connection, last_used: dict[str, float]) -> None:
    """Store `last_used` times batched by the server (no serial bump: not an account change)."""
    connection.executemany(
        # A condition, not two-argument MAX(): SQLite's scalar MAX is GREATEST in PostgreSQL.
        "UPDATE tokens SET last_used = ? WHERE id = ? AND COALESCE(last_used, 0) < ?",
        [(when, token_id, when) for token_id, when in last_used.items()],
    )


# Projects and members


def _project(row: sqlite3.Row) -> Project:
    return Project(
        row["name"],
        row["kind"],
        bool(row["public"]),
        row["upstream_namespace"],
        row["created"],
        fullname=row["fullname"],
    )


def create_project(
    connection: sqlite3.Connection,
    name: str,
    *,
    kind: str = "hosted",
    public: bool = False,
    upstream_namespace: str | None = None,
    fullname: str = "",
) -> Project:
    name = _name(name, "project name")
    if len(fullname) > FULLNAME_MAX_LENGTH or any(ord(c) < 0x20 for c in fullname):
        raise InvalidAccountInput(
            f"project display name: at most {FULLNAME_MAX_LENGTH} printable characters"
        )
    if kind not in PROJECT_KINDS:
        raise InvalidAccountInput(f"unknown project kind {kind!r} (hosted or proxy)")
    if upstream_namespace is not None:
        if kind != "proxy":
            raise InvalidAccountInput("--upstream-namespace is only for proxy projects")
        upstream_namespace = _name(upstream_namespace, "upstream namespace")
    _check_namespaces_free(connection, name, kind, upstream_namespace)
    try:
        connection.execute(
            "INSERT INTO projects (name, kind, public, upstream_namespace, created, fullname) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, kind, int(public), upstream_namespace, time.time(), fullname),
        )
    except sqlite3.IntegrityError:
        raise AccountConflict(f"project {name!r} already exists") from None
    _bump_serial(connection)
    return get_project(connection, name)


def _check_namespaces_free(
    connection: sqlite3.Connection, name: str, kind: str, upstream_namespace: str | None
) -> None:
    """One project per namespace, compared case-insensitively: a new project's name must not
    be another project's name or the upstream namespace one mirrors, and a proxy project's
    upstream namespace must not be either. Otherwise a second project could govern the same
    upstream repos (a public one beside a private one makes a gated model public)."""
    named: dict[str, str] = {}
    mirrored: dict[str, str] = {}
    for row in connection.execute("SELECT name, kind, upstream_namespace FROM projects"):
        named.setdefault(canonical_name(row["name"]), row["name"])
        if row["kind"] == "proxy":
            upstream = canonical_name(row["upstream_namespace"] or row["name"])
            mirrored.setdefault(upstream, row["name"])
    wanted = [name]
    if kind == "proxy" and upstream_namespace is not None:
        wanted.append(upstream_namespace)
    users = {
        canonical_name(row["name"]): row["name"]
        for row in connection.execute("SELECT name FROM users")
    }
    for claim in wanted:
        if canonical_name(claim) in users:
            # Every user's name is their personal namespace.
            raise AccountConflict(
                f"{claim!r} is the name of user {users[canonical_name(claim)]!r}: users and"
                " projects share one name space (compared case-insensitively)"
            )
        folded = canonical_name(claim)
        if folded in named:
            raise AccountConflict(
                f"project {named[folded]!r} already exists"
                + ("" if named[folded] == claim else " (names are compared case-insensitively)")
            )
        if folded in mirrored:
            raise AccountConflict(
                f"upstream namespace {claim!r} is already mirrored by {mirrored[folded]!r}"
            )


def get_project(connection: sqlite3.Connection, name: str) -> Project:
    row = connection.execute("SELECT * FROM projects WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise AccountNotFound(f"no project {name!r}")
    return _project(row)


def list_projects(connection: sqlite3.Connection) -> list[Project]:
    return [_project(row) for row in connection.execute("SELECT * FROM projects ORDER BY name")]


def delete_project(connection: sqlite3.Connection, name: str) -> Project:
    """Delete a project with its members and robots (and the robots' tokens)."""
    project = get_project(connection, name)
    connection.execute(
        "UPDATE tokens SET revoked = 1 WHERE owner_kind = 'robot' "
        "AND owner IN (SELECT name FROM robots WHERE project = ?)",
        (name,),
    )
    connection.execute("DELETE FROM projects WHERE name = ?", (name,))
    _bump_serial(connection)
    return project


def add_member(connection: sqlite3.Connection, project: str, user: str, role: str) -> None:
    """Give `user` `role` in `project` (replacing any role they had there)."""
    if role not in ROLES:
        raise InvalidAccountInput(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    get_project(connection, project)
    get_user(connection, user)
    connection.execute(
        # "user" quoted: a reserved word in PostgreSQL (current_user), a column in both.
        'INSERT INTO members (project, "user", role) VALUES (?, ?, ?) '
        'ON CONFLICT (project, "user") DO UPDATE SET role = excluded.role',
        (project, user, role),
    )
    _bump_serial(connection)


def remove_member(connection: sqlite3.Connection, project: str, user: str) -> None:
    cursor = connection.execute(
        'DELETE FROM members WHERE project = ? AND "user" = ?', (project, user)
    )
    if cursor.rowcount == 0:
        raise AccountNotFound(f"{user!r} is not a member of {project!r}")
    _bump_serial(connection)


def list_members(connection: sqlite3.Connection, project: str) -> list[tuple[str, str]]:
    """(user, role) pairs of `project`."""
    get_project(connection, project)
    rows = connection.execute(
        'SELECT "user", role FROM members WHERE project = ? ORDER BY "user"', (project,)
    )
    return [(row["user"], row["role"]) for row in rows]


# Robots


def _robot(row: sqlite3.Row) -> Robot:
    permissions = frozenset(action for action in ACTIONS if action in row["permissions"].split())
    return Robot(
        row["name"],
        row["project"],
        permissions,
        row["expires"],
        bool(row["revoked"]),
        row["created"],
        row["created_by"],
    )


def create_robot(
    connection: sqlite3.Connection,
    project: str,
    name: str,
    permissions: Iterable[str],
    *,
    expires: float | None = None,
    created_by: str = "",
) -> tuple[Robot, Token, str]:
    """A robot account of `project` with explicit permissions, and its token (shown once)."""
    name = _name(name, "robot name")
    wanted = list(dict.fromkeys(permissions))
    unknown = [action for action in wanted if action not in ACTIONS]
    if unknown or not wanted:
        raise InvalidAccountInput(
            f"robot permissions must be among {', '.join(ACTIONS)} (got {', '.join(wanted)})"
        )
    get_project(connection, project)
    if connection.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
        raise AccountConflict(f"{name!r} is already a user name")
    try:
        connection.execute(
            "INSERT INTO robots (name, project, permissions, expires, created, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, project, " ".join(wanted), expires, time.time(), created_by),
        )
    except sqlite3.IntegrityError:
        raise AccountConflict(f"robot {name!r} already exists") from None
    token, secret = _insert_token(connection, "robot", name, f"robot {name}", "write", expires)
    return get_robot(connection, name), token, secret


def get_robot(connection: sqlite3.Connection, name: str) -> Robot:
    row = connection.execute("SELECT * FROM robots WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise AccountNotFound(f"no robot {name!r}")
    return _robot(row)


def list_robots(connection: sqlite3.Connection, project: str | None = None) -> list[Robot]:
    if project is None:
        rows = connection.execute("SELECT * FROM robots ORDER BY name")
    else:
        rows = connection.execute(
            "SELECT * FROM robots WHERE project = ? ORDER BY name", (project,)
        )
    return [_robot(row) for row in rows]


def revoke_robot(connection: sqlite3.Connection, name: str) -> Robot:
    cursor = connection.execute("UPDATE robots SET revoked = 1 WHERE name = ?", (name,))
    if cursor.rowcount == 0:
        raise AccountNotFound(f"no robot {name!r}")
    connection.execute(
        "UPDATE tokens SET revoked = 1 WHERE owner_kind = 'robot' AND owner = ?", (name,)
    )
    _bump_serial(connection)
    return get_robot(connection, name)


# Upstream policy


def get_policy(connection: sqlite3.Connection) -> Policy:
    values = {row["key"]: row["value"] for row in connection.execute("SELECT * FROM policy")}
    return Policy(
        values.get("mode", "allow-all"),
        tuple(json.loads(values.get("patterns", "[]"))),
        values.get("require_auth", "0") == "1",
    )


def set_policy(
    connection: sqlite3.Connection,
    *,
    mode: str | None = None,
    patterns: Iterable[str] | None = None,
    require_auth: bool | None = None,
) -> Policy:
    """Change the given parts of the policy; the others keep their values."""
    values: dict[str, str] = {}
    if mode is not None:
        if mode not in UPSTREAM_MODES:
            raise InvalidAccountInput(f"unknown mode {mode!r} (one of {', '.join(UPSTREAM_MODES)})")
        values["mode"] = mode
    if patterns is not None:
        values["patterns"] = json.dumps(sorted(set(patterns)))
    if require_auth is not None:
        values["require_auth"] = "1" if require_auth else "0"
    connection.executemany(
        "INSERT INTO policy (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )
    _bump_serial(connection)
    return get_policy(connection)


def load_snapshot(connection: sqlite3.Connection) -> AccountsSnapshot:
    roles: dict[str, dict[str, str]] = {}
    for row in connection.execute('SELECT project, "user", role FROM members'):
        roles.setdefault(row["user"], {})[row["project"]] = row["role"]
    projects = list_projects(connection)
    # Revoked tokens too: they are refused with their reason, without a lookup.
    hashed = {row["secret_hash"]: _token(row) for row in connection.execute("SELECT * FROM tokens")}
    return AccountsSnapshot(
        serial=read_serial(connection),
        users={user.name: user for user in list_users(connection)},
        projects={project.name: project for project in projects},
        mirrored={
            project.upstream: project
            for project in projects
            if project.kind == "proxy" and project.upstream != project.name
        },
        roles=roles,
        robots={robot.name: robot for robot in list_robots(connection)},
        tokens_by_hash=hashed,
        tokens_by_id={token.id: token for token in hashed.values()},
        policy=get_policy(connection),
    )
