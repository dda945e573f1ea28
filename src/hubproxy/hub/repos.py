"""`HubRepos`: the hosted repos' records in the metadata database.

A commit row carries its whole file list (`hub_files`), so the files of a commit are one
indexed query and never a walk through history. Commits are immutable: their file lists (and
the directories and tree ids derived from them) are kept in memory once read. Branches move
only by compare-and-swap on the commit they pointed at.
"""

import functools
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hubproxy.blob_ids import BlobId, blob_id_sql
from hubproxy.constants import COMMIT_SHA_PATTERN
from hubproxy.db import Database
from hubproxy.errors import Conflict, PreconditionFailed, RepoNotFound, RevisionNotFound
from hubproxy.hub.gitobjects import directories, tree_ids
from hubproxy.lru import LruMap
from hubproxy.naming import RepoRef, canonical_name

SNAPSHOTS_IN_MEMORY = 64
BRANCH, TAG = "branch", "tag"
REF_PREFIXES = {BRANCH: "refs/heads/", TAG: "refs/tags/"}
# A commit named by the first 7 to 39 hex digits of its sha.
SHORT_SHA_PATTERN = re.compile(r"[0-9a-f]{7,39}")
DEFAULT_BRANCH = "main"


@dataclass(frozen=True, slots=True)
class HubFile:
    """A file of a hosted commit: its size, git blob id and (LFS files) content sha256."""

    size: int
    git_oid: str
    sha256: str | None = None

    @property
    def blob_id(self) -> str:
        """Where its content is stored (`stores.ContentStore`)."""
        return str(BlobId.of_file(self.sha256, self.git_oid))


def tree_ids_of(files: Mapping[str, HubFile]) -> dict[str, str]:
    """The git tree id of every directory ('' is the root) of a file list."""
    return tree_ids({path: file.git_oid for path, file in files.items()})


class Snapshot:
    """The files of one commit, and the directories and tree ids derived from them once."""

    def __init__(self, files: dict[str, HubFile]) -> None:
        self.files = files

    @functools.cached_property
    def directories(self) -> set[str]:
        return directories(self.files)

    @functools.cached_property
    def trees(self) -> dict[str, str]:
        return tree_ids_of(self.files)


@dataclass(frozen=True, slots=True)
class CommitRecord:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: str
    title: str
    message: str
    created: float


@dataclass(frozen=True, slots=True)
class RepoRecord:
    ref: RepoRef
    private: bool
    created: float
    created_by: str
    # '' (not gated), "auto" or "manual".
    gated: str = ""


def _record_of(row: sqlite3.Row) -> RepoRecord:
    return RepoRecord(
        RepoRef(row["repo_type"], row["repo_id"]),
        bool(row["private"]),
        row["created"],
        row["created_by"],
        row["gated"],
    )


# Tables whose rows belong to one hosted repo (renamed together by a move).
_REPO_TABLES = (
    "hub_commits", "hub_files", "hub_refs", "hub_lfs_objects", "xet_repo_files",
    "hub_discussions", "hub_discussion_events", "hub_likes", "hub_aliases", "hub_promotions",
    "hub_protections",
)  # fmt: skip
# `refs/pr/N`: pull request N's head (`hub.discussions`).
PULL_REQUEST_REF = re.compile(r"refs/pr/([1-9][0-9]{0,8})")
# What runs inside a commit's transaction (a pull request opened, its head moved, merged).
InTransaction = Callable[[sqlite3.Connection], None]


def _key(ref: RepoRef) -> tuple[str, str]:
    return (ref.repo_type, ref.repo_id)


def _commit_of(row: sqlite3.Row) -> CommitRecord:
    return CommitRecord(
        row["commit_sha"],
        row["tree_sha"],
        tuple(row["parents"].split()),
        row["author"],
        row["title"],
        row["message"],
        row["created"],
    )


def _insert_commit(
    connection: sqlite3.Connection,
    ref: RepoRef,
    commit: CommitRecord,
    files: Mapping[str, HubFile],
) -> None:
    connection.execute(
        "INSERT INTO hub_commits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            *_key(ref), commit.sha, commit.tree, " ".join(commit.parents), commit.author,
            commit.title, commit.message, commit.created,
        ),
    )  # fmt: skip
    connection.executemany(
        "INSERT INTO hub_files VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [
            (*_key(ref), commit.sha, path, file.size, file.git_oid, file.sha256)
            for path, file in files.items()
        ],
    )


