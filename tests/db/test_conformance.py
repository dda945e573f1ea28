"""One contract, two engines: what each store promises holds on SQLite and on PostgreSQL.

Each test drives a store's public methods (or the account functions) against the `database`
fixture, which is parametrized over both engines; none of them knows which it runs on.
"""

import asyncio
import sqlite3
from collections.abc import Callable

import pytest

from hubproxy.auth import accounts
from hubproxy.auth.audit import (
    AuditRecord,
    DatabaseAuditSink,
    delete_records,
    query_page,
    query_records,
)
from hubproxy.cache.leases import LeaseLost, Leases
from hubproxy.cache.management import CacheManager
from hubproxy.cache.metadata import MISSING, CacheMetadata, FileRecord
from hubproxy.cache.storage import MemoryBackend, Storage
from hubproxy.cas.index import CasIndex, XetFile
from hubproxy.db import Database
from hubproxy.errors import PreconditionFailed
from hubproxy.hub.discussions import HubDiscussions
from hubproxy.hub.repos import CommitRecord, HubFile, HubRepos
from hubproxy.naming import RepoRef
from hubproxy.signing import Signer

COMMIT = "a" * 40
OTHER_COMMIT = "b" * 40
SHA256 = "c" * 64
LARGE = 5 * 2**30  # above 32 bits: sizes are 64-bit on both engines


async def test_revisions_documents_and_entries(database: Database) -> None:
    metadata = CacheMetadata(database)
    await metadata.open()
    ref = RepoRef("model", "acme/weights")
    assert await metadata.get_revision(ref, "main") is None
    await metadata.put_revision(ref, "main", COMMIT)
    await metadata.put_revision(ref, "main", OTHER_COMMIT)  # a branch moves: replaced
    stored = await CacheMetadata(database).get_revision(ref, "main")
    assert stored is not None
    assert stored.commit == OTHER_COMMIT

    document = b'{"percent": "100%", "q": "?"}'
    await metadata.put_document(f"info:model:acme/weights@{COMMIT}", document)
    await metadata.put_document(f"info:model:acme/weights@{COMMIT}", document + b" ")
    assert await metadata.get_document(f"info:model:acme/weights@{COMMIT}") == document + b" "
    assert await metadata.documents_of(ref, COMMIT) == {
        f"info:model:acme/weights@{COMMIT}": document + b" "
    }

    big = FileRecord(size=LARGE, git_oid="d" * 40, sha256=SHA256)
    await metadata.put_entry(ref, COMMIT, "model.safetensors", big)
    await metadata.put_entry(ref, COMMIT, "absent.txt", MISSING)
    fresh = CacheMetadata(database)
    assert await fresh.get_entry(ref, COMMIT, "model.safetensors") == big
    assert await fresh.get_entry(ref, COMMIT, "absent.txt") == MISSING
    assert dict(await fresh.entries_at(ref, COMMIT)) == {
        "model.safetensors": big,
        "absent.txt": MISSING,
    }


