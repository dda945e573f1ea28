"""What handlers get from the application: built once in `app.py`, passed via lifespan state."""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request

from hubproxy.auth.audit import AuditSink
from hubproxy.auth.audit_log import AuditReader
from hubproxy.auth.authn import Authenticator
from hubproxy.cache.management import CacheManager
from hubproxy.cache.store import CachingRepoStore
from hubproxy.cas.store import XetStore
from hubproxy.hf_api.warm_heads import WarmHeads
from hubproxy.hub.service import HostedRepoWriter
from hubproxy.hub.store import HostedRepoStore
from hubproxy.settings import Settings
from hubproxy.signing import Signer
from hubproxy.webhooks.store import WebhookStore


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    # Repos of upstream namespaces and proxy projects.
    proxied: CachingRepoStore
    # Repos of hosted projects.
    hosted: HostedRepoStore
    # Changes to hosted repos.
    hub: HostedRepoWriter
    authenticator: Authenticator
    audit: AuditSink
    # Queries and pruning of the audit log `audit` writes to (`auth/audit_log.py`).
    audit_log: AuditReader
    # Database and storage probes for /health/ready: name -> "ok" or a short failure reason.
    check_ready: Callable[[], Awaitable[dict[str, str]]]
    # The Xet CAS of hosted repos.
    xet: XetStore
    # Signatures with the data dir's key (upload links, Xet access tokens, web sessions).
    signer: Signer
    # Webhooks and their deliveries.
    webhooks: WebhookStore
    # What the cache holds and pins (`hubproxy cache`; the web UI's cache pages).
    cache: CacheManager | None = None
    # The warm HEAD answers the connections give again (`warm_heads.py`).
    warm_heads: WarmHeads | None = None


def services(request: Request) -> Services:
    found: Services = request.state.services
    return found


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
# A Host header that is only a host and an optional port (no userinfo, path or spaces).
_HOST_PATTERN = re.compile(r"^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$")


def _host_name(host: str) -> str:
    """`host[:port]` without the port (`[::1]:8000` → `[::1]`)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def public_base_url(request: Request, settings: Settings) -> str:
    """The URL prefix clients reach hubproxy at, for absolute links (LFS hrefs, `Link`
    pagination, repo URLs).

    `public_url` when configured. Otherwise the request's `Host` only if it is trusted: listed
    in `trusted_hosts` (a name without a port matches every port) or a loopback name; any other
    `Host` is a client's word, and a link built from it could send the next request (an LFS
    upload, a page of a listing) to a host of the client's choosing, so the link names the
    address the connection was accepted on instead."""
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
