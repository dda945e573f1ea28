"""The upstream budget: at most `upstream_concurrency` body fetches in flight from upstream,
for the whole server — every worker of `serve --workers`, every replica on one database.

A fetch takes a slot first from this process's semaphore (so a process never asks the
database for more slots than the whole budget), then one of the shared slots: the leases
`upstream-slot-0` … `upstream-slot-{N-1}` in the metadata store (`leases.py`), any free or
expired one, tried in one write transaction. The slot lease is renewed while the body streams
and released after; a process that dies holding one loses it when it expires, so a crash never
shrinks the budget for longer than a lease. When every shared slot is taken, the fetch waits,
asking again at growing intervals (up to `MAX_WAIT_SECONDS`): that happens only when the
cluster is at its budget, where a wait is what the budget is for.

Only upstream body fetches take a slot; warm reads never touch the budget. A server that is
one process on its own database keeps the semaphore alone (`shared=False`): nothing else
could take a slot.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from hubproxy.cache.leases import Leases
from hubproxy.db import Database

logger = logging.getLogger(__name__)

SLOT_PREFIX = "upstream-slot-"
FIRST_WAIT_SECONDS = 0.02
MAX_WAIT_SECONDS = 0.5


def slot_names(count: int) -> tuple[str, ...]:
    """The names of the `count` shared slots."""
    return tuple(f"{SLOT_PREFIX}{index}" for index in range(count))


class UpstreamBudget:
    """`concurrency` upstream fetches at once: in this process, and across every process of
    the server on `database` when given."""

    def __init__(self, concurrency: int, database: Database | None = None) -> None:
        self.concurrency = concurrency
        self._local = asyncio.Semaphore(concurrency)
        self._leases = None if database is None else Leases(database)
        self._names = slot_names(concurrency)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot of the budget while the block runs."""
        async with self._local:
            if self._leases is None:
                yield
                return
            leases = self._leases
            wait = FIRST_WAIT_SECONDS
            while True:
                # From a random slot on: processes asking at once mostly try different rows.
                start = secrets.randbelow(len(self._names))
                lease = await leases.acquire_any(self._names[start:] + self._names[:start])
                if lease is not None:
                    break
                await asyncio.sleep(wait)
                wait = min(wait * 2, MAX_WAIT_SECONDS)
            try:
                async with leases.renewed(lease):
                    yield
            finally:
                # Shielded: a cancelled fetch must still give its slot back now, not at expiry.
                await asyncio.shield(leases.release(lease))
