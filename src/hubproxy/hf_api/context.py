"""What handlers get from the application: built once in `app.py`, passed via lifespan state."""

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from hubproxy.auth.accounts import AccountConflict, AccountError, AccountNotFound
from hubproxy.auth.audit import AuditSink
from hubproxy.auth.authn import Authenticator
from hubproxy.errors import BadRequest, Conflict, NotFound
from hubproxy.hub.service import Hub
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
    hub: Hub
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
    except AccountNotFound as error:
        raise NotFound(str(error)) from None
    except AccountConflict as error:
        raise Conflict(str(error)) from None
    except AccountError as error:
        raise BadRequest(str(error)) from None
