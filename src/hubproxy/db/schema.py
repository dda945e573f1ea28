"""Schema steps of the metadata database, applied in order at start (`db/migrations.py`);
`PRAGMA user_version` records how far.

Never edit a released step: append a new one. `MIGRATIONS` are the SQL steps of 0.1.0, kept as
released; later steps are sqlite-utils functions where it can say them (see the README's design
notes for what stays SQL). `layout_version` in the `meta` table is the storage layout
(`cache/layout.py`) this data dir was written with.
"""

import sqlite_utils

from hubproxy.db.migrations import Step, create_schema_history
from hubproxy.naming import canonical_document_key

MIGRATIONS: tuple[str, ...] = (
    # 1: the caching proxy.
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    -- Branch/tag (or '' for the default branch) -> commit, as last learned from upstream.
    CREATE TABLE revisions (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        resolved_at REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id, revision)
    );
    -- Upstream JSON documents (repo info, tree listings, refs...), stored as served.
    CREATE TABLE documents (
        key TEXT PRIMARY KEY,
        body BLOB NOT NULL,
        stored_at REAL NOT NULL
    );
    -- (commit, path) -> file, or a recorded absence; immutable once written.
    CREATE TABLE entries (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        path TEXT NOT NULL,
        present INTEGER NOT NULL,
        size INTEGER,
        git_oid TEXT,
        sha256 TEXT,
        PRIMARY KEY (repo_type, repo_id, commit_sha, path)
    );
    CREATE TABLE blobs (
        blob_id TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        chunk_size INTEGER NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        last_access REAL NOT NULL
    );
    CREATE INDEX blobs_by_last_access ON blobs (last_access);
    -- Chunks committed to storage.
    CREATE TABLE chunks (
        blob_id TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (blob_id, chunk_index)
    ) WITHOUT ROWID;
    """,
    # 2: cache management: pinned repos (and revisions) are never evicted.
    """
    CREATE TABLE pins (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        revision TEXT NOT NULL,  -- '' pins every revision of the repo
        created REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id, revision)
    );
    """,
    # 3: S3 redirect mode: the blob also exists as one whole object (layout.whole_key).
    """
    ALTER TABLE blobs ADD COLUMN whole INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: governance: users, projects and roles, robots, tokens (hashed), upstream policy.
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        fullname TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL DEFAULT '',
        is_admin INTEGER NOT NULL DEFAULT 0,
        disabled INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    );
    CREATE TABLE projects (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('hosted', 'proxy')),
        public INTEGER NOT NULL DEFAULT 0,
        upstream_namespace TEXT,  -- proxy projects: the upstream namespace mirrored
        created REAL NOT NULL
    );
    CREATE TABLE members (
        project TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
        user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        role TEXT NOT NULL,
        PRIMARY KEY (project, user)
    );
    CREATE TABLE robots (
        name TEXT PRIMARY KEY,
        project TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
        permissions TEXT NOT NULL,  -- space-separated actions
        expires REAL,
        revoked INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        created_by TEXT NOT NULL DEFAULT ''
    );
    -- Only the SHA-256 of a secret is stored; `id` is what listings and audit records show.
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        owner_kind TEXT NOT NULL CHECK (owner_kind IN ('user', 'robot')),
        owner TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        scope TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL,
        last_used REAL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_by_owner ON tokens (owner_kind, owner);
    CREATE TABLE policy (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 5: the private hub: hosted repos, their commits (a full file list each), branches and
    # tags, the LFS objects uploaded to each repo, and blobs held for them (never evicted).
    """
    CREATE TABLE hub_repos (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        private INTEGER NOT NULL,
        created REAL NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (repo_type, repo_id)
    );
    CREATE TABLE hub_commits (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        tree_sha TEXT NOT NULL,
        parents TEXT NOT NULL,  -- space-separated shas, first parent first
        author TEXT NOT NULL,
        title TEXT NOT NULL,
        message TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id, commit_sha),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    CREATE TABLE hub_files (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        git_oid TEXT NOT NULL,  -- of the content, or of the LFS pointer file
        sha256 TEXT,  -- LFS files only
        PRIMARY KEY (repo_type, repo_id, commit_sha, path),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE TABLE hub_refs (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('branch', 'tag')),
        name TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        PRIMARY KEY (repo_type, repo_id, kind, name),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    -- An LFS object may be committed to a repo only once its bytes were uploaded to it.
    CREATE TABLE hub_lfs_objects (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id, sha256),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    ALTER TABLE blobs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    """,
)


