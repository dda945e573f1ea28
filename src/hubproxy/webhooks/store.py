"""`WebhookStore`: webhooks and their deliveries in the metadata database (schema step 13).

A webhook belongs to the user who created it. A delivery is one event for one webhook: created
`pending` with its payload when the event is published, claimed by one process at a time (a
conditional UPDATE on `claimed_until`, so several workers sharing the database send each
delivery once), then `delivered`, `failed` (attempts exhausted) or `skipped` (the webhook was
disabled or its owner may no longer see the repo), or put back `pending` for a retry. Finished
rows are the webhook's delivery log: the newest `MAX_LOGGED` of each webhook are kept.
"""

import json
import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hubproxy.db import Database
from hubproxy.errors import NotFound
from hubproxy.naming import RepoRef, canonical_name

PENDING, DELIVERED, FAILED, SKIPPED = "pending", "delivered", "failed", "skipped"
# Finished deliveries kept per webhook (its log).
MAX_LOGGED = 100
WEBHOOK_NOT_FOUND = "Webhook not found"


@dataclass(frozen=True, slots=True)
class WatchedItem:
    """What a webhook watches: a user's or project's repos (`user`, `org`), or one repo
    (`model`, `dataset`, `space`)."""

    type: str
    name: str

    def covers(self, repo: RepoRef) -> bool:
        if self.type in ("user", "org"):
            namespace = repo.repo_id.split("/", 1)[0]
            return canonical_name(namespace) == canonical_name(self.name)
        return self.type == repo.repo_type and canonical_name(self.name) == canonical_name(
            repo.repo_id
        )


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    owner: str
    url: str
    watched: tuple[WatchedItem, ...]
    domains: tuple[str, ...]
    secret: str | None
    disabled: bool
    created: float
    updated: float

    def watches(self, repo: RepoRef, domain: str) -> bool:
        """Whether an event of `domain` on `repo` is for this webhook."""
        return (
            not self.disabled
            and domain in self.domains
            and any(item.covers(repo) for item in self.watched)
        )

    def as_json(self) -> dict[str, Any]:
        """huggingface_hub's `WebhookInfo` shape."""
        return {
            "id": self.id,
            "url": self.url,
            "job": None,
            "watched": [{"type": item.type, "name": item.name} for item in self.watched],
            "domains": list(self.domains),
            "secret": self.secret,
            "disabled": self.disabled,
        }


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to queue: an event (`scope/action`) on a repo, with the repo's visibility
    when it happened and the payload to send."""

    webhook_id: str
    event: str
    repo: RepoRef
    private: bool
    gated: str
    payload: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    webhook_id: str
    event: str
    repo: RepoRef
    private: bool
    gated: str
    payload: str
    state: str
    attempts: int
    created: float
    next_attempt: float
    finished: float | None
    response_status: int | None
    duration: float | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        """An entry of the delivery log (`GET /api/settings/webhooks/{id}/deliveries`)."""
        return {
            "id": self.id,
            "event": self.event,
            "repo": {"type": self.repo.repo_type, "name": self.repo.repo_id},
            "state": self.state,
            "attempts": self.attempts,
            "createdAt": self.created,
            "finishedAt": self.finished,
            "nextAttemptAt": self.next_attempt if self.state == PENDING else None,
            "responseStatus": self.response_status,
            "durationSeconds": self.duration,
            "error": self.error,
        }


def _webhook_of(row: sqlite3.Row) -> Webhook:
    return Webhook(
        row["id"],
        row["owner"],
        row["url"],
        tuple(WatchedItem(item["type"], item["name"]) for item in json.loads(row["watched"])),
        tuple(json.loads(row["domains"])),
        row["secret"],
        bool(row["disabled"]),
        row["created"],
        row["updated"],
    )


def _delivery_of(row: sqlite3.Row) -> Delivery:
    return Delivery(
        row["id"],
        row["webhook_id"],
        row["event"],
        RepoRef(row["repo_type"], row["repo_id"]),
        bool(row["private"]),
        row["gated"],
        row["payload"],
        row["state"],
        row["attempts"],
        row["created"],
        row["next_attempt"],
        row["finished"],
        row["response_status"],
        row["duration"],
        row["error"],
    )


def _get(connection: sqlite3.Connection, webhook_id: str) -> Webhook:
    row = connection.execute("SELECT * FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
    if row is None:
        raise NotFound(WEBHOOK_NOT_FOUND)
    return _webhook_of(row)


def _watched_json(watched: Sequence[WatchedItem]) -> str:
    return json.dumps([{"type": item.type, "name": item.name} for item in watched])


class WebhookStore:
    """Typed access to `webhooks` and `webhook_deliveries` (see the module docstring)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # Webhooks -------------------------------------------------------------------------

    async def create(
        self,
        owner: str,
        url: str,
        watched: Sequence[WatchedItem],
        domains: Sequence[str],
        secret: str | None,
    ) -> Webhook:
        now = time.time()
        webhook = Webhook(
            secrets.token_hex(12), owner, url, tuple(watched), tuple(domains), secret, False,
            now, now,
        )  # fmt: skip

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (webhook.id, owner, url, _watched_json(watched), json.dumps(list(domains)),
                 secret, now, now),
            )  # fmt: skip

        await self.database.run(store)
        return webhook

    async def get(self, webhook_id: str) -> Webhook:
        """Webhook `webhook_id`, or `NotFound`."""
        return await self.database.run(lambda connection: _get(connection, webhook_id))

    async def owned(self, owner: str) -> list[Webhook]:
        """The webhooks of `owner`, oldest first."""

        def load(connection: sqlite3.Connection) -> list[Webhook]:
            rows = connection.execute(
                "SELECT * FROM webhooks WHERE owner = ? ORDER BY created, id", (owner,)
            )
            return [_webhook_of(row) for row in rows]

        return await self.database.read(load)

    async def enabled(self) -> list[Webhook]:
        """Every enabled webhook (what an event is matched against)."""

        def load(connection: sqlite3.Connection) -> list[Webhook]:
            rows = connection.execute("SELECT * FROM webhooks WHERE disabled = 0")
            return [_webhook_of(row) for row in rows]

        return await self.database.read(load)

    async def update(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        watched: Sequence[WatchedItem] | None = None,
        domains: Sequence[str] | None = None,
        secret: str | None = None,
        disabled: bool | None = None,
    ) -> Webhook:
        """Change the given fields; the webhook as it is now."""
        changes: dict[str, object] = {}
        if url is not None:
            changes["url"] = url
        if watched is not None:
            changes["watched"] = _watched_json(watched)
        if domains is not None:
            changes["domains"] = json.dumps(list(domains))
        if secret is not None:
            changes["secret"] = secret
        if disabled is not None:
            changes["disabled"] = int(disabled)
        changes["updated"] = time.time()

        def store(connection: sqlite3.Connection) -> Webhook:
            _get(connection, webhook_id)
            assignments = ", ".join(f"{column} = ?" for column in changes)
            connection.execute(
                f"UPDATE webhooks SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
                (*changes.values(), webhook_id),
            )
            return _get(connection, webhook_id)

        return await self.database.run(store)

    async def delete(self, webhook_id: str) -> None:
        """Delete the webhook with its pending deliveries and its log."""

        def store(connection: sqlite3.Connection) -> None:
            _get(connection, webhook_id)
            connection.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))
            connection.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))

        await self.database.run(store)

    # Deliveries -----------------------------------------------------------------------

    async def enqueue(self, deliveries: Sequence[NewDelivery]) -> None:
        """Queue deliveries, due now."""
        now = time.time()
        rows = [
            (secrets.token_hex(12), item.webhook_id, item.event, item.repo.repo_type,
             item.repo.repo_id, int(item.private), item.gated, item.payload, PENDING, 0, now, now)
            for item in deliveries
        ]  # fmt: skip

        def store(connection: sqlite3.Connection) -> None:
            connection.executemany(
                "INSERT INTO webhook_deliveries (id, webhook_id, event, repo_type, repo_id,"
                " private, gated, payload, state, attempts, created, next_attempt)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

        if rows:
            await self.database.run(store)

    async def claim(
        self, claimant: str, *, limit: int, lease: float
    ) -> list[tuple[Delivery, Webhook]]:
        """Up to `limit` due pending deliveries nobody holds, now held by `claimant` for
        `lease` seconds, with their webhooks; oldest first."""
        now = time.time()

        def any_due(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT 1 FROM webhook_deliveries WHERE state = ? AND next_attempt <= ?"
                " AND (claimed_until IS NULL OR claimed_until < ?) LIMIT 1",
                (PENDING, now, now),
            ).fetchone()
            return row is not None

        # Polled every second by every process: a read (which never waits for a writer)
        # decides whether the write transaction of a claim is needed at all.
        if not await self.database.read(any_due):
            return []

        def store(connection: sqlite3.Connection) -> list[tuple[Delivery, Webhook]]:
            rows = connection.execute(
                "SELECT * FROM webhook_deliveries WHERE state = ? AND next_attempt <= ?"
                " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY next_attempt LIMIT ?",
                (PENDING, now, now, limit),
            ).fetchall()
            claimed = []
            for row in rows:
                # Conditional: a process that claimed it since the SELECT keeps it.
                taken = connection.execute(
                    "UPDATE webhook_deliveries SET claimed_by = ?, claimed_until = ?"
                    " WHERE id = ? AND state = ? AND (claimed_until IS NULL OR claimed_until < ?)",
                    (claimant, now + lease, row["id"], PENDING, now),
                ).rowcount
                if taken:
                    claimed.append((_delivery_of(row), _get(connection, row["webhook_id"])))
            return claimed

        return await self.database.run(store)

    async def finish(
        self,
        delivery_id: str,
        claimant: str,
        *,
        state: str,
        response_status: int | None,
        duration: float | None,
        error: str | None,
        retry_at: float | None = None,
    ) -> None:
        """Record an attempt: `state` (PENDING with `retry_at` for a retry), released from
        `claimant`; the log of the webhook is trimmed to `MAX_LOGGED` finished rows."""
        now = time.time()

        def store(connection: sqlite3.Connection) -> None:
            row = connection.execute(
                "SELECT webhook_id FROM webhook_deliveries WHERE id = ? AND claimed_by = ?",
                (delivery_id, claimant),
            ).fetchone()
            if row is None:
                return
            connection.execute(
                "UPDATE webhook_deliveries SET state = ?, attempts = attempts + ?,"
                " next_attempt = ?, claimed_by = NULL, claimed_until = NULL, finished = ?,"
                " response_status = ?, duration = ?, error = ? WHERE id = ?",
                (state, 0 if state == SKIPPED else 1, retry_at or now,
                 None if state == PENDING else now, response_status, duration, error,
                 delivery_id),
            )  # fmt: skip
            if state != PENDING:
                connection.execute(
                    "DELETE FROM webhook_deliveries WHERE webhook_id = ? AND state != ?"
                    " AND id NOT IN (SELECT id FROM webhook_deliveries WHERE webhook_id = ?"
                    " AND state != ? ORDER BY finished DESC LIMIT ?)",
                    (row["webhook_id"], PENDING, row["webhook_id"], PENDING, MAX_LOGGED),
                )

        await self.database.run(store)

    async def release_claims(self) -> int:
        """Free every claim and make every pending delivery due now (start-up of the only
        process: nobody else is sending, and a receiver that was down may be back)."""
        now = time.time()

        def store(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "UPDATE webhook_deliveries SET claimed_by = NULL, claimed_until = NULL,"
                " next_attempt = ? WHERE state = ?"
                " AND (claimed_by IS NOT NULL OR next_attempt > ?)",
                (now, PENDING, now),
            ).rowcount

        return await self.database.run(store)

    async def next_due(self) -> float | None:
        """When the earliest pending delivery is due, or None."""

        def load(connection: sqlite3.Connection) -> float | None:
            row = connection.execute(
                "SELECT MIN(next_attempt) FROM webhook_deliveries WHERE state = ?", (PENDING,)
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return await self.database.run(load)

    async def deliveries(self, webhook_id: str, *, limit: int = MAX_LOGGED) -> list[Delivery]:
        """The webhook's deliveries, pending and logged, newest first."""

        def load(connection: sqlite3.Connection) -> list[Delivery]:
            _get(connection, webhook_id)
            rows = connection.execute(
                "SELECT * FROM webhook_deliveries WHERE webhook_id = ?"
                " ORDER BY created DESC, id DESC LIMIT ?",
                (webhook_id, limit),
            )
            return [_delivery_of(row) for row in rows]

        return await self.database.run(load)
