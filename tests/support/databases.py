"""Which metadata database the suite's servers and commands use: SQLite in each data dir (the
default), or, with `pytest --database postgresql`, a PostgreSQL schema of its own per data dir.

Every hubproxy a test starts on a data dir (a subprocess, the in-process tier, the admin CLI, the
accounts helper) asks `database_url(data_dir)`, so all of them share that data dir's database,
as they share its SQLite file otherwise.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.postgres import PostgresServer

_server: "PostgresServer | None" = None
_urls: dict[Path, str] = {}


def use_postgres(server: "PostgresServer | None") -> None:
    """Give every data dir from now on a PostgreSQL schema on `server` (None: SQLite again)."""
    global _server
    _server = server
    _urls.clear()


def share_database(url: str, *data_dirs: Path) -> None:
    """Give these data dirs (replicas) the one database at `url`, whatever the suite runs on."""
    for data_dir in data_dirs:
        _urls[data_dir.resolve()] = url


def database_url(data_dir: Path) -> str | None:
    """The `database_url` of a data dir: None (SQLite) unless the suite runs on PostgreSQL or
    the data dir was given a shared database (`share_database`)."""
    key = data_dir.resolve()
    if key in _urls:
        return _urls[key]
    if _server is None:
        return None
    if key not in _urls:
        _urls[key] = _server.url()
    return _urls[key]


def database_environment(data_dir: Path) -> dict[str, str]:
    url = database_url(data_dir)
    return {} if url is None else {"HUBPROXY_DATABASE_URL": url}


def command_environment(arguments: Sequence[str]) -> dict[str, str]:
    """The database environment of the data dir a command line names (`--data-dir DIR`)."""
    for index, argument in enumerate(arguments[:-1]):
        if argument == "--data-dir":
            return database_environment(Path(arguments[index + 1]))
    for argument in arguments:
        if argument.startswith("--data-dir="):
            return database_environment(Path(argument.partition("=")[2]))
    return {}


def fetch_all(
    data_dir: Path, sql: str, parameters: Sequence[object] = ()
) -> list[tuple[object, ...]]:
    """The rows of one query (portable SQL, `?` placeholders) on the data dir's database,
    whichever engine holds it: a test looks at a server's records the way the server does."""
    from hubproxy.db import database_for
    from hubproxy.settings import Settings

    database = database_for(Settings(data_dir=data_dir, database_url=database_url(data_dir)))
    database.open_sync()
    try:
        return database.run_sync(
            lambda connection: [tuple(row) for row in connection.execute(sql, parameters)]
        )
    finally:
        database.close_sync()
