"""`HubRegistry`: aliases, promotions and protection rules of hosted repos, in the metadata
database (schema step 13).

An alias is a branch (so any client resolves `revision="champion"` with no new read path)
plus a row of `hub_aliases` saying it moves only by promotion; each promotion is a row of
`hub_promotions` (who, when, from which commit to which). Protection rules are rows of
`hub_protections` (one repo) and `project_protections` (every repo of a project). What the
rules allow is decided in `auth.protections`; moving refs is `hub.service`'s.
"""

import sqlite3
import time
import uuid
from dataclasses import dataclass

from hubproxy.db import Database
from hubproxy.naming import RepoRef
from hubproxy.ref_rules import ProtectionRule


@dataclass(frozen=True, slots=True)
class Promotion:
    """One move of an alias: `from_commit` '' when the promotion created it."""

    alias: str
    from_commit: str
    to_commit: str
    target: str
    actor: str
    message: str
    created: float

    def document(self) -> dict[str, object]:
        return {
            "alias": self.alias,
            "from": self.from_commit or None,
            "to": self.to_commit,
            "target": self.target,
            "by": self.actor,
            "message": self.message,
            "at": self.created,
        }


def _promotion_of(row: sqlite3.Row) -> Promotion:
    return Promotion(
        row["alias"], row["from_commit"], row["to_commit"], row["target"],
        row["actor"], row["message"], row["created"],
    )  # fmt: skip


def _key(ref: RepoRef) -> tuple[str, str]:
    return (ref.repo_type, ref.repo_id)


def project_of(ref: RepoRef) -> str:
    return ref.repo_id.split("/")[0]


def _rule_of(row: sqlite3.Row, scope: str) -> ProtectionRule:
    return ProtectionRule(
        row["pattern"],
        row["min_role"],
        bool(row["immutable"]),
        bool(row["via_pr"]),
        "project" if scope == "project" else "repo",
    )


def load_rules(connection: sqlite3.Connection, ref: RepoRef) -> list[ProtectionRule]:
    """The repo's own rules, then its project's."""
    own = connection.execute(
        "SELECT * FROM hub_protections WHERE repo_type = ? AND repo_id = ? ORDER BY pattern",
        _key(ref),
    ).fetchall()
    project = connection.execute(
        "SELECT * FROM project_protections WHERE project = ? ORDER BY pattern",
        (project_of(ref),),
    ).fetchall()
    return [_rule_of(row, "repo") for row in own] + [_rule_of(row, "project") for row in project]


def load_aliases(connection: sqlite3.Connection, ref: RepoRef) -> set[str]:
    rows = connection.execute(
        "SELECT name FROM hub_aliases WHERE repo_type = ? AND repo_id = ?", _key(ref)
    )
    return {row["name"] for row in rows}


def record_promotion(
    connection: sqlite3.Connection, ref: RepoRef, promotion: Promotion, *, new_alias: bool
) -> None:
    """In the transaction that moves the branch: the alias (when new) and the promotion."""
    if new_alias:
        connection.execute(
            "INSERT INTO hub_aliases VALUES (?, ?, ?, ?, ?)",
            (*_key(ref), promotion.alias, promotion.created, promotion.actor),
        )
    connection.execute(
        "INSERT INTO hub_promotions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            uuid.uuid4().hex, *_key(ref), promotion.alias, promotion.from_commit,
            promotion.to_commit, promotion.target, promotion.actor, promotion.message,
            promotion.created,
        ),
    )  # fmt: skip


def forget_alias(connection: sqlite3.Connection, ref: RepoRef, name: str) -> None:
    connection.execute(
        "DELETE FROM hub_aliases WHERE repo_type = ? AND repo_id = ? AND name = ?",
        (*_key(ref), name),
    )


class HubRegistry:
    """Typed access to the registry tables."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def rules(self, ref: RepoRef) -> list[ProtectionRule]:
        return await self.database.run(lambda connection: load_rules(connection, ref))

    async def aliases(self, ref: RepoRef) -> set[str]:
        return await self.database.run(lambda connection: load_aliases(connection, ref))

    async def promotions(self, ref: RepoRef, alias: str | None = None) -> list[Promotion]:
        """The promotions of the repo (of one alias), oldest first."""

        only = () if alias is None else (alias,)

        def load(connection: sqlite3.Connection) -> list[Promotion]:
            condition = " AND alias = ?" if only else ""
            parameters = (*_key(ref), *only)
            rows = connection.execute(
                "SELECT * FROM hub_promotions WHERE repo_type = ? AND repo_id = ?"  # noqa: S608
                f"{condition} ORDER BY created, rowid",
                parameters,
            )
            return [_promotion_of(row) for row in rows]

        return await self.database.run(load)

    async def repo_rules(self, ref: RepoRef) -> list[ProtectionRule]:
        return [rule for rule in await self.rules(ref) if rule.scope == "repo"]

    async def project_rules(self, project: str) -> list[ProtectionRule]:
        return await self.database.run(lambda connection: project_rules(connection, project))

    async def protect(
        self, rule: ProtectionRule, author: str, *, repo: RepoRef | None, project: str | None
    ) -> None:
        """Add or replace the rule for `rule.pattern` of a repo, or of a project."""
        await self.database.run(
            lambda connection: store_rule(connection, rule, author, repo=repo, project=project)
        )

    async def unprotect(self, pattern: str, *, repo: RepoRef | None, project: str | None) -> bool:
        """Remove the rule for `pattern`; whether there was one."""
        return await self.database.run(
            lambda connection: delete_rule(connection, pattern, repo=repo, project=project)
        )


def store_rule(
    connection: sqlite3.Connection,
    rule: ProtectionRule,
    author: str,
    *,
    repo: RepoRef | None,
    project: str | None,
) -> None:
    """Add or replace the rule for `rule.pattern` of a repo (which must exist), or of a
    project; shared by the API and `hubproxy admin protect` on the data dir. (An upsert both
    SQLite and PostgreSQL speak.)"""
    values = (
        rule.pattern, rule.min_role, int(rule.immutable), int(rule.via_pr), time.time(), author,
    )  # fmt: skip
    if repo is not None:
        connection.execute(
            "INSERT INTO hub_protections VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (repo_type, repo_id, pattern) DO UPDATE SET"
            " min_role = excluded.min_role, immutable = excluded.immutable,"
            " via_pr = excluded.via_pr, created = excluded.created,"
            " created_by = excluded.created_by",
            (*_key(repo), *values),
        )
    else:
        connection.execute(
            "INSERT INTO project_protections VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (project, pattern) DO UPDATE SET"
            " min_role = excluded.min_role, immutable = excluded.immutable,"
            " via_pr = excluded.via_pr, created = excluded.created,"
            " created_by = excluded.created_by",
            (project, *values),
        )


def delete_rule(
    connection: sqlite3.Connection, pattern: str, *, repo: RepoRef | None, project: str | None
) -> bool:
    """Remove the rule for `pattern` of a repo or a project; whether there was one."""
    if repo is not None:
        cursor = connection.execute(
            "DELETE FROM hub_protections WHERE repo_type = ? AND repo_id = ? AND pattern = ?",
            (*_key(repo), pattern),
        )
    else:
        cursor = connection.execute(
            "DELETE FROM project_protections WHERE project = ? AND pattern = ?", (project, pattern)
        )
    return bool(cursor.rowcount)


def project_rules(connection: sqlite3.Connection, project: str) -> list[ProtectionRule]:
    rows = connection.execute(
        "SELECT * FROM project_protections WHERE project = ? ORDER BY pattern", (project,)
    )
    return [_rule_of(row, "project") for row in rows]
