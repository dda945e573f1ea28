"""Web sign-in: a signed session cookie naming a token by its id, and CSRF tokens.

Signing in posts a token (`hp_...`); the server checks it as the API checks a bearer token and
answers with the cookie `hp_session = <token id>.<issued>.<signature>`, signed with the data
dir's key (`signing.Signer`). The cookie never carries the token's secret: a cookie that leaks
(a proxy's log, a shared browser profile) is useless once it expires or its token is revoked,
and cannot be replayed against the API, which only takes the secret. The token is looked up
again on every request (`Authenticator.authenticate_token_id`): revoked, expired, its user
disabled, and the browser is signed out on its next page. No table holds sessions, so every
worker and replica accepts the cookie. A session lasts `web_session_lifetime`; signing out
clears the cookie in the browser (the token itself stays valid: it is the user's to revoke).

The cookie is HttpOnly and SameSite=Lax, and Secure when the server is reached over https.

CSRF: every browser gets a random `hp_csrf` cookie; forms carry the signature of it (with the
session's token id), and a POST is accepted only when the two match. A page of another site
can neither read the cookie nor compute the signature.
"""

import hmac
import secrets
import time
from dataclasses import dataclass

from hubproxy.signing import Signer

SESSION_COOKIE = "hp_session"
CSRF_COOKIE = "hp_csrf"
CSRF_FIELD = "csrf"
_SESSION_PURPOSE = "web-session"
_CSRF_PURPOSE = "web-csrf"
_NONCE_LENGTH = 32


@dataclass(frozen=True, slots=True)
class Session:
    """A valid session cookie's content: the token id and when it was issued."""

    token_id: str
    issued: int


async def session_cookie(signer: Signer, token_id: str, now: float | None = None) -> str:
    """The cookie value of a new session for the token `token_id`."""
    issued = str(int(now if now is not None else time.time()))
    signature = await signer.sign(_SESSION_PURPOSE, token_id, issued)
    return f"{token_id}.{issued}.{signature}"


async def read_session(
    signer: Signer, value: str | None, lifetime: float, now: float | None = None
) -> Session | None:
    """The session a cookie value names, or None: absent, malformed, forged or expired."""
    if not value or len(value) > 256:
        return None
    token_id, _, rest = value.partition(".")
    issued, _, signature = rest.partition(".")
    if not token_id or not issued.isdigit() or not signature:
        return None
    if not await signer.verify(signature, _SESSION_PURPOSE, token_id, issued):
        return None
    moment = now if now is not None else time.time()
    if moment - int(issued) > lifetime:
        return None
    return Session(token_id, int(issued))


def new_nonce() -> str:
    """A fresh value for the CSRF cookie."""
    return secrets.token_hex(_NONCE_LENGTH // 2)


def valid_nonce(value: str | None) -> bool:
    return (
        value is not None
        and len(value) == _NONCE_LENGTH
        and all(character in "0123456789abcdef" for character in value)
    )


async def csrf_token(signer: Signer, nonce: str, token_id: str | None) -> str:
    """What a form of this browser (and session) must post back."""
    return await signer.sign(_CSRF_PURPOSE, nonce, token_id or "")


async def csrf_matches(
    signer: Signer, nonce: str | None, token_id: str | None, posted: str | None
) -> bool:
    """Whether a posted form's CSRF token belongs to this browser's cookie and session."""
    if not valid_nonce(nonce) or not posted:
        return False
    assert nonce is not None
    return hmac.compare_digest(await csrf_token(signer, nonce, token_id), posted)
