"""The read interface shared by the caching proxy and the private hub.

`hf_api/` talks to a `RepoStore` and never asks whether a repo is proxied or hosted.
`cache.store.CachingRepoStore` implements it over upstream; the private hub will implement it
over its own commits. Documents are returned as the JSON the Hub would send.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hubproxy.naming import RepoRef


@dataclass(frozen=True, slots=True)
class Answer:
    """A JSON document, the commit it describes (if any), and whether it may be outdated."""

    body: Any
    commit: str | None = None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file of a repo at a commit, with what `/resolve/` must say about it."""

    ref: RepoRef
    commit: str
    path: str
    size: int
    git_oid: str | None
    sha256: str | None
    stale: bool = False

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None

    @property
    def etag(self) -> str:
        """The content hash clients use as the blob name: sha256 for LFS, else git sha1."""
        value = self.sha256 or self.git_oid
        assert value is not None
        return value


@dataclass(frozen=True, slots=True)
class CommitsPage:
    items: list[Any]
    has_next: bool
    commit: str
    stale: bool = False


class RepoStore(Protocol):
    """Everything the download-side endpoints need from a repo."""

    async def repo_info(
        self, ref: RepoRef, revision: str | None, query: Sequence[tuple[str, str]]
    ) -> Answer:
        """`/api/{type}s/{repo}[/revision/{rev}]` document (must contain `sha`)."""

    async def tree(
        self, ref: RepoRef, revision: str, path: str, *, recursive: bool, expand: bool
    ) -> Answer:
        """The whole listing below `path` (a list of tree entries); the caller paginates."""

    async def paths_info(
        self, ref: RepoRef, revision: str, paths: Sequence[str], *, expand: bool
    ) -> Answer:
        """Tree entries of the given paths that exist."""

    async def refs(self, ref: RepoRef, *, include_prs: bool) -> Answer:
        """`{"branches": [...], "converts": [...], "tags": [...]}` (+ `pullRequests`)."""

    async def commits(
        self, ref: RepoRef, revision: str, page: int, *, formatted: bool
    ) -> CommitsPage:
        """One page of the history of `revision`, newest first (`formatted`: with HTML titles)."""

    async def file_entry(self, ref: RepoRef, revision: str, path: str) -> FileEntry:
        """The file at `path`, or `EntryNotFound` (carrying `X-Repo-Commit`)."""

    async def cache_status(self, entry: FileEntry, start: int, end: int) -> str:
        """`hit`, `miss` or `partial`: how much of `[start, end)` is already stored."""

    def read(self, entry: FileEntry, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes `[start, end)` of the file."""

    async def redirect_url(self, entry: FileEntry) -> str | None:
        """A URL the client may download the whole file from instead, or None."""
