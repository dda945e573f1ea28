"""`WebhookPublisher`: the hub's `EventPublisher` when webhooks are on.

For each event it finds the enabled webhooks that watch the repo in the event's domain, builds
each one's payload and queues the deliveries in the metadata database, then wakes the
deliverer. Queuing is one short write: the request that made the change waits for it (so the
delivery survives a crash right after the answer), never for the receiver. Whether the owner
may see the event is decided at delivery time (`auth/webhooks.py`), not here.
"""

import json
import logging
from collections.abc import Callable

from hubproxy.hub.events import HubEvent
from hubproxy.webhooks.payloads import build_payload
from hubproxy.webhooks.store import NewDelivery, WebhookStore

logger = logging.getLogger(__name__)


class WebhookPublisher:
    """Queues a delivery per matching webhook (see the module docstring)."""

    def __init__(
        self, store: WebhookStore, base_url: str, queued: Callable[[], None] = lambda: None
    ) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.queued = queued

    async def publish(self, event: HubEvent) -> None:
        try:
            webhooks = await self.store.enabled()
            deliveries = [
                NewDelivery(
                    webhook.id,
                    f"{event.scope}/{event.action}",
                    event.repo,
                    event.private,
                    event.gated,
                    json.dumps(build_payload(event, webhook.id, self.base_url)),
                )
                for webhook in webhooks
                if webhook.watches(event.repo, event.domain)
            ]
            await self.store.enqueue(deliveries)
        except Exception:
            logger.exception("webhooks: could not queue %s/%s of %s", event.scope,
                             event.action, event.repo)  # fmt: skip
            return
        if deliveries:
            self.queued()
