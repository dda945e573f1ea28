"""The delivery queue (`webhooks/store.py`) on a real database file: claims are exclusive
across processes sharing it, finished deliveries form a bounded log, a restart frees claims."""

import asyncio
import sqlite3
from pathlib import Path

from hubproxy.db import Database
from hubproxy.naming import RepoRef
from hubproxy.webhooks.store import (
    DELIVERED,
    MAX_LOGGED,
    PENDING,
    NewDelivery,
    WatchedItem,
    WebhookStore,
)

REPO = RepoRef("model", "team/queued")


async def _two_stores(path: Path) -> tuple[WebhookStore, WebhookStore, list[Database]]:
    """Two stores on one database file, each with its own connection (as two workers)."""
    databases = [Database(path), Database(path)]
    for database in databases:
        await database.open()
    return WebhookStore(databases[0]), WebhookStore(databases[1]), databases


def _queue(count: int, webhook_id: str) -> list[NewDelivery]:
    return [
        NewDelivery(webhook_id, "repo.content/update", REPO, False, "", f'{{"n": {n}}}')
        for n in range(count)
    ]


def test_each_delivery_is_claimed_by_one_worker(tmp_path: Path) -> None:
    async def scenario() -> None:
        first, second, databases = await _two_stores(tmp_path / "hubproxy.db")
        hook = await first.create("developer", "https://hooks.example.com/x",
                                  [WatchedItem("org", "team")], ["repo"], None)  # fmt: skip
        await first.enqueue(_queue(10, hook.id))
        claims = await asyncio.gather(
            first.claim("worker-1", limit=10, lease=30),
            second.claim("worker-2", limit=10, lease=30),
            first.claim("worker-1b", limit=10, lease=30),
        )
        claimed = [delivery.id for batch in claims for delivery, _ in batch]
        assert len(claimed) == 10
        assert len(set(claimed)) == 10
        # Held: nobody else gets them until they are finished or released.
        assert await second.claim("worker-3", limit=10, lease=30) == []
        assert await second.release_claims() == 10
        assert len(await second.claim("worker-3", limit=10, lease=30)) == 10
        for database in databases:
            await database.aclose()

    asyncio.run(scenario())


def test_finished_deliveries_are_a_bounded_log(tmp_path: Path) -> None:
    async def scenario() -> None:
        database = Database(tmp_path / "hubproxy.db")
        await database.open()
        store = WebhookStore(database)
        hook = await store.create("developer", "https://hooks.example.com/x",
                                  [WatchedItem("org", "team")], ["repo"], "s")  # fmt: skip
        await store.enqueue(_queue(MAX_LOGGED + 5, hook.id))
        claimed = await store.claim("worker", limit=MAX_LOGGED + 5, lease=30)
        for delivery, _ in claimed[:-1]:
            await store.finish(delivery.id, "worker", state=DELIVERED, response_status=200,
                               duration=0.01, error=None)  # fmt: skip
        # A retry stays in the queue, not counted in the log.
        last = claimed[-1][0]
        await store.finish(last.id, "worker", state=PENDING, response_status=500,
                           duration=0.01, error="the receiver answered 500", retry_at=0)  # fmt: skip
        # Only its claimant records an attempt.
        await store.finish(last.id, "intruder", state=DELIVERED, response_status=200,
                           duration=0.01, error=None)  # fmt: skip
        listed = await store.deliveries(hook.id, limit=1000)
        states = [delivery.state for delivery in listed]
        assert states.count(DELIVERED) == MAX_LOGGED
        assert states.count(PENDING) == 1
        [pending] = [delivery for delivery in listed if delivery.state == PENDING]
        assert (pending.attempts, pending.response_status) == (1, 500)
        await store.delete(hook.id)

        def count(connection: sqlite3.Connection) -> int:
            return int(connection.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0])

        assert await database.run(count) == 0
        await database.aclose()

    asyncio.run(scenario())
