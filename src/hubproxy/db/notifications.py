"""Change notices between replicas: PostgreSQL `NOTIFY` from a writer's transaction, and one
`LISTEN` connection per replica that runs a callback for each.

A notice is a hint to look again, never the change itself: the listener's callback re-reads
what it caches (`Authenticator.refresh`), and polling stays as the fallback for a notice that
never arrives (the listener was reconnecting). On SQLite nothing is sent: a data dir's
processes share one file and poll it.
"""

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable

from hubproxy.db.postgres import PostgresConnection, redacted
from hubproxy.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

# Accounts, tokens, robots, roles and the upstream policy changed (`auth/accounts.py`).
ACCOUNTS_CHANNEL = "hubproxy_accounts"
# How long the listener waits for a notice before it checks that its connection still works
# (a server that vanished without closing the socket sends nothing, not even an error).
LIVENESS_SECONDS = 15.0
RECONNECT_SECONDS = 1.0


def notify(connection: sqlite3.Connection, channel: str) -> None:
    """Send a notice on `channel` when the caller's transaction commits (none if it rolls
    back); nothing on SQLite. `channel` is one of this module's constants."""
    # Typed as SQLite's (the stores' one shape, `db/postgres.py`); may be the PostgreSQL one.
    found: object = connection
    if isinstance(found, PostgresConnection):
        found.execute("SELECT pg_notify(?, '')", (channel,))


class ChangeListener:
    """Listens on `channel` of the PostgreSQL database at `url` and awaits `on_change()` for
    every notice, and once after each (re)connection: what changed while it was away. A lost
    connection is opened again every `RECONNECT_SECONDS`, so a database restart needs no
    restart of hubproxy."""

    def __init__(self, url: str, channel: str, on_change: Callable[[], Awaitable[None]]) -> None:
        self._url = url
        self._channel = channel
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._lost = False
        # Set while a LISTEN connection is up (tests wait for it).
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"listen-{self._channel}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        import psycopg

        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as error:
                self.listening.clear()
                if not self._lost:  # said once an outage, not every second of it
                    logger.warning(
                        "change notices from %s lost (%s); reconnecting, polling meanwhile",
                        redacted(self._url),
                        type(error).__name__,
                    )
                    self._lost = True
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        import psycopg

        connection = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=10
        )
        async with connection:
            # The channel is a constant of this module, not input.
            await connection.execute(f"LISTEN {self._channel}")
            self.listening.set()
            if self._lost:
                logger.info("change notices on %s again", self._channel)
                self._lost = False
            await self._changed()
            while True:
                async for _ in connection.notifies(timeout=LIVENESS_SECONDS):
                    await self._changed()
                await connection.execute("SELECT 1")  # raises if the server is gone

    async def _changed(self) -> None:
        try:
            await self._on_change()
        except DatabaseUnavailable:
            logger.warning("cannot act on a change notice: the database is unavailable")
        except Exception:
            # The callback's own failure (its database call) is not the listener's: polling
            # catches up.
            logger.exception("acting on a change notice on %s failed", self._channel)
