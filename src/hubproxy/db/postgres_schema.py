"""The schema steps on PostgreSQL, numbered as `db/schema.py` STEPS, and their runner.

Step N here makes the same tables as step N there, so a schema version means the same on both
engines (`migrate-to` and the refusal of a newer database rely on it). A step written as SQL text
is portable: it runs here through `postgres_dialect`, which only maps SQLite's storage classes to
PostgreSQL types. A step written as a sqlite-utils function has a twin here (`TWINS`), in SQL.

PostgreSQL has no `user_version`: the version is the one row of `schema_version`. Each step
runs in one transaction holding an advisory lock, so replicas starting together apply it once.
"""

import re
import time
from collections.abc import Callable
from typing import Any

from hubproxy import __version__
from hubproxy.db.migrations import (
    HISTORY_TABLE,
    DatabaseError,
    Step,
    check_not_newer,
    create_schema_history,
)
from hubproxy.db.schema import (
    DISCUSSIONS,
    REGISTRY,
    STEPS,
    blob_provenance,
    canonical_cache_ids,
    create_leases,
    hub_settings,
    shared_audit_log,
)

# Any number, the same in every hubproxy: the lock replicas take while one migrates.
MIGRATION_LOCK = 7_450_931_018

_TYPES = (
    # SQLite INTEGER is 64-bit (sizes of files above 2 GiB); PostgreSQL's INTEGER is 32-bit.
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    # SQLite REAL is a double; PostgreSQL's REAL is a 4-byte float (timestamps would round).
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    # Byte order, as SQLite compares and sorts text, whatever the server's locale.
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
    (re.compile(r"\)\s*WITHOUT ROWID"), ")"),
    # `user` is a reserved word in PostgreSQL (it means current_user); quoted it is a column.
    (re.compile(r"(?<![\"'\w])user(?![\"'\w])"), '"user"'),
)


def postgres_dialect(sql: str) -> str:
    """A portable SQL step (SQLite storage classes TEXT, INTEGER, REAL, BLOB) for PostgreSQL."""
    for pattern, replacement in _TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


# The sqlite-utils steps, in PostgreSQL's SQL (types already PostgreSQL's).
TWINS: dict[Callable[..., Any], str] = {
    create_schema_history: f"""
        CREATE TABLE {HISTORY_TABLE} (
            from_version BIGINT NOT NULL,
            to_version BIGINT NOT NULL,
            hubproxy_version TEXT COLLATE "C" NOT NULL,
            applied DOUBLE PRECISION NOT NULL
        );
    """,
    # A PostgreSQL database starts at this release (empty, or copied by `migrate-to` from a data
    # dir already past the step): no row was ever written under a non-canonical id.
    canonical_cache_ids: "",
    blob_provenance: """
        ALTER TABLE blobs ADD COLUMN from_upstream BIGINT NOT NULL DEFAULT 1;
        UPDATE blobs SET from_upstream = 0 WHERE held = 1;
    """,
    hub_settings: """
        ALTER TABLE projects ADD COLUMN fullname TEXT COLLATE "C" NOT NULL DEFAULT '';
        ALTER TABLE hub_repos ADD COLUMN gated TEXT COLLATE "C" NOT NULL DEFAULT '';
        CREATE TABLE hub_repo_moves (
            repo_type TEXT COLLATE "C" NOT NULL,
            old_id TEXT COLLATE "C" NOT NULL,
            new_id TEXT COLLATE "C" NOT NULL,
            moved DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (repo_type, old_id)
        );
    """,
    create_leases: """
        CREATE TABLE leases (
            name TEXT COLLATE "C" PRIMARY KEY,
            owner TEXT COLLATE "C" NOT NULL,
            token BIGINT NOT NULL,
            expires DOUBLE PRECISION NOT NULL
        );
    """,
    # The columns of `auth/audit.py`'s released audit file, written out (a step means the same
    # forever). `event_id` is unique: a batch retried after a commit whose answer was lost (the
    # server went down) is inserted again with `ON CONFLICT DO NOTHING`, never twice. The
    # indexes end in `serial`, the tie-break of `query_page`'s (time, serial) order.
    shared_audit_log: """
        CREATE TABLE audit (
            serial BIGSERIAL PRIMARY KEY,
            action TEXT COLLATE "C", decision TEXT COLLATE "C", time DOUBLE PRECISION,
            event_id TEXT COLLATE "C", actor_kind TEXT COLLATE "C", actor_name TEXT COLLATE "C",
            token_id TEXT COLLATE "C", repo_type TEXT COLLATE "C", repo_id TEXT COLLATE "C",
            revision TEXT COLLATE "C", commit_sha TEXT COLLATE "C", path TEXT COLLATE "C",
            sha256 TEXT COLLATE "C", request_id TEXT COLLATE "C", client TEXT COLLATE "C",
            user_agent TEXT COLLATE "C", method TEXT COLLATE "C", route TEXT COLLATE "C",
            status BIGINT, bytes_sent BIGINT, cache TEXT COLLATE "C", reason TEXT COLLATE "C"
        );
        CREATE UNIQUE INDEX audit_by_event ON audit (event_id);
        CREATE INDEX audit_by_time ON audit (time, serial);
        CREATE INDEX audit_by_actor ON audit (actor_name, time, serial);
        CREATE INDEX audit_by_repo ON audit (repo_id, time, serial);
    """,
}


