"""Leases in the metadata store: which process owns a piece of shared work, such as filling
one chunk from upstream, across the workers of a server (and, later, replicas).

A lease is a row `(name, owner, token, expires)` of the `leases` table. `acquire` takes a free
or expired lease in one write transaction and returns it with its fencing token; each takeover
of an expired lease raises the token. The owner renews it while it works (`renew`, which fails
once another process took the lease over) and deletes it when done (`release`). Work whose
result is recorded in the database is recorded only in a transaction that checks the lease is
still held (`holds`): an owner that stalled past its expiry, was taken over and then woke up
can never record anything ("fenced off").

Owners are process incarnations (host, pid and a random part), so a restarted process never
mistakes an old lease of its predecessor for its own. Expiry uses the wall clock: on one
machine every worker shares it.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from hubproxy.db import Database
from hubproxy.db.postgres import PostgresConnection
from hubproxy.errors import UpstreamUnavailable

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    owner: str
    token: int


class LeaseLost(UpstreamUnavailable):
    """The work's lease expired and another process took it over: its result is not ours to
    record (the readers retry and find the other owner's)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"lost the lease {name} to another process")


def new_owner() -> str:
    """An owner name unique to this process incarnation."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_clock(connection: "sqlite3.Connection | PostgresConnection") -> float:
    """Now, by the clock all owners of a lease share: the PostgreSQL server's, since replicas
    on several machines do not agree on a wall clock (a replica whose clock ran ahead would
    take over live leases); SQLite's owners are processes of one machine, so its clock."""
    if isinstance(connection, PostgresConnection):
        return connection.server_time()
    return time.time()


def holds(connection: sqlite3.Connection, lease: Lease) -> bool:
    """Whether `lease` is still held (call inside the transaction that records its work)."""
    row = connection.execute(
        "SELECT 1 FROM leases WHERE name = ? AND owner = ? AND token = ? AND expires > ?",
        (lease.name, lease.owner, lease.token, lease_clock(connection)),
    ).fetchone()
    return row is not None


class Leases:
    """The leases of this process (one owner) in `database`."""

    def __init__(self, database: Database, *, seconds: float = LEASE_SECONDS) -> None:
        self.database = database
        self.seconds = seconds
        self.owner = new_owner()

    async def acquire(self, name: str) -> Lease | None:
        """The lease `name` if it is free or expired (now ours), else None."""
        return await self.acquire_any((name,))

    async def acquire_any(self, names: Sequence[str]) -> Lease | None:
        """The first of the leases `names` that is free or expired (now ours), else None; one
        write transaction however many are tried."""

        def take_first(connection: sqlite3.Connection) -> Lease | None:
            now = lease_clock(connection)
            for name in names:
                lease = self._take(connection, name, now)
                if lease is not None:
                    return lease
            return None

        return await self.database.run(take_first)

    def _take(self, connection: sqlite3.Connection, name: str, now: float) -> Lease | None:
        row = connection.execute(
            "SELECT owner, token, expires FROM leases WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            token = 1
            connection.execute(
                "INSERT INTO leases (name, owner, token, expires) VALUES (?, ?, ?, ?)",
                (name, self.owner, token, now + self.seconds),
            )
        elif row[2] <= now:
            token = row[1] + 1
            logger.info("lease %s of %s expired: taken over", name, row[0])
            connection.execute(
                "UPDATE leases SET owner = ?, token = ?, expires = ? WHERE name = ?",
                (self.owner, token, now + self.seconds, name),
            )
        else:
            return None
        return Lease(name, self.owner, token)

    async def renew(self, lease: Lease) -> bool:
        """Extend `lease`; False if it was lost (expired and taken over)."""

        def extend(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "UPDATE leases SET expires = ? WHERE name = ? AND owner = ? AND token = ?",
                (lease_clock(connection) + self.seconds, lease.name, lease.owner, lease.token),
            )
            return cursor.rowcount == 1

        return await self.database.run(extend)

    async def release(self, lease: Lease) -> None:
        def delete(connection: sqlite3.Connection) -> None:
            connection.execute(
                "DELETE FROM leases WHERE name = ? AND owner = ? AND token = ?",
                (lease.name, lease.owner, lease.token),
            )

        await self.database.run(delete)

    async def held_elsewhere(self, name: str) -> bool:
        """Whether another owner holds an unexpired lease `name` (a read: never waits)."""

        def look(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT 1 FROM leases WHERE name = ? AND owner != ? AND expires > ?",
                (name, self.owner, lease_clock(connection)),
            ).fetchone()
            return row is not None

        return await self.database.read(look)

    async def any_held_elsewhere(self, prefix: str) -> bool:
        """Whether another owner holds an unexpired lease whose name starts with `prefix`."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def look(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT 1 FROM leases WHERE name LIKE ? ESCAPE '\\' AND owner != ? AND expires > ?",
                (pattern, self.owner, lease_clock(connection)),
            ).fetchone()
            return row is not None

        return await self.database.read(look)

    @contextlib.asynccontextmanager
    async def renewed(self, lease: Lease) -> AsyncIterator[None]:
        """Keep `lease` renewed while the block runs (a third of its time apart)."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(self.seconds / 3)
                if not await self.renew(lease):
                    logger.warning("lease %s was lost", lease.name)
                    return

        task = asyncio.create_task(keep(), name=f"lease {lease.name}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
