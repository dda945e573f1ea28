"""`Database`: one SQLite connection used from one worker thread.

All access goes through `await database.run(function)`, which runs `function(connection)` in
the database thread inside a transaction. One thread means no locking surprises and no
blocking of the event loop; callers keep hot data in memory so that serving a cached file never
waits for this thread.
"""

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from hubproxy.db.migrations import DatabaseError, check_not_newer, migrate, schema_version
from hubproxy.db.schema import STEPS

logger = logging.getLogger(__name__)
Result = TypeVar("Result")


def in_transaction(
    connection: sqlite3.Connection, function: Callable[[sqlite3.Connection], Result]
) -> Result:
    """`function(connection)` in one write transaction (autocommit connections), rolled back
    if it raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = function(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


class Database:
    """SQLite (WAL) behind a single-thread executor."""

    def __init__(self, path: Path | None, *, threads: int = 1) -> None:
        """`path` None means an in-memory database (tests). Opening applies the schema steps
        the file lacks (`db/schema.py`) and refuses a file from a newer hubproxy. `threads` is
        for engines that run calls concurrently (SQLite's one connection needs one thread)."""
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hubproxy-db")
        self._connection: sqlite3.Connection | None = None

    def _open(self) -> None:
        target = ":memory:" if self.path is None else str(self.path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        # Before anything that writes (even the journal mode): a newer file is left untouched.
        try:
            check_not_newer(schema_version(connection), STEPS, f"database {target}")
        except DatabaseError:
            connection.close()
            raise
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL survives a process crash (SIGKILL); only a power loss may drop the last commits.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=10000")
        try:
            reached = migrate(connection, STEPS, f"database {target}")
        except BaseException:
            connection.close()
            raise
        if reached:
            logger.info("database migrated to schema version %d", reached[-1])
        self._connection = connection

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    def _transaction(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        connection = self._connection
        if connection is None:
            raise DatabaseError("database is not open")
        return in_transaction(connection, function)

    async def run(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        """Run `function(connection)` in the database thread, in one transaction."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, function)

    async def read(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        """Run a read-only `function(connection)` in the database thread, outside a write
        transaction: in WAL mode it reads a snapshot and never waits for a writer."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read, function)

    def _read(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        connection = self._connection
        if connection is None:
            raise DatabaseError("database is not open")
        return function(connection)

    def run_sync(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        """Blocking variant for the CLI and start-up code that has no event loop."""
        return self._executor.submit(self._transaction, function).result()

    def open_sync(self) -> None:
        self._executor.submit(self._open).result()

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def open_and_close_sync(self) -> None:
        """Create the database (and apply migrations) if needed, then close it."""
        self.open_sync()
        self.close_sync()

    def close_sync(self) -> None:
        self._executor.submit(self._close).result()
        self._executor.shutdown(wait=True)
