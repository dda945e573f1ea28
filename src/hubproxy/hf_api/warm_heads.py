"""Warm HEADs: a `/resolve/` HEAD answered a moment ago is answered again by the connection.

Every client HEADs a file before it downloads it, and huggingface_hub HEADs every file of a
snapshot, so a cluster starting one model sends the same few HEADs thousands of times. Through
uvicorn's ASGI cycle, starlette and the dispatcher one costs four times what deciding and
writing it does: the task, the middleware and the messages, not the work. So the answer the
full path gave is remembered here, and `cli/connections.py` writes it again straight from the
parsed request head, without an ASGI task.

What may be remembered, and for how long (`WarmHeads.remember`, called by the resolve handler):
- a 200 to a HEAD for a whole file that the caching proxy holds (`X-Hubproxy-Cache: hit`), not
  served stale, of a repo the client named as it is cached (no rename, no proxy-project
  mapping); never a hosted repo, whose branches move with every commit;
- for `WARM_SECONDS` at most, and never longer than `revision_ttl`, within which the full path
  answers a branch from the commit it last saw anyway: the answer is at most that much older
  than the full path's would be, and with `revision_ttl` 0 nothing is remembered;
- under the accounts snapshot it was given in: any account, token, role or policy change
  replaces the snapshot and forgets every answer.

A reuse (`WarmHeads.answer`) is keyed by the request target and the only headers the answer
depends on, `Host` (links are built from it) and `Authorization`; a request with any header
that could change the answer or how it is made (a range, a cookie, forwarding headers, a body)
takes the full path. Each reuse authenticates its token again and asks `auth.authz.authorize`
again, against the snapshot of now: an expired or revoked token, or a refusal, takes the full
path, which refuses and audits as always. Allowed HEADs are not audited (downloads are); they
are counted, timed and access-logged like every other request, and `X-Request-Id` is new.
"""

import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hubproxy.auth.accounts import AccountsSnapshot
from hubproxy.auth.authn import Authenticator
from hubproxy.auth.authz import authorize
from hubproxy.auth.roles import Action
from hubproxy.constants import HEADER_REQUEST_ID
from hubproxy.errors import BadRequest, TokenRefused
from hubproxy.hf_api.middleware import RequestFacts, observe_request
from hubproxy.hf_api.routing import match_route
from hubproxy.ids import new_id
from hubproxy.lru import LruMap
from hubproxy.metrics import WARM_HEADS
from hubproxy.naming import RepoRef
from hubproxy.settings import Settings

WARM_SECONDS = 1.0
MAX_ANSWERS = 4096
# Request headers that change an answer, or how it is made, beyond the key: with any of them
# a HEAD takes the full path (so do `x-forwarded-*`, which may change scheme and client).
_UNKEYED_HEADERS = frozenset(
    {b"range", b"if-range", b"cookie", b"forwarded", b"content-length", b"transfer-encoding",
     b"expect", b"upgrade"}
)  # fmt: skip
_STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
_REQUEST_ID = HEADER_REQUEST_ID.lower().encode() + b": "

Key = tuple[bytes, bytes, bytes]


def answer_key(target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> Key | None:
    """(request target, Host, Authorization) of a request whose answer may be reused, or None.
    `headers`: (lower-case name, value) pairs as the request sent them."""
    host = authorization = None
    for name, value in headers:
        if name == b"host":
            if host is not None:
                return None  # two Hosts: the full path decides what that means
            host = value
        elif name == b"authorization":
            if authorization is not None:
                return None
            authorization = value
        elif name in _UNKEYED_HEADERS or name.startswith(b"x-forwarded-"):
            return None
    return target, host or b"", authorization or b""


def _header_lines(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


@dataclass(frozen=True, slots=True)
class WarmAnswer:
    # The answer's header lines after uvicorn's own (`date`, `server`), each ending in CRLF.
    head: bytes
    # What authorization is asked again on every reuse.
    action: Action
    repo_id: str
    snapshot: AccountsSnapshot
    cache: str
    expires: float


class WarmHeads:
    """The answers remembered by one process; see the module docstring."""

    def __init__(self, authenticator: Authenticator, settings: Settings) -> None:
        self._authenticator = authenticator
        self._require_auth = settings.require_auth
        self._seconds = min(WARM_SECONDS, settings.revision_ttl)
        self._answers: LruMap[Key, WarmAnswer] = LruMap(MAX_ANSWERS)
        self._server_headers: list[tuple[bytes, bytes]] | None = None
        self._server_lines = b""

    def remember(
        self,
        scope: Mapping[str, object],
        action: Action,
        served: RepoRef,
        headers: list[tuple[bytes, bytes]],
        cache: str,
    ) -> None:
        """Remember the 200 just built for the HEAD `scope` of a whole cached file of the
        caching proxy's repo `served` (canonical), allowed as `action`; `headers`: the
        response's own as it sends them (`StreamResponse.headers`), without the request id."""
        if self._seconds <= 0 or cache != "hit" or scope.get("root_path"):
            return
        raw_path, query = scope.get("raw_path"), scope.get("query_string")
        headers_sent = scope.get("headers")
        if not isinstance(raw_path, bytes) or not isinstance(headers_sent, list):
            return
        target = raw_path + b"?" + query if isinstance(query, bytes) and query else raw_path
        key = answer_key(target, headers_sent)
        try:
            named = match_route(raw_path)
        except BadRequest:
            return
        if key is None or named is None or named.ref is None or named.ref.canonical != served:
            return  # renamed upstream or mapped by a proxy project: the full path decides
        self._answers.put(
            key,
            WarmAnswer(
                _header_lines(headers),
                action,
                named.ref.repo_id,
                self._authenticator.snapshot,
                cache,
                time.monotonic() + self._seconds,
            ),
        )

    def answer(
        self,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        server_headers: list[tuple[bytes, bytes]],
        client: str,
    ) -> bytes | None:
        """The whole answer to a HEAD of `target` with `headers`, if a remembered one may be
        given again now (counted and logged as sent); None: the full path must answer.
        `server_headers`: uvicorn's headers of every answer (`date`, `server`)."""
        started = time.monotonic()
        key = answer_key(target, headers)
        remembered = None if key is None else self._answers.get(key)
        if remembered is None:
            return None
        assert key is not None
        if remembered.expires <= started or remembered.snapshot is not self._authenticator.snapshot:
            self._answers.pop(key)
            return None
        try:
            principal = self._authenticator.authenticate_known(key[2].decode("latin-1") or None)
        except TokenRefused:
            return None
        if principal is None:
            return None
        decision = authorize(
            principal,
            remembered.action,
            remembered.repo_id,
            remembered.snapshot,
            require_auth=self._require_auth,
        )
        if not decision.allowed:
            return None
        facts = RequestFacts(new_id(), "resolve", principal.name, remembered.cache)
        if server_headers is not self._server_headers:
            # uvicorn renews its list once a second (the date): its lines are made once each.
            self._server_headers = server_headers
            self._server_lines = _header_lines(server_headers)
        answer = b"".join(
            (_STATUS_LINE, self._server_lines, remembered.head, _REQUEST_ID,
             facts.request_id.encode(), b"\r\n\r\n")
        )  # fmt: skip
        WARM_HEADS.inc()
        path = target.split(b"?", 1)[0].decode("latin-1")
        observe_request(
            "HEAD",
            urllib.parse.unquote(path) if "%" in path else path,
            200,
            facts,
            0,
            time.monotonic() - started,
            client,
        )
        return answer
