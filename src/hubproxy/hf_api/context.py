"""What handlers get from the application: built once in `app.py`, passed via lifespan state."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request

from hubproxy.settings import Settings
from hubproxy.stores import RepoStore


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: RepoStore
    # Database and storage probes for /health/ready: name -> "ok" or a short failure reason.
    check_ready: Callable[[], Awaitable[dict[str, str]]]


def services(request: Request) -> Services:
    found: Services = request.state.services
    return found


def public_base_url(request: Request) -> str:
    """The URL prefix clients reach hubproxy at, for absolute links (`Link` pagination)."""
    configured = services(request).settings.public_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")
