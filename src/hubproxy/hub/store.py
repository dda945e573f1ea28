"""`HostedRepoStore`: the read side of hosted repos, as the same `RepoStore` the cache is.

Documents are built from the hub's own records in the shapes huggingface.co sends
(hf-protocol.md §4), so every client and every download path treats a hosted repo exactly like
a proxied one. Hosted projects never reach upstream.
"""

import hashlib
import html
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from hubproxy.constants import HEADER_REPO_COMMIT
from hubproxy.errors import EntryNotFound
from hubproxy.hub.gitobjects import lfs_pointer, tree_ids
from hubproxy.hub.repos import (
    BRANCH,
    DEFAULT_BRANCH,
    TAG,
    CommitRecord,
    HubFile,
    HubRepos,
    RepoRecord,
)
from hubproxy.naming import RepoRef
from hubproxy.stores import Answer, CommitsPage, ContentStore, FileEntry

COMMITS_PAGE_SIZE = 50


def iso_date(timestamp: float) -> str:
    """Dates as the Hub writes them: UTC, milliseconds, trailing `Z`."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp))
    return f"{seconds}.{int(timestamp * 1000) % 1000:03d}Z"


def _file_item(path: str, file: HubFile) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "file", "oid": file.git_oid, "size": file.size, "path": path}
    if file.sha256 is not None:
        pointer_size = len(lfs_pointer(file.sha256, file.size))
        item["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": pointer_size}
    return item


def _directory_item(path: str, trees: Mapping[str, str]) -> dict[str, Any]:
    return {"type": "directory", "oid": trees[path], "size": 0, "path": path}


def _directories(files: Mapping[str, HubFile]) -> set[str]:
    found: set[str] = set()
    for path in files:
        parts = path.split("/")
        found.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return found


class HostedRepoStore:
    """A `RepoStore` over `HubRepos` records and held content."""

    def __init__(self, repos: HubRepos, content: ContentStore) -> None:
        self.repos = repos
        self.content = content

    async def _snapshot(self, ref: RepoRef, revision: str | None) -> tuple[str, dict[str, HubFile]]:
        commit = await self.repos.resolve(ref, revision or DEFAULT_BRANCH)
        return commit, await self.repos.files(ref, commit)

    async def repo_info(
        self, ref: RepoRef, revision: str | None, query: Sequence[tuple[str, str]]
    ) -> Answer:
        record = await self.repos.repo(ref)
        commit, files = await self._snapshot(ref, revision)
        latest = await self.repos.commit(ref, commit)
        with_blobs = ("blobs", "true") in query or ("blobs", "1") in query
        siblings = []
        for path, file in files.items():
            sibling: dict[str, Any] = {"rfilename": path}
            if with_blobs:
                sibling.update({"size": file.size, "blobId": file.git_oid})
                if file.sha256 is not None:
                    pointer_size = len(lfs_pointer(file.sha256, file.size))
                    sibling["lfs"] = {
                        "size": file.size,
                        "sha256": file.sha256,
                        "pointerSize": pointer_size,
                    }
            siblings.append(sibling)
        document: dict[str, Any] = {
            "_id": hashlib.sha256(str(ref).encode()).hexdigest()[:24],
            "id": ref.repo_id,
            "author": ref.repo_id.split("/")[0],
            "sha": commit,
            "lastModified": iso_date(latest.created),
            "createdAt": iso_date(record.created),
            "private": record.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(file.size for file in files.values()),
        }
        if ref.repo_type == "model":
            document["modelId"] = ref.repo_id
        return Answer(document, commit)

    async def summary(self, record: RepoRecord) -> dict[str, Any]:
        """A repo as repo listings (`list_models` & co.) show it."""
        commit = await self.repos.commit(
            record.ref, await self.repos.resolve(record.ref, DEFAULT_BRANCH)
        )
        item: dict[str, Any] = {
            "_id": hashlib.sha256(str(record.ref).encode()).hexdigest()[:24],
            "id": record.ref.repo_id,
            "author": record.ref.repo_id.split("/")[0],
            "sha": commit.sha,
            "lastModified": iso_date(commit.created),
            "createdAt": iso_date(record.created),
            "private": record.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
        }
        if record.ref.repo_type == "model":
            item["modelId"] = record.ref.repo_id
        return item

    async def tree(
        self, ref: RepoRef, revision: str, path: str, *, recursive: bool, expand: bool
    ) -> Answer:
        commit, files = await self._snapshot(ref, revision)
        directories = _directories(files)
        if path and path not in directories:
            raise EntryNotFound(
                f"{path} does not exist on {revision}", headers={HEADER_REPO_COMMIT: commit}
            )
        trees = tree_ids({name: file.git_oid for name, file in files.items()})
        prefix = f"{path}/" if path else ""
        items: list[dict[str, Any]] = []
        for name in sorted(directories | set(files)):
            if not name.startswith(prefix):
                continue
            if not recursive and "/" in name[len(prefix) :]:
                continue
            file = files.get(name)
            items.append(_file_item(name, file) if file else _directory_item(name, trees))
        return Answer(items, commit)

    async def paths_info(
        self, ref: RepoRef, revision: str, paths: Sequence[str], *, expand: bool
    ) -> Answer:
        commit, files = await self._snapshot(ref, revision)
        directories = _directories(files)
        trees: dict[str, str] | None = None
        items: list[dict[str, Any]] = []
        for path in paths:
            file = files.get(path)
            if file is not None:
                items.append(_file_item(path, file))
            elif path in directories:
                trees = trees or tree_ids({name: item.git_oid for name, item in files.items()})
                items.append(_directory_item(path, trees))
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
            document["pullRequests"] = []
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
        commit, files = await self._snapshot(ref, revision)
        file = files.get(path)
        if file is None:
            raise EntryNotFound(
                f"{path} does not exist at {revision}", headers={HEADER_REPO_COMMIT: commit}
            )
        return FileEntry(ref, commit, path, file.size, file.git_oid, file.sha256)

    async def cache_status(self, entry: FileEntry, start: int, end: int) -> str:
        return "hosted"

    def read(self, entry: FileEntry, start: int, end: int) -> AsyncIterator[bytes]:
        return self.content.read(_blob_id(entry), entry.size, start, end)

    async def redirect_url(self, entry: FileEntry) -> str | None:
        return await self.content.redirect_url(_blob_id(entry))


def _blob_id(entry: FileEntry) -> str:
    assert entry.git_oid is not None
    return HubFile(entry.size, entry.git_oid, entry.sha256).blob_id
