"""`SingleFlight`: concurrent callers of one key share one run; a cancelled caller cancels
nothing the others wait on; the key is free again once the run is done."""

import asyncio

import pytest

from hubproxy.singleflight import SingleFlight


async def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    callers = [asyncio.create_task(flights.run("key", work)) for _ in range(5)]
    await asyncio.sleep(0)
    assert "key" in flights
    release.set()
    assert await asyncio.gather(*callers) == [42] * 5
    assert runs == 1
    assert "key" not in flights


async def test_a_key_is_run_again_once_its_flight_landed() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    counter = iter(range(10))

    async def work() -> int:
        return next(counter)

    assert await flights.run("key", work) == 0
    assert await flights.run("key", work) == 1
    assert await flights.run("other", work) == 2


async def test_an_error_reaches_every_caller_and_frees_the_key() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise ValueError("upstream said no")

    callers = [asyncio.create_task(flights.run("key", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(result, ValueError) for result in results)

    async def working() -> int:
        return 7

    assert await flights.run("key", working) == 7


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    leaving = asyncio.create_task(flights.run("key", work))
    staying = asyncio.create_task(flights.run("key", work))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    release.set()
    assert await staying == "done"


async def test_a_flight_that_ended_but_has_not_landed_is_not_joined() -> None:
    # A caller scheduled before the flight's landing callback ran must start a new flight:
    # joining the ended one returns at once, and a caller looping on a result it cannot use
    # (a lookup that found nothing, where it needs a record created) spun forever.
    flights: SingleFlight[str, int | None] = SingleFlight()
    release = asyncio.Event()

    async def lookup() -> int | None:
        await release.wait()
        return None

    async def create() -> int | None:
        return 7

    first = asyncio.create_task(flights.run("key", lookup))
    await asyncio.sleep(0)

    async def creator() -> int | None:
        await release.wait()  # resumes in the same loop pass as the flight's end
        while (found := await flights.run("key", create)) is None:
            pass
        return found

    second = asyncio.create_task(creator())
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.wait_for(second, 5) == 7
    assert await first is None
