"""`SingleFlight`: one run of a piece of async work per key, shared by every concurrent caller.

Used wherever many requests may ask for the same slow thing at once (a revision upstream, an
immutable document, a blob's database record, the accounts serial): the first caller starts
the work, later callers with the same key join it, and the key is free again once it is done.

The work runs in its own task and callers await it through `asyncio.shield`, so a caller that
goes away (a client disconnect cancels its request) never cancels the work the others wait on.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Result = TypeVar("Result")


class SingleFlight(Generic[Key, Result]):
    """Concurrent `run(key, make)` calls share one `make()`; its result or error goes to all."""

    def __init__(self) -> None:
        self._flights: dict[Key, asyncio.Task[Result]] = {}

    async def run(self, key: Key, make: Callable[[], Awaitable[Result]]) -> Result:
        """The result of the flight of `key`, started with `make()` if none is under way."""
        task = self._flights.get(key)
        # A flight that ended but has not landed yet (its callback is still queued) is not
        # joined: a caller that loops on its result would spin without ever letting it land.
        if task is None or task.done():

            async def flight() -> Result:
                return await make()

            task = asyncio.create_task(flight())
            self._flights[key] = task
            task.add_done_callback(lambda done: self._land(key, done))
        return await asyncio.shield(task)

    def _land(self, key: Key, task: "asyncio.Task[Result]") -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            # Retrieved here: when every caller was cancelled, nobody else reads the error.
            task.exception()

    def __contains__(self, key: Key) -> bool:
        """Whether a flight of `key` is under way."""
        return key in self._flights
