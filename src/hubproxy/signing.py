"""Signatures made with the data dir's secret key: what lets a link authorize itself.

A signed upload link (`hub/upload_links.py`) carries no credentials: the server signed what it
says with a key only the data dir holds, and checks that signature when the link is used. The
key is made on first use and never changes, so what was signed stays valid across restarts
and every process on the data dir agrees. Anything else that must authorize itself later
(Xet access tokens) signs with the same `Signer`.
"""

import hashlib
import hmac
import secrets
import sqlite3

from hubproxy.db import Database

# The `meta` row holding the key (named when only hosted repos used it; kept for data dirs).
KEY_NAME = "hub_signing_key"
# Fields are joined with it, so none may contain it (a field could pass for two).
SEPARATOR = "\n"


class Signer:
    """HMAC-SHA256 signatures over a sequence of text fields, with the data dir's key."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._key: bytes | None = None

    async def _secret(self) -> bytes:
        def load(connection: sqlite3.Connection) -> str:
            connection.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT DO NOTHING",
                (KEY_NAME, secrets.token_hex(32)),
            )
            row = connection.execute("SELECT value FROM meta WHERE key = ?", (KEY_NAME,))
            return str(row.fetchone()["value"])

        if self._key is None:
            self._key = bytes.fromhex(await self.database.run(load))
        return self._key

    async def key(self) -> bytes:
        """The key itself, for signatures of another shape (the Xet access tokens sign a JSON
        payload behind a purpose prefix, `cas/tokens.py`)."""
        return await self._secret()

    async def sign(self, *fields: str) -> str:
        """The hex signature of `fields`, in order; ValueError if one contains a newline."""
        if any(SEPARATOR in field for field in fields):
            raise ValueError("a signed field must not contain a newline")
        message = SEPARATOR.join(fields).encode()
        return hmac.new(await self._secret(), message, hashlib.sha256).hexdigest()

    async def verify(self, signature: str, *fields: str) -> bool:
        """Whether `signature` is the signature of `fields` (compared in constant time)."""
        if any(SEPARATOR in field for field in fields):
            return False
        return hmac.compare_digest(await self.sign(*fields), signature)
