"""Where the audit log of a hub lives, for its writer, its readers and the admin CLI.

- No `database_url`: `audit.sqlite3` in the data dir (`auth/audit.py`), as always.
- `database_url` set: the `audit` table of the shared PostgreSQL metadata store (schema step
  16). Every replica writes there and every reader (admin API, web pages, `hubproxy admin
  audit --database-url`, retention pruning) reads there, so a record written through one
  replica is seen through all; a replica's data dir holds no audit log.

Both are a `Database`, so the sink, the queries and the pruning are the same code on both.
"""

import asyncio
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from hubproxy.auth.audit import AuditFileDatabase, open_audit_database
from hubproxy.db.database import Database, in_transaction
from hubproxy.settings import Settings

Result = TypeVar("Result")


def audit_database_for(settings: Settings) -> Database:
    """The database (not opened yet) that holds the audit log of `settings`' hub."""
    if settings.database_url is not None:
        from hubproxy.db.postgres import PostgresDatabase

        return PostgresDatabase(settings.database_url, connections=1, durable=True)
    return AuditFileDatabase(settings.audit_path)


def audit_log_exists(settings: Settings) -> bool:
    """False only for a data dir whose audit file was never made (nothing audited yet)."""
    return settings.database_url is not None or settings.audit_path.exists()


def run_on_audit_log(
    settings: Settings, function: Callable[[sqlite3.Connection], Result]
) -> Result:
    """`function(connection)` in one transaction on the audit log of `settings`, from code
    without an event loop (the admin CLI). Raises `DatabaseError` if it cannot be opened."""
    database = audit_database_for(settings)
    database.open_sync()
    try:
        return database.run_sync(function)
    finally:
        database.close_sync()


class AuditReader:
    """Queries and pruning for a running server (`hf_api/admin_audit.py`, the web pages).

    On PostgreSQL they run on `shared`, the audit sink's database (one connection per replica,
    not one per request). On SQLite each call opens a connection of its own in a worker
    thread: the file's WAL lets it read beside the queued writer, as the CLI does."""

    def __init__(self, settings: Settings, shared: Database | None) -> None:
        self._settings = settings
        self._shared = shared

    async def read(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        """`function(connection)` on one snapshot of the log."""
        if self._shared is not None:
            return await self._shared.read(function)
        return await self._on_file(function)

    async def change(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        """`function(connection)` in one write transaction."""
        if self._shared is not None:
            return await self._shared.run(function)
        return await self._on_file(lambda connection: in_transaction(connection, function))

    async def _on_file(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        path = self._settings.audit_path

        def run() -> Result:
            connection = open_audit_database(path)
            try:
                return function(connection)
            finally:
                connection.close()

        return await asyncio.to_thread(run)
