"""Numbered schema steps for one SQLite file, and the runner that applies them.

`PRAGMA user_version` is the number of steps applied. It is the record every release checks:
a file whose version is above the steps this binary knows was written by a newer hubproxy and
is refused before anything in it is changed (0.1.0 already refuses a newer metadata database
this way, so the check holds across every release since).

A step is either SQL text or a function of a `sqlite_utils.Database`:

- SQL text is used by every step released before sqlite-utils was; released text is never
  edited, because existing data dirs were made with it. It is also used for what sqlite-utils
  cannot say (WITHOUT ROWID tables, CHECK constraints, AUTOINCREMENT keys).
- New steps are functions that use sqlite-utils' table API (`create`, `add_column`,
  `create_index`), which checks what exists instead of parsing SQL.

Each step commits together with its new version, so a crash leaves the file at a step
boundary. A run that applied steps then appends one row to `schema_history`: from which
version to which, by which release, when.

sqlite-utils' own `Migrations` is not used: it records steps by name, with no order number
that an older binary could compare with its own, and so cannot refuse a newer file.
"""

import sqlite3
import time
from collections.abc import Callable, Sequence

import sqlite_utils

from hubproxy import __version__

Step = str | Callable[[sqlite_utils.Database], None]
HISTORY_TABLE = "schema_history"


class DatabaseError(Exception):
    """The database cannot be opened or is from an incompatible version."""


def schema_version(connection: sqlite3.Connection) -> int:
    """The number of schema steps applied to the file of `connection`."""
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


def library_view(connection: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils over `connection`, changing nothing on it: no `recursive_triggers` pragma,
    no plugins. Its writes nest as savepoints inside a transaction already open (sqlite-utils
    4 `atomic()`), so they never commit one of ours early."""
    return sqlite_utils.Database(connection, recursive_triggers=False, execute_plugins=False)


def check_not_newer(version: int, steps: Sequence[Step], what: str) -> None:
    """Refuse a file written by a newer hubproxy (`what` names it in the message)."""
    if version > len(steps):
        raise DatabaseError(
            f"{what} has schema version {version}, newer than this hubproxy {__version__} "
            f"knows ({len(steps)}): it was written by a newer release. Run that release (or a "
            "later one) on this data dir; it is left unchanged"
        )


def create_schema_history(database: sqlite_utils.Database) -> None:
    """The step that starts `schema_history` (one row per upgrade run)."""
    database.table(HISTORY_TABLE).create(
        {
            "from_version": int,
            "to_version": int,
            "hubproxy_version": str,
            "applied": float,
        },
        not_null={"from_version", "to_version", "hubproxy_version", "applied"},
    )


def _run_step(connection: sqlite3.Connection, step: Step, number: int) -> None:
    """Step `number` (0-based) and the version it leaves, in one transaction."""
    if isinstance(step, str):
        # executescript commits any open transaction first, so the script carries its own.
        try:
            connection.executescript(
                f"BEGIN IMMEDIATE; {step} PRAGMA user_version = {number + 1}; COMMIT;"
            )
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have applied it meanwhile (the admin CLI beside a starting server).
        if schema_version(connection) == number:
            step(library_view(connection))
            connection.execute(f"PRAGMA user_version = {number + 1}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def migrate(connection: sqlite3.Connection, steps: Sequence[Step], what: str) -> list[int]:
    """Apply the steps `connection`'s file lacks; the versions reached, in order.

    Refuses (DatabaseError, nothing changed) a file newer than `steps`. `connection` must be in
    autocommit mode (`isolation_level=None`)."""
    start = schema_version(connection)
    check_not_newer(start, steps, what)
    reached: list[int] = []
    for number in range(start, len(steps)):
        if schema_version(connection) > number:
            continue
        _run_step(connection, steps[number], number)
        reached.append(number + 1)
    if reached and HISTORY_TABLE in library_view(connection).table_names():
        # Its own transaction: a crash just before it loses a history row, never a version.
        library_view(connection).table(HISTORY_TABLE).insert(
            {
                "from_version": start,
                "to_version": reached[-1],
                "hubproxy_version": __version__,
                "applied": time.time(),
            }
        )
    return reached
