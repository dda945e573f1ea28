"""Garbage collection of the CAS (`hubproxy cache gc`): files and xorbs nothing needs any more.

A registered file is needed while a hosted repo it was uploaded to still exists (its
`xet_repo_files` row; deleting the repo deletes that row) or while any hosted repo's history
or uploaded LFS objects name its sha256 (`hub.repos.needed_blobs`). A xorb is needed while a
needed file's terms name it, and for `grace` seconds after it was stored or sent again: an
upload sends its xorbs before the shard that registers them, and hf_xet keeps the shards of
its own uploads for three weeks (xet-core's `MDB_SHARD_LOCAL_CACHE_EXPIRATION`), answering its
dedup questions from them: within that time it may upload the same content again as a shard
alone, naming xorbs it sent earlier, and a shard naming a deleted xorb is refused. Hence the
CLI's default grace of 21 days. Everything else is deleted, rows
first, then the object, so that no row ever names a missing object. Objects under `xorbs/`
with no row at all (a crash between storing and recording a xorb) go too, each re-checked just
before it is deleted, but only while no server runs on the data dir.
"""

import functools
import json
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass

from hubproxy.cache.layout import XORBS_PREFIX, xorb_key
from hubproxy.cache.storage import ObjectNotFound, Storage
from hubproxy.db import Database
from hubproxy.xet.hashing import HEX_PATTERN


@dataclass(frozen=True, slots=True)
class XetGcReport:
    """What a collection deleted."""

    files: int  # registered files no repo needs
    xorbs: int  # xorbs no needed file uses (with their objects)
    xorb_bytes: int
    orphan_objects: int  # objects under `xorbs/` no row recorded


def _collect_rows(
    connection: sqlite3.Connection, needed_sha256: Collection[str], stored_before: float
) -> tuple[int, list[tuple[str, int]]]:
    """Delete the rows of unneeded files and xorbs (in the caller's one transaction, which a
    shard registration cannot interleave with: `index.CasIndex.register` checks its xorbs in
    its own); the number of files, and the xorbs (hash, size) whose objects are to go next."""
    unlinked = connection.execute(
        "SELECT file_hash, sha256 FROM xet_files WHERE file_hash NOT IN"
        " (SELECT file_hash FROM xet_repo_files)"
    ).fetchall()
    dropped = [(row[0],) for row in unlinked if row[1] not in needed_sha256]
    connection.executemany("DELETE FROM xet_files WHERE file_hash = ?", dropped)
    used: set[str] = set()
    for (terms,) in connection.execute("SELECT terms FROM xet_files"):
        used.update(term[0] for term in json.loads(terms))
    candidates = connection.execute(
        "SELECT xorb_hash, size FROM xet_xorbs WHERE created < ?", (stored_before,)
    ).fetchall()
    unused = [(row[0], row[1]) for row in candidates if row[0] not in used]
    # Their chunk rows go with them (ON DELETE CASCADE).
    connection.executemany(
        "DELETE FROM xet_xorbs WHERE xorb_hash = ?", [(name,) for name, _ in unused]
    )
    return len(dropped), unused


def _recorded(connection: sqlite3.Connection, xorb_hash: str) -> bool:
    row = connection.execute("SELECT 1 FROM xet_xorbs WHERE xorb_hash = ?", (xorb_hash,)).fetchone()
    return row is not None


async def collect(
    database: Database,
    storage: Storage,
    needed_sha256: Collection[str],
    grace: float,
    *,
    sweep_unrecorded: bool,
) -> XetGcReport:
    """Delete the files and xorbs nothing needs (see the module docstring). `needed_sha256`:
    the sha256 of every LFS file a hosted repo's history or uploads name. Objects no row
    records are deleted only with `sweep_unrecorded`, which is safe only while no server
    runs on the data dir (it could be between storing a xorb and recording it)."""
    stored_before = time.time() - grace
    needed = frozenset(needed_sha256)

    files, unused = await database.run(
        functools.partial(_collect_rows, needed_sha256=needed, stored_before=stored_before)
    )
    deleted_bytes = 0
    for name, size in unused:
        await storage.delete(xorb_key(name))
        deleted_bytes += size
    orphans = 0
    async for key in storage.list(XORBS_PREFIX):
        name = key.rsplit("/", 1)[-1]
        if not HEX_PATTERN.match(name) or key != xorb_key(name):
            continue  # not a xorb key: nothing of ours to judge
        if not sweep_unrecorded or await database.run(functools.partial(_recorded, xorb_hash=name)):
            continue
        try:
            await storage.stat(key)
        except ObjectNotFound:
            continue
        orphans += 1
        await storage.delete(key)
    return XetGcReport(files, len(unused), deleted_bytes, orphans)
