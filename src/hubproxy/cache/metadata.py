"""What the cache knows, persisted in the database: revisions, documents, file entries, blobs.

Reads on the hot path are answered from memory (`_entries`, `_revisions`, bounded LRU maps
filled from the database on first use); writes go to the database thread. Immutable facts
(a commit's documents and entries, committed chunks) are cached forever; branch and tag
mappings carry the time they were learned so `revisions.py` can apply its TTL.
"""

import sqlite3
import time
from dataclasses import dataclass

from hubproxy.blob_ids import BlobId, blob_id_sql
from hubproxy.cache.layout import LAYOUT_VERSION
from hubproxy.cache.leases import Lease, LeaseLost, holds
from hubproxy.constants import RepoType
from hubproxy.db import Database, DatabaseError
from hubproxy.lru import LruMap
from hubproxy.naming import RepoRef, canonical_document_key, canonical_name


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file at a commit: size and hashes. `sha256` is set for LFS files."""

    size: int
    git_oid: str | None
    sha256: str | None

    @property
    def blob(self) -> BlobId:
        """Where the file's content is stored."""
        return BlobId.of_file(self.sha256, self.git_oid)


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    commit: str
    resolved_at: float


@dataclass(frozen=True, slots=True)
class BlobRecord:
    size: int
    chunk_size: int
    verified: bool
    chunks: dict[int, int]  # chunk index -> size of the committed object
    whole: bool = False  # also stored as one whole object (S3 redirect mode)
    # Every stored chunk came from upstream (or a cache bundle): only then may a proxied entry
    # be served from the store. False once the private hub stored a chunk of it.
    from_upstream: bool = True


# The blob id of an entry row (`BlobId.of_file`, in SQL).
ENTRY_BLOB_ID = blob_id_sql("entries.sha256", "entries.git_oid")
# Blob ids never evicted: files of pinned repos (every commit for a whole-repo pin, else the
# pinned commit or the commit the pinned branch/tag points at) and blobs held for hosted repos.
PINNED_BLOBS = f"""
    SELECT blob_id FROM blobs WHERE held = 1
    UNION
    SELECT {ENTRY_BLOB_ID} FROM entries JOIN pins
      ON entries.repo_type = pins.repo_type AND entries.repo_id = pins.repo_id
    WHERE entries.present = 1 AND (
        pins.revision = '' OR entries.commit_sha = pins.revision OR entries.commit_sha IN (
            SELECT commit_sha FROM revisions WHERE revisions.repo_type = pins.repo_type
              AND revisions.repo_id = pins.repo_id AND revisions.revision = pins.revision))
"""  # noqa: S608 - constant SQL fragments only

# A recorded absence: the commit has no file at this path.
MISSING = FileRecord(size=-1, git_oid=None, sha256=None)
# Absences recorded in the database per repo commit. Clients probe a handful of optional files
# (an offline site answers those 404 from the record); more are somebody's random paths.
MAX_RECORDED_ABSENCES = 1000


def _absences_at(connection: sqlite3.Connection, key: tuple[str, str, str, str]) -> int:
    row = connection.execute(
        "SELECT COUNT(*) FROM entries"
        " WHERE repo_type = ? AND repo_id = ? AND commit_sha = ? AND present = 0",
        key[:3],
    ).fetchone()
    return int(row[0])


