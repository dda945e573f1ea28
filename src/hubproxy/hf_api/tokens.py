"""Self-service tokens: `GET|POST /api/hubproxy/tokens`, `DELETE /api/hubproxy/tokens/{id}`.

A user lists, creates and revokes their own tokens through a running server (the admin CLI
with `--endpoint`). A new token's scope is at most the scope of the token asking for it;
platform admins may act for any user (`"user"` in the body, `?user=` in the listing). The
dispatcher has already required a user (robots and anonymous callers never get here).
"""

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hubproxy.auth import accounts
from hubproxy.auth.accounts import Token
from hubproxy.auth.principal import Principal
from hubproxy.auth.roles import SCOPES
from hubproxy.errors import BadRequest, Forbidden
from hubproxy.hf_api.bodies import expiry_from, json_object
from hubproxy.hf_api.context import apply_account_change, read_accounts
from hubproxy.hf_api.routing import RouteMatch


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


def _owner(principal: Principal, requested: object) -> str:
    """Whose tokens: the caller's, or (platform admins only) anybody's."""
    if requested is None or requested == principal.name:
        return principal.name
    if not isinstance(requested, str):
        raise BadRequest("'user' must be a user name")
    if not principal.is_admin:
        raise Forbidden("Only platform admins manage other users' tokens")
    return requested


async def tokens(request: Request, match: RouteMatch) -> Response:
    principal: Principal = request.state.identity
    if request.method == "GET":
        owner = _owner(principal, request.query_params.get("user"))
        listed = await read_accounts(request, lambda c: accounts.list_tokens(c, owner))
        return JSONResponse([_document(token) for token in listed if token.owner_kind == "user"])
    payload = await json_object(request)
    requested = payload.get("user")
    # Named in the audit record also when the request is refused below.
    named = requested if isinstance(requested, str) and requested else principal.name
    request.state.audit_fields = {"path": named}
    owner = _owner(principal, requested)
    name, scope = payload.get("name", ""), payload.get("scope", "read")
    if not isinstance(name, str) or scope not in SCOPES:
        raise BadRequest(f"'name' must be a string and 'scope' one of {', '.join(SCOPES)}")
    if SCOPES.index(scope) > SCOPES.index(principal.scope):
        raise Forbidden(f"A {principal.scope!r} token cannot create a {scope!r} token")
    expires = expiry_from(payload)
    token, secret = await apply_account_change(
        request,
        lambda c: accounts.create_token(c, owner, name=name, scope=scope, expires=expires),
    )
    request.state.audit_fields["reason"] = f"created {token.id} scope={scope}"
    return JSONResponse({**_document(token), "token": secret}, 201)


async def token(request: Request, match: RouteMatch) -> Response:
    principal: Principal = request.state.identity
    token_id = match.path

    def revoke(connection: Any) -> Token:
        found = accounts.get_token(connection, token_id)
        # Somebody else's token is "not found" unless a platform admin asks.
        if found.owner != principal.name and not principal.is_admin:
            raise accounts.AccountNotFound(f"no token {token_id!r}")
        return accounts.revoke_token(connection, token_id)

    revoked = await apply_account_change(request, revoke)
    request.state.audit_fields = {"path": revoked.owner, "reason": f"revoked {revoked.id}"}
    return JSONResponse(_document(revoked))
