"""The metadata database: SQLite (WAL) in the data dir, or a shared PostgreSQL; and migrations."""

from typing import TYPE_CHECKING

from hubproxy.db.database import Database
from hubproxy.db.migrations import DatabaseError

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
