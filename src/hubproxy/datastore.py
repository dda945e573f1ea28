"""The data dir as a whole: its schema versions, online backups and their restores.

A backup is a plain directory:

    manifest.json          written last (a directory without it is no backup): format,
                           versions (hubproxy, metadata and audit schema, storage layout),
                           counts, and the size and sha256 of every file below
    hubproxy.sqlite3       the metadata database, copied with SQLite's online backup API
    audit.sqlite3          the audit log, likewise
    storage/<chunk key>    the chunks of every blob held for a hosted repo (local storage)
    storage/xorbs/…        every xorb of the Xet CAS (local storage): the files uploaded
                           through Xet live only there, and the database's `xet_*` tables
                           say how they reconstruct

It is taken while the server runs. The backup API copies a consistent snapshot of each
database while others write (in WAL mode a reader never blocks the writer); chunks are
immutable once committed and held blobs are never evicted, so the chunks that the snapshot
lists are copied after it. Cached (proxied) blobs are not copied, as upstream still has them:
the copied database forgets them (their blob and chunk rows are dropped; file entries and
revisions stay), so the restored server fetches them again on first use. With S3 storage no
chunk is copied: every blob stays in the bucket, which the restored data dir must use too.

A restore goes into an empty data dir only, and verifies the whole backup (versions, and every
file against its size and sha256) before it writes anything.
"""

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubproxy import __version__
from hubproxy.auth.audit import AUDIT_STEPS
from hubproxy.blob_ids import BlobId
from hubproxy.cache.layout import LAYOUT_VERSION, chunk_key, xorb_key
from hubproxy.db.migrations import DatabaseError, check_not_newer, schema_version
from hubproxy.db.schema import STEPS
from hubproxy.settings import Settings

BACKUP_FORMAT = 1
MANIFEST = "manifest.json"
DATABASE_FILE = "hubproxy.sqlite3"
AUDIT_FILE = "audit.sqlite3"
STORAGE_DIR = "storage"
PIECE = 1024 * 1024
# Whole files per thread: measured faster than aiofiles' one thread hop per read and write.
COPY_THREADS = 4
COUNTED_TABLES = (
    "users", "tokens", "projects", "members", "robots",
    "hub_repos", "hub_refs", "hub_commits", "hub_files",
)  # fmt: skip


class BackupError(Exception):
    """A backup cannot be written or restored; the message says why."""


@dataclass
class BackupReport:
    """What a backup or restore did; `notes` are for the operator."""

    directory: Path
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def check_versions(settings: Settings) -> None:
    """Raise DatabaseError if a database of the data dir was written by a newer hubproxy.

    Reads only the schema version: nothing is created or changed."""
    for path, steps, what in (
        (settings.database_path, STEPS, "database"),
        (settings.audit_path, AUDIT_STEPS, "audit log"),
    ):
        if path.exists():
            with _reader(path) as connection:
                check_not_newer(schema_version(connection), steps, f"{what} {path}")