async def test_blobs_chunks_pins_and_eviction_order(database: Database) -> None:
    metadata = CacheMetadata(database)
    await metadata.open()
    await metadata.create_blob("sha256:" + SHA256, LARGE, 1 << 20, from_upstream=True)
    await metadata.create_blob("sha256:" + SHA256, 1, 1, from_upstream=False)  # exists: kept
    await metadata.add_chunk("sha256:" + SHA256, 0, 1 << 20)
    await metadata.add_chunk("sha256:" + SHA256, 0, 1 << 20)  # idempotent
    await metadata.add_chunk("sha256:" + SHA256, 4, 1 << 19)
    blob = await metadata.get_blob("sha256:" + SHA256)
    assert blob is not None
    assert (blob.size, blob.chunk_size, blob.verified) == (LARGE, 1 << 20, False)
    assert blob.chunks == {0: 1 << 20, 4: 1 << 19}
    assert blob.from_upstream is True
    assert await metadata.stored_chunk("sha256:" + SHA256, 4) == 1 << 19
    assert await metadata.stored_bytes() == (1 << 20) + (1 << 19)
    await metadata.mark_verified("sha256:" + SHA256)
    assert await metadata.is_verified("sha256:" + SHA256)
    await metadata.create_blob("gitsha1:" + "e" * 40, 10, 1 << 20, from_upstream=True)
    await metadata.touch_blobs({"sha256:" + SHA256: 1.0, "gitsha1:" + "e" * 40: 2.0})
    assert await metadata.least_recently_used(1) == ["sha256:" + SHA256]

    manager = CacheManager(database, Storage(MemoryBackend()))
    ref = RepoRef("model", "acme/weights")
    assert await manager.pin(ref, None)
    assert await manager.pin(ref, None)  # pinning again refreshes, still one pin
    assert [usage.pins for usage in await manager.list_repos()] in ([], [[""]])
    assert await manager.unpin(ref, None)
    assert not await manager.unpin(ref, None)
    await metadata.remove_blob("sha256:" + SHA256)
    assert await metadata.get_blob("sha256:" + SHA256) is None


async def test_accounts_tokens_members_policy(database: Database) -> None:
    def create(connection: sqlite3.Connection) -> str:
        accounts.create_user(connection, "alice", is_admin=True)
        accounts.create_user(connection, "bob_smith")
        accounts.create_project(connection, "acme", kind="hosted", public=False)
        accounts.add_member(connection, "acme", "bob_smith", "developer")
        accounts.add_member(connection, "acme", "bob_smith", "admin")  # replaced
        _token, secret = accounts.create_token(connection, "bob_smith", scope="write")
        accounts.set_policy(connection, mode="allow-list", patterns=["acme/*"])
        return secret

    secret = await database.run(create)
    with pytest.raises(accounts.AccountConflict):
        await database.run(lambda connection: accounts.create_user(connection, "alice"))
    with pytest.raises(accounts.AccountConflict):  # a project's name is taken for users
        await database.run(lambda connection: accounts.create_user(connection, "ACME"))
    # The failed transactions left the database usable and unchanged.
    snapshot = await database.run(accounts.load_snapshot)
    assert set(snapshot.users) == {"alice", "bob_smith"}
    assert snapshot.users["alice"].is_admin
    assert not snapshot.users["bob_smith"].is_admin
    assert snapshot.roles == {"bob_smith": {"acme": "admin"}}
    assert snapshot.policy.mode == "allow-list"
    assert snapshot.policy.patterns == ("acme/*",)
    assert [token.owner for token in snapshot.tokens_by_hash.values()] == ["bob_smith"]
    assert len(secret) > 20
    members = await database.run(lambda connection: accounts.list_members(connection, "acme"))
    assert members == [("bob_smith", "admin")]
    serial = snapshot.serial
    token_id = next(iter(snapshot.tokens_by_id))
    await database.run(lambda connection: accounts.revoke_token(connection, token_id))
    after = await database.run(accounts.load_snapshot)
    assert after.serial > serial
    assert after.tokens_by_id[token_id].revoked


