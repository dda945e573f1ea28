"""Authentication: `Authorization: Bearer hp_...` → `Principal`, against an in-memory snapshot.

Requests never wait on the database: the snapshot of accounts is reloaded when the admin CLI
(or anything else) bumps `accounts_serial`, polled every `refresh_interval` seconds (the
`accounts_refresh` setting), and checked at once when an unknown hubproxy token shows up (so a
token created a moment ago works immediately; concurrent checks share one query). Revocation
takes effect within one polling interval; on PostgreSQL at once, as every change sends a
notice on which each replica calls `refresh` (`db/notifications.py`, started in `app.py`).
`last_used` times are batched and written by the same loop.

Bearer values that are not hubproxy tokens (an `hf_...` token a client has configured for
huggingface.co) are ignored: the request is anonymous and the value goes nowhere.
"""

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from hubproxy.auth import accounts
from hubproxy.auth.accounts import AccountsSnapshot, Token
from hubproxy.auth.principal import ANONYMOUS, Principal
from hubproxy.auth.tokens import TOKEN_PREFIX, looks_like_token, secret_hash
from hubproxy.db import Database
from hubproxy.errors import DatabaseUnavailable, TokenRefused
from hubproxy.singleflight import SingleFlight

logger = logging.getLogger(__name__)
Result = TypeVar("Result")


def bearer_secret(authorization: str | None) -> str | None:
    """The hubproxy token in an `Authorization` header, or None for anonymous."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value.startswith(TOKEN_PREFIX):
        return None
    if not looks_like_token(value):
        raise TokenRefused("malformed token")
    return value


def _earliest(*moments: float | None) -> float | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def principal_for(snapshot: AccountsSnapshot, token: Token, now: float) -> Principal:
    """The principal `token` acts as, or `TokenRefused` if it may not be used now."""
    if token.revoked:
        raise TokenRefused("token revoked", token.id)
    if token.expires is not None and token.expires <= now:
        raise TokenRefused("token expired", token.id)
    if token.owner_kind == "robot":
        robot = snapshot.robots.get(token.owner)
        if robot is None or robot.revoked:
            raise TokenRefused("robot revoked", token.id)
        if robot.expires is not None and robot.expires <= now:
            raise TokenRefused("robot expired", token.id)
        return Principal(
            "robot",
            robot.name,
            token.id,
            token.name,
            token.scope,
            token_expires=_earliest(token.expires, robot.expires),
            robot_project=robot.project,
            robot_permissions=robot.permissions,
        )
    user = snapshot.users.get(token.owner)
    if user is None or user.disabled:
        raise TokenRefused("user disabled", token.id)
    return Principal(
        "user",
        user.name,
        token.id,
        token.name,
        token.scope,
        token_expires=token.expires,
        is_admin=user.is_admin and token.scope == "admin",
        roles=snapshot.roles.get(user.name, {}),
    )


class Authenticator:
    """Resolves bearer tokens; owns the accounts snapshot and its refresh loop."""

    def __init__(self, database: Database, *, refresh_interval: float = 1.0) -> None:
        self._database = database
        self._refresh_interval = refresh_interval
        self.snapshot = AccountsSnapshot()
        self._last_used: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._checking: SingleFlight[str, None] = SingleFlight()

    async def start(self) -> None:
        self.snapshot = await self._database.run(accounts.load_snapshot)
        self._task = asyncio.create_task(self._refresh_loop(), name="accounts-refresh")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush_last_used()

    async def refresh(self) -> None:
        """Reload the snapshot now if the accounts changed (a change notice came). Not shared
        with a check already running: that one may have read the serial before the change."""
        await self._reload_if_changed()

    async def _reload_if_changed(self) -> None:
        serial = await self._database.run(accounts.read_serial)
        if serial != self.snapshot.serial:
            self.snapshot = await self._database.run(accounts.load_snapshot)
            logger.info("accounts reloaded (serial %d)", serial)

    async def _flush_last_used(self) -> None:
        if self._last_used:
            pending, self._last_used = self._last_used, {}
            await self._database.run(
                lambda connection: accounts.record_token_use(connection, pending)
            )

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self._reload_if_changed()
                await self._flush_last_used()
            except DatabaseUnavailable:
                # A database restart: expected, and retried on the next round.
                logger.warning("cannot refresh accounts: the database is unavailable")
            except Exception:
                logger.exception("cannot refresh accounts; keeping the previous snapshot")

    async def apply(
        self, call: Callable[[sqlite3.Connection], Result], *, reload: bool = True
    ) -> Result:
        """Run an `accounts` function; after a change (`reload`), reload the snapshot at once."""
        result = await self._database.run(call)
        if reload:
            self.snapshot = await self._database.run(accounts.load_snapshot)
        return result

    async def _check_now(self) -> None:
        """One serial check shared by every request that is waiting on one."""
        await self._checking.run("accounts serial", self._reload_if_changed)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of a request's `Authorization` header; raises `TokenRefused`."""
        principal = self.authenticate_known(authorization)
        if principal is None:
            await self._check_now()  # a token created a moment ago, maybe
            principal = self.authenticate_known(authorization)
            if principal is None:
                raise TokenRefused("unknown token")
        return principal

    def authenticate_known(self, authorization: str | None) -> Principal | None:
        """`authenticate` without waiting: None for a token the snapshot does not know yet
        (only `authenticate` may ask the database). Raises `TokenRefused` like it."""
        secret = bearer_secret(authorization)
        if secret is None:
            return ANONYMOUS
        token = self.snapshot.tokens_by_hash.get(secret_hash(secret))
        return None if token is None else self._principal_now(token)

    def _principal_now(self, token: Token) -> Principal:
        now = time.time()
        principal = principal_for(self.snapshot, token, now)
        self._last_used[token.id] = now
        return principal

    async def authenticate_token_id(self, token_id: str) -> Principal:
        """The principal of the token with id `token_id`, checked now as a bearer token is
        (revoked, expired, disabled owner: `TokenRefused`). What a web session names: the
        session cookie carries the token's id, never its secret (`web/sessions.py`)."""
        token = self.snapshot.tokens_by_id.get(token_id)
        if token is None:
            await self._check_now()
            token = self.snapshot.tokens_by_id.get(token_id)
            if token is None:
                raise TokenRefused("unknown token", token_id)
        return self._principal_now(token)
