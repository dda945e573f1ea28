"""The metadata database: SQLite (WAL) in the data dir, or a shared PostgreSQL; and migrations."""

import sys
from typing import TYPE_CHECKING


def _import_sqlite_utils_without_dataframes() -> None:
    """Import sqlite_utils with pandas and numpy hidden from it.

    sqlite_utils imports pandas and numpy when they are installed (for conversions of their
    values, which hubproxy never stores); pandas pulls pyarrow, and together they cost each
    server process ~80 MB of memory and ~2 s of start-up. They are hidden only while
    sqlite_utils is imported, and only if nothing imported them before: other code of the
    same process (a test using `datasets`) still imports them normally."""
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # an import of it fails
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


_import_sqlite_utils_without_dataframes()

from hubproxy.db.database import Database  # noqa: E402
from hubproxy.db.migrations import DatabaseError  # noqa: E402

if TYPE_CHECKING:
    from hubproxy.settings import Settings

__all__ = ["Database", "DatabaseError", "database_for"]


def database_for(settings: "Settings") -> Database:
    """The metadata store `settings` name (not opened yet): PostgreSQL at `database_url` when
    it is set, else the SQLite file in the data dir."""
    if settings.database_url is not None:
        from hubproxy.db.postgres import PostgresDatabase

        return PostgresDatabase(settings.database_url)
    return Database(settings.database_path)
