"""The embedded metadata database (SQLite, WAL) and its migrations."""

from hubproxy.db.database import Database, DatabaseError

__all__ = ["Database", "DatabaseError"]
