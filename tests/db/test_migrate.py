"""`hubproxy admin migrate` and `hubproxy admin migrate-to postgresql://...`: a data dir's SQLite
metadata and audit log move into PostgreSQL verified, an interrupted copy resumes, and a database
from a newer release is refused on either engine."""

import json
import sqlite3
from pathlib import Path

import psycopg

from hubproxy.auth import accounts
from hubproxy.auth.audit import (
    AuditRecord,
    DatabaseAuditSink,
    open_audit_database,
    query_page,
    write_records,
)
from hubproxy.db import Database
from hubproxy.db.postgres import PostgresDatabase
from hubproxy.db.schema import STEPS
from hubproxy.hub.discussions import HubDiscussions
from hubproxy.hub.repos import CommitRecord, HubFile, HubRepos
from hubproxy.naming import RepoRef
from tests.support.cli import run_cli

REF = RepoRef("model", "acme/moved")
AUDIT_RECORDS = 300


async def _populate(data_dir: Path) -> None:
    database = Database(data_dir / "hubproxy.sqlite3")
    await database.open()

    def people(connection: sqlite3.Connection) -> None:
        accounts.create_user(connection, "alice", is_admin=True)
        accounts.create_project(connection, "acme", kind="hosted")
        accounts.add_member(connection, "acme", "alice", "admin")
        accounts.create_token(connection, "alice", scope="admin")

    await database.run(people)
    initial = CommitRecord("a" * 40, "f" * 40, (), "alice", "initial", "", 1.0)
    files = {f"file-{index}.txt": HubFile(index, f"{index:040d}") for index in range(2500)}
    await HubRepos(database).create_repo(
        REF, private=True, created_by="alice", initial=initial, files=files
    )
    discussions = HubDiscussions(database)
    number = await discussions.create(REF, title="Hello", description="first", author="alice")
    for text in ("one", "two", "three"):
        await discussions.comment(REF, number, "alice", text)
    await database.aclose()
    audit = open_audit_database(data_dir / "audit.sqlite3")
    try:
        records = [
            AuditRecord("download", time=1000.0 + index, repo_id="acme/moved", path=f"{index}")
            for index in range(AUDIT_RECORDS)
        ]
        write_records(audit, records)
    finally:
        audit.close()


async def test_migrate_to_copies_verified_and_resumes(tmp_path: Path, postgres_url: str) -> None:
    data_dir = tmp_path / "data"
    await _populate(data_dir)
    copied = run_cli("admin", "--data-dir", str(data_dir), "migrate-to", postgres_url, "--json")
    assert copied.returncode == 0, copied.stderr
    report = json.loads(copied.stdout)
    assert report["verified"] is True
    assert report["rows"]["hub_files"] == 2500
    assert report["rows"]["audit"] == AUDIT_RECORDS
    assert report["copied"] == report["rows"]

    target = PostgresDatabase(postgres_url)
    await target.open()
    try:
        snapshot = await target.run(accounts.load_snapshot)
        assert set(snapshot.users) == {"alice"}
        assert snapshot.roles == {"alice": {"acme": "admin"}}
        assert len(await HubRepos(target).files(REF, "a" * 40)) == 2500
        events = await HubDiscussions(target).events(REF, 1)
        texts = [event.data.get("latest", {}).get("raw") for event in events]
        assert texts[-3:] == ["one", "two", "three"]  # in insertion order, as on SQLite
        # The audit log, in its order; a record written now is numbered after the copied ones.
        sink = DatabaseAuditSink(PostgresDatabase(postgres_url))
        await sink.open()
        await sink.emit([AuditRecord("download", time=5000.0, path="after")])
        await sink.aclose()
        page = await target.read(lambda connection: query_page(connection, limit=2))
        assert [record.path for _, record in page] == ["after", f"{AUDIT_RECORDS - 1}"]
        assert page[0][0] > page[1][0]
    finally:
        await target.aclose()

    # An interrupted copy: some rows never arrived. Running again copies just those.
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DELETE FROM hub_files WHERE path >= 'file-2000'")
        connection.execute("DELETE FROM audit WHERE path = 'after' OR time >= 1200")
    resumed = run_cli("admin", "--data-dir", str(data_dir), "migrate-to", postgres_url, "--json")
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["verified"] is True
    assert again["copied"]["audit"] == AUDIT_RECORDS - 200
    assert sum(again["copied"].values()) == again["copied"]["hub_files"] + 100


def test_migrate_refuses_a_newer_postgresql_database(tmp_path: Path, postgres_url: str) -> None:
    arguments = ("admin", "--data-dir", str(tmp_path / "replica"), "--database-url", postgres_url)
    created = run_cli(*arguments, "migrate")
    assert created.returncode == 0, created.stderr
    assert f"schema version {len(STEPS)}" in created.stdout
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("UPDATE schema_version SET version = %s", (len(STEPS) + 1,))
    refused = run_cli(*arguments, "migrate")
    assert refused.returncode == 1
    assert "newer" in refused.stderr
    assert "postgres@" in refused.stderr or "database" in refused.stderr
