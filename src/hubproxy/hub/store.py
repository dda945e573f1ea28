"""`HostedRepoStore`: the read side of hosted repos, as the same `RepoStore` the cache is.

Documents are built from the hub's own records in the shapes huggingface.co sends
(hf-protocol.md §4), so every client and every download path treats a hosted repo exactly like
a proxied one. Hosted projects never reach upstream.
"""

import hashlib
import html
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from hubproxy.constants import HEADER_REPO_COMMIT
from hubproxy.errors import EntryNotFound
from hubproxy.hub.gitobjects import lfs_pointer
from hubproxy.hub.repos import (
    BRANCH,
    DEFAULT_BRANCH,
    TAG,
    CommitRecord,
    HubFile,
    HubRepos,
    RepoRecord,
    Snapshot,
)
from hubproxy.naming import RepoRef
from hubproxy.stores import Answer, CommitsPage, ContentStore, FileEntry

COMMITS_PAGE_SIZE = 50
# How far back `expand=true` looks for the commit that last changed a path; paths unchanged
# for longer are given the oldest commit looked at.
LAST_COMMIT_DEPTH = 200
# hubproxy scans nothing: expanded file entries say so, in the shape clients parse.
UNSCANNED: dict[str, Any] = {"status": "unscanned", "avScan": None, "pickleImportScan": None}