class CacheMetadata:
    """Typed access to the cache's tables, with the hot parts held in memory."""

    def __init__(self, database: Database, memory_items: int = 100_000) -> None:
        self.database = database
        self._entries: LruMap[tuple[RepoType, str, str, str], FileRecord] = LruMap(memory_items)
        self._revisions: dict[tuple[RepoType, str, str], RevisionRecord] = {}
        self._documents: LruMap[str, bytes] = LruMap(1024)

    async def open(self) -> None:
        """Check (or record) the storage layout version this data dir uses."""

        def check(connection: sqlite3.Connection) -> None:
            row = connection.execute(
                "SELECT value FROM meta WHERE key = 'layout_version'"
            ).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO meta (key, value) VALUES ('layout_version', ?)",
                    (str(LAYOUT_VERSION),),
                )
            elif int(row["value"]) != LAYOUT_VERSION:
                raise DatabaseError(
                    f"storage layout version {row['value']} is not supported "
                    f"(this hubproxy uses {LAYOUT_VERSION})"
                )

        await self.database.run(check)

    # Revisions ---------------------------------------------------------------------------

    async def get_revision(self, ref: RepoRef, revision: str) -> RevisionRecord | None:
        key = (ref.repo_type, canonical_name(ref.repo_id), revision)
        if key in self._revisions:
            return self._revisions[key]

        def load(connection: sqlite3.Connection) -> RevisionRecord | None:
            row = connection.execute(
                "SELECT commit_sha, resolved_at FROM revisions"
                " WHERE repo_type = ? AND repo_id = ? AND revision = ?",
                key,
            ).fetchone()
            return None if row is None else RevisionRecord(row["commit_sha"], row["resolved_at"])

        record = await self.database.run(load)
        if record is not None:
            self._revisions[key] = record
        return record

    async def put_revision(self, ref: RepoRef, revision: str, commit: str) -> RevisionRecord:
        record = RevisionRecord(commit, time.time())
        key = (ref.repo_type, canonical_name(ref.repo_id), revision)
        previous = self._revisions.get(key)
        self._revisions[key] = record
        if previous is not None and previous.commit == commit:
            return record  # only the freshness changed: memory is enough, skip the write

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO revisions VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (repo_type, repo_id, revision) DO UPDATE SET"
                " commit_sha = excluded.commit_sha, resolved_at = excluded.resolved_at",
                (*key, commit, record.resolved_at),
            )

        await self.database.run(store)
        return record

    # Documents ---------------------------------------------------------------------------

    async def get_document(self, key: str) -> bytes | None:
        key = canonical_document_key(key)
        cached = self._documents.get(key)
        if cached is not None:
            return cached

        def load(connection: sqlite3.Connection) -> bytes | None:
            row = connection.execute("SELECT body FROM documents WHERE key = ?", (key,)).fetchone()
            return None if row is None else bytes(row["body"])

        body = await self.database.run(load)
        if body is not None:
            self._documents.put(key, body)
        return body

    async def put_document(self, key: str, body: bytes) -> None:
        # Bundles written before ids were canonical carry keys in the upstream's spelling.
        key = canonical_document_key(key)
        self._documents.put(key, body)

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO documents VALUES (?, ?, ?) ON CONFLICT (key)"
                " DO UPDATE SET body = excluded.body, stored_at = excluded.stored_at",
                (key, body, time.time()),
            )

        await self.database.run(store)

    # Entries -----------------------------------------------------------------------------

    async def entry_with_sha256(
        self, ref: RepoRef, sha256: str
    ) -> tuple[str, str, FileRecord] | None:
        """A recorded LFS file of the repo with this sha256: (commit, path, record), or None."""

        def load(connection: sqlite3.Connection) -> tuple[str, str, FileRecord] | None:
            row = connection.execute(
                "SELECT commit_sha, path, size, git_oid FROM entries"
                " WHERE repo_type = ? AND repo_id = ? AND sha256 = ? AND present = 1 LIMIT 1",
                (ref.repo_type, canonical_name(ref.repo_id), sha256),
            ).fetchone()
            if row is None:
                return None
            record = FileRecord(row["size"], row["git_oid"], sha256)
            return row["commit_sha"], row["path"], record

        return await self.database.run(load)

    async def get_entry(self, ref: RepoRef, commit: str, path: str) -> FileRecord | None:
        """The file at (commit, path), `MISSING` if recorded absent, None if unknown."""
        key = (ref.repo_type, canonical_name(ref.repo_id), commit, path)
        cached = self._entries.get(key)
        if cached is not None:
            return cached

        def load(connection: sqlite3.Connection) -> FileRecord | None:
            row = connection.execute(
                "SELECT present, size, git_oid, sha256 FROM entries"
                " WHERE repo_type = ? AND repo_id = ? AND commit_sha = ? AND path = ?",
                key,
            ).fetchone()
            if row is None:
                return None
            if not row["present"]:
                return MISSING
            return FileRecord(row["size"], row["git_oid"], row["sha256"])

        record = await self.database.run(load)
        if record is not None:
            self._entries.put(key, record)
        return record

    async def put_entry(self, ref: RepoRef, commit: str, path: str, record: FileRecord) -> None:
        key = (ref.repo_type, canonical_name(ref.repo_id), commit, path)
        self._entries.put(key, record)
        present = record is not MISSING

        def store(connection: sqlite3.Connection) -> None:
            if not present and _absences_at(connection, key) >= MAX_RECORDED_ABSENCES:
                # Random paths must not grow the database without end: past the cap an absence
                # is known from memory only (the bounded `_entries` map).
                return
            connection.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (repo_type, repo_id, commit_sha, path) DO UPDATE SET"
                " present = excluded.present, size = excluded.size,"
                " git_oid = excluded.git_oid, sha256 = excluded.sha256",
                (
                    *key,
                    int(present),
                    record.size if present else None,
                    record.git_oid,
                    record.sha256,
                ),
            )

        await self.database.run(store)

    async def entries_at(self, ref: RepoRef, commit: str) -> list[tuple[str, FileRecord]]:
        """Every recorded file (and absence) of a repo at a commit."""

        def load(connection: sqlite3.Connection) -> list[tuple[str, FileRecord]]:
            rows = connection.execute(
                "SELECT path, present, size, git_oid, sha256 FROM entries"
                " WHERE repo_type = ? AND repo_id = ? AND commit_sha = ? ORDER BY path",
                (ref.repo_type, canonical_name(ref.repo_id), commit),
            )
            return [
                (
                    row["path"],
                    FileRecord(row["size"], row["git_oid"], row["sha256"])
                    if row["present"]
                    else MISSING,
                )
                for row in rows
            ]

        return await self.database.run(load)

    async def documents_of(self, ref: RepoRef, commit: str) -> dict[str, bytes]:
        """Every stored document that describes the repo at this commit."""
        marker = f"{ref.canonical}@{commit}"

        def load(connection: sqlite3.Connection) -> dict[str, bytes]:
            rows = connection.execute(
                # instr() is defined on PostgreSQL too (db/postgres_schema.py).
                "SELECT key, body FROM documents WHERE instr(key, ?) > 0",
                (marker,),
            )
            return {
                row["key"]: bytes(row["body"])
                for row in rows
                if row["key"].split(":", 1)[1].startswith(marker)
            }

        return await self.database.run(load)

    # Blobs and chunks --------------------------------------------------------------------

    async def get_blob(self, blob_id: str) -> BlobRecord | None:
        def load(connection: sqlite3.Connection) -> BlobRecord | None:
            row = connection.execute(
                "SELECT size, chunk_size, verified, whole, from_upstream FROM blobs"
                " WHERE blob_id = ?",
                (blob_id,),
            ).fetchone()
            if row is None:
                return None
            chunks = {
                chunk["chunk_index"]: chunk["size"]
                for chunk in connection.execute(
                    "SELECT chunk_index, size FROM chunks WHERE blob_id = ?", (blob_id,)
                )
            }
            return BlobRecord(
                row["size"],
                row["chunk_size"],
                bool(row["verified"]),
                chunks,
                bool(row["whole"]),
                bool(row["from_upstream"]),
            )

        return await self.database.run(load)

    async def create_blob(
        self, blob_id: str, size: int, chunk_size: int, *, from_upstream: bool = True
    ) -> None:
        """A blob with no chunks yet (nothing if it exists); `from_upstream`: see BlobRecord."""

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO blobs"
                " (blob_id, size, chunk_size, verified, last_access, from_upstream)"
                " VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING",
                (blob_id, size, chunk_size, time.time(), int(from_upstream)),
            )

        await self.database.run(store)

    async def add_chunk(
        self, blob_id: str, index: int, size: int, *, fence: Lease | None = None
    ) -> None:
        """Record a committed chunk; with `fence`, only while that lease is held (else
        `LeaseLost`, nothing recorded)."""

        def store(connection: sqlite3.Connection) -> None:
            if fence is not None and not holds(connection, fence):
                raise LeaseLost(fence.name)
            connection.execute(
                "INSERT INTO chunks VALUES (?, ?, ?)"
                " ON CONFLICT (blob_id, chunk_index) DO UPDATE SET size = excluded.size",
                (blob_id, index, size),
            )

        await self.database.run(store)

    async def stored_chunk(self, blob_id: str, index: int) -> int | None:
        """The size of chunk `index` if it is recorded as stored (a read: never waits)."""

        def load(connection: sqlite3.Connection) -> int | None:
            row = connection.execute(
                "SELECT size FROM chunks WHERE blob_id = ? AND chunk_index = ?", (blob_id, index)
            ).fetchone()
            return None if row is None else int(row[0])

        return await self.database.read(load)

    async def is_verified(self, blob_id: str) -> bool:
        def load(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT verified FROM blobs WHERE blob_id = ?", (blob_id,)
            ).fetchone()
            return bool(row and row[0])

        return await self.database.read(load)

    async def remove_chunk(self, blob_id: str, index: int) -> None:
        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "DELETE FROM chunks WHERE blob_id = ? AND chunk_index = ?", (blob_id, index)
            )
            connection.execute("UPDATE blobs SET verified = 0 WHERE blob_id = ?", (blob_id,))

        await self.database.run(store)

    async def mark_verified(self, blob_id: str) -> None:
        def store(connection: sqlite3.Connection) -> None:
            connection.execute("UPDATE blobs SET verified = 1 WHERE blob_id = ?", (blob_id,))

        await self.database.run(store)

    async def hold(self, blob_id: str) -> None:
        """Never evict this blob: the private hub owns it."""

        def store(connection: sqlite3.Connection) -> None:
            connection.execute("UPDATE blobs SET held = 1 WHERE blob_id = ?", (blob_id,))

        await self.database.run(store)

    async def set_from_upstream(self, blob_id: str, from_upstream: bool) -> None:
        """Record where the blob's stored chunks came from (see BlobRecord)."""

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE blobs SET from_upstream = ? WHERE blob_id = ?",
                (int(from_upstream), blob_id),
            )

        await self.database.run(store)

    async def mark_whole(self, blob_id: str) -> None:
        def store(connection: sqlite3.Connection) -> None:
            connection.execute("UPDATE blobs SET whole = 1 WHERE blob_id = ?", (blob_id,))

        await self.database.run(store)

    async def remove_blob(self, blob_id: str) -> None:
        def store(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM chunks WHERE blob_id = ?", (blob_id,))
            connection.execute("DELETE FROM blobs WHERE blob_id = ?", (blob_id,))

        await self.database.run(store)

    async def touch_blobs(self, accesses: dict[str, float]) -> None:
        def store(connection: sqlite3.Connection) -> None:
            connection.executemany(
                "UPDATE blobs SET last_access = ? WHERE blob_id = ?",
                [(when, blob_id) for blob_id, when in accesses.items()],
            )

        await self.database.run(store)

    async def stored_bytes(self) -> int:
        def load(connection: sqlite3.Connection) -> int:
            return int(
                connection.execute("SELECT COALESCE(SUM(size), 0) FROM chunks").fetchone()[0]
            )

        return await self.database.run(load)

    async def usage(self) -> tuple[int, int]:
        """(blobs with stored chunks, stored bytes of pinned blobs)."""

        def load(connection: sqlite3.Connection) -> tuple[int, int]:
            blobs = connection.execute("SELECT COUNT(DISTINCT blob_id) FROM chunks").fetchone()[0]
            pinned = connection.execute(
                f"SELECT COALESCE(SUM(size), 0) FROM chunks WHERE blob_id IN ({PINNED_BLOBS})"  # noqa: S608
            ).fetchone()[0]
            return int(blobs), int(pinned)

        return await self.database.run(load)

    async def least_recently_used(self, limit: int) -> list[str]:
        """Eviction candidates, oldest access first; blobs of pinned repos are never listed."""

        def load(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute(
                f"SELECT blob_id FROM blobs WHERE blob_id NOT IN ({PINNED_BLOBS})"  # noqa: S608
                " ORDER BY last_access LIMIT ?",
                (limit,),
            )
            return [row["blob_id"] for row in rows]

        return await self.database.run(load)

    async def unverified_complete_blobs(self) -> list[str]:
        """Blobs with every chunk committed but no verification recorded (a crash in between)."""

        def load(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute(
                "SELECT blobs.blob_id FROM blobs JOIN chunks USING (blob_id)"
                " WHERE blobs.verified = 0"
                " GROUP BY blobs.blob_id, blobs.size"
                " HAVING SUM(chunks.size) = blobs.size"
            )
            return [row["blob_id"] for row in rows]

        return await self.database.run(load)
