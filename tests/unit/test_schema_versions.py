"""Schema versions of the metadata database and the audit log: released steps stay as they
were, upgrades are recorded, a newer file is refused untouched, and an audit table with fewer
columns than AuditRecord has fields gains them."""

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hubproxy import __version__
from hubproxy.auth.audit import (
    AUDIT_STEPS,
    FIELDS,
    AuditRecord,
    open_audit_database,
    query_records,
    write_records,
)
from hubproxy.db import Database, DatabaseError
from hubproxy.db.database import in_transaction
from hubproxy.db.migrations import library_view
from hubproxy.db.schema import MIGRATIONS, STEPS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "datadir-v0.1.0" / "data"


def test_released_steps_are_never_edited() -> None:
    # Data dirs in use were made with exactly this text: change it and they diverge silently.
    assert len(MIGRATIONS) == 5
    assert hashlib.sha256("\0".join(MIGRATIONS).encode()).hexdigest() == (
        "879aea9b103dec71aa55663dc42f211ed9b0e663f67c1ea8c43f7f54aecc32aa"
    )
    assert STEPS[: len(MIGRATIONS)] == MIGRATIONS
    assert hashlib.sha256(str(AUDIT_STEPS[0]).encode()).hexdigest() == (
        "f01bc2cf4c878be900adf66864314334cb4af9a0564da0fbd9ddbae2c5da9006"
    )


def test_library_writes_nest_inside_our_transaction() -> None:
    # On Python 3.11 `with connection:` would commit our BEGIN IMMEDIATE early; sqlite-utils 4
    # must use a savepoint instead, so a failure after its insert still rolls everything back.
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE items (name TEXT)")

    def insert_then_fail(transaction: sqlite3.Connection) -> None:
        library_view(transaction).table("items").insert_all([{"name": "a"}, {"name": "b"}])
        raise RuntimeError("after the insert")

    with pytest.raises(RuntimeError):
        in_transaction(connection, insert_then_fail)
    assert connection.execute("SELECT count(*) FROM items").fetchone()[0] == 0
    in_transaction(
        connection,
        lambda transaction: library_view(transaction).table("items").insert({"name": "c"}),
    )
    assert connection.execute("SELECT name FROM items").fetchall() == [("c",)]
    assert not connection.in_transaction


