"""The shared upstream budget (`cache/upstream_budget.py`): processes on one metadata store
never hold more slots than the budget together, and a holder that died without giving its
slots back loses them when their leases expire."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from hubproxy.cache.leases import Leases
from hubproxy.cache.upstream_budget import UpstreamBudget, slot_names
from hubproxy.db import Database


@contextlib.asynccontextmanager
async def database_at(path: Path) -> AsyncIterator[Database]:
    database = Database(path)
    await database.open()
    try:
        yield database
    finally:
        await database.aclose()


async def test_two_processes_share_one_budget(tmp_path: Path) -> None:
    async with (
        database_at(tmp_path / "db.sqlite3") as first_database,
        database_at(tmp_path / "db.sqlite3") as second_database,
    ):
        first = UpstreamBudget(2, first_database)
        second = UpstreamBudget(2, second_database)
        holding = contextlib.AsyncExitStack()
        await holding.enter_async_context(first.slot())
        await holding.enter_async_context(second.slot())
        third_slot = second.slot()
        waiting = asyncio.ensure_future(third_slot.__aenter__())
        await asyncio.sleep(0.2)  # many database asks: every one found both slots taken
        assert not waiting.done()
        await holding.aclose()  # both slots given back
        await asyncio.wait_for(waiting, timeout=10)
        held = await first_database.read(
            lambda connection: connection.execute(
                "SELECT COUNT(*) FROM leases WHERE name LIKE 'upstream-slot-%'"
            ).fetchone()[0]
        )
        assert held == 1
        await third_slot.__aexit__(None, None, None)


async def test_slots_of_a_holder_that_died_come_back_when_their_leases_expire(
    tmp_path: Path,
) -> None:
    async with database_at(tmp_path / "db.sqlite3") as database:
        dead = Leases(database, seconds=0.3)  # took both slots, then never renewed or released
        taken = [await dead.acquire_any(slot_names(2)) for _ in range(2)]
        assert await dead.acquire_any(slot_names(2)) is None
        budget = UpstreamBudget(2, database)
        async with asyncio.timeout(10), budget.slot():
            # One of the dead holder's slots was taken over (the other is merely expired).
            renewed = [await dead.renew(lease) for lease in taken if lease is not None]
            assert sorted(renewed) == [False, True]
