"""The embedded metadata database (SQLite, WAL) and its migrations."""

from hubproxy.db.database import Database
from hubproxy.db.migrations import DatabaseError

__all__ = ["Database", "DatabaseError"]