def canonical_cache_ids(database: sqlite_utils.Database) -> None:
    """Cached (proxied) repos are keyed by their canonical, case-folded id (as huggingface.co
    compares ids): rows and document keys written under another spelling are moved to it, so an
    offline site keeps serving what it cached before the upgrade. Where both spellings were
    cached, the canonical row stays; commits are immutable, so the two say the same."""
    connection = database.conn
    for table in ("revisions", "entries", "pins"):
        connection.execute(
            f"UPDATE OR IGNORE {table} SET repo_id = lower(repo_id)"  # noqa: S608 - fixed names
            " WHERE repo_id <> lower(repo_id)"
        )
        connection.execute(f"DELETE FROM {table} WHERE repo_id <> lower(repo_id)")  # noqa: S608
    keys = [row[0] for row in connection.execute("SELECT key FROM documents")]
    for key in keys:
        canonical = canonical_document_key(key)
        if canonical != key:
            connection.execute(
                "UPDATE OR IGNORE documents SET key = ? WHERE key = ?", (canonical, key)
            )
            connection.execute("DELETE FROM documents WHERE key = ?", (key,))


def blob_provenance(database: sqlite_utils.Database) -> None:
    """Whether every stored chunk of a blob came from upstream (`from_upstream`): only those
    blobs are served through proxied entries from the store. Before this step a blob held for
    a hosted repo may have been uploaded only, so held blobs start as not from upstream (a
    proxied read proves them once against upstream, online); every other stored blob was
    filled from upstream (or imported from a bundle of a cache) and keeps being served."""
    database.table("blobs").add_column("from_upstream", int, not_null_default=1)
    database.conn.execute("UPDATE blobs SET from_upstream = 0 WHERE held = 1")


# 9: the Xet CAS (`hubproxy.cas`). Verified xorbs and the index of their chunks; files
# registered from shards (their terms as JSON `[[xorb hash, first chunk, end chunk, bytes]]`);
# and which repo each file was uploaded to, by sha256: what a commit's `lfsFile` line names.
# SQL text: sqlite-utils cannot say WITHOUT ROWID or composite foreign keys.
XET_CAS = """
    CREATE TABLE xet_xorbs (
        xorb_hash TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        chunk_count INTEGER NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE xet_xorb_chunks (
        xorb_hash TEXT NOT NULL REFERENCES xet_xorbs ON DELETE CASCADE,
        chunk_index INTEGER NOT NULL,
        byte_offset INTEGER NOT NULL,  -- of the chunk's header in the xorb
        compressed_length INTEGER NOT NULL,
        uncompressed_length INTEGER NOT NULL,
        chunk_hash BLOB NOT NULL,  -- 32 raw bytes
        PRIMARY KEY (xorb_hash, chunk_index)
    ) WITHOUT ROWID;
    CREATE TABLE xet_files (
        file_hash TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        terms TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX xet_files_by_sha256 ON xet_files (sha256);
    CREATE TABLE xet_repo_files (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        file_hash TEXT NOT NULL REFERENCES xet_files,
        created REAL NOT NULL,
        PRIMARY KEY (repo_type, repo_id, sha256),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    ) WITHOUT ROWID;
"""


def hub_settings(database: sqlite_utils.Database) -> None:
    """Projects get a display name (`fullname`, what whoami's `orgs` show); hosted repos a
    gated mode ('' not gated, `auto`, `manual`); and a moved repo leaves its old id behind
    (`hub_repo_moves`, case-folded) so that old URLs answer with the new name. Existing
    repos keep the visibility they were created with (`hub_repos.private`)."""
    database.table("projects").add_column("fullname", str, not_null_default="")
    database.table("hub_repos").add_column("gated", str, not_null_default="")
    database.table("hub_repo_moves").create(
        {"repo_type": str, "old_id": str, "new_id": str, "moved": float},
        pk=("repo_type", "old_id"),
        not_null={"repo_type", "old_id", "new_id", "moved"},
    )


def create_leases(database: sqlite_utils.Database) -> None:
    database.table("leases").create(
        {"name": str, "owner": str, "token": int, "expires": float},
        pk="name",
        not_null={"owner", "token", "expires"},
    )


# 12: discussions and pull requests of hosted repos, one number sequence per repo. A pull
# request's `refs/pr/N` is its `head_commit`; `base_commit` is the commit of the target branch
# it started from (what its diff and conflicts are computed against). Events (comments, status
# and title changes, commits pushed) keep their type-specific data as JSON.
# SQL text: sqlite-utils cannot say CHECK constraints or composite foreign keys.
DISCUSSIONS = """
    CREATE TABLE hub_discussions (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        num INTEGER NOT NULL,
        is_pull_request INTEGER NOT NULL,
        title TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('draft', 'open', 'closed', 'merged')),
        author TEXT NOT NULL,
        created REAL NOT NULL,
        base_branch TEXT,
        base_commit TEXT,
        head_commit TEXT,
        merge_commit TEXT,
        PRIMARY KEY (repo_type, repo_id, num),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    CREATE TABLE hub_discussion_events (
        event_id TEXT PRIMARY KEY,
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        num INTEGER NOT NULL,
        type TEXT NOT NULL,
        author TEXT NOT NULL,
        created REAL NOT NULL,
        data TEXT NOT NULL,
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    CREATE INDEX hub_discussion_events_by_discussion
        ON hub_discussion_events (repo_type, repo_id, num, created);
"""


