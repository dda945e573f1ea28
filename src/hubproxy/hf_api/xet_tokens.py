"""`GET /api/{type}s/{repo}/xet-write-token/{rev}` and `.../xet-read-token/{rev}`: short-lived
Xet access tokens for hosted repos (hf-protocol.md §3.1, `shared/xet.md` §1.1).

The dispatcher has authorized write (or read) on the repo, as for every other upload (or
download). The answer carries the token both ways clients read it: the JSON body
`{"accessToken", "exp", "casUrl"}` (hf_xet) and the `X-Xet-*` headers (huggingface_hub's
download path). Proxied repos get read tokens only, unless `xet_downloads` is off.
"""

import time

from starlette.responses import JSONResponse, Response

from hubproxy.cas.tokens import Scope, XetGrant, mint_token
from hubproxy.errors import RepoNotFound
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.cas import cas_url
from hubproxy.hf_api.hosted import creates_pull_request
from hubproxy.hub.repos import DEFAULT_BRANCH

HEADER_CAS_URL = "X-Xet-Cas-Url"
HEADER_ACCESS_TOKEN = "X-Xet-Access-Token"  # noqa: S105 - a header name
HEADER_TOKEN_EXPIRATION = "X-Xet-Token-Expiration"  # noqa: S105 - a header name


async def _token(call: Call, scope: Scope) -> Response:
    found = call.services
    if not call.hosted and (scope == "write" or call.settings.xet_downloads == "off"):
        # Proxied repos are never written; with Xet downloads off they are plain HTTP only.
        # Answered like a repo that does not exist, so that this route tells hidden repos from
        # proxied names no more than any other does.
        raise RepoNotFound()
    revision = call.revision
    if scope == "write" and revision == "None" and creates_pull_request(call.request):
        # `create_commit(create_pr=True)` asks with the literal revision `None` (the pull
        # request it opens targets the default branch unless the commit says otherwise).
        revision = DEFAULT_BRANCH
    # An unknown revision (or repo) is a 404 here, as it would be for the download itself.
    if call.hosted:
        await found.hub.repos.resolve(call.repo, revision)
    else:
        await call.repo_store.repo_info(call.repo, call.revision, [])
    expires = int(time.time() + found.settings.xet_token_lifetime)
    grant = XetGrant(call.repo, revision, scope, expires, call.principal.token_id or "")
    token = mint_token(await found.signer.key(), grant)
    url = cas_url(call.request)
    headers = {
        HEADER_CAS_URL: url,
        HEADER_ACCESS_TOKEN: token,
        HEADER_TOKEN_EXPIRATION: str(expires),
    }
    return JSONResponse({"accessToken": token, "exp": expires, "casUrl": url}, headers=headers)


async def write_token(call: Call) -> Response:
    return await _token(call, "write")


async def read_token(call: Call) -> Response:
    return await _token(call, "read")
