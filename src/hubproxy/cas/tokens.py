"""Xet access tokens and signed xorb-range URLs: self-describing, HMAC-signed, expiring.

An access token names a repo, a revision, a scope (`read` or `write`), an expiry and the id of
the hubproxy token it was minted for ("" for an anonymous reader), signed with the data dir's
key (`signing.Signer.key`). The CAS trusts what a valid token says but re-authorizes its
minter on every use (`auth.authz.authorize_xet`), so revoking the hubproxy token, disabling
its user or removing its role stops every Xet token minted from it.

hf_xet fetches xorb ranges with no Authorization header, so each range URL of a
reconstruction answer carries its own signature over the xorb, the byte range, the expiry and
the repo and minter it was issued for.
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Literal

from hubproxy.naming import RepoRef

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
TOKEN_PURPOSE = b"hubproxy xet access token\n"
URL_PURPOSE = b"hubproxy xet xorb range\n"


class InvalidXetToken(ValueError):
    """Not a token minted here (malformed or a bad signature)."""


@dataclass(frozen=True, slots=True)
class XetGrant:
    """What an access token allows until `expires` (unix seconds)."""

    repo: RepoRef
    revision: str
    scope: Scope
    expires: int
    token_id: str


def _sign(key: bytes, purpose: bytes, message: bytes) -> str:
    return hmac.new(key, purpose + message, hashlib.sha256).hexdigest()


def mint_token(key: bytes, grant: XetGrant) -> str:
    """The access token for `grant`: base64url of its fields as JSON, a dot, the signature."""
    fields = [
        grant.repo.repo_type,
        grant.repo.repo_id,
        grant.revision,
        grant.scope,
        grant.expires,
        grant.token_id,
    ]
    payload = json.dumps(fields, separators=(",", ":")).encode()
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"{encoded}.{_sign(key, TOKEN_PURPOSE, payload)}"


def read_token(key: bytes, token: str) -> XetGrant:
    """The grant a token signed with `key` carries (expired or not); `InvalidXetToken` else."""
    encoded, _, signature = token.partition(".")
    if len(token) > 4096 or not encoded or not signature:
        raise InvalidXetToken("malformed Xet token")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise InvalidXetToken("malformed Xet token") from None
    if not hmac.compare_digest(_sign(key, TOKEN_PURPOSE, payload), signature):
        raise InvalidXetToken("Xet token signature does not match")
    # Signed here, so well-formed: the checks below only guard against a changed format.
    fields = json.loads(payload)
    repo_type, repo_id, revision, scope, expires, token_id = fields
    if scope not in SCOPES or not isinstance(expires, int):
        raise InvalidXetToken("malformed Xet token")
    return XetGrant(RepoRef(repo_type, repo_id), revision, scope, expires, token_id)


def range_signature(
    key: bytes, xorb_hash: str, start: int, end: int, expires: int, repo: RepoRef, token_id: str
) -> str:
    """The signature of a xorb-range URL for bytes `[start, end]` (inclusive, as `url_range`)."""
    message = "\n".join(
        (xorb_hash, str(start), str(end), str(expires), repo.repo_type, repo.repo_id, token_id)
    )
    return _sign(key, URL_PURPOSE, message.encode())