# Hosted repos of one namespace (`_in_namespace` gives the parameter).
# lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
_IN_NAMESPACE = "lower(repo_id) LIKE lower(?) ESCAPE '\\'"


def _in_namespace(namespace: str) -> str:
    # '_' is a LIKE wildcard and may appear in names; '%' and '\\' may not.
    return namespace.replace("_", "\\_") + "/%"


def repos_in_namespace(connection: sqlite3.Connection, namespace: str) -> int:
    """How many hosted repos a namespace (project) holds; for the admin CLI's transactions."""
    query = f"SELECT COUNT(*) FROM hub_repos WHERE {_IN_NAMESPACE}"  # noqa: S608
    return int(connection.execute(query, (_in_namespace(namespace),)).fetchone()[0])


def delete_namespace(connection: sqlite3.Connection, namespace: str) -> int:
    """Delete every hosted repo of a namespace (their content stays stored); returns how many."""
    query = f"DELETE FROM hub_repos WHERE {_IN_NAMESPACE}"  # noqa: S608
    return connection.execute(query, (_in_namespace(namespace),)).rowcount


def needed_blobs(connection: sqlite3.Connection) -> set[str]:
    """Every blob id a hosted repo's file or uploaded LFS object refers to (what `cache gc`
    must keep holding)."""
    rows = connection.execute(
        f"SELECT DISTINCT {blob_id_sql('sha256', 'git_oid')} FROM hub_files"  # noqa: S608
        f" UNION SELECT {blob_id_sql('sha256', 'NULL')} FROM hub_lfs_objects"
    )
    return {row[0] for row in rows}