async def test_hosted_repo_refs_compare_and_swap(database: Database) -> None:
    repos = HubRepos(database)
    ref = RepoRef("model", "Acme/Tiny_Model")
    initial = CommitRecord(COMMIT, "f" * 40, (), "alice", "initial", "", 1.0)
    files = {"README.md": HubFile(12, "1" * 40), "w.bin": HubFile(LARGE, "2" * 40, SHA256)}
    await repos.create_repo(ref, private=True, created_by="alice", initial=initial, files=files)
    found = await repos.find(RepoRef("model", "acme/tiny_model"))  # ids compare case-folded
    assert found is not None
    assert found.private is True
    assert [record.ref.repo_id for record in await repos.list_repos("ACME")] == ["Acme/Tiny_Model"]
    assert await repos.files(ref, COMMIT) == files

    second = CommitRecord(OTHER_COMMIT, "f" * 40, (COMMIT,), "bob", "second", "", 2.0)
    third = CommitRecord("3" * 40, "f" * 40, (COMMIT,), "carol", "racing", "", 3.0)
    await repos.add_commit(ref, "main", second, files, expected_head=COMMIT)
    with pytest.raises(PreconditionFailed):  # main moved on: the stale head is refused
        await repos.add_commit(ref, "main", third, files, expected_head=COMMIT)
    assert await repos.resolve(ref, "main") == OTHER_COMMIT
    assert [commit.sha for commit in await repos.history(ref, OTHER_COMMIT)] == [
        OTHER_COMMIT,
        COMMIT,
    ]
    await repos.create_ref(ref, "tag", "v1", COMMIT)
    assert (await repos.refs(ref))["tag"] == {"v1": COMMIT}


async def test_concurrent_commits_to_one_branch_from_two_handles(
    database_factory: Callable[[], Database],
) -> None:
    """Two handles (two replicas' connections) commit on one branch at once: each commit moves
    the branch or is refused with PreconditionFailed; none is lost."""
    first, second = database_factory(), database_factory()
    await first.open()
    await second.open()
    try:
        ref = RepoRef("model", "acme/race")
        initial = CommitRecord(COMMIT, "f" * 40, (), "alice", "initial", "", 1.0)
        await HubRepos(first).create_repo(
            ref, private=False, created_by="alice", initial=initial, files={}
        )
        replicas = [HubRepos(first), HubRepos(second)]

        async def writer(index: int) -> list[str]:
            landed = []
            repos = replicas[index % 2]
            for attempt in range(10):
                head = await repos.resolve(ref, "main")
                sha = f"{index:02d}{attempt:02d}".ljust(40, "0")
                commit = CommitRecord(sha, "f" * 40, (head,), "w", "t", "", 2.0)
                try:
                    await repos.add_commit(ref, "main", commit, {}, expected_head=head)
                except PreconditionFailed:
                    continue
                landed.append(sha)
            return landed

        results = await asyncio.gather(*(writer(index) for index in range(4)))
        landed = {sha for result in results for sha in result}
        chain = [
            commit.sha
            for commit in await replicas[0].history(ref, await replicas[0].resolve(ref, "main"))
        ]
        assert set(chain) == landed | {COMMIT}  # every landed commit is on the branch
        assert len(chain) == len(landed) + 1
    finally:
        await first.aclose()
        await second.aclose()


async def test_leases_fence_a_lost_owner(database_factory: Callable[[], Database]) -> None:
    first, second = database_factory(), database_factory()
    await first.open()
    await second.open()
    try:
        ours, theirs = Leases(first, seconds=30), Leases(second, seconds=30)
        lease = await ours.acquire("fill:blob")
        assert lease is not None
        assert await theirs.acquire("fill:blob") is None
        assert await theirs.held_elsewhere("fill:blob")
        assert await ours.renew(lease)
        expired = Leases(first, seconds=-1)  # a lease already past its time
        stale = await expired.acquire("fill:other")
        assert stale is not None
        taken = await theirs.acquire("fill:other")
        assert taken is not None
        assert taken.token > stale.token
        assert not await expired.renew(stale)
        metadata = CacheMetadata(first)
        await metadata.create_blob("sha256:" + SHA256, 10, 10, from_upstream=True)
        with pytest.raises(LeaseLost):
            await metadata.add_chunk("sha256:" + SHA256, 0, 10, fence=stale)
        assert await metadata.stored_chunk("sha256:" + SHA256, 0) is None
        await ours.release(lease)
        assert not await theirs.held_elsewhere("fill:blob")
    finally:
        await first.aclose()
        await second.aclose()


