"""Leases on PostgreSQL expire by the database server's clock, not by a replica's own: a
replica whose wall clock runs ahead must not take over a lease another replica still holds."""

import asyncio
import time

import pytest

from hubproxy.cache import leases
from hubproxy.cache.leases import Leases
from hubproxy.db.postgres import PostgresDatabase


async def test_a_replica_with_a_fast_clock_does_not_take_a_live_lease(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = PostgresDatabase(postgres_url), PostgresDatabase(postgres_url)
    await first.open()
    await second.open()
    try:
        holder, other = Leases(first, seconds=30), Leases(second, seconds=30)
        lease = await holder.acquire("fill:clock")
        assert lease is not None
        # The other replica's wall clock is an hour ahead (as is this one's now: one process).
        ahead = time.time() + 3600
        monkeypatch.setattr(leases.time, "time", lambda: ahead)
        assert await other.acquire("fill:clock") is None
        assert await other.held_elsewhere("fill:clock")
        assert await holder.renew(lease)
        # Past its time by the server's clock, it is taken over as before.
        short = Leases(first, seconds=0.2)
        brief = await short.acquire("fill:brief")
        assert brief is not None
        assert await other.acquire("fill:brief") is None
        await asyncio.sleep(0.4)
        assert await other.acquire("fill:brief") is not None
    finally:
        await first.aclose()
        await second.aclose()
