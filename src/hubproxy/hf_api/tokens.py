"""Self-service tokens: `GET|POST /api/hubproxy/tokens`, `DELETE /api/hubproxy/tokens/{id}`.

A user lists, creates and revokes their own tokens through a running server (the admin CLI
with `--endpoint`). What a token may delegate is decided by `auth.authz` (`may_create_token`,
`may_revoke_token`): a new token has at most the scope of the token asking for it and expires
no later than it (when `expires_in` is omitted it inherits the caller's expiry); revoking needs
a `write` token; platform admins may act for any user (`"user"` in the body, `?user=` in the
listing). `expires_in` is at most `max_token_lifetime`. The dispatcher has already required a
user (robots and anonymous callers never get here) and audits every refusal.
"""

from typing import Any

from starlette.responses import JSONResponse, Response

from hubproxy.auth import accounts
from hubproxy.auth.accounts import Token
from hubproxy.auth.authz import (
    enforce,
    may_create_token,
    may_manage_tokens_of,
    may_revoke_token,
)
from hubproxy.auth.principal import Principal
from hubproxy.auth.roles import SCOPES
from hubproxy.errors import BadRequest
from hubproxy.hf_api.bodies import expiry_from, json_object
from hubproxy.hf_api.call import Call


def _document(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "owner": token.owner,
        "ownerKind": token.owner_kind,
        "name": token.name,
        "scope": token.scope,
        "created": token.created,
        "expires": token.expires,
        "lastUsed": token.last_used,
        "revoked": token.revoked,
    }


def bounded_expiry(call: Call, payload: dict[str, Any]) -> float | None:
    """The expiry `"expires_in"` asks for (None if absent), at most `max_token_lifetime` away:
    a 400 for more (a century of seconds is a typo or a probe, not a plan)."""
    expires = expiry_from(payload)
    longest = call.settings.max_token_lifetime
    if expires is not None and payload["expires_in"] > longest:
        raise BadRequest(f"'expires_in' must be at most {longest:g} seconds")
    return expires


def _owner(principal: Principal, requested: object) -> str:
    """Whose tokens: the caller's, or (platform admins only) anybody's."""
    if requested is None or requested == principal.name:
        return principal.name
    if not isinstance(requested, str):
        raise BadRequest("'user' must be a user name")
    enforce(may_manage_tokens_of(principal, requested))
    return requested


async def tokens(call: Call) -> Response:
    principal = call.principal
    if call.request.method == "GET":
        owner = _owner(principal, call.request.query_params.get("user"))
        listed = await call.read_accounts(lambda c: accounts.list_tokens(c, owner))
        return JSONResponse([_document(token) for token in listed if token.owner_kind == "user"])
    payload = await json_object(call.request)
    requested = payload.get("user")
    # Named in the audit record also when the request is refused below.
    named = requested if isinstance(requested, str) and requested else principal.name
    call.record.path = named
    owner = _owner(principal, requested)
    name, scope = payload.get("name", ""), payload.get("scope", "read")
    if not isinstance(name, str) or scope not in SCOPES:
        raise BadRequest(f"'name' must be a string and 'scope' one of {', '.join(SCOPES)}")
    expires = bounded_expiry(call, payload)
    if expires is None:
        # Omitted: as long as the caller's own token (never, for a token that never expires).
        expires = principal.token_expires
    enforce(may_create_token(principal, owner, scope, expires))
    token, secret = await call.apply_account_change(
        lambda c: accounts.create_token(c, owner, name=name, scope=scope, expires=expires),
    )
    call.record.reason = f"created {token.id} scope={scope}"
    return JSONResponse({**_document(token), "token": secret}, 201)


async def token(call: Call) -> Response:
    return JSONResponse(_document(await revoke_token(call, call.route.subject)))


async def revoke_token(call: Call, token_id: str) -> Token:
    """Revoke a token the caller may revoke (`authz.may_revoke_token`), audited on `call`."""
    principal = call.principal

    def revoke(connection: Any) -> Token:
        found = accounts.get_token(connection, token_id)
        # Somebody else's token is "not found" unless a platform admin asks.
        owner = found.owner if found.owner_kind == "user" else ""
        enforce(may_revoke_token(principal, owner, token_id))
        return accounts.revoke_token(connection, token_id)

    revoked = await call.apply_account_change(revoke)
    call.record.path, call.record.reason = revoked.owner, f"revoked {revoked.id}"
    return revoked
