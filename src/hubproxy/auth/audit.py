"""The audit log: one record shape, and the sinks it flows through.

`AuditRecord` holds every field once (actor, target, request, outcome); secrets never enter it
(a token is named by its id). Sinks share one two-method interface, `emit(records)` and
`aclose()`, and compose:

- `DatabaseAuditSink` appends to the `audit` table of a `Database`, in its thread: with
  `database_url` set, the shared PostgreSQL metadata store (every replica writes, and reads,
  one log); else `SqliteAuditSink`, its own SQLite file (`audit.sqlite3` in the data dir,
  `AuditFileDatabase`), apart from the metadata database so that audit writes never queue
  behind cache writes;
- `StdoutJsonSink` prints one JSON line per record for log shippers;
- `FanoutSink` sends to several sinks;
- `QueuedSink` puts records on a bounded queue and writes them in batches from a background
  task, so a request never waits for a disk write. When the queue is full, `emit` waits
  (backpressure) instead of dropping; a failing write (the database is down) is retried,
  never skipped; `aclose` drains the queue before closing.

The query and pruning functions take a connection of either engine (`sqlite3.Connection` or
`db.postgres.PostgresConnection`) and use SQL both accept.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from hubproxy.db.database import Database, in_transaction
from hubproxy.db.migrations import (
    Step,
    check_not_newer,
    create_schema_history,
    library_view,
    migrate,
    schema_version,
)
from hubproxy.errors import DatabaseUnavailable
from hubproxy.ids import new_id
from hubproxy.metrics import (
    AUDIT_QUEUE_DEPTH,
    AUDIT_QUEUE_WAITS,
    AUDIT_RECORDS,
    AUDIT_WRITE_DURATION,
    AUDIT_WRITE_FAILURES,
)

logger = logging.getLogger(__name__)

# The bounded set of audited actions (also the metric label values); not `roles.ACTIONS`,
# which are the permissions a role grants.
AUDITED_ACTIONS = (
    "download",
    "upload",
    "commit",
    "repo_create",
    "repo_delete",
    "repo_move",
    "repo_settings",
    "ref_create",
    "ref_delete",
    "read",
    "login",
    "token_create",
    "token_revoke",
    "user_create",
    "user_disable",
    "user_enable",
    "robot_create",
    "robot_revoke",
    "project_create",
    "project_delete",
    "member_add",
    "member_remove",
    "policy_change",
    "audit_prune",
    "backup",
    "restore",
    "discussion_create",
    "discussion_comment",
    "discussion_edit",
    "discussion_status",
    "discussion_merge",
    "alias_promote",
    "alias_delete",
    "protection_change",
    "webhook_create",
    "webhook_update",
    "webhook_delete",
    "webhook_delivery",
)


# Bounds of the text fields of a record, in characters; most come from clients.
MAX_FIELD_CHARACTERS = 1024
_FIELD_BOUNDS = {"user_agent": 512, "client": 64, "method": 16}
TRUNCATION_MARK = "…"


def bounded_text(value: str, limit: int) -> str:
    """`value`, cut to `limit` characters (the last one a mark) when it is longer. Lone
    surrogates, which SQLite cannot store as text, are replaced."""
    if len(value) > limit:
        value = value[: limit - 1] + TRUNCATION_MARK
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


@dataclass(slots=True)
class AuditRecord:
    """One audited event. `decision` is `allow` or `deny` (a denial keeps the attempted action)."""

    action: str
    decision: str = "allow"
    time: float = field(default_factory=time.time)
    event_id: str = field(default_factory=new_id)
    # actor
    actor_kind: str = "anonymous"
    actor_name: str = "anonymous"
    token_id: str | None = None
    # target
    repo_type: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    commit_sha: str | None = None
    path: str | None = None
    sha256: str | None = None
    # request
    request_id: str | None = None
    client: str | None = None
    user_agent: str | None = None
    method: str | None = None
    route: str | None = None
    # outcome
    status: int | None = None
    bytes_sent: int = 0
    cache: str | None = None  # hit, miss, partial, stale, redirect
    reason: str = ""

    def bound(self) -> "AuditRecord":
        """Cut every text field to its bound, in place; returns the record. Every sink and
        the queue call it when a record is handed to them — a 4 MiB User-Agent or reason must
        not become a 4 MiB row, nor sit whole in the queue. Not on every assignment: a record
        is built for every request and most are never emitted (an allowed HEAD is not
        audited), and validating 20-odd assignments cost a warm HEAD ~14 µs."""
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                bounded = bounded_text(value, _FIELD_BOUNDS.get(name, MAX_FIELD_CHARACTERS))
                if bounded is not value:
                    setattr(self, name, bounded)
        return self

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = tuple(item.name for item in dataclasses.fields(AuditRecord))
_TEXT_FIELDS = tuple(
    item.name for item in dataclasses.fields(AuditRecord) if "str" in str(item.type)
)

# The audit file's schema steps (`db/migrations.py`). Step 1 is the table exactly as 0.1.0
# created it (its columns written out, not derived from the dataclass, so the step means the
# same forever); AUTOINCREMENT is why it stays SQL. Files made by 0.1.0 have version 0 and the
# table already: step 1 is a no-op on them. Fields added to AuditRecord later need no step:
# `_add_missing_columns` adds their columns on open (an older binary names its columns and so
# keeps working on the wider table).
_RELEASED_COLUMNS = (
    "action TEXT, decision TEXT, time REAL, event_id TEXT, actor_kind TEXT, actor_name TEXT, "
    "token_id TEXT, repo_type TEXT, repo_id TEXT, revision TEXT, commit_sha TEXT, path TEXT, "
    "sha256 TEXT, request_id TEXT, client TEXT, user_agent TEXT, method TEXT, route TEXT, "
    "status INTEGER, bytes_sent INTEGER, cache TEXT, reason TEXT"
)
AUDIT_STEPS: tuple[Step, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS audit (
        serial INTEGER PRIMARY KEY AUTOINCREMENT,
        {_RELEASED_COLUMNS}
    );
    CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time);
    CREATE INDEX IF NOT EXISTS audit_by_actor ON audit (actor_name, time);
    CREATE INDEX IF NOT EXISTS audit_by_repo ON audit (repo_id, time);
    """,
    create_schema_history,
)
_COLUMN_TYPES: dict[str, type] = {"time": float, "status": int, "bytes_sent": int}
# Column names come from the dataclass, never from input. `ON CONFLICT DO NOTHING`: on
# PostgreSQL `event_id` is unique, so a batch retried after a commit whose answer was lost is
# not written twice (the audit file has no such index: its writes never go unanswered).
_INSERT = (
    f"INSERT INTO audit ({', '.join(FIELDS)})"  # noqa: S608
    f" VALUES ({', '.join('?' for _ in FIELDS)}) ON CONFLICT DO NOTHING"
)