@contextlib.contextmanager
def _reader(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(str(path), isolation_level=None)
    connection.row_factory = sqlite3.Row
    try:
        connection.execute("PRAGMA busy_timeout=10000")
        yield connection
    finally:
        connection.close()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while piece := source.read(PIECE):
            digest.update(piece)
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> tuple[int, str]:
    """Copy `source` to `target` through a temp name; its size and sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as reader, open(temporary, "wb") as writer:
            while piece := reader.read(PIECE):
                digest.update(piece)
                writer.write(piece)
                size += len(piece)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def _snapshot(source: Path, target: Path) -> None:
    """An online, consistent copy of the SQLite file `source` at `target` (one file, no WAL)."""
    with _reader(source) as reader:
        writer = sqlite3.connect(str(target), isolation_level=None)
        try:
            reader.backup(writer)
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()


def _count(connection: sqlite3.Connection, table: str) -> int:
    count: int = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
    return count


def _prepare_target(directory: Path, force: bool) -> None:
    if directory.exists() and any(directory.iterdir()):
        if not force:
            raise BackupError(f"{directory} is not empty (--force replaces the backup in it)")
        # Only what a backup consists of is replaced; anything else in the directory stays.
        (directory / MANIFEST).unlink(missing_ok=True)
        for name in (DATABASE_FILE, AUDIT_FILE):
            (directory / name).unlink(missing_ok=True)
        shutil.rmtree(directory / STORAGE_DIR, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def backup(settings: Settings, directory: Path, *, force: bool = False) -> BackupReport:
    """Back up the data dir of `settings` into `directory` while a server may be running."""
    if not settings.database_path.exists():
        raise BackupError(f"no hubproxy database in {settings.data_dir}")
    try:
        check_versions(settings)
    except DatabaseError as error:
        raise BackupError(str(error)) from None
    _prepare_target(directory, force)
    database_copy = directory / DATABASE_FILE
    _snapshot(settings.database_path, database_copy)
    local = settings.storage == "local"
    manifest: dict[str, Any] = {
        "format": BACKUP_FORMAT,
        "created": time.time(),
        "hubproxy_version": __version__,
        "layout_version": LAYOUT_VERSION,
        "storage": settings.storage,
        "source": str(settings.data_dir),
    }
    with _reader(database_copy) as copy:
        manifest["metadata_schema_version"] = schema_version(copy)
        held = copy.execute(
            "SELECT chunks.blob_id, chunks.chunk_index, chunks.size FROM chunks"
            " JOIN blobs ON blobs.blob_id = chunks.blob_id WHERE blobs.held = 1"
            " ORDER BY chunks.blob_id, chunks.chunk_index"
        ).fetchall()
        counts = {table: _count(copy, table) for table in COUNTED_TABLES}
        counts["held_blobs"] = copy.execute("SELECT count(*) FROM blobs WHERE held = 1").fetchone()[
            0
        ]
        xorbs = copy.execute("SELECT xorb_hash, size FROM xet_xorbs ORDER BY xorb_hash").fetchall()
        counts["xet_files"] = _count(copy, "xet_files")
        if local:
            # The cached blobs' chunks are not copied: the restored cache must not believe
            # it has them.
            copy.execute("BEGIN IMMEDIATE")
            copy.execute(
                "DELETE FROM chunks WHERE blob_id IN (SELECT blob_id FROM blobs WHERE held = 0)"
            )
            left_out = copy.execute("DELETE FROM blobs WHERE held = 0").rowcount
            copy.execute("COMMIT")
            counts["cached_blobs_left_out"] = left_out
    if settings.audit_path.exists():
        _snapshot(settings.audit_path, directory / AUDIT_FILE)
        with _reader(directory / AUDIT_FILE) as audit:
            manifest["audit_schema_version"] = schema_version(audit)
            counts["audit_records"] = _count(audit, "audit")
    chunks: list[dict[str, Any]] = []
    copied_xorbs: list[dict[str, Any]] = []
    if local:
        chunks = _copy_chunks(settings, directory, held)
        copied_xorbs = _copy_xorbs(settings, directory, xorbs)
    counts["chunks"] = len(chunks)
    counts["chunk_bytes"] = sum(item["size"] for item in chunks)
    counts["xorbs"] = len(copied_xorbs)
    counts["xorb_bytes"] = sum(item["size"] for item in copied_xorbs)
    manifest["counts"] = counts
    manifest["files"] = [
        _file_item(directory, name)
        for name in (DATABASE_FILE, AUDIT_FILE)
        if (directory / name).exists()
    ]
    manifest["chunks"] = chunks
    manifest["xorbs"] = copied_xorbs
    temporary = directory / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(temporary, directory / MANIFEST)
    report = BackupReport(directory, manifest)
    if local:
        report.notes.append(
            "cached (proxied) files are not in the backup: the restored server fetches them "
            "from upstream again on first use"
        )
    else:
        report.notes.append(
            f"storage is {settings.storage}: the blobs stay in the bucket and are not in the "
            "backup; restore onto a data dir that uses the same bucket and prefix"
        )
    return report


def _file_item(directory: Path, name: str) -> dict[str, Any]:
    path = directory / name
    return {"path": name, "size": path.stat().st_size, "sha256": _sha256_of(path)}


def _copy_chunks(
    settings: Settings, directory: Path, held: list[sqlite3.Row]
) -> list[dict[str, Any]]:
    def copy_one(row: sqlite3.Row) -> dict[str, Any]:
        key = chunk_key(BlobId.parse(row["blob_id"]), row["chunk_index"])
        try:
            size, digest = _copy(settings.storage_path / key, directory / STORAGE_DIR / key)
        except FileNotFoundError:
            raise BackupError(
                f"chunk {row['chunk_index']} of {row['blob_id']} is missing from "
                f"{settings.storage_path}: the storage does not hold what the database lists"
            ) from None
        if size != row["size"]:
            raise BackupError(f"chunk {key} has {size} bytes, the database says {row['size']}")
        return {"blob": row["blob_id"], "index": row["chunk_index"], "size": size, "sha256": digest}

    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="hubproxy-backup") as pool:
        return list(pool.map(copy_one, held))


def _copy_xorbs(
    settings: Settings, directory: Path, xorbs: list[sqlite3.Row]
) -> list[dict[str, Any]]:
    """Copy every recorded xorb (immutable once recorded; a row always has its object)."""

    def copy_one(row: sqlite3.Row) -> dict[str, Any]:
        key = xorb_key(row["xorb_hash"])
        try:
            size, digest = _copy(settings.storage_path / key, directory / STORAGE_DIR / key)
        except FileNotFoundError:
            raise BackupError(
                f"xorb {row['xorb_hash']} is missing from {settings.storage_path}: the storage"
                " does not hold what the database lists"
            ) from None
        if size != row["size"]:
            raise BackupError(f"xorb {key} has {size} bytes, the database says {row['size']}")
        return {"hash": row["xorb_hash"], "size": size, "sha256": digest}

    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="hubproxy-backup") as pool:
        return list(pool.map(copy_one, xorbs))


# Restore ---------------------------------------------------------------------------------


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the backup in `directory`, if this hubproxy can restore it."""
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{directory} holds no readable backup manifest: {error}") from None
    if manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not supported")
    if manifest.get("layout_version") != LAYOUT_VERSION:
        raise BackupError(f"storage layout {manifest.get('layout_version')!r} is not supported")
    for key, steps, what in (
        ("metadata_schema_version", STEPS, "database"),
        ("audit_schema_version", AUDIT_STEPS, "audit log"),
    ):
        try:
            check_not_newer(int(manifest.get(key, 0)), steps, f"the backup's {what}")
        except DatabaseError as error:
            raise BackupError(str(error)) from None
    return manifest


Planned = tuple[Path, str, dict[str, Any]]


def _planned_files(directory: Path, manifest: dict[str, Any]) -> list[Planned]:
    """(file in the backup, relative target, manifest item); paths come from fixed names and
    `layout.chunk_key` / `layout.xorb_key`, never from the manifest's text."""
    planned: list[Planned] = []
    for item in manifest.get("files", []):
        if item.get("path") not in (DATABASE_FILE, AUDIT_FILE):
            raise BackupError(f"unexpected file {item.get('path')!r} in the manifest")
        planned.append((directory / item["path"], item["path"], item))
    if not any(relative == DATABASE_FILE for _, relative, _ in planned):
        raise BackupError("the backup has no metadata database")
    for item in manifest.get("chunks", []):
        try:
            key = chunk_key(BlobId.parse(str(item["blob"])), int(item["index"]))
        except (KeyError, ValueError):
            raise BackupError(f"bad chunk in the manifest: {item!r}") from None
        planned.append((directory / STORAGE_DIR / key, f"{STORAGE_DIR}/{key}", item))
    for item in manifest.get("xorbs", []):
        try:
            key = xorb_key(str(item["hash"]))
        except (KeyError, ValueError):
            raise BackupError(f"bad xorb in the manifest: {item!r}") from None
        planned.append((directory / STORAGE_DIR / key, f"{STORAGE_DIR}/{key}", item))
    return planned


def restore(directory: Path, settings: Settings) -> BackupReport:
    """Restore the backup in `directory` into the (empty) data dir of `settings`."""
    target = settings.data_dir
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"data dir {target} is not empty: restore only into a new data dir")
    manifest = read_manifest(directory)
    planned = _planned_files(directory, manifest)
    has_chunks = bool(manifest.get("chunks")) or bool(manifest.get("xorbs"))
    if has_chunks and settings.storage != "local":
        raise BackupError(
            f"the backup holds local chunks; this data dir uses {settings.storage} storage"
        )
    if has_chunks and settings.storage_path.exists() and any(settings.storage_path.iterdir()):
        raise BackupError(f"storage dir {settings.storage_path} is not empty")

    def verify(plan: Planned) -> None:
        path, relative, item = plan
        if not path.is_file():
            raise BackupError(f"{relative} is missing from the backup: nothing was restored")
        if path.stat().st_size != item["size"] or _sha256_of(path) != item["sha256"]:
            raise BackupError(f"{relative} is corrupt in the backup: nothing was restored")

    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="hubproxy-restore") as pool:
        list(pool.map(verify, planned))

        def place(plan: Planned) -> None:
            path, relative, item = plan
            if relative.startswith(f"{STORAGE_DIR}/"):
                destination = settings.storage_path / relative.removeprefix(f"{STORAGE_DIR}/")
            else:
                destination = target / relative
            _size, digest = _copy(path, destination)
            if digest != item["sha256"]:
                raise BackupError(f"{relative} changed while it was restored")

        target.mkdir(parents=True, exist_ok=True)
        # Chunks first, databases last: a restore cut short leaves no database that names
        # chunks it lacks.
        list(pool.map(place, [plan for plan in planned if plan[1].startswith(STORAGE_DIR)]))
        for plan in planned:
            if not plan[1].startswith(STORAGE_DIR):
                place(plan)
    report = BackupReport(directory, manifest)
    if not has_chunks and manifest.get("storage") != "local":
        report.notes.append(
            f"the backup was taken with {manifest.get('storage')} storage: its blobs are in "
            "that bucket, which this data dir must use (same bucket and prefix)"
        )
    return report