# 13: likes of hosted repos (`hub.likes`): one row per user and repo, gone with the repo.
LIKES = """
    CREATE TABLE hub_likes (
        user_name TEXT NOT NULL,
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (user_name, repo_type, repo_id),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    CREATE INDEX hub_likes_by_repo ON hub_likes (repo_type, repo_id);
"""

# 14: the model registry of hosted repos. An alias is a branch (so `revision="champion"`
# resolves like any branch) recorded in `hub_aliases`: it moves only by promotion, and every
# promotion is a row of `hub_promotions` (from '' when the promotion created it). Protection
# rules are data, per repo (`hub_protections`) or per project (`project_protections`, no
# foreign key: a project is an account record); `immutable` and `via_pr` are 0 or 1.
# Plain portable SQL (TEXT, INTEGER, REAL only), one block.
REGISTRY = """
    CREATE TABLE hub_aliases (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        name TEXT NOT NULL,
        created REAL NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (repo_type, repo_id, name),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    CREATE TABLE hub_promotions (
        promotion_id TEXT PRIMARY KEY,
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        alias TEXT NOT NULL,
        from_commit TEXT NOT NULL,
        to_commit TEXT NOT NULL,
        target TEXT NOT NULL,
        actor TEXT NOT NULL,
        message TEXT NOT NULL,
        created REAL NOT NULL,
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    CREATE INDEX hub_promotions_by_alias ON hub_promotions (repo_type, repo_id, alias, created);
    CREATE TABLE hub_protections (
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        pattern TEXT NOT NULL,
        min_role TEXT NOT NULL,
        immutable INTEGER NOT NULL,
        via_pr INTEGER NOT NULL,
        created REAL NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (repo_type, repo_id, pattern),
        FOREIGN KEY (repo_type, repo_id) REFERENCES hub_repos ON DELETE CASCADE
    );
    CREATE TABLE project_protections (
        project TEXT NOT NULL,
        pattern TEXT NOT NULL,
        min_role TEXT NOT NULL,
        immutable INTEGER NOT NULL,
        via_pr INTEGER NOT NULL,
        created REAL NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (project, pattern)
    );
"""


# 15: webhooks and their deliveries. A delivery row is both the queue (`pending`, claimed by
# one process at a time through `claimed_until`) and, once finished, the webhook's delivery log
# (`delivered`, `failed` or `skipped`, with the last attempt's status, duration and error).
# Portable SQL (TEXT, INTEGER, REAL only): the PostgreSQL port runs it as it is.
WEBHOOKS = """
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        url TEXT NOT NULL,
        watched TEXT NOT NULL,
        domains TEXT NOT NULL,
        secret TEXT,
        disabled INTEGER NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX webhooks_by_owner ON webhooks (owner);
    CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        repo_type TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        private INTEGER NOT NULL,
        gated TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        created REAL NOT NULL,
        next_attempt REAL NOT NULL,
        claimed_by TEXT,
        claimed_until REAL,
        finished REAL,
        response_status INTEGER,
        duration REAL,
        error TEXT
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt);
    CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created);
"""


def shared_audit_log(database: sqlite_utils.Database) -> None:
    """Step 16: the audit log in the metadata store, which only PostgreSQL keeps there (its twin
    in `db/postgres_schema.py`). A SQLite data dir keeps the audit log in `audit.sqlite3`, a
    file of its own, so audit writes never queue behind cache writes: nothing to do here."""


STEPS: tuple[Step, ...] = (
    *MIGRATIONS,
    # 6: which release upgraded the schema from which version to which, and when.
    create_schema_history,
    # 7: cached repos under their canonical ids.
    canonical_cache_ids,
    # 8: which stored blobs came from upstream.
    blob_provenance,
    # 9: the Xet CAS.
    XET_CAS,
    # 10: project display names, gated repos, moved repos.
    hub_settings,
    # 11: leases: which process owns a shared piece of work (`cache/leases.py`).
    create_leases,
    # 12: discussions and pull requests.
    DISCUSSIONS,
    # 13: likes.
    LIKES,
    # 14: aliases, promotions and protection rules (the model registry).
    REGISTRY,
    # 15: webhooks and their delivery queue and log.
    WEBHOOKS,
    # 16: the audit log, shared by replicas (PostgreSQL only; SQLite has audit.sqlite3).
    shared_audit_log,
)