def _add_missing_columns(connection: sqlite3.Connection) -> list[str]:
    """Add a column for every AuditRecord field the table lacks; the names added. A field with
    a default gets it as the column's default, so older records read back with it."""

    def add(transaction: sqlite3.Connection) -> list[str]:
        table = library_view(transaction).table("audit")
        present = set(table.columns_dict)
        added: list[str] = []
        for item in dataclasses.fields(AuditRecord):
            if item.name in present:
                continue
            default = None if item.default is dataclasses.MISSING else item.default
            table.add_column(item.name, _COLUMN_TYPES.get(item.name, str), not_null_default=default)
            added.append(item.name)
        return added

    columns = {row[1] for row in connection.execute("PRAGMA table_info(audit)")}
    if columns.issuperset(FIELDS):
        return []
    # Checked again inside the write transaction: another process may have added them.
    added = in_transaction(connection, add)
    if added:
        logger.info("audit table: added columns %s", ", ".join(added))
    return added


def open_audit_database(path: Path) -> sqlite3.Connection:
    """Open (and create, or upgrade) the audit SQLite file; WAL so readers never block the
    writer. Refuses (DatabaseError, the file untouched) an audit file of a newer hubproxy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    try:
        check_not_newer(schema_version(connection), AUDIT_STEPS, f"audit log {path}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=10000")
        migrate(connection, AUDIT_STEPS, f"audit log {path}")
        _add_missing_columns(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def insert_records(connection: sqlite3.Connection, records: Sequence[AuditRecord]) -> None:
    """Append `records`, in the caller's transaction (either engine).

    executemany rather than sqlite-utils' `insert_all`: for a batch of 10,000 records it took
    about half the time (README, design notes), and this runs beside the event loop."""
    rows = [tuple(getattr(record.bound(), name) for name in FIELDS) for record in records]
    connection.executemany(_INSERT, rows)


def delete_records(connection: sqlite3.Connection, before: float) -> int:
    """Delete records older than `before` (a timestamp), in the caller's transaction (either
    engine); returns how many."""
    return connection.execute("DELETE FROM audit WHERE time < ?", (before,)).rowcount


def write_records(connection: sqlite3.Connection, records: Sequence[AuditRecord]) -> None:
    """Append `records` to an audit file opened by `open_audit_database`, in one transaction."""
    in_transaction(connection, lambda transaction: insert_records(transaction, records))


def prune_records(connection: sqlite3.Connection, before: float) -> int:
    """Delete records older than `before` from an audit file, in one transaction; how many."""
    return in_transaction(connection, lambda transaction: delete_records(transaction, before))


class AuditFileDatabase(Database):
    """The audit SQLite file behind the `Database` interface: its own schema (`AUDIT_STEPS`,
    not the metadata database's), its own thread."""

    def _open(self) -> None:
        assert self.path is not None
        self._connection = open_audit_database(self.path)


class AuditSink(Protocol):
    """Where audit records go."""

    async def emit(self, records: Sequence[AuditRecord]) -> None:
        """Accept `records` (written now, or queued to be)."""

    async def aclose(self) -> None:
        """Write out everything accepted, then release resources."""


class DatabaseAuditSink:
    """Appends each batch to the `audit` table of `database` in one transaction, in the
    database's own thread (a `Database` of its own: audit writes never wait for other work).
    A database that is down raises `DatabaseUnavailable`, which `QueuedSink` retries."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def open(self) -> None:
        await self.database.open()

    async def emit(self, records: Sequence[AuditRecord]) -> None:
        await self.database.run(lambda connection: insert_records(connection, records))

    async def prune(self, before: float) -> int:
        """Delete records older than `before`, in the writer's thread."""
        return await self.database.run(lambda connection: delete_records(connection, before))

    async def aclose(self) -> None:
        await self.database.aclose()


class SqliteAuditSink(DatabaseAuditSink):
    """Appends to the audit SQLite file (`AuditFileDatabase`) from its own thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(AuditFileDatabase(path))


class StdoutJsonSink:
    """One JSON object per line on stdout (or `stream`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def emit(self, records: Sequence[AuditRecord]) -> None:
        stream = self._stream or sys.stdout
        stream.write(
            "".join(json.dumps({"audit": record.bound().as_dict()}) + "\n" for record in records)
        )
        stream.flush()

    async def aclose(self) -> None:
        return None


class FanoutSink:
    """Every record to every sink, in order."""

    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self._sinks = tuple(sinks)

    async def emit(self, records: Sequence[AuditRecord]) -> None:
        for sink in self._sinks:
            await sink.emit(records)

    async def aclose(self) -> None:
        for sink in self._sinks:
            await sink.aclose()


class QueuedSink:
    """A bounded queue in front of `inner`, drained in batches by one background task."""

    def __init__(
        self,
        inner: AuditSink,
        *,
        max_queued: int = 10_000,
        batch_size: int = 500,
        retry_delay: float = 0.5,
    ) -> None:
        self._inner = inner
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(max_queued)
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="audit-writer")

    async def emit(self, records: Sequence[AuditRecord]) -> None:
        for record in records:
            record.bound()
            try:
                self._queue.put_nowait(record)
            except asyncio.QueueFull:
                AUDIT_QUEUE_WAITS.inc()
                await self._queue.put(record)
        AUDIT_QUEUE_DEPTH.set(self._queue.qsize())

    async def _write(self, batch: list[AuditRecord]) -> None:
        waiting = False
        while True:
            started = time.monotonic()
            try:
                await self._inner.emit(batch)
            except DatabaseUnavailable:
                # A database restart: expected, and the batch waits for it (said once, with
                # no traceback; the failures metric counts every attempt).
                AUDIT_WRITE_FAILURES.inc()
                if not waiting:
                    logger.warning(
                        "audit write of %d records waits: the database is unavailable",
                        len(batch),
                    )
                    waiting = True
                await asyncio.sleep(self._retry_delay)
                continue
            except Exception:
                AUDIT_WRITE_FAILURES.inc()
                logger.exception("audit write of %d records failed; retrying", len(batch))
                await asyncio.sleep(self._retry_delay)
                continue
            AUDIT_WRITE_DURATION.observe(time.monotonic() - started)
            if waiting:
                logger.info("audit writes resumed: the database is back")
            for record in batch:
                AUDIT_RECORDS.labels(record.action, record.decision).inc()
            return

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # Shielded: a cancellation (shutdown) never loses a batch already taken off the queue.
            await asyncio.shield(self._write(batch))
            for _ in batch:
                self._queue.task_done()
            AUDIT_QUEUE_DEPTH.set(self._queue.qsize())

    async def aclose(self) -> None:
        """Write everything queued, stop the writer, close `inner`."""
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._inner.aclose()


def _filters(
    *,
    actor: str | None = None,
    repo: str | None = None,
    action: str | None = None,
    since: float | None = None,
    until: float | None = None,
    denied: bool = False,
    decision: str | None = None,
    before_serial: int | None = None,
    namespaces: Collection[str] | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (with its values) of the given filters."""
    clauses: list[str] = []
    values: list[Any] = []
    for column, value in (
        ("actor_name", actor), ("repo_id", repo), ("action", action), ("decision", decision)
    ):  # fmt: skip
        if value is not None:
            clauses.append(f"{column} = ?")
            values.append(value)
    if since is not None:
        clauses.append("time >= ?")
        values.append(since)
    if until is not None:
        clauses.append("time < ?")
        values.append(until)
    if denied:
        clauses.append("decision = 'deny'")
    if before_serial is not None:
        # After that record in (time, serial) order: the order of `query_page`.
        clauses.append("(time, serial) < ((SELECT time FROM audit WHERE serial = ?), ?)")
        values.extend((before_serial, before_serial))
    if namespaces is not None:
        # A prefix comparison, not LIKE: `_` is a wildcard there and may be in names.
        alternatives = ["1 = 0"]  # none: no record (a bare 0 is no boolean to PostgreSQL)
        for name in sorted(namespaces):
            alternatives.append("repo_id = ? OR substr(repo_id, 1, ?) = ?")
            values.extend((name, len(name) + 1, f"{name}/"))
        clauses.append(f"({' OR '.join(alternatives)})")
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), values


def query_records(
    connection: sqlite3.Connection,
    *,
    actor: str | None = None,
    repo: str | None = None,
    action: str | None = None,
    since: float | None = None,
    denied: bool = False,
    limit: int | None = None,
    namespaces: Collection[str] | None = None,
) -> list[AuditRecord]:
    """Records matching every given filter, oldest first (the newest `limit` if given).

    `namespaces` keeps only records about those namespaces: their repos (`ns/...`) and the
    changes to the namespace itself (a project's members, say, are recorded as `ns`).
    """
    where, values = _filters(
        actor=actor, repo=repo, action=action, since=since, denied=denied, namespaces=namespaces
    )
    sql = f"SELECT {', '.join(FIELDS)} FROM audit {where} ORDER BY serial DESC"  # noqa: S608
    if limit is not None:
        sql += " LIMIT ?"
        values.append(limit)
    rows = connection.execute(sql, values).fetchall()
    return [AuditRecord(**dict(row)) for row in reversed(rows)]


def query_page(
    connection: sqlite3.Connection,
    *,
    limit: int,
    actor: str | None = None,
    repo: str | None = None,
    action: str | None = None,
    decision: str | None = None,
    since: float | None = None,
    until: float | None = None,
    before_serial: int | None = None,
    namespaces: Collection[str] | None = None,
) -> list[tuple[int, AuditRecord]]:
    """Up to `limit` records matching every filter, newest first, with their serials: a page
    of the log that the next page continues with `before_serial` = the last serial (keyset
    paging, so page 1,000 costs what page 1 does). `until` excludes its own moment.

    Ordered by (time, serial), not serial alone: the time, actor and repo indexes all end in
    the rowid, so a filtered page is read off an index in order (ordering by serial made
    SQLite sort every record of a user, 0.3 s for 20,000 of a million)."""
    where, values = _filters(
        actor=actor, repo=repo, action=action, decision=decision, since=since, until=until,
        before_serial=before_serial, namespaces=namespaces,
    )  # fmt: skip
    sql = (
        f"SELECT serial, {', '.join(FIELDS)} FROM audit {where}"  # noqa: S608
        " ORDER BY time DESC, serial DESC LIMIT ?"
    )
    rows = connection.execute(sql, [*values, limit]).fetchall()
    found = []
    for row in rows:
        fields = dict(row)
        serial = fields.pop("serial")
        found.append((int(serial), AuditRecord(**fields)))
    return found
