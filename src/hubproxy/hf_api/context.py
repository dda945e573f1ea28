"""What handlers get from the application: built once in `app.py`, passed via lifespan state."""

import re
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from hubproxy.auth.accounts import AccountError
from hubproxy.auth.audit import AuditSink
from hubproxy.auth.authn import Authenticator
from hubproxy.hub.service import HostedRepoWriter
from hubproxy.hub.store import HostedRepoStore
from hubproxy.settings import Settings
from hubproxy.stores import RepoStore

Result = TypeVar("Result")


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    # Repos of upstream namespaces and proxy projects.
    proxied: RepoStore
    # Repos of hosted projects.
    hosted: HostedRepoStore
    # Changes to hosted repos.
    hub: HostedRepoWriter
    authenticator: Authenticator
    audit: AuditSink
    # Database and storage probes for /health/ready: name -> "ok" or a short failure reason.
    check_ready: Callable[[], Awaitable[dict[str, str]]]


def services(request: Request) -> Services:
    found: Services = request.state.services
    return found


def repo_store(request: Request) -> RepoStore:
    """The store of the request's repo, chosen by the dispatcher after authorization."""
    found: RepoStore = request.state.store
    return found


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
# A Host header that is only a host and an optional port (no userinfo, path or spaces).
_HOST_PATTERN = re.compile(r"^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$")


def _host_name(host: str) -> str:
    """`host[:port]` without the port (`[::1]:8000` → `[::1]`)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def public_base_url(request: Request) -> str:
    """The URL prefix clients reach hubproxy at, for absolute links (LFS hrefs, `Link`
    pagination, repo URLs).

    `public_url` when configured. Otherwise the request's `Host` only if it is trusted: listed
    in `trusted_hosts` (a name without a port matches every port) or a loopback name; any other
    `Host` is a client's word, and a link built from it could send the next request (an LFS
    upload, a page of a listing) to a host of the client's choosing, so the link names the
    address the connection was accepted on instead."""
    settings = services(request).settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme = request.url.scheme
    host = request.headers.get("host", "").strip().lower()
    trusted = settings.trusted_host_names
    name = _host_name(host)
    if _HOST_PATTERN.match(host) and (host in trusted or name in trusted or name in LOOPBACK_HOSTS):
        return f"{scheme}://{host}"
    server = request.scope.get("server")
    if server is None:
        return f"{scheme}://{settings.host}:{settings.port}"
    address, port = server[0], server[1]
    if ":" in address:
        address = f"[{address}]"
    return f"{scheme}://{address}:{port}" if port is not None else f"{scheme}://{address}"


async def apply_account_change(
    request: Request, change: Callable[[sqlite3.Connection], Result]
) -> Result:
    """An account change; the server's accounts snapshot is reloaded at once."""
    return await _account_call(request, change, reload=True)


async def read_accounts(request: Request, query: Callable[[sqlite3.Connection], Result]) -> Result:
    """An account query (nothing changes, nothing to reload)."""
    return await _account_call(request, query, reload=False)


async def _account_call(
    request: Request, call: Callable[[sqlite3.Connection], Result], *, reload: bool
) -> Result:
    """Account errors become HTTP errors."""
    try:
        return await services(request).authenticator.apply(call, reload=reload)
    except AccountError as error:
        raise error.as_hub_error() from None
