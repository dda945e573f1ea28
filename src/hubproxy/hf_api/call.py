"""`Call`: the one object a Hub handler takes, built by the dispatcher for each request.

It carries what the dispatcher established before the handler runs (the route, the principal,
the project and store chosen by authorization, what a reviewer may see) and the request's audit
record, which the code that knows a fact fills in: a handler names the account it changed, the
download path the cache outcome and content hash. Nothing is parsed back out of headers.
"""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from hubproxy.auth.accounts import AccountError, AccountsSnapshot, Project
from hubproxy.auth.audit import AuditRecord
from hubproxy.auth.principal import Principal
from hubproxy.auth.protections import RefActor, actor_for
from hubproxy.hf_api.context import Services, public_base_url
from hubproxy.hf_api.routing import RouteMatch
from hubproxy.hub.service import HostedRepoWriter
from hubproxy.naming import RepoRef
from hubproxy.settings import Settings
from hubproxy.stores import RepoStore

Result = TypeVar("Result")


@dataclass(slots=True)
class Call:
    """A request as the dispatcher saw it. `route.ref` is the repo in canonical form once
    authorized (create/delete: the repo the body names)."""

    request: Request
    route: RouteMatch
    principal: Principal
    services: Services
    record: AuditRecord
    # The project that governs the repo (or the project endpoint's project), if any.
    project: Project | None = None
    # Where the repo's content lives: the caching proxy or the private hub.
    store: RepoStore | None = None
    # Platform review: the projects the caller may see; None for all.
    within: frozenset[str] | None = None

    @property
    def repo(self) -> RepoRef:
        """The route's repo; only called by handlers of repo routes."""
        assert self.route.ref is not None
        return self.route.ref

    @property
    def revision(self) -> str:
        assert self.route.revision is not None
        return self.route.revision

    @property
    def actor(self) -> RefActor:
        """The caller as the ref protection rules see it (`auth.protections`)."""
        return actor_for(self.principal, self.project)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def hub(self) -> HostedRepoWriter:
        return self.services.hub

    @property
    def snapshot(self) -> AccountsSnapshot:
        """The accounts as this server sees them now (refreshed on every change)."""
        return self.services.authenticator.snapshot

    @property
    def repo_store(self) -> RepoStore:
        """The store authorization chose for the route's repo."""
        assert self.store is not None
        return self.store

    @property
    def hosted(self) -> bool:
        """Whether authorization chose the private hub (not the caching proxy) for the repo."""
        return self.store is self.services.hosted

    @property
    def base_url(self) -> str:
        """The URL prefix for absolute links (`context.public_base_url`)."""
        return public_base_url(self.request, self.settings)

    async def apply_account_change(self, change: Callable[[sqlite3.Connection], Result]) -> Result:
        """An account change; the server's accounts snapshot is reloaded at once."""
        return await self._account_call(change, reload=True)

    async def read_accounts(self, query: Callable[[sqlite3.Connection], Result]) -> Result:
        """An account query (nothing changes, nothing to reload)."""
        return await self._account_call(query, reload=False)

    async def _account_call(
        self, call: Callable[[sqlite3.Connection], Result], *, reload: bool
    ) -> Result:
        try:
            return await self.services.authenticator.apply(call, reload=reload)
        except AccountError as error:
            raise error.as_hub_error() from None
