"""What handlers get from the application: built once in `app.py`, passed via lifespan state."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request

from hubproxy.auth.audit import AuditSink
from hubproxy.auth.authn import Authenticator
from hubproxy.settings import Settings
from hubproxy.stores import RepoStore


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    # Repos of upstream namespaces and proxy projects.
    proxied: RepoStore
    # Repos of hosted projects.
    hosted: RepoStore
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


def public_base_url(request: Request) -> str:
    """The URL prefix clients reach hubproxy at, for absolute links (`Link` pagination)."""
    configured = services(request).settings.public_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")