# SQL steps that need more than the type mapping.
SQL_TWINS: dict[str, str] = {
    # Events are listed in insertion order among equal times (`ORDER BY created, rowid`):
    # SQLite's implicit rowid, here a column of that name, last so that inserts without a
    # column list fill it from its sequence.
    DISCUSSIONS: postgres_dialect(
        DISCUSSIONS.replace(
            "data TEXT NOT NULL,\n        FOREIGN KEY",
            "data TEXT NOT NULL,\n        rowid BIGSERIAL,\n        FOREIGN KEY",
        )
    ),
    # Promotions are listed in insertion order among equal times too.
    REGISTRY: postgres_dialect(
        REGISTRY.replace(
            "created REAL NOT NULL,\n        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos"
            " ON DELETE CASCADE\n    );\n    CREATE INDEX hub_promotions_by_alias",
            "created REAL NOT NULL,\n        rowid BIGSERIAL,\n        FOREIGN KEY (repo_type,"
            " repo_id) REFERENCES hub_repos ON DELETE CASCADE\n    );\n"
            "    CREATE INDEX hub_promotions_by_alias",
        )
    ),
}


def postgres_step(step: Step) -> str | None:
    """Step `step` of STEPS for PostgreSQL; None for a sqlite-utils step without a twin."""
    if isinstance(step, str) and step in SQL_TWINS:
        return SQL_TWINS[step]
    if isinstance(step, str):
        return postgres_dialect(step)
    return TWINS.get(step)


POSTGRES_STEPS: tuple[str | None, ...] = tuple(postgres_step(step) for step in STEPS)

# Functions SQLite has that portable call sites use, defined for PostgreSQL in step 0 (before
# any numbered step, so the version numbers stay those of STEPS).
_FOUNDATION = """
    CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
    INSERT INTO schema_version (version)
        SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);
    CREATE OR REPLACE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
        LANGUAGE SQL IMMUTABLE AS 'SELECT strpos(haystack, needle)';
"""


def postgres_schema_version(connection: Any) -> int:
    """The schema version of the database behind a `PostgresConnection` (0: none yet)."""
    exists = connection.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists[0]:
        return 0
    row = connection.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row is not None else 0


def migrate_postgres(connection: Any, what: str) -> list[int]:
    """Apply the steps the database behind `connection` (a `PostgresConnection`, autocommit)
    lacks; the versions reached. Refuses (DatabaseError, nothing changed) a newer database."""
    start = postgres_schema_version(connection)
    check_not_newer(start, STEPS, what)
    raw = connection.raw
    with raw.transaction():
        connection.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        connection.execute(_FOUNDATION)
    reached: list[int] = []
    for number in range(start, len(STEPS)):
        sql = POSTGRES_STEPS[number]
        if sql is None:
            raise DatabaseError(
                f"schema step {number + 1} has no PostgreSQL form (db/postgres_schema.py TWINS)"
            )
        with raw.transaction():
            connection.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            # Another replica may have applied it while this one waited for the lock.
            if postgres_schema_version(connection) != number:
                continue
            if sql.strip():
                connection.execute(sql)
            connection.execute("UPDATE schema_version SET version = ?", (number + 1,))
        reached.append(number + 1)
    if reached:
        with raw.transaction():
            connection.execute(
                f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?)",  # noqa: S608 - a constant
                (start, reached[-1], __version__, time.time()),
            )
    return reached
