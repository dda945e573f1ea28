"""The CAS tables (schema step 9): xorbs and their chunks, files, and files by repo.

Rows are written only for objects that were verified (`store.XetStore`); a xorb row is written
after its bytes were committed to storage, so a row always has its object.
"""

import json
import sqlite3
import time
from dataclasses import dataclass

from hubproxy.cas.segments import Term
from hubproxy.db import Database
from hubproxy.errors import InvalidShard
from hubproxy.naming import RepoRef
from hubproxy.xet.xorbs import XorbChunk, XorbIndex


@dataclass(frozen=True, slots=True)
class XetFile:
    """A registered file: its Xet hash, size, sha256 and terms."""

    hash: str
    size: int
    sha256: str
    terms: tuple[Term, ...]


def _file_of(row: sqlite3.Row) -> XetFile:
    terms = tuple(Term(*item) for item in json.loads(row["terms"]))
    return XetFile(row["file_hash"], row["size"], row["sha256"], terms)


class CasIndex:
    """Typed access to the `xet_*` tables."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def has_xorb(self, xorb_hash: str) -> bool:
        def load(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT 1 FROM xet_xorbs WHERE xorb_hash = ?", (xorb_hash,)
            ).fetchone()
            return row is not None

        return await self.database.run(load)

    async def add_xorb(self, index: XorbIndex) -> bool:
        """Record a verified, stored xorb; False if it was recorded already."""
        name = index.hex

        def store(connection: sqlite3.Connection) -> bool:
            inserted = connection.execute(
                "INSERT INTO xet_xorbs VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (name, index.size, len(index.chunks), time.time()),
            ).rowcount
            if inserted:
                connection.executemany(
                    "INSERT INTO xet_xorb_chunks VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            name, position, chunk.offset, chunk.compressed_length,
                            chunk.uncompressed_length, chunk.hash,
                        )
                        for position, chunk in enumerate(index.chunks)
                    ],
                )  # fmt: skip
            return bool(inserted)

        return await self.database.run(store)

    async def touch_xorb(self, xorb_hash: str) -> None:
        """Note that a stored xorb was sent again: `cache gc` gives it the grace of a new one
        (its shard is on the way)."""

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE xet_xorbs SET created = ? WHERE xorb_hash = ?", (time.time(), xorb_hash)
            )

        await self.database.run(store)

    async def xorb_chunks(self, xorb_hash: str) -> tuple[XorbChunk, ...] | None:
        """The chunks of a stored xorb, in order; None if it is not stored."""

        def load(connection: sqlite3.Connection) -> tuple[XorbChunk, ...] | None:
            rows = connection.execute(
                "SELECT byte_offset, compressed_length, uncompressed_length, chunk_hash"
                " FROM xet_xorb_chunks WHERE xorb_hash = ? ORDER BY chunk_index",
                (xorb_hash,),
            ).fetchall()
            if not rows:
                return None
            return tuple(XorbChunk(row[0], row[1], row[2], bytes(row[3])) for row in rows)

        return await self.database.run(load)

    async def file(self, file_hash: str) -> XetFile | None:
        def load(connection: sqlite3.Connection) -> XetFile | None:
            row = connection.execute(
                "SELECT * FROM xet_files WHERE file_hash = ?", (file_hash,)
            ).fetchone()
            return None if row is None else _file_of(row)

        return await self.database.run(load)

    async def register(self, file: XetFile, ref: RepoRef) -> bool:
        """Record a verified file as uploaded to `ref`; False if both were recorded already."""
        terms = json.dumps(
            [[term.xorb_hash, term.first_chunk, term.end_chunk, term.size] for term in file.terms]
        )

        def store(connection: sqlite3.Connection) -> bool:
            # Checked again in this transaction: `cache gc` may have deleted a xorb since the
            # shard was verified, and a file must never name a missing one.
            for xorb in {term.xorb_hash for term in file.terms}:
                if not connection.execute(
                    "SELECT 1 FROM xet_xorbs WHERE xorb_hash = ?", (xorb,)
                ).fetchone():
                    raise InvalidShard(f"Xorb {xorb} of file {file.hash} is no longer stored")
            now = time.time()
            added = connection.execute(
                "INSERT INTO xet_files VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (file.hash, file.size, file.sha256, terms, now),
            ).rowcount
            # A later upload of the same content names the newer file hash (same bytes).
            linked = connection.execute(
                "INSERT INTO xet_repo_files VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (repo_type, repo_id, sha256)"
                " DO UPDATE SET file_hash = excluded.file_hash"
                " WHERE xet_repo_files.file_hash <> excluded.file_hash",
                (ref.repo_type, ref.repo_id, file.sha256, file.hash, now),
            ).rowcount
            return bool(added) or bool(linked)

        return await self.database.run(store)

    async def repo_file(self, ref: RepoRef, sha256: str) -> XetFile | None:
        """The file uploaded to `ref` whose content has this sha256, or None."""

        def load(connection: sqlite3.Connection) -> XetFile | None:
            row = connection.execute(
                "SELECT xet_files.* FROM xet_repo_files JOIN xet_files USING (file_hash)"
                " WHERE repo_type = ? AND repo_id = ? AND xet_repo_files.sha256 = ?",
                (ref.repo_type, ref.repo_id, sha256),
            ).fetchone()
            return None if row is None else _file_of(row)

        return await self.database.run(load)

    async def in_repo(self, ref: RepoRef, file_hash: str) -> bool:
        """Whether the file was uploaded to `ref`."""

        def load(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT 1 FROM xet_repo_files"
                " WHERE repo_type = ? AND repo_id = ? AND file_hash = ?",
                (ref.repo_type, ref.repo_id, file_hash),
            ).fetchone()
            return row is not None

        return await self.database.run(load)

    async def file_by_sha256(self, sha256: str) -> XetFile | None:
        """Any registered file with this content (every one reconstructs the same bytes)."""

        def load(connection: sqlite3.Connection) -> XetFile | None:
            row = connection.execute(
                "SELECT * FROM xet_files WHERE sha256 = ? LIMIT 1", (sha256,)
            ).fetchone()
            return None if row is None else _file_of(row)

        return await self.database.run(load)