def test_a_new_database_has_every_step_and_its_history(tmp_path: Path) -> None:
    database = Database(tmp_path / "hubproxy.sqlite3")
    database.open_sync()
    version = database.run_sync(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
    history = database.run_sync(
        lambda c: [tuple(row)[:3] for row in c.execute("SELECT * FROM schema_history")]
    )
    database.close_sync()
    assert version == len(STEPS)
    assert history == [(0, len(STEPS), __version__)]


def test_upgrading_a_released_database_is_recorded(tmp_path: Path) -> None:
    shutil.copy(FIXTURE / "hubproxy.sqlite3", tmp_path / "hubproxy.sqlite3")
    database = Database(tmp_path / "hubproxy.sqlite3")
    database.open_sync()
    history = database.run_sync(
        lambda c: [tuple(row)[:3] for row in c.execute("SELECT * FROM schema_history")]
    )
    database.close_sync()
    assert history == [(5, len(STEPS), __version__)]


def _newer(path: Path, version: int) -> str:
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {version}")
    connection.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_newer_metadata_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / "hubproxy.sqlite3"
    shutil.copy(FIXTURE / "hubproxy.sqlite3", path)
    before = _newer(path, len(STEPS) + 1)
    with pytest.raises(DatabaseError) as raised:
        Database(path).open_and_close_sync()
    message = str(raised.value)
    assert f"schema version {len(STEPS) + 1}, newer than this hubproxy" in message
    assert "written by a newer release" in message
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(item.name for item in data_dir.iterdir()) == ["hubproxy.sqlite3"]
    # `hubproxy serve` says so in one line and exits before starting anything.
    completed = subprocess.run(
        [sys.executable, "-m", "hubproxy", "serve", "--data-dir", str(data_dir), "--port", "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 1
    assert "newer than this hubproxy" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_newer_audit_log_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    shutil.copy(FIXTURE / "audit.sqlite3", path)
    before = _newer(path, len(AUDIT_STEPS) + 1)
    with pytest.raises(DatabaseError, match=r"audit log .* newer than this hubproxy"):
        open_audit_database(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(item.name for item in tmp_path.iterdir()) == ["audit.sqlite3"]


def test_an_audit_table_with_fewer_columns_gains_them(tmp_path: Path) -> None:
    # As a release would find a file written before AuditRecord gained `cache`, `reason` and
    # `user_agent`: the columns are added on open, and old records read back with the defaults.
    path = tmp_path / "audit.sqlite3"
    connection = sqlite3.connect(path)
    older_columns = [name for name in FIELDS if name not in ("cache", "reason", "user_agent")]
    connection.execute(
        "CREATE TABLE audit (serial INTEGER PRIMARY KEY AUTOINCREMENT, "
        + ", ".join(f"{name} {'REAL' if name == 'time' else 'TEXT'}" for name in older_columns)
        + ")"
    )
    connection.execute(
        "INSERT INTO audit (action, decision, time, event_id, actor_kind, actor_name, bytes_sent)"
        " VALUES ('login', 'allow', 1.0, 'old-event', 'user', 'alice', 0)"
    )
    connection.commit()
    connection.close()

    audit = open_audit_database(path)
    columns = [row[1] for row in audit.execute("PRAGMA table_info(audit)")]
    assert set(FIELDS) <= set(columns)
    write_records(audit, [AuditRecord("download", reason="new", cache="hit", user_agent="hf/1")])
    records = query_records(audit)
    audit.close()
    assert len(records) == 2
    assert (records[0].event_id, records[0].reason, records[0].cache) == ("old-event", "", None)
    assert (records[1].action, records[1].reason, records[1].cache) == ("download", "new", "hit")
    assert records[1].user_agent == "hf/1"
    # A second open finds nothing to add and changes nothing.
    again = open_audit_database(path)
    assert [row[1] for row in again.execute("PRAGMA table_info(audit)")] == columns
    again.close()


def test_cached_repos_move_to_their_canonical_ids(tmp_path: Path) -> None:
    """A 0.1.0 cache holding `Org/Model` (upstream's spelling) keeps serving it after the upgrade
    keys cached repos by canonical id; paths and queries keep their case."""
    shutil.copy(FIXTURE / "hubproxy.sqlite3", tmp_path / "hubproxy.sqlite3")
    released = sqlite3.connect(tmp_path / "hubproxy.sqlite3", isolation_level=None)
    commit = "a" * 40
    released.executescript(
        """
        INSERT INTO revisions VALUES ('model', 'Org/Model', 'main', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1.0);
        INSERT INTO revisions VALUES ('model', 'org/model', 'main', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 2.0);
        INSERT INTO entries VALUES ('model', 'Org/Model', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'Config.JSON', 1, 2,
                                    'b', NULL);
        INSERT INTO pins VALUES ('model', 'Org/Model', '', 1.0);
        INSERT INTO documents VALUES ('tree:model:Org/Model@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Sub?recursive=1', x'5b5d', 1);
        INSERT INTO documents VALUES ('refs:model:Org/Model?prs=0', x'7b7d', 1);
        """
    )
    released.close()
    database = Database(tmp_path / "hubproxy.sqlite3")
    database.open_sync()

    def read(connection: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
        query = {
            "revisions": "SELECT repo_id, resolved_at FROM revisions WHERE lower(repo_id) = "
            "'org/model'",
            "entries": "SELECT repo_id, path FROM entries WHERE lower(repo_id) = 'org/model'",
            "pins": "SELECT repo_id FROM pins WHERE lower(repo_id) = 'org/model'",
            "documents": "SELECT key FROM documents WHERE lower(key) LIKE '%org/model%'"
            " ORDER BY key",
        }
        return {
            name: [tuple(row) for row in connection.execute(sql)] for name, sql in query.items()
        }

    found = database.run_sync(read)
    database.close_sync()
    assert found == {
        "revisions": [("org/model", 2.0)],  # the canonical row stays where both existed
        "entries": [("org/model", "Config.JSON")],
        "pins": [("org/model",)],
        "documents": [
            ("refs:model:org/model?prs=0",),
            (f"tree:model:org/model@{commit}/Sub?recursive=1",),
        ],
    }


def test_held_blobs_are_not_taken_for_upstream_content_after_the_upgrade(tmp_path: Path) -> None:
    """Step 8: a released data dir keeps serving every cached blob from the store; a blob held
    for a hosted repo may never have come from upstream, so a proxied read proves it first."""
    shutil.copy(FIXTURE / "hubproxy.sqlite3", tmp_path / "hubproxy.sqlite3")
    released = sqlite3.connect(tmp_path / "hubproxy.sqlite3", isolation_level=None)
    cached, held = "sha256:" + "c" * 64, "sha256:" + "d" * 64
    released.execute(
        "INSERT INTO blobs (blob_id, size, chunk_size, verified, last_access, held)"
        " VALUES (?, 1, 1, 1, 1.0, 0), (?, 1, 1, 1, 1.0, 1)",
        (cached, held),
    )
    released.close()
    database = Database(tmp_path / "hubproxy.sqlite3")
    database.open_sync()
    found = database.run_sync(
        lambda connection: dict(
            connection.execute(
                "SELECT blob_id, from_upstream FROM blobs WHERE blob_id IN (?, ?)", (cached, held)
            ).fetchall()
        )
    )
    database.close_sync()
    assert found == {cached: 1, held: 0}
