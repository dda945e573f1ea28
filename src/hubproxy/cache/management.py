"""Cache management for operators: list, pin, unpin, evict, garbage-collect, verify.

Works directly on a data dir (database + storage), with or without a server running on it:
SQLite in WAL mode lets both write, and a server that finds a chunk gone simply fetches it
again. Every operation returns plain data for the CLI to print as a table or JSON.
"""

import functools
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass

from hubproxy.blob_ids import BlobId
from hubproxy.cache.layout import (
    CHUNKS_PREFIX,
    WHOLE_PREFIX,
    chunk_count,
    chunk_key,
    whole_key,
)
from hubproxy.cache.metadata import ENTRY_BLOB_ID, PINNED_BLOBS
from hubproxy.cache.storage import ObjectNotFound, Storage, StorageError
from hubproxy.db import Database
from hubproxy.naming import RepoRef, canonical_name
from hubproxy.progress import NO_PROGRESS, Progress


@dataclass(frozen=True, slots=True)
class RepoUsage:
    repo_type: str
    repo_id: str
    revisions: dict[str, str]  # branch/tag -> commit, as last resolved
    commits: int
    files: int
    cached_bytes: int
    last_access: float | None
    pins: list[str]  # '' = the whole repo


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    corrupt: list[str]
    incomplete: int


@dataclass(frozen=True, slots=True)
class GcReport:
    orphan_chunks: int
    orphan_bytes: int
    incomplete_objects: int
    dangling_records: int


@dataclass(frozen=True, slots=True)
class ReleaseReport:
    released: int  # held blobs no hosted repo needs any more
    deleted: int  # of those, blobs no cached file uses either: deleted
    deleted_bytes: int


def _known(connection: sqlite3.Connection, ref: RepoRef, revision: str | None) -> bool:
    """Whether the cache has seen `ref` (at `revision`: a branch or tag it resolved, or a
    commit it holds files of), or it is a hosted repo (ids in any letter case)."""
    key = (ref.repo_type, canonical_name(ref.repo_id))
    if revision is None:
        query = (
            "SELECT 1 FROM revisions WHERE repo_type = ? AND repo_id = ?"
            " UNION ALL SELECT 1 FROM entries WHERE repo_type = ? AND repo_id = ?"
            " UNION ALL SELECT 1 FROM hub_repos WHERE repo_type = ? AND lower(repo_id) = ? LIMIT 1"
        )
        return connection.execute(query, key * 3).fetchone() is not None
    query = (
        "SELECT 1 FROM revisions WHERE repo_type = ? AND repo_id = ?"
        " AND (revision = ? OR commit_sha = ?)"
        " UNION ALL SELECT 1 FROM entries WHERE repo_type = ? AND repo_id = ? AND commit_sha = ?"
        " UNION ALL SELECT 1 FROM hub_refs WHERE repo_type = ? AND lower(repo_id) = ?"
        " AND (name = ? OR commit_sha = ?)"
        " UNION ALL SELECT 1 FROM hub_commits WHERE repo_type = ? AND lower(repo_id) = ?"
        " AND commit_sha = ? LIMIT 1"
    )
    parameters = (
        *key, revision, revision, *key, revision, *key, revision, revision, *key, revision,
    )  # fmt: skip
    return connection.execute(query, parameters).fetchone() is not None


