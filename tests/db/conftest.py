"""The metadata store on each engine: every test here runs on SQLite and on PostgreSQL."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hubproxy.auth.audit import AuditFileDatabase
from hubproxy.db import Database
from hubproxy.db.postgres import PostgresDatabase


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_factory(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], Database]:
    """New (unopened) handles on one database of `engine`: two of them are two replicas."""
    if engine == "postgresql":
        url = request.getfixturevalue("postgres_url")
        return lambda: PostgresDatabase(url)
    return lambda: Database(tmp_path / "hubproxy.sqlite3")


@pytest.fixture
def audit_database_factory(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], Database]:
    """New (unopened) handles on the audit log of `engine`: the audit file a SQLite data dir
    keeps, or the shared PostgreSQL database (`auth/audit_log.py`)."""
    if engine == "postgresql":
        url = request.getfixturevalue("postgres_url")
        return lambda: PostgresDatabase(url, durable=True)
    return lambda: AuditFileDatabase(tmp_path / "audit.sqlite3")


@pytest.fixture
async def database(database_factory: Callable[[], Database]) -> AsyncIterator[Database]:
    opened = database_factory()
    await opened.open()
    yield opened
    await opened.aclose()
