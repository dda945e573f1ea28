"""Copy a data dir's SQLite metadata database, and its audit log, into PostgreSQL (`hubproxy
admin migrate-to`).

Both are first brought to this release's schema, so their tables are the same (the audit file's
`audit` table is the PostgreSQL database's, schema step 16). Tables are
copied parents first (foreign keys hold at every commit), in batches of one transaction each,
every row inserted with `ON CONFLICT DO NOTHING`: an interrupted copy is resumed by running it
again, which skips what is there. Then every table is verified: the same number of rows and
the same SHA-256 over its rows in primary-key order on both sides.
"""

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubproxy.db.database import Database
from hubproxy.db.migrations import HISTORY_TABLE, DatabaseError
from hubproxy.db.postgres import PostgresDatabase, placeholders
from hubproxy.db.postgres_schema import postgres_schema_version

BATCH_ROWS = 2000
# Each side records its own upgrades; nothing to copy.
SKIPPED_TABLES = frozenset({HISTORY_TABLE, "schema_version", "sqlite_sequence"})


@dataclass
class TransferReport:
    """Per table: rows in the source, rows copied by this run; `verified` once all match."""

    schema_version: int
    rows: dict[str, int] = field(default_factory=dict)
    copied: dict[str, int] = field(default_factory=dict)
    verified: bool = False


AUDIT_TABLE = "audit"


def _tables(source: sqlite3.Connection) -> list[str]:
    """The source's tables, every table after the tables its foreign keys name."""
    names = [
        row[0]
        for row in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
        if row[0] not in SKIPPED_TABLES
    ]
    parents = {
        name: {row[2] for row in source.execute(f"PRAGMA foreign_key_list({name})")} - {name}
        for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:
            raise DatabaseError(
                f"foreign keys form a cycle among {sorted(set(names) - set(ordered))}"
            )
        ordered.extend(ready)
    return ordered


def _columns(source: sqlite3.Connection, table: str) -> tuple[list[str], list[str]]:
    """The columns of `table`, and its primary key columns (all columns if it has none)."""
    info = list(source.execute(f"PRAGMA table_info({table})"))
    columns = [row[1] for row in info]
    key = [row[1] for row in sorted(info, key=lambda row: row[5]) if row[5]]
    return columns, key or columns


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{column}"' for column in columns)


def _normal(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def _digest(rows: Iterator[Sequence[Any]]) -> tuple[int, str]:
    count, digest = 0, hashlib.sha256()
    for row in rows:
        count += 1
        digest.update(repr(tuple(_normal(value) for value in row)).encode())
    return count, digest.hexdigest()


def _select(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    return f"SELECT {_quoted(columns)} FROM {table} ORDER BY {_quoted(key)}"  # noqa: S608


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def transfer(
    data_dir_database: Path,
    url: str,
    progress: Callable[[str, int], None] | None = None,
    *,
    audit_file: Path | None = None,
) -> TransferReport:
    """Copy the SQLite database at `data_dir_database` into the PostgreSQL database at `url`
    (both migrated to this release's schema first), and the records of `audit_file` (if
    given and present) into its `audit` table; then verify every table."""
    from hubproxy.auth.audit import open_audit_database

    if not data_dir_database.is_file():
        raise DatabaseError(f"no metadata database at {data_dir_database}")
    # Both at this release's schema: the tables and columns are the same on both sides.
    Database(data_dir_database).open_and_close_sync()
    with_audit = audit_file is not None and audit_file.is_file()
    if with_audit:
        assert audit_file is not None
        open_audit_database(audit_file).close()  # its columns, all of this release's
    source = _read_only(data_dir_database)
    target = PostgresDatabase(url)
    try:
        target.open_sync()
        try:
            report = _check_versions(source, target)
            _copy(source, target, _tables(source), report, progress)
            if with_audit:
                assert audit_file is not None
                audit = _read_only(audit_file)
                try:
                    _copy(audit, target, [AUDIT_TABLE], report, progress)
                    target.run_sync(_continue_serials)
                    _verify(audit, target, [AUDIT_TABLE])
                finally:
                    audit.close()
            _verify(source, target, [table for table in report.rows if table != AUDIT_TABLE])
        finally:
            target.close_sync()
    finally:
        source.close()
    report.verified = True
    return report


def _continue_serials(connection: Any) -> None:
    """Records written from now on are numbered after the copied ones (whose serials were
    copied as they are: the audit's keyset paging goes by them)."""
    connection.execute(
        "SELECT setval(pg_get_serial_sequence('audit', 'serial'),"
        " (SELECT COALESCE(MAX(serial), 0) + 1 FROM audit), false)"
    )


def _check_versions(source: sqlite3.Connection, target: PostgresDatabase) -> TransferReport:
    version = int(source.execute("PRAGMA user_version").fetchone()[0])
    target_version = target.run_sync(postgres_schema_version)
    if version != target_version:
        raise DatabaseError(
            f"the data dir's schema is version {version}, the PostgreSQL database's"
            f" {target_version}: run the same hubproxy release on both"
        )
    return TransferReport(version)


def _copy(
    source: sqlite3.Connection,
    target: PostgresDatabase,
    tables: Sequence[str],
    report: TransferReport,
    progress: Callable[[str, int], None] | None,
) -> None:
    """Copy `tables` of `source` in batches, skipping rows already there; counts in `report`."""
    for table in tables:
        columns, key = _columns(source, table)
        insert = placeholders(
            f"INSERT INTO {table} ({_quoted(columns)}) VALUES"  # noqa: S608 - names from the schema
            f" ({', '.join('?' for _ in columns)}) ON CONFLICT DO NOTHING"
        )
        cursor = source.execute(_select(table, columns, key))
        report.rows[table] = 0
        report.copied[table] = 0
        while batch := cursor.fetchmany(BATCH_ROWS):
            rows = [tuple(_normal(value) for value in row) for row in batch]

            def write(
                connection: Any, rows: list[tuple[Any, ...]] = rows, sql: str = insert
            ) -> int:
                cursor = connection.raw.cursor()
                cursor.executemany(sql, rows)
                return max(int(cursor.rowcount), 0)

            report.rows[table] += len(rows)
            report.copied[table] += target.run_sync(write)
            if progress is not None:
                progress(table, report.rows[table])


def _verify(source: sqlite3.Connection, target: PostgresDatabase, tables: Sequence[str]) -> None:
    """Raise `DatabaseError` unless each of `tables` holds the same rows on both sides."""
    for table in tables:
        columns, key = _columns(source, table)
        query = _select(table, columns, key)
        expected = _digest(iter(source.execute(query)))

        def digest_of(connection: Any, query: str = query) -> tuple[int, str]:
            return _digest(iter(connection.execute(query)))

        found = target.run_sync(digest_of)
        if expected != found:
            raise DatabaseError(
                f"table {table}: {expected[0]} rows in the data dir, {found[0]} in PostgreSQL,"
                " or their contents differ; run migrate-to again to resume"
            )
