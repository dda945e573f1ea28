"""The read interface shared by the caching proxy and the private hub.

`hf_api/` talks to a `RepoStore` and never asks whether a repo is proxied or hosted.
`cache.store.CachingRepoStore` implements it over upstream, `hub.store.HostedRepoStore` over
the private hub's own commits. Documents are returned as the JSON the Hub would send.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hubproxy.blob_ids import BlobId
from hubproxy.cache.storage.base import FileSegment
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
    def blob(self) -> BlobId:
        """Where the file's content is stored."""
        return BlobId.of_file(self.sha256, self.git_oid)

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

    def read(
        self, entry: FileEntry, start: int, end: int, *, files: bool = False
    ) -> AsyncIterator[bytes | FileSegment]:
        """The bytes `[start, end)` of the file; with `files`, stored verified parts may come
        as open files (`FileSegment`, for sendfile; the receiver closes them)."""

    async def redirect_url(self, entry: FileEntry) -> str | None:
        """A URL the client may download the whole file from instead, or None."""

    def refuses_resume(self, entry: FileEntry) -> bool:
        """Whether a read from an offset to the end of the file must be answered with the
        whole file instead (the client's earlier bytes may be corrupt)."""


class ContentUpload(Protocol):
    """Content arriving for a held blob: written as it comes, made visible by `commit`."""

    async def write(self, data: bytes | bytearray) -> None:
        """Append the next bytes."""

    async def commit(self) -> None:
        """Store what was written as the blob, and hold it. Call only once the caller has
        verified the content against the blob id."""

    async def abort(self) -> None:
        """Forget what was written (also after a failed commit; never after a successful one)."""


class ContentStore(Protocol):
    """Content the private hub owns, in the same content-addressed chunk store as the cache.

    Blob ids are `sha256:<hex>` (LFS files) or `gitsha1:<hex>` (regular files). Held content
    is never evicted. The caller verifies content against its id before it is stored.
    """

    async def holds(self, blob_id: str, size: int) -> bool:
        """Whether all of the blob is stored and verified."""

    async def open_upload(self, blob_id: str, size: int) -> ContentUpload:
        """Start receiving a large blob (staged on local disk, chunk by chunk)."""

    async def store_bytes(self, blob_id: str, content: bytes) -> None:
        """Store (or keep) a small verified blob, and hold it."""

    def read(self, blob_id: str, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes `[start, end)` of a held blob."""

    async def redirect_url(self, blob_id: str) -> str | None:
        """A presigned URL of the whole blob (S3 redirect mode), or None."""
