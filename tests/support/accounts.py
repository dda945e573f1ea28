"""Accounts of a test site created in one batch: one database open, one transaction.

The fixtures of a site need a first admin, projects, members, robots and a token each; made
with `hubproxy admin`, that is one command (and one open and migration check of the database)
per line. `Accounts` records them and `create(data_dir)` writes them all at once through the
same `hubproxy.auth.accounts` functions the admin commands call. The admin command line itself
is tested in `tests/governance/test_admin_cli.py` and wherever a test changes accounts.
"""

import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from hubproxy.auth import accounts
from hubproxy.cli.admin_support import operator
from hubproxy.db import database_for
from hubproxy.settings import Settings
from tests.support.databases import database_url

Step = Callable[[sqlite3.Connection, dict[str, str]], None]


class Accounts:
    """What a site starts with; the methods chain: `Accounts().user("root", admin=True)...`."""

    def __init__(self) -> None:
        self._steps: list[Step] = []

    def user(self, name: str, *, admin: bool = False) -> "Accounts":
        def step(connection: sqlite3.Connection, _: dict[str, str]) -> None:
            accounts.create_user(connection, name, is_admin=admin)

        self._steps.append(step)
        return self

    def users(self, *names: str) -> "Accounts":
        for name in names:
            self.user(name)
        return self

    def project(
        self,
        name: str,
        kind: str = "hosted",
        *,
        public: bool = False,
        upstream_namespace: str | None = None,
    ) -> "Accounts":
        def step(connection: sqlite3.Connection, _: dict[str, str]) -> None:
            accounts.create_project(
                connection, name, kind=kind, public=public, upstream_namespace=upstream_namespace
            )

        self._steps.append(step)
        return self

    def member(self, project: str, user: str, role: str) -> "Accounts":
        self._steps.append(lambda c, _: accounts.add_member(c, project, user, role))
        return self

    def token(
        self,
        label: str,
        user: str,
        scope: str = "write",
        *,
        name: str = "",
        expires_in: float | None = None,
    ) -> "Accounts":
        """A token of `user`, returned by `create` under `label`."""

        def step(connection: sqlite3.Connection, secrets: dict[str, str]) -> None:
            expires = None if expires_in is None else time.time() + expires_in
            _, secrets[label] = accounts.create_token(
                connection, user, name=name, scope=scope, expires=expires
            )

        self._steps.append(step)
        return self

    def robot(self, label: str, project: str, name: str, permissions: Iterable[str]) -> "Accounts":
        """A robot of `project`; its token is returned by `create` under `label`."""
        wanted = tuple(permissions)

        def step(connection: sqlite3.Connection, secrets: dict[str, str]) -> None:
            _, _, secrets[label] = accounts.create_robot(
                connection, project, name, wanted, created_by=operator()
            )

        self._steps.append(step)
        return self

    def create(self, data_dir: Path) -> dict[str, str]:
        """Write everything into `data_dir` (created if new); the token secret of each label."""
        database = database_for(Settings(data_dir=data_dir, database_url=database_url(data_dir)))
        secrets: dict[str, str] = {}

        def apply(connection: sqlite3.Connection) -> None:
            for step in self._steps:
                step(connection, secrets)

        database.open_sync()
        try:
            database.run_sync(apply)
        finally:
            database.close_sync()
        return secrets