class CacheManager:
    """Operations on a cache's database and storage (see module docstring)."""

    def __init__(self, database: Database, storage: Storage) -> None:
        self.database = database
        self.storage = storage

    async def list_repos(self) -> list[RepoUsage]:
        def load(connection: sqlite3.Connection) -> list[RepoUsage]:
            usages: list[RepoUsage] = []
            repos = connection.execute(
                "SELECT repo_type, repo_id FROM entries"
                " UNION SELECT repo_type, repo_id FROM revisions"
                " UNION SELECT repo_type, repo_id FROM pins ORDER BY repo_type, repo_id"
            ).fetchall()
            for repo in repos:
                key = (repo["repo_type"], repo["repo_id"])
                revisions = {
                    row["revision"] or "<default>": row["commit_sha"]
                    for row in connection.execute(
                        "SELECT revision, commit_sha FROM revisions"
                        " WHERE repo_type = ? AND repo_id = ?",
                        key,
                    )
                }
                totals = connection.execute(
                    f"""SELECT COUNT(DISTINCT entries.commit_sha) AS commits,
                               COUNT(DISTINCT entries.path) AS files,
                               MAX(blobs.last_access) AS last_access
                        FROM entries LEFT JOIN blobs ON blobs.blob_id = {ENTRY_BLOB_ID}
                        WHERE entries.present = 1
                          AND entries.repo_type = ? AND entries.repo_id = ?""",  # noqa: S608
                    key,
                ).fetchone()
                cached = connection.execute(
                    f"""SELECT COALESCE(SUM(chunks.size), 0) FROM chunks WHERE chunks.blob_id IN (
                            SELECT {ENTRY_BLOB_ID} FROM entries
                            WHERE entries.present = 1
                              AND entries.repo_type = ? AND entries.repo_id = ?)""",  # noqa: S608
                    key,
                ).fetchone()[0]
                pins = [
                    row["revision"]
                    for row in connection.execute(
                        "SELECT revision FROM pins WHERE repo_type = ? AND repo_id = ?", key
                    )
                ]
                usages.append(
                    RepoUsage(
                        key[0], key[1], revisions, totals["commits"], totals["files"],
                        int(cached), totals["last_access"], pins,
                    )
                )  # fmt: skip
            return usages

        return await self.database.run(load)

    async def cached_files(self, ref: RepoRef, commit: str) -> dict[str, int]:
        """Path -> bytes stored, for every file of `ref` at `commit` the cache knows (what the
        web UI shows as a repo's and a file's cache state)."""
        key = (ref.repo_type, canonical_name(ref.repo_id), commit)

        def load(connection: sqlite3.Connection) -> dict[str, int]:
            rows = connection.execute(
                f"""SELECT entries.path AS path, COALESCE(SUM(chunks.size), 0) AS stored
                    FROM entries LEFT JOIN chunks ON chunks.blob_id = {ENTRY_BLOB_ID}
                    WHERE entries.present = 1 AND entries.repo_type = ?
                      AND entries.repo_id = ? AND entries.commit_sha = ?
                    GROUP BY entries.path""",  # noqa: S608
                key,
            )
            return {row["path"]: int(row["stored"]) for row in rows}

        return await self.database.run(load)

    async def pins_of(self, ref: RepoRef) -> list[str]:
        """The pinned revisions of `ref` ('' = the whole repo)."""
        key = (ref.repo_type, canonical_name(ref.repo_id))

        def load(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute(
                "SELECT revision FROM pins WHERE repo_type = ? AND repo_id = ? ORDER BY revision",
                key,
            )
            return [row["revision"] for row in rows]

        return await self.database.run(load)

    async def pin(self, ref: RepoRef, revision: str | None, *, known_only: bool = False) -> bool:
        """Pin `ref` (at `revision`, or every revision). With `known_only`, only a repo (and
        revision) this cache has seen, or a hosted repo, is pinned; returns whether it was."""

        ref = ref.canonical  # cached repos are keyed by their canonical id

        def store(connection: sqlite3.Connection) -> bool:
            if known_only and not _known(connection, ref, revision):
                return False
            connection.execute(
                "INSERT INTO pins VALUES (?, ?, ?, ?) ON CONFLICT (repo_type, repo_id, revision)"
                " DO UPDATE SET created = excluded.created",
                (ref.repo_type, ref.repo_id, revision or "", time.time()),
            )
            return True

        return await self.database.run(store)

    async def unpin(self, ref: RepoRef, revision: str | None) -> bool:
        ref = ref.canonical

        def store(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "DELETE FROM pins WHERE repo_type = ? AND repo_id = ? AND revision = ?",
                (ref.repo_type, ref.repo_id, revision or ""),
            )
            return cursor.rowcount > 0

        return await self.database.run(store)

    async def evict(self, ref: RepoRef, revision: str | None) -> tuple[int, int]:
        """Drop the cached bytes of a repo's files (at `revision`, or all); returns (blobs, bytes).

        Pinned blobs are kept. File metadata stays, so the next download refetches the bytes.
        """
        ref = ref.canonical

        def select(connection: sqlite3.Connection) -> list[tuple[str, int]]:
            condition = ""
            parameters: list[str] = [ref.repo_type, ref.repo_id]
            if revision is not None:
                condition = (
                    " AND (entries.commit_sha = ? OR entries.commit_sha IN (SELECT commit_sha"
                    " FROM revisions WHERE repo_type = ? AND repo_id = ? AND revision = ?))"
                )
                parameters += [revision, ref.repo_type, ref.repo_id, revision]
            rows = connection.execute(
                f"""SELECT blob_id, chunk_index FROM chunks WHERE blob_id IN (
                        SELECT {ENTRY_BLOB_ID} FROM entries WHERE entries.present = 1
                        AND entries.repo_type = ? AND entries.repo_id = ?{condition})
                    AND blob_id NOT IN ({PINNED_BLOBS})""",  # noqa: S608
                parameters,
            )
            return [(row["blob_id"], row["chunk_index"]) for row in rows]

        chunks = await self.database.run(select)
        removed_bytes = 0
        for blob_text, index in chunks:
            removed_bytes += await self._drop_chunk(blob_text, index)
        blobs = {blob_text for blob_text, _ in chunks}
        for blob_text in blobs:
            await self._drop_blob(blob_text)
        return len(blobs), removed_bytes

    async def _drop_blob(self, blob_text: str) -> None:
        """Forget a blob whose chunks are gone, and its whole object (S3 redirect mode)."""
        await self.storage.delete(whole_key(BlobId.parse(blob_text)))
        await self._execute("DELETE FROM blobs WHERE blob_id = ?", (blob_text,))

    async def _execute(self, sql: str, parameters: tuple[object, ...]) -> None:
        def run(connection: sqlite3.Connection) -> None:
            connection.execute(sql, parameters)

        await self.database.run(run)

    async def _drop_chunk(self, blob_text: str, index: int) -> int:
        size = await self._delete_object(chunk_key(BlobId.parse(blob_text), index))
        await self._execute(
            "DELETE FROM chunks WHERE blob_id = ? AND chunk_index = ?", (blob_text, index)
        )
        return size

    async def gc(self, progress: Progress = NO_PROGRESS) -> GcReport:
        """Delete chunk objects no record points at, crash leftovers, and records of lost chunks."""
        incomplete = await self.storage.remove_incomplete()

        def load(connection: sqlite3.Connection) -> set[tuple[str, int]]:
            return {
                (row["blob_id"], row["chunk_index"])
                for row in connection.execute("SELECT blob_id, chunk_index FROM chunks")
            }

        recorded = await self.database.run(load)
        seen: set[tuple[str, int]] = set()
        orphans = orphan_bytes = 0
        progress.begin("checking stored chunks", len(recorded), unit="chunks")
        async for key in self.storage.list(CHUNKS_PREFIX):
            progress.advance()
            parsed = _parse_chunk_key(key)
            if parsed is not None and parsed in recorded:
                seen.add(parsed)
                continue
            orphans, orphan_bytes = orphans + 1, orphan_bytes + await self._delete_object(key)
        whole_blobs = await self.database.run(
            lambda connection: {
                row[0] for row in connection.execute("SELECT blob_id FROM blobs WHERE whole = 1")
            }
        )
        async for key in self.storage.list(WHOLE_PREFIX):
            blob_text = _parse_whole_key(key)
            if blob_text is not None and blob_text in whole_blobs:
                continue
            orphans, orphan_bytes = orphans + 1, orphan_bytes + await self._delete_object(key)
        dangling = recorded - seen
        for blob_text, index in dangling:
            await self._execute(
                "DELETE FROM chunks WHERE blob_id = ? AND chunk_index = ?", (blob_text, index)
            )
        return GcReport(orphans, orphan_bytes, incomplete, len(dangling))

    async def release_held(self, needed: Collection[str], grace: float) -> ReleaseReport:
        """Stop holding blobs the private hub no longer needs (`needed`: every blob id its
        repos and uploads refer to); delete those no cached file uses either. Blobs stored
        within the last `grace` seconds are left alone: a commit may be about to use them."""

        def load(connection: sqlite3.Connection) -> list[tuple[str, bool]]:
            rows = connection.execute(
                f"""SELECT blob_id, blob_id IN (
                        SELECT {ENTRY_BLOB_ID} FROM entries WHERE entries.present = 1
                    ) AS cached
                    FROM blobs WHERE held = 1 AND last_access < ?""",  # noqa: S608
                (time.time() - grace,),
            )
            return [(row["blob_id"], bool(row["cached"])) for row in rows]

        released = deleted = deleted_bytes = 0
        for blob_text, cached in await self.database.run(load):
            if blob_text in needed:
                continue
            released += 1
            await self._execute("UPDATE blobs SET held = 0 WHERE blob_id = ?", (blob_text,))
            if cached:
                continue  # an ordinary cached blob from now on, evicted like any other
            chunks = await self.database.run(functools.partial(_chunk_indexes, blob=blob_text))
            for index in chunks:
                deleted_bytes += await self._drop_chunk(blob_text, index)
            await self._drop_blob(blob_text)
            deleted += 1
        return ReleaseReport(released, deleted, deleted_bytes)

    async def _delete_object(self, key: str) -> int:
        """Delete one storage object; returns its size (0 if it was already gone)."""
        try:
            size = (await self.storage.stat(key)).size
        except ObjectNotFound:
            return 0
        await self.storage.delete(key)
        return size

    async def verify(self, progress: Progress = NO_PROGRESS) -> VerifyReport:
        """Re-hash every complete blob; drop (and report) those whose content is wrong."""

        def load(connection: sqlite3.Connection) -> list[tuple[str, int, int, int]]:
            rows = connection.execute(
                "SELECT blobs.blob_id, blobs.size, blobs.chunk_size,"
                " COUNT(chunks.chunk_index) AS present"
                " FROM blobs LEFT JOIN chunks USING (blob_id) GROUP BY blobs.blob_id"
            )
            return [(row[0], row[1], row[2], row[3]) for row in rows]

        checked = incomplete = 0
        corrupt: list[str] = []
        blobs = await self.database.run(load)
        progress.begin("verifying cached files", sum(row[1] for row in blobs))
        for blob_text, size, chunk_size, present in blobs:
            blob = BlobId.parse(blob_text)
            if present < chunk_count(size, chunk_size):
                incomplete += 1
                progress.advance(size)
                continue
            checked += 1
            if not await self._content_matches(blob, size, chunk_size, progress):
                corrupt.append(blob_text)
                for index in range(chunk_count(size, chunk_size)):
                    await self._drop_chunk(blob_text, index)
                await self._drop_blob(blob_text)
            else:
                await self._execute("UPDATE blobs SET verified = 1 WHERE blob_id = ?", (blob_text,))
        return VerifyReport(checked, corrupt, incomplete)

    async def _content_matches(
        self, blob: BlobId, size: int, chunk_size: int, progress: Progress
    ) -> bool:
        hasher = blob.hasher(size)
        total = 0
        try:
            for index in range(chunk_count(size, chunk_size)):
                async for piece in self.storage.read(chunk_key(blob, index)):
                    hasher.update(piece)
                    total += len(piece)
                    progress.advance(len(piece))
        except StorageError:
            return False
        return total == size and hasher.hexdigest() == blob.digest


def _parse_whole_key(key: str) -> str | None:
    """`blobs/<algorithm>/ab/cd/<digest>` → blob id; None if not that shape."""
    parts = key.split("/")
    if len(parts) != 5:
        return None
    try:
        return str(BlobId.parse(f"{parts[1]}:{parts[4]}"))
    except ValueError:
        return None


def _parse_chunk_key(key: str) -> tuple[str, int] | None:
    """`chunks/<algorithm>/ab/cd/<digest>/<index>` → (blob id, index); None if not that shape."""
    parts = key.split("/")
    if len(parts) != 6 or not parts[5].isdigit():
        return None
    try:
        blob = BlobId.parse(f"{parts[1]}:{parts[4]}")
    except ValueError:
        return None
    return str(blob), int(parts[5])


def _chunk_indexes(connection: sqlite3.Connection, blob: str) -> list[int]:
    rows = connection.execute("SELECT chunk_index FROM chunks WHERE blob_id = ?", (blob,))
    return [int(row[0]) for row in rows]