def iso_date(timestamp: float) -> str:
    """Dates as the Hub writes them: UTC, milliseconds, trailing `Z`."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp))
    return f"{seconds}.{int(timestamp * 1000) % 1000:03d}Z"


def _pointer_size(file: HubFile) -> int:
    assert file.sha256 is not None
    return len(lfs_pointer(file.sha256, file.size))


def _item(path: str, snapshot: Snapshot) -> dict[str, Any]:
    """A tree / paths-info entry: a file, or a directory with its git tree id."""
    file = snapshot.files.get(path)
    if file is None:
        return {"type": "directory", "oid": snapshot.trees[path], "size": 0, "path": path}
    item: dict[str, Any] = {"type": "file", "oid": file.git_oid, "size": file.size, "path": path}
    if file.sha256 is not None:
        item["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": _pointer_size(file)}
    return item


def _repo_document(record: RepoRecord, head: CommitRecord) -> dict[str, Any]:
    """What repo info and repo listings say of a repo at `head`."""
    ref = record.ref
    document: dict[str, Any] = {
        "_id": hashlib.sha256(str(ref).encode()).hexdigest()[:24],
        "id": ref.repo_id,
        "author": ref.repo_id.split("/")[0],
        "sha": head.sha,
        "lastModified": iso_date(head.created),
        "createdAt": iso_date(record.created),
        "private": record.private,
        "gated": record.gated or False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
    }
    if ref.repo_type == "model":
        document["modelId"] = ref.repo_id
    return document


def _object_id(snapshot: Snapshot, path: str) -> str | None:
    """The git id of `path` in a commit: a file's blob, a directory's tree, or None."""
    file = snapshot.files.get(path)
    if file is not None:
        return file.git_oid
    return snapshot.trees.get(path)


def _commit_summary(commit: CommitRecord) -> dict[str, str]:
    return {"id": commit.sha, "title": commit.title, "date": iso_date(commit.created)}


class HostedRepoStore:
    """A `RepoStore` over `HubRepos` records and held content."""

    def __init__(self, repos: HubRepos, content: ContentStore) -> None:
        self.repos = repos
        self.content = content

    async def _snapshot(self, ref: RepoRef, revision: str | None) -> tuple[str, Snapshot]:
        commit = await self.repos.resolve(ref, revision or DEFAULT_BRANCH)
        return commit, await self.repos.snapshot(ref, commit)

    async def repo_info(
        self, ref: RepoRef, revision: str | None, query: Sequence[tuple[str, str]]
    ) -> Answer:
        record = await self.repos.repo(ref)
        commit, snapshot = await self._snapshot(ref, revision)
        with_blobs = ("blobs", "true") in query or ("blobs", "1") in query
        siblings = []
        for path, file in snapshot.files.items():
            sibling: dict[str, Any] = {"rfilename": path}
            if with_blobs:
                sibling.update({"size": file.size, "blobId": file.git_oid})
                if file.sha256 is not None:
                    sibling["lfs"] = {
                        "size": file.size,
                        "sha256": file.sha256,
                        "pointerSize": _pointer_size(file),
                    }
            siblings.append(sibling)
        document = _repo_document(record, await self.repos.commit(ref, commit))
        document["siblings"] = siblings
        document["usedStorage"] = sum(file.size for file in snapshot.files.values())
        return Answer(document, commit)

    async def summary(self, record: RepoRecord) -> dict[str, Any]:
        """A repo as repo listings (`list_models` & co.) show it."""
        head = await self.repos.resolve(record.ref, DEFAULT_BRANCH)
        return _repo_document(record, await self.repos.commit(record.ref, head))

    async def tree(
        self, ref: RepoRef, revision: str, path: str, *, recursive: bool, expand: bool
    ) -> Answer:
        commit, snapshot = await self._snapshot(ref, revision)
        if path and path not in snapshot.directories:
            raise EntryNotFound(
                f"{path} does not exist on {revision}", headers={HEADER_REPO_COMMIT: commit}
            )
        prefix = f"{path}/" if path else ""
        items: list[dict[str, Any]] = []
        for name in sorted(snapshot.directories | snapshot.files.keys()):
            if not name.startswith(prefix):
                continue
            if not recursive and "/" in name[len(prefix) :]:
                continue
            items.append(_item(name, snapshot))
        if expand:
            await self._expand(ref, commit, snapshot, items)
        return Answer(items, commit)

    async def _expand(
        self, ref: RepoRef, commit: str, snapshot: Snapshot, items: list[dict[str, Any]]
    ) -> None:
        """`lastCommit` of every entry (the newest commit whose parent held another object at
        its path), and `securityFileStatus` of files, as `expand=true` answers."""
        history = (await self.repos.history(ref, commit))[:LAST_COMMIT_DEPTH]
        remaining = {item["path"] for item in items}
        found: dict[str, CommitRecord] = {}
        current = snapshot
        for index, record in enumerate(history):
            parent = history[index + 1] if index + 1 < len(history) else None
            before = await self.repos.snapshot(ref, parent.sha) if parent else None
            for path in list(remaining):
                if before is None or _object_id(current, path) != _object_id(before, path):
                    found[path] = record
                    remaining.discard(path)
            if not remaining or before is None:
                break
            current = before
        for item in items:
            last = found.get(item["path"], history[-1])
            item["lastCommit"] = _commit_summary(last)
            if item["type"] == "file":
                item["securityFileStatus"] = dict(UNSCANNED)

    async def paths_info(
        self, ref: RepoRef, revision: str, paths: Sequence[str], *, expand: bool
    ) -> Answer:
        commit, snapshot = await self._snapshot(ref, revision)
        items = [
            _item(path, snapshot)
            for path in paths
            if path in snapshot.files or path in snapshot.directories
        ]
        if expand:
            await self._expand(ref, commit, snapshot, items)
        return Answer(items, commit)

    async def refs(self, ref: RepoRef, *, include_prs: bool) -> Answer:
        found = await self.repos.refs(ref)

        def listing(kind: str, prefix: str) -> list[dict[str, str]]:
            return [
                {"name": name, "ref": f"{prefix}{name}", "targetCommit": commit}
                for name, commit in found[kind].items()
            ]

        document: dict[str, Any] = {
            "branches": listing(BRANCH, "refs/heads/"),
            "converts": [],
            "tags": listing(TAG, "refs/tags/"),
        }
        if include_prs:
            document["pullRequests"] = [
                {"name": f"refs/pr/{num}", "ref": f"refs/pr/{num}", "targetCommit": commit}
                for num, commit in (await self.repos.pull_request_refs(ref)).items()
            ]
        return Answer(document)

    async def commits(
        self, ref: RepoRef, revision: str, page: int, *, formatted: bool
    ) -> CommitsPage:
        commit = await self.repos.resolve(ref, revision)
        history = await self.repos.history(ref, commit)
        start = page * COMMITS_PAGE_SIZE
        items = [self._commit_item(item, formatted) for item in history[start:][:COMMITS_PAGE_SIZE]]
        return CommitsPage(items, start + COMMITS_PAGE_SIZE < len(history), commit)

    @staticmethod
    def _commit_item(commit: CommitRecord, formatted: bool) -> dict[str, Any]:
        description = commit.message[len(commit.title) :].strip()
        item: dict[str, Any] = {
            "id": commit.sha,
            "title": commit.title,
            "message": description,
            "date": iso_date(commit.created),
            "authors": [{"user": commit.author}],
        }
        if formatted:
            item["formatted"] = {
                "title": html.escape(commit.title),
                "message": html.escape(description),
            }
        return item

    async def file_entry(self, ref: RepoRef, revision: str, path: str) -> FileEntry:
        commit, snapshot = await self._snapshot(ref, revision)
        file = snapshot.files.get(path)
        if file is None:
            raise EntryNotFound(
                f"{path} does not exist at {revision}", headers={HEADER_REPO_COMMIT: commit}
            )
        return FileEntry(ref, commit, path, file.size, file.git_oid, file.sha256)

    async def cache_status(self, entry: FileEntry, start: int, end: int) -> str:
        return "hosted"

    def read(
        self, entry: FileEntry, start: int, end: int, *, files: bool = False
    ) -> AsyncIterator[bytes]:
        return self.content.read(str(entry.blob), entry.size, start, end)

    async def redirect_url(self, entry: FileEntry) -> str | None:
        return await self.content.redirect_url(str(entry.blob))

    def refuses_resume(self, entry: FileEntry) -> bool:
        return False  # held content is verified before it is stored