async def test_discussions_and_cas_index(database: Database) -> None:
    repos = HubRepos(database)
    ref = RepoRef("dataset", "acme/data")
    initial = CommitRecord(COMMIT, "f" * 40, (), "alice", "initial", "", 1.0)
    await repos.create_repo(ref, private=False, created_by="alice", initial=initial, files={})
    discussions = HubDiscussions(database)
    first = await discussions.create(ref, title="Typo", description="50% off?", author="bob")
    second = await discussions.create(ref, title="Other", description="", author="bob")
    assert (first, second) == (1, 2)
    await discussions.comment(ref, first, "alice", "fixed")
    events = await discussions.events(ref, first)
    assert [event.author for event in events][-1] == "alice"
    assert (await discussions.get(ref, first)).title == "Typo"

    index = CasIndex(database)
    file = XetFile("9" * 64, LARGE, SHA256, ())
    assert await index.register(file, ref)
    assert not await index.register(file, ref)  # known already
    assert await index.repo_file(ref, SHA256) == file
    assert await index.in_repo(ref, "9" * 64)
    assert await index.file_by_sha256(SHA256) == file


async def test_signing_key_is_one_per_database(database_factory: Callable[[], Database]) -> None:
    first, second = database_factory(), database_factory()
    await first.open()
    await second.open()
    try:
        one, other = Signer(first), Signer(second)
        assert await one._secret() == await other._secret()
    finally:
        await first.aclose()
        await second.aclose()


async def test_audit_log_written_by_two_replicas_is_queried_and_pruned_as_one(
    audit_database_factory: Callable[[], Database],
) -> None:
    """Two writers (replicas) append to one audit log; every query, page and prune sees both."""
    first, second = (
        DatabaseAuditSink(audit_database_factory()),
        DatabaseAuditSink(audit_database_factory()),
    )
    await first.open()
    await second.open()
    try:
        await first.emit(
            [
                AuditRecord("download", time=100.0, actor_name="alice", repo_id="acme/x"),
                AuditRecord("upload", "deny", time=101.0, actor_name="bob", repo_id="acme_b/y"),
            ]
        )
        await second.emit(
            [
                AuditRecord("member_add", time=102.0, actor_name="alice", repo_id="acme"),
                AuditRecord("download", time=103.0, actor_name="carol", repo_id="other/z",
                            user_agent="u" * 5000, bytes_sent=LARGE),
            ]
        )  # fmt: skip
        reader = audit_database_factory()
        await reader.open()
        try:
            everything = await reader.read(query_records)
            assert [record.time for record in everything] == [100.0, 101.0, 102.0, 103.0]
            assert everything[3].bytes_sent == LARGE
            assert len(everything[3].user_agent or "") == 512  # bounded on the way in
            denied = await reader.read(lambda connection: query_records(connection, denied=True))
            assert [record.actor_name for record in denied] == ["bob"]
            # `acme` and its repos, not `acme_b`'s (no LIKE wildcard), nor another's.
            about = await reader.read(
                lambda connection: query_records(connection, namespaces={"acme"})
            )
            assert [record.repo_id for record in about] == ["acme/x", "acme"]
            none = await reader.read(lambda connection: query_records(connection, namespaces=set()))
            assert none == []
            newest = await reader.read(lambda connection: query_page(connection, limit=2))
            assert [record.time for _, record in newest] == [103.0, 102.0]
            rest = await reader.read(
                lambda connection: query_page(connection, limit=5, before_serial=newest[-1][0])
            )
            assert [record.time for _, record in rest] == [101.0, 100.0]
            deleted = await reader.run(lambda connection: delete_records(connection, 102.0))
            assert deleted == 2
        finally:
            await reader.aclose()
        assert await second.prune(103.0) == 1
        assert [record.actor_name for record in await first.database.read(query_records)] == [
            "carol"
        ]
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_batch_written_again_is_kept_once_on_postgresql(postgres_url: str) -> None:
    """A batch retried after a commit whose answer was lost (the server went down just then)
    is not recorded twice: `event_id` is unique in the shared table."""
    from hubproxy.db.postgres import PostgresDatabase

    sink = DatabaseAuditSink(PostgresDatabase(postgres_url, durable=True))
    await sink.open()
    try:
        batch = [AuditRecord("download", event_id=f"event-{number}") for number in range(3)]
        await sink.emit(batch)
        await sink.emit([*batch, AuditRecord("download", event_id="event-3")])
        stored = await sink.database.read(query_records)
        assert [record.event_id for record in stored] == [f"event-{n}" for n in range(4)]
    finally:
        await sink.aclose()


