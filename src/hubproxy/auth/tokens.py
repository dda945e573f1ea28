"""Token secrets: generated once, shown once, stored only as a hash.

A secret is `hp_` + 40 URL-safe characters (240 random bits). With that much entropy a single
SHA-256 is as good as a slow password hash (nobody can enumerate the space) and keeps the
per-request lookup to one dictionary probe.
"""

import hashlib
import secrets

TOKEN_PREFIX = "hp_"  # noqa: S105 - a prefix, not a secret
_SECRET_LENGTH = 40


def new_secret() -> str:
    """A fresh token secret; the caller shows it once and stores only `secret_hash(...)`."""
    return TOKEN_PREFIX + secrets.token_urlsafe(30)[:_SECRET_LENGTH]


def new_token_id() -> str:
    """The public id of a token: in listings, audit records and `token revoke`."""
    return "tok_" + secrets.token_hex(6)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def looks_like_token(secret: str) -> bool:
    """Cheap shape check before any lookup (a malformed header is refused without a probe)."""
    return secret.startswith(TOKEN_PREFIX) and len(secret) <= 256 and secret.isprintable()
