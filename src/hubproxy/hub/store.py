"""`HostedRepoStore`: the read side of repos hosted in `hosted` projects.

Hosted projects never reach upstream. Until uploads land, a hosted project holds no repos,
and every read answers as for a missing repo.
"""

from collections.abc import AsyncIterator, Sequence

from hubproxy.errors import RepoNotFound
from hubproxy.naming import RepoRef
from hubproxy.stores import Answer, CommitsPage, FileEntry


class HostedRepoStore:
    """A `RepoStore` over the hosted repos (none yet)."""

    async def repo_info(
        self, ref: RepoRef, revision: str | None, query: Sequence[tuple[str, str]]
    ) -> Answer:
        raise RepoNotFound()

    async def tree(
        self, ref: RepoRef, revision: str, path: str, *, recursive: bool, expand: bool
    ) -> Answer:
        raise RepoNotFound()

    async def paths_info(
        self, ref: RepoRef, revision: str, paths: Sequence[str], *, expand: bool
    ) -> Answer:
        raise RepoNotFound()

    async def refs(self, ref: RepoRef, *, include_prs: bool) -> Answer:
        raise RepoNotFound()

    async def commits(
        self, ref: RepoRef, revision: str, page: int, *, formatted: bool
    ) -> CommitsPage:
        raise RepoNotFound()

    async def file_entry(self, ref: RepoRef, revision: str, path: str) -> FileEntry:
        raise RepoNotFound()

    async def cache_status(self, entry: FileEntry, start: int, end: int) -> str:
        return "hosted"

    def read(self, entry: FileEntry, start: int, end: int) -> AsyncIterator[bytes]:
        raise RepoNotFound()

    async def redirect_url(self, entry: FileEntry) -> str | None:
        return None