def test_every_schema_step_has_a_postgresql_form() -> None:
    """STEPS and POSTGRES_STEPS are numbered alike; a new sqlite-utils step needs a twin in
    `db/postgres_schema.py` TWINS (portable SQL text steps need none)."""
    from hubproxy.db.postgres_schema import POSTGRES_STEPS
    from hubproxy.db.schema import STEPS

    assert len(POSTGRES_STEPS) == len(STEPS)
    missing = [number + 1 for number, step in enumerate(POSTGRES_STEPS) if step is None]
    assert missing == []


def test_store_sql_is_portable() -> None:
    """The stores' SQL runs on both engines: none of SQLite's own phrases in the call sites
    (`INSERT OR REPLACE` is `INSERT ... ON CONFLICT (...) DO UPDATE`, a bare `user` column is
    `"user"`, an integer flag is compared `= 1`)."""
    import re
    from pathlib import Path

    import hubproxy

    sqlite_only = re.compile(
        r"INSERT OR |UPDATE OR |REPLACE INTO|\bNOT (present|held|verified|whole|revoked)\b"
        r"|\bGLOB\b|\bIFNULL\(|\bgroup_concat\(|\b(MAX|MIN)\([^()]*(\([^()]*\))?[^()]*,"
    )
    root = Path(hubproxy.__file__).parent
    # The schema steps and the SQLite-only modules (its files, the separate audit file).
    exempt = {"db/schema.py", "db/migrations.py", "db/postgres_schema.py", "datastore.py"}
    found = [
        f"{path.relative_to(root)}:{number}"
        for path in root.rglob("*.py")
        if str(path.relative_to(root)) not in exempt
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if sqlite_only.search(line)
    ]
    assert found == []


def test_database_url_setting() -> None:
    """`database_url` comes from the environment like every setting, must be PostgreSQL's, and
    its password is never shown."""
    from hubproxy.db.postgres import redacted
    from hubproxy.settings import SettingsError, load_settings

    url = "postgresql://hub:s3cret@db.internal.example:5432/hub"
    settings = load_settings(environ={"HUBPROXY_DATABASE_URL": url})
    assert settings.database_url == url
    assert "s3cret" not in repr(settings)
    assert redacted(url) == "postgresql://hub:***@db.internal.example:5432/hub"
    with pytest.raises(SettingsError, match="postgresql://"):
        load_settings(environ={"HUBPROXY_DATABASE_URL": "mysql://db/hub"})


async def test_postgresql_runs_calls_concurrently(postgres_url: str) -> None:
    """Against a server, each process's calls run on several connections at once: four
    transactions that each wait for the other three all complete (on one connection the first
    would wait for ever, and the barrier breaks)."""
    import threading

    from hubproxy.db.postgres import CONNECTIONS, PostgresDatabase

    database = PostgresDatabase(postgres_url)
    await database.open()
    try:
        barrier = threading.Barrier(CONNECTIONS, timeout=30)

        def meet(connection: sqlite3.Connection) -> int:
            backend = int(connection.execute("SELECT pg_backend_pid()").fetchone()[0])
            barrier.wait()
            return backend

        backends = await asyncio.gather(*(database.read(meet) for _ in range(CONNECTIONS)))
        assert len(set(backends)) == CONNECTIONS  # one connection per thread
    finally:
        await database.aclose()