class HubRepos:
    """Typed access to the `hub_*` tables."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._snapshots: LruMap[tuple[str, str, str], Snapshot] = LruMap(SNAPSHOTS_IN_MEMORY)

    # Repos ----------------------------------------------------------------------------

    async def get_repo(self, ref: RepoRef) -> RepoRecord | None:
        def load(connection: sqlite3.Connection) -> RepoRecord | None:
            row = connection.execute(
                "SELECT * FROM hub_repos WHERE repo_type = ? AND repo_id = ?", _key(ref)
            ).fetchone()
            if row is None:
                return None
            return _record_of(row)

        return await self.database.run(load)

    async def find(self, ref: RepoRef) -> RepoRecord | None:
        """The hosted repo `ref` names in any letter case (its stored spelling), or None."""

        def load(connection: sqlite3.Connection) -> RepoRecord | None:
            rows = connection.execute(
                "SELECT * FROM hub_repos WHERE repo_type = ? AND lower(repo_id) = ?",
                (ref.repo_type, canonical_name(ref.repo_id)),
            ).fetchall()
            records = sorted((_record_of(row) for row in rows), key=lambda r: r.ref.repo_id)
            exact = [record for record in records if record.ref == ref]
            found = exact or records
            return found[0] if found else None

        return await self.database.run(load)

    async def moved_to(self, ref: RepoRef) -> RepoRef | None:
        """Where a hosted repo once named `ref` (any letter case) was moved, or None."""

        def load(connection: sqlite3.Connection) -> RepoRef | None:
            row = connection.execute(
                "SELECT new_id FROM hub_repo_moves WHERE repo_type = ? AND old_id = ?",
                (ref.repo_type, canonical_name(ref.repo_id)),
            ).fetchone()
            return None if row is None else RepoRef(ref.repo_type, row["new_id"])

        return await self.database.run(load)

    async def update_settings(
        self, ref: RepoRef, *, private: bool | None = None, gated: str | None = None
    ) -> RepoRecord:
        """Change the given settings of a hosted repo."""

        def store(connection: sqlite3.Connection) -> None:
            for column, value in (("private", private), ("gated", gated)):
                if value is not None:
                    connection.execute(
                        f"UPDATE hub_repos SET {column} = ?"  # noqa: S608 - fixed names
                        " WHERE repo_type = ? AND repo_id = ?",
                        (int(value) if isinstance(value, bool) else value, *_key(ref)),
                    )

        await self.repo(ref)
        await self.database.run(store)
        return await self.repo(ref)

    async def move_repo(self, source: RepoRef, target: RepoRef) -> None:
        """Rename a hosted repo with its whole history (`Conflict` if `target` exists in any
        letter case); the old id is kept as a pointer to the new one."""

        def store(connection: sqlite3.Connection) -> None:
            taken = connection.execute(
                "SELECT repo_id FROM hub_repos WHERE repo_type = ? AND lower(repo_id) = ?",
                (target.repo_type, canonical_name(target.repo_id)),
            ).fetchall()
            if any(row["repo_id"] != source.repo_id for row in taken):
                raise Conflict(
                    f"A {target.repo_type} repository called {target.repo_id} already exists"
                )
            row = connection.execute(
                "SELECT * FROM hub_repos WHERE repo_type = ? AND repo_id = ?", _key(source)
            ).fetchone()
            if row is None:
                raise RepoNotFound()
            # The new row first, then every dependent row, then the old row: foreign keys
            # hold at every step.
            if source.repo_id == target.repo_id:
                return
            connection.execute(
                "INSERT INTO hub_repos (repo_type, repo_id, private, created, created_by, gated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (*_key(target), row["private"], row["created"], row["created_by"], row["gated"]),
            )
            for table in _REPO_TABLES:
                connection.execute(
                    f"UPDATE {table} SET repo_id = ?"  # noqa: S608 - fixed names
                    " WHERE repo_type = ? AND repo_id = ?",
                    (target.repo_id, *_key(source)),
                )
            connection.execute(
                "DELETE FROM hub_repos WHERE repo_type = ? AND repo_id = ?", _key(source)
            )
            connection.execute(
                "DELETE FROM hub_repo_moves WHERE repo_type = ? AND old_id = ?",
                (target.repo_type, canonical_name(target.repo_id)),
            )
            connection.execute(
                "UPDATE hub_repo_moves SET new_id = ? WHERE repo_type = ? AND new_id = ?",
                (target.repo_id, *_key(source)),
            )
            if canonical_name(source.repo_id) != canonical_name(target.repo_id):
                connection.execute(
                    "INSERT INTO hub_repo_moves VALUES (?, ?, ?, ?) ON CONFLICT (repo_type, old_id)"
                    " DO UPDATE SET new_id = excluded.new_id, moved = excluded.moved",
                    (source.repo_type, canonical_name(source.repo_id), target.repo_id, time.time()),
                )

        await self.database.run(store)
        self._snapshots.pop_where(lambda key: key[:2] == _key(source))

    async def stored_ref(self, ref: RepoRef) -> RepoRef:
        """`ref` as the hosted repo was created (ids match case-insensitively), or `ref` itself
        when no repo matches: every later lookup then uses the one stored spelling."""

        def load(connection: sqlite3.Connection) -> RepoRef:
            rows = connection.execute(
                "SELECT repo_id FROM hub_repos WHERE repo_type = ? AND lower(repo_id) = ?",
                (ref.repo_type, canonical_name(ref.repo_id)),
            ).fetchall()
            spellings = [row["repo_id"] for row in rows]
            if not spellings or ref.repo_id in spellings:
                return ref
            return RepoRef(ref.repo_type, min(spellings))

        return await self.database.run(load)

    async def repo(self, ref: RepoRef) -> RepoRecord:
        found = await self.get_repo(ref)
        if found is None:
            raise RepoNotFound()
        return found

    async def list_repos(self, namespace: str | None = None) -> list[RepoRecord]:
        """Every hosted repo, or those of one namespace."""

        def load(connection: sqlite3.Connection) -> list[RepoRecord]:
            parameters: tuple[str, ...] = ()
            condition = ""
            if namespace is not None:
                condition, parameters = f" WHERE {_IN_NAMESPACE}", (_in_namespace(namespace),)
            rows = connection.execute(
                f"SELECT * FROM hub_repos{condition} ORDER BY repo_type, repo_id",  # noqa: S608
                parameters,
            )
            return [_record_of(row) for row in rows]

        return await self.database.run(load)

    async def create_repo(
        self,
        ref: RepoRef,
        *,
        private: bool,
        created_by: str,
        initial: CommitRecord,
        files: Mapping[str, HubFile],
    ) -> None:
        """The repo with `initial` as the first commit of `main`; `Conflict` if it exists."""

        def store(connection: sqlite3.Connection) -> None:
            try:
                connection.execute(
                    "INSERT INTO hub_repos (repo_type, repo_id, private, created, created_by)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (*_key(ref), int(private), time.time(), created_by),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"Repository {ref.repo_id} already exists") from None
            _insert_commit(connection, ref, initial, files)
            connection.execute(
                "INSERT INTO hub_refs VALUES (?, ?, ?, ?, ?)",
                (*_key(ref), BRANCH, DEFAULT_BRANCH, initial.sha),
            )
            # A new repo takes the name back from a repo moved away from it.
            connection.execute(
                "DELETE FROM hub_repo_moves WHERE repo_type = ? AND old_id = ?",
                (ref.repo_type, canonical_name(ref.repo_id)),
            )

        await self.database.run(store)

    async def delete_repo(self, ref: RepoRef) -> None:
        def store(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "DELETE FROM hub_repos WHERE repo_type = ? AND repo_id = ?", _key(ref)
            )
            return cursor.rowcount

        if not await self.database.run(store):
            raise RepoNotFound()
        self._snapshots.pop_where(lambda key: key[:2] == _key(ref))

    # Revisions and refs ----------------------------------------------------------------

    async def resolve(self, ref: RepoRef, revision: str) -> str:
        """The commit `revision` names: a tag, a branch (optionally as `refs/tags/...` or
        `refs/heads/...`, which name exactly that kind) or a full commit sha of this repo.

        A branch and a tag never share a name (`create_ref` refuses it, imports too); should
        older data hold both, the tag wins, as in git's own order (`refs/tags/` before
        `refs/heads/`), so that a branch created later can never change what a tag serves."""

        def load(connection: sqlite3.Connection) -> str | None:
            if (
                connection.execute(
                    "SELECT 1 FROM hub_repos WHERE repo_type = ? AND repo_id = ?", _key(ref)
                ).fetchone()
                is None
            ):
                raise RepoNotFound()
            pull_request = PULL_REQUEST_REF.fullmatch(revision)
            if pull_request is not None:
                row = connection.execute(
                    "SELECT head_commit FROM hub_discussions WHERE repo_type = ? AND repo_id = ?"
                    " AND num = ? AND is_pull_request = 1",
                    (*_key(ref), int(pull_request.group(1))),
                ).fetchone()
                return None if row is None else str(row["head_commit"])
            candidates = [(TAG, revision), (BRANCH, revision)]
            for prefix, kind in (("refs/heads/", BRANCH), ("refs/tags/", TAG)):
                if revision.startswith(prefix):
                    candidates = [(kind, revision[len(prefix) :])]
            for kind, name in candidates:
                row = connection.execute(
                    "SELECT commit_sha FROM hub_refs"
                    " WHERE repo_type = ? AND repo_id = ? AND kind = ? AND name = ?",
                    (*_key(ref), kind, name),
                ).fetchone()
                if row is not None:
                    return str(row["commit_sha"])
            if (
                COMMIT_SHA_PATTERN.match(revision)
                and connection.execute(
                    "SELECT 1 FROM hub_commits"
                    " WHERE repo_type = ? AND repo_id = ? AND commit_sha = ?",
                    (*_key(ref), revision),
                ).fetchone()
            ):
                return revision
            if SHORT_SHA_PATTERN.fullmatch(revision):
                # A commit by a short sha (git's abbreviation), when it names one commit only.
                rows = connection.execute(
                    "SELECT commit_sha FROM hub_commits WHERE repo_type = ? AND repo_id = ?"
                    " AND commit_sha >= ? AND commit_sha < ? LIMIT 2",
                    (*_key(ref), revision, revision + "g"),
                ).fetchall()
                if len(rows) == 1:
                    return str(rows[0]["commit_sha"])
            return None

        found = await self.database.run(load)
        if found is None:
            raise RevisionNotFound(f"Invalid rev id: {revision}")
        return found

    async def refs(self, ref: RepoRef) -> dict[str, dict[str, str]]:
        """`{"branch": {name: commit}, "tag": {name: commit}}`."""

        def load(connection: sqlite3.Connection) -> dict[str, dict[str, str]]:
            found: dict[str, dict[str, str]] = {BRANCH: {}, TAG: {}}
            for row in connection.execute(
                "SELECT kind, name, commit_sha FROM hub_refs"
                " WHERE repo_type = ? AND repo_id = ? ORDER BY name",
                _key(ref),
            ):
                found[row["kind"]][row["name"]] = row["commit_sha"]
            return found

        await self.repo(ref)
        return await self.database.run(load)

    async def pull_request_refs(self, ref: RepoRef) -> dict[int, str]:
        """`{N: head commit}` of every pull request of the repo (`refs/pr/N`)."""

        def load(connection: sqlite3.Connection) -> dict[int, str]:
            rows = connection.execute(
                "SELECT num, head_commit FROM hub_discussions WHERE repo_type = ? AND repo_id = ?"
                " AND is_pull_request = 1 ORDER BY num",
                _key(ref),
            )
            return {row["num"]: row["head_commit"] for row in rows}

        return await self.database.run(load)

    async def create_ref(self, ref: RepoRef, kind: str, name: str, commit: str) -> None:
        """A new branch or tag. A branch may share a tag's name (as on huggingface.co): the
        plain name still reads the tag (`resolve`), `refs/heads/<name>` the branch. A tag may
        not share a branch's name: it would change what the branch's name serves."""

        def store(connection: sqlite3.Connection) -> None:
            kinds = {
                row["kind"]
                for row in connection.execute(
                    "SELECT kind FROM hub_refs WHERE repo_type = ? AND repo_id = ? AND name = ?",
                    (*_key(ref), name),
                )
            }
            taken = kind if kind in kinds else BRANCH if kind == TAG and kinds else None
            if taken is not None:
                raise Conflict(f"Reference {REF_PREFIXES[taken]}{name} already exists")
            connection.execute(
                "INSERT INTO hub_refs VALUES (?, ?, ?, ?, ?)", (*_key(ref), kind, name, commit)
            )

        await self.database.run(store)

    async def delete_ref(self, ref: RepoRef, kind: str, name: str) -> None:
        def store(connection: sqlite3.Connection) -> int:
            return connection.execute(
                "DELETE FROM hub_refs"
                " WHERE repo_type = ? AND repo_id = ? AND kind = ? AND name = ?",
                (*_key(ref), kind, name),
            ).rowcount

        if not await self.database.run(store):
            raise RevisionNotFound(f"Invalid rev id: {name}")

    async def move_ref(
        self,
        ref: RepoRef,
        kind: str,
        name: str,
        commit: str,
        expected: str | None,
        also: InTransaction,
    ) -> None:
        """Point an existing ref at `commit` if it is still at `expected` (None: create it,
        if it does not exist yet), by compare-and-swap; `also` runs in the same transaction
        (a promotion's record). `Conflict` (409) when the ref is not where expected."""

        def store(connection: sqlite3.Connection) -> None:
            if expected is None:
                try:
                    connection.execute(
                        "INSERT INTO hub_refs VALUES (?, ?, ?, ?, ?)",
                        (*_key(ref), kind, name, commit),
                    )
                except sqlite3.IntegrityError:
                    raise Conflict(f"Reference {REF_PREFIXES[kind]}{name} already exists") from None
            else:
                moved = connection.execute(
                    "UPDATE hub_refs SET commit_sha = ? WHERE repo_type = ? AND repo_id = ?"
                    " AND kind = ? AND name = ? AND commit_sha = ?",
                    (commit, *_key(ref), kind, name, expected),
                ).rowcount
                if not moved:
                    raise Conflict(f"{REF_PREFIXES[kind]}{name} moved since it was at {expected}")
            also(connection)

        await self.database.run(store)

    # Commits and files -----------------------------------------------------------------

    async def add_commit(
        self,
        ref: RepoRef,
        branch: str,
        commit: CommitRecord,
        files: Mapping[str, HubFile],
        expected_head: str,
        *,
        also: InTransaction | None = None,
    ) -> None:
        """Store `commit` and move `branch` to it, if the branch is still at `expected_head`
        (a squashed commit without parents too); `also` runs in the same transaction."""

        def store(connection: sqlite3.Connection) -> None:
            moved = connection.execute(
                "UPDATE hub_refs SET commit_sha = ? WHERE repo_type = ? AND repo_id = ?"
                " AND kind = ? AND name = ? AND commit_sha = ?",
                (commit.sha, *_key(ref), BRANCH, branch, expected_head),
            ).rowcount
            if not moved:
                raise PreconditionFailed(
                    f"Branch {branch!r} moved while this commit was written: retry it"
                )
            _insert_commit(connection, ref, commit, files)
            if also is not None:
                also(connection)

        await self.database.run(store)

    async def store_commit(
        self, ref: RepoRef, commit: CommitRecord, files: Mapping[str, HubFile], also: InTransaction
    ) -> None:
        """Store `commit` on no branch, and run `also` (which points a ref at it) in the same
        transaction: a pull request's commits."""

        def store(connection: sqlite3.Connection) -> None:
            _insert_commit(connection, ref, commit, files)
            also(connection)

        await self.database.run(store)

    async def commit(self, ref: RepoRef, sha: str) -> CommitRecord:
        def load(connection: sqlite3.Connection) -> CommitRecord | None:
            row = connection.execute(
                "SELECT * FROM hub_commits WHERE repo_type = ? AND repo_id = ? AND commit_sha = ?",
                (*_key(ref), sha),
            ).fetchone()
            return None if row is None else _commit_of(row)

        found = await self.database.run(load)
        if found is None:
            raise RevisionNotFound(f"Invalid rev id: {sha}")
        return found

    async def history(self, ref: RepoRef, sha: str) -> list[CommitRecord]:
        """`sha` and its first-parent ancestors, newest first."""

        def load(connection: sqlite3.Connection) -> dict[str, CommitRecord]:
            rows = connection.execute(
                "SELECT * FROM hub_commits WHERE repo_type = ? AND repo_id = ?", _key(ref)
            )
            return {row["commit_sha"]: _commit_of(row) for row in rows}

        commits = await self.database.run(load)
        history: list[CommitRecord] = []
        current = commits.get(sha)
        while current is not None:
            history.append(current)
            current = commits.get(current.parents[0]) if current.parents else None
        return history

    async def snapshot(self, ref: RepoRef, commit: str) -> Snapshot:
        """Every file of `commit` (immutable: kept in memory once read, with what listings
        derive from it)."""
        key = (*_key(ref), commit)
        cached = self._snapshots.get(key)
        if cached is not None:
            return cached

        def load(connection: sqlite3.Connection) -> dict[str, HubFile]:
            rows = connection.execute(
                "SELECT path, size, git_oid, sha256 FROM hub_files"
                " WHERE repo_type = ? AND repo_id = ? AND commit_sha = ? ORDER BY path",
                key,
            )
            return {
                row["path"]: HubFile(row["size"], row["git_oid"], row["sha256"]) for row in rows
            }

        snapshot = Snapshot(await self.database.run(load))
        self._snapshots.put(key, snapshot)
        return snapshot

    async def files(self, ref: RepoRef, commit: str) -> dict[str, HubFile]:
        """Every file of `commit`, by path."""
        return (await self.snapshot(ref, commit)).files

    async def import_history(
        self,
        ref: RepoRef,
        commits: list[tuple[CommitRecord, dict[str, HubFile]]],
        refs: Mapping[str, Mapping[str, str]],
        lfs_objects: Mapping[str, int],
    ) -> None:
        """Add verified commits and set the repo's branches and tags to exactly `refs` (an
        imported repo mirrors its origin), in one transaction."""

        def store(connection: sqlite3.Connection) -> None:
            for commit, files in commits:
                _insert_commit(connection, ref, commit, files)
            connection.execute(
                "DELETE FROM hub_refs WHERE repo_type = ? AND repo_id = ?", _key(ref)
            )
            connection.executemany(
                "INSERT INTO hub_refs VALUES (?, ?, ?, ?, ?)",
                [
                    (*_key(ref), kind, name, commit)
                    for kind, named in refs.items()
                    for name, commit in named.items()
                ],
            )
            connection.executemany(
                "INSERT INTO hub_lfs_objects VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(*_key(ref), sha256, size, time.time()) for sha256, size in lfs_objects.items()],
            )

        await self.database.run(store)

    # LFS objects -----------------------------------------------------------------------

    async def link_lfs_object(self, ref: RepoRef, sha256: str, size: int) -> None:
        """Record that the object's bytes were uploaded to (or already live in) this repo."""

        def store(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO hub_lfs_objects VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (*_key(ref), sha256, size, time.time()),
            )

        await self.database.run(store)

    async def lfs_object_size(self, ref: RepoRef, sha256: str) -> int | None:
        """The size of an LFS object uploaded to this repo, or None."""

        def load(connection: sqlite3.Connection) -> int | None:
            row = connection.execute(
                "SELECT size FROM hub_lfs_objects"
                " WHERE repo_type = ? AND repo_id = ? AND sha256 = ?",
                (*_key(ref), sha256),
            ).fetchone()
            return None if row is None else int(row["size"])

        return await self.database.run(load)
