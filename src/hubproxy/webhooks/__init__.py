"""Webhooks: huggingface.co's webhooks for hosted repos.

- `store.py`: webhooks and their deliveries in the metadata database (queue and log in one);
- `payloads.py`: the Hub's payload of a `HubEvent` for one webhook;
- `publisher.py`: the `EventPublisher` the hub writes to: one delivery row per matching webhook;
- `addresses.py`: which hosts a webhook may call (server-side request forgery);
- `deliverer.py`: the background task that claims due deliveries and POSTs them, with retries.

Who may create, see and receive what is decided in `auth/authz.py` (`may_manage_webhooks`,
`may_watch`, `may_receive`).
"""
