"""`WebhookDeliverer`: the background task that sends queued deliveries.

One task per server process, started by the app's lifespan. It claims due deliveries (the
store's conditional claim, so the workers of one server never send a delivery twice), checks
that the webhook is enabled and that its owner may still see the repo (`auth/webhooks.py`),
and POSTs the payload with the webhook's secret in `X-Webhook-Secret`. A 2xx answer delivers;
anything else (another status, a timeout, a refused or unreachable address) is retried after
1 s, 2 s, 4 s… up to `MAX_ATTEMPTS` attempts, then the delivery has `failed`. Every finished
delivery is audited (`webhook_delivery`).

A publisher in the same process wakes the task at once (delivery well within a second); it also
looks for due work every `POLL_SECONDS` (retries, and deliveries queued by other workers or
before a restart: the queue is in the database, so nothing queued is lost by a restart).
Redirects are not followed: a receiver could use one to point hubproxy at a refused address.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence

import aiohttp

from hubproxy import __version__
from hubproxy.auth.accounts import AccountsSnapshot
from hubproxy.auth.audit import AuditRecord, AuditSink
from hubproxy.auth.authz import RepoVisibility
from hubproxy.auth.webhooks import may_receive
from hubproxy.errors import DatabaseUnavailable
from hubproxy.metrics import WEBHOOK_DELIVERIES
from hubproxy.webhooks.addresses import GuardedResolver, IpNetwork, check_literal_host
from hubproxy.webhooks.store import (
    DELIVERED,
    FAILED,
    PENDING,
    SKIPPED,
    Delivery,
    Webhook,
    WebhookStore,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 1.0
# Deliveries in flight at once, per process.
CONCURRENCY = 8
# A claim outlives the longest attempt; a crashed process's claims expire after it.
CLAIM_SECONDS = TIMEOUT_SECONDS + 20.0
MAX_ERROR_CHARACTERS = 500


def retry_delay(attempts: int) -> float:
    """The wait before the next attempt, after `attempts` failed ones: 1 s, 2 s, 4 s…"""
    return RETRY_BASE_SECONDS * float(2 ** max(attempts - 1, 0))


class WebhookDeliverer:
    """See the module docstring."""

    def __init__(
        self,
        store: WebhookStore,
        snapshot: Callable[[], AccountsSnapshot],
        audit: AuditSink,
        *,
        allowed_networks: Sequence[IpNetwork] = (),
        require_auth: bool = False,
    ) -> None:
        self.store = store
        self.snapshot = snapshot
        self.audit = audit
        self.allowed_networks = tuple(allowed_networks)
        self.require_auth = require_auth
        self.claimant = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    async def start(self, *, sole: bool) -> None:
        """Start sending; `sole`: no other process shares the database, so claims left by a
        predecessor that stopped mid-delivery are freed at once."""
        if sole:
            released = await self.store.release_claims()
            if released:
                logger.info("webhooks: %d queued deliveries are sent again now", released)
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allowed_networks))
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            headers={"User-Agent": f"hubproxy-webhooks/{__version__}"},
        )
        self._task = asyncio.create_task(self._run(), name="webhook-deliveries")

    def wake(self) -> None:
        """New deliveries are queued: look now."""
        self._wakeup.set()

    async def aclose(self) -> None:
        """Stop: deliveries in flight are abandoned (their claims expire; they are sent
        again by whoever claims them next)."""
        tasks = [task for task in (self._task, *self._in_flight) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            free = CONCURRENCY - len(self._in_flight)
            claimed: list[tuple[Delivery, Webhook]] = []
            if free > 0:
                try:
                    claimed = await self.store.claim(self.claimant, limit=free, lease=CLAIM_SECONDS)
                except DatabaseUnavailable:
                    # A database restart: expected; the queue waits in the database meanwhile.
                    logger.warning("webhooks: cannot claim deliveries: the database is unavailable")
                except Exception:
                    logger.exception("webhooks: could not claim deliveries")
            for delivery, webhook in claimed:
                task = asyncio.create_task(self._deliver(delivery, webhook))
                self._in_flight.add(task)
                task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), POLL_SECONDS)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, DatabaseUnavailable):
            # Its claim expires and the delivery is sent again once the database is back.
            logger.warning("webhooks: a delivery was not recorded: the database is unavailable")
        elif error is not None:
            logger.error("webhooks: delivery failed", exc_info=error)
        # A slot is free: more may be waiting.
        self._wakeup.set()

    def _refusal(self, delivery: Delivery, webhook: Webhook) -> str | None:
        """Why the delivery must not be sent now, or None."""
        if webhook.disabled:
            return "webhook disabled"
        decision = may_receive(
            self.snapshot(),
            webhook.owner,
            delivery.repo.repo_id,
            RepoVisibility(delivery.private, delivery.gated),
            require_auth=self.require_auth,
        )
        return None if decision.allowed else f"owner may not see the repo: {decision.reason}"

    async def _deliver(self, delivery: Delivery, webhook: Webhook) -> None:
        refusal = self._refusal(delivery, webhook)
        if refusal is not None:
            await self._finish(delivery, webhook, SKIPPED, None, None, refusal)
            return
        status, error = None, None
        started = time.monotonic()
        try:
            status = await self._post(delivery, webhook)
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as failure:
            error = f"{type(failure).__name__}: {failure}"[:MAX_ERROR_CHARACTERS]
        duration = time.monotonic() - started
        if error is None:
            await self._finish(delivery, webhook, DELIVERED, status, duration, None)
            return
        attempts = delivery.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            await self._finish(delivery, webhook, FAILED, status, duration, error)
            return
        delay = retry_delay(attempts)
        WEBHOOK_DELIVERIES.labels("retried").inc()
        await self.store.finish(
            delivery.id, self.claimant, state=PENDING, response_status=status,
            duration=duration, error=error, retry_at=time.time() + delay,
        )  # fmt: skip
        asyncio.get_running_loop().call_later(delay, self.wake)

    async def _post(self, delivery: Delivery, webhook: Webhook) -> int:
        assert self._session is not None
        check_literal_host(webhook.url, self.allowed_networks)
        headers = {"Content-Type": "application/json", "X-Hubproxy-Delivery": delivery.id}
        if webhook.secret:
            headers["X-Webhook-Secret"] = webhook.secret
        async with self._session.post(
            webhook.url, data=delivery.payload.encode(), headers=headers, allow_redirects=False
        ) as response:
            return response.status

    async def _finish(
        self,
        delivery: Delivery,
        webhook: Webhook,
        state: str,
        status: int | None,
        duration: float | None,
        error: str | None,
    ) -> None:
        await self.store.finish(
            delivery.id, self.claimant, state=state, response_status=status,
            duration=duration, error=error,
        )  # fmt: skip
        WEBHOOK_DELIVERIES.labels(state).inc()
        record = AuditRecord(
            "webhook_delivery",
            decision="deny" if state == SKIPPED else "allow",
            actor_kind="system",
            actor_name="hubproxy",
            repo_type=delivery.repo.repo_type,
            repo_id=delivery.repo.repo_id,
            path=f"webhooks/{webhook.id}",
            route="webhook_delivery",
            status=status,
        )
        attempts = delivery.attempts + (0 if state == SKIPPED else 1)
        record.reason = (
            f"{state} {delivery.event} to {webhook.owner}'s webhook"
            + (f" after {attempts} attempts" if attempts > 1 else "")
            + (f": {error}" if error else "")
        )
        await self.audit.emit([record])
