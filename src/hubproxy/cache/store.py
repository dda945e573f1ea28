"""`CachingRepoStore`: the `RepoStore` read interface over an upstream hub, cached.

Immutable answers (anything pinned to a commit: repo info, tree listings, paths-info, commit
pages, file entries and recorded absences) are fetched once and kept forever. Mutable ones
(branch/tag → commit, refs) are re-asked after `revision_ttl`, and fall back to the last known
answer, marked stale, when upstream fails. Offline, nothing is asked: what is cached is served.
"""

import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.metadata import MISSING, CacheMetadata, FileRecord
from hubproxy.cache.revisions import RevisionResolver
from hubproxy.cache.storage import FileSegment
from hubproxy.cache.upstream import UpstreamClient, UpstreamFile, is_upstream_failure
from hubproxy.constants import HEADER_REPO_COMMIT
from hubproxy.errors import DownloadUrlExpired, EntryNotFound, RepoMoved, RevisionNotFound
from hubproxy.lru import LruMap
from hubproxy.naming import RepoRef, canonical_name
from hubproxy.singleflight import SingleFlight
from hubproxy.stores import Answer, CommitsPage, FileEntry

logger = logging.getLogger(__name__)

# Listings of paths known absent at a commit, remembered in memory.
ABSENT_LISTINGS_REMEMBERED = 10_000


def _canonical_query(query: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{key}={value}" for key, value in sorted(query))


class CachingRepoStore:
    """Read-through cache of an upstream hub (see module docstring)."""

    def __init__(
        self,
        upstream: UpstreamClient,
        metadata: CacheMetadata,
        blobs: BlobCache,
        *,
        revision_ttl: float,
        offline: bool,
    ) -> None:
        self.upstream = upstream
        self.metadata = metadata
        self.blobs = blobs
        self.offline = offline
        self.revision_ttl = revision_ttl
        self.revisions = RevisionResolver(metadata, self._fetch_info, revision_ttl)
        # One upstream request per key however many clients ask at once.
        self._fetching_documents: SingleFlight[str, Any] = SingleFlight()
        self._fetching_entries: SingleFlight[str, FileRecord] = SingleFlight()
        self._fetching_sources: SingleFlight[str, UpstreamFile] = SingleFlight()
        self._sources: dict[str, UpstreamFile] = {}
        self._refs_checked: dict[str, float] = {}
        self._absent_listings: LruMap[str, bool] = LruMap(ABSENT_LISTINGS_REMEMBERED)

    async def _cached_document(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """An immutable document: from the database, or fetched once and stored."""
        body = await self.metadata.get_document(key)
        if body is not None:
            return json.loads(body)

        async def fetch_and_store() -> Any:
            document = await fetch()
            await self.metadata.put_document(key, json.dumps(document).encode())
            return document

        return await self._fetching_documents.run(key, fetch_and_store)

    # Repo info and revisions ----------------------------------------------------------

    async def _fetch_info(self, ref: RepoRef, revision: str | None) -> Any:
        """Repo info at a branch/tag from upstream, kept as the document of the commit it names."""
        if revision is None:
            document, _link = await self.upstream.get_json(
                self.upstream.repo_url(ref), operation="repo info"
            )
        else:
            url = self.upstream.repo_url(ref, "revision", revision)
            document, _link = await self.upstream.get_json(
                url, not_found=RevisionNotFound, operation="repo info"
            )
        _check_identity(ref, document)
        commit = document.get("sha") if isinstance(document, dict) else None
        if isinstance(commit, str):
            await self.metadata.put_document(f"info:{ref}@{commit}?", json.dumps(document).encode())
        return document

    async def repo_info(
        self, ref: RepoRef, revision: str | None, query: Sequence[tuple[str, str]]
    ) -> Answer:
        resolved = await self.revisions.resolve(ref, revision)
        canonical = _canonical_query(query)
        key = f"info:{ref}@{resolved.commit}?{canonical}"

        async def fetch() -> Any:
            url = self.upstream.repo_url(ref, "revision", resolved.commit)
            document, _link = await self.upstream.get_json(url, query, operation="repo info")
            _check_identity(ref, document)
            return document

        try:
            document = await self._cached_document(key, fetch)
        except Exception as error:
            # Extra fields (blobs, expand) unavailable: the plain document is better than nothing.
            fallback = await self.metadata.get_document(f"info:{ref}@{resolved.commit}?")
            if not is_upstream_failure(error) or fallback is None:
                raise
            return Answer(json.loads(fallback), resolved.commit, stale=True)
        return Answer(document, resolved.commit, resolved.stale)

    # Listings -------------------------------------------------------------------------

    async def tree(
        self, ref: RepoRef, revision: str, path: str, *, recursive: bool, expand: bool
    ) -> Answer:
        resolved = await self.revisions.resolve(ref, revision)
        key = f"tree:{ref}@{resolved.commit}/{path}?recursive={int(recursive)}&expand={int(expand)}"
        missing = EntryNotFound(headers={HEADER_REPO_COMMIT: resolved.commit})
        if self._absent_listings.get(key):
            raise missing

        async def fetch() -> Any:
            parts = ("tree", resolved.commit, path) if path else ("tree", resolved.commit)
            params = [("recursive", str(recursive).lower()), ("expand", str(expand).lower())]
            return await self.upstream.get_all_pages(
                self.upstream.repo_url(ref, *parts),
                params,
                not_found=EntryNotFound,
                operation="tree",
            )

        try:
            listing = await self._cached_document(key, fetch)
        except EntryNotFound:
            # Known absent at this (immutable) commit; kept in memory only, so that random
            # paths cost one upstream request each and no database row.
            self._absent_listings.put(key, True)
            raise missing from None
        if listing is None:  # an absence recorded in the database by an earlier version
            raise missing
        return Answer(listing, resolved.commit, resolved.stale)

    async def paths_info(
        self, ref: RepoRef, revision: str, paths: Sequence[str], *, expand: bool
    ) -> Answer:
        resolved = await self.revisions.resolve(ref, revision)
        unique = sorted(set(paths))
        digest = hashlib.sha256("\0".join(unique).encode()).hexdigest()
        key = f"paths-info:{ref}@{resolved.commit}/{digest}?expand={int(expand)}"

        async def fetch() -> Any:
            form = [("paths", path) for path in unique] + [("expand", str(expand).lower())]
            return await self.upstream.post_form_json(
                self.upstream.repo_url(ref, "paths-info", resolved.commit),
                form,
                operation="paths info",
            )

        return Answer(await self._cached_document(key, fetch), resolved.commit, resolved.stale)

    async def refs(self, ref: RepoRef, *, include_prs: bool) -> Answer:
        key = f"refs:{ref}?prs={int(include_prs)}"
        checked = self._refs_checked.get(key)
        if checked is not None and time.time() - checked < self.revision_ttl:
            body = await self.metadata.get_document(key)
            if body is not None:
                return Answer(json.loads(body))

        async def fetch() -> Any:
            params = [("include_prs", "1")] if include_prs else []
            document, _link = await self.upstream.get_json(
                self.upstream.repo_url(ref, "refs"), params, operation="refs"
            )
            await self.metadata.put_document(key, json.dumps(document).encode())
            self._refs_checked[key] = time.time()
            return document

        try:
            return Answer(await self._fetching_documents.run(key, fetch))
        except Exception as error:
            body = await self.metadata.get_document(key)
            if not is_upstream_failure(error) or body is None:
                raise
            logger.warning("serving refs of %s (stale): upstream failed: %s", ref, error)
            return Answer(json.loads(body), stale=True)

    async def commits(
        self, ref: RepoRef, revision: str, page: int, *, formatted: bool
    ) -> CommitsPage:
        resolved = await self.revisions.resolve(ref, revision)
        key = f"commits:{ref}@{resolved.commit}?p={page}&formatted={int(formatted)}"

        async def fetch() -> Any:
            params = [("p", str(page))] if page else []
            if formatted:
                params.append(("expand[]", "formatted"))
            items, link = await self.upstream.get_json(
                self.upstream.repo_url(ref, "commits", resolved.commit),
                params,
                not_found=RevisionNotFound,
                operation="commits",
            )
            has_next = link is not None and bool(parse_qs(urlsplit(link).query).get("p"))
            return {"items": items, "has_next": has_next}

        document = await self._cached_document(key, fetch)
        return CommitsPage(document["items"], document["has_next"], resolved.commit, resolved.stale)

    # Files ----------------------------------------------------------------------------

    async def entry_with_sha256(self, ref: RepoRef, sha256: str) -> FileEntry | None:
        """A file of the repo already looked up (its `/resolve` answered) with this sha256."""
        found = await self.metadata.entry_with_sha256(ref, sha256)
        if found is None:
            return None
        commit, path, record = found
        return FileEntry(ref, commit, path, record.size, record.git_oid, sha256)

    async def file_entry(self, ref: RepoRef, revision: str, path: str) -> FileEntry:
        resolved = await self.revisions.resolve(ref, revision)
        commit = resolved.commit
        record = await self.metadata.get_entry(ref, commit, path)
        if record is None:
            record = await self._fetching_entries.run(
                f"entry:{ref}@{commit}/{path}", lambda: self._fetch_entry(ref, commit, path)
            )
        if record is MISSING:
            raise EntryNotFound(headers={HEADER_REPO_COMMIT: commit})
        return FileEntry(
            ref, commit, path, record.size, record.git_oid, record.sha256, resolved.stale
        )

    async def _fetch_entry(self, ref: RepoRef, commit: str, path: str) -> FileRecord:
        try:
            source = await self.upstream.file_metadata(ref, commit, path)
        except EntryNotFound:
            await self.metadata.put_entry(ref, commit, path, MISSING)
            return MISSING
        record = FileRecord(source.size, source.git_oid, source.sha256)
        await self.metadata.put_entry(ref, commit, path, record)
        self._sources[str(record.blob)] = source
        return record

    async def _source(self, entry: FileEntry, *, refresh: bool) -> UpstreamFile:
        """Where to fetch the entry's bytes: a fresh (signed) URL from a `/resolve/` HEAD."""
        blob = str(entry.blob)
        source = self._sources.get(blob)
        if source is not None and source.url_is_fresh() and not refresh:
            return source

        async def fetch() -> UpstreamFile:
            fresh = await self.upstream.file_metadata(entry.ref, entry.commit, entry.path)
            self._sources[blob] = fresh
            return fresh

        return await self._fetching_sources.run(blob, fetch)

    async def cache_status(self, entry: FileEntry, start: int, end: int) -> str:
        return await self.blobs.cached_fraction(entry.blob, start, end)

    async def redirect_url(self, entry: FileEntry) -> str | None:
        return await self.blobs.redirect_url(entry.blob)

    def refuses_resume(self, entry: FileEntry) -> bool:
        return self.blobs.refuses_resume(entry.blob)

    def read(
        self, entry: FileEntry, start: int, end: int, *, files: bool = False
    ) -> AsyncIterator[bytes | FileSegment]:
        async def fetch(range_start: int, range_end: int) -> AsyncIterator[bytes]:
            source = await self._source(entry, refresh=False)
            try:
                async for piece in self.upstream.read_range(
                    source.download_url, range_start, range_end
                ):
                    yield piece
                return
            except DownloadUrlExpired:
                source = await self._source(entry, refresh=True)
            async for piece in self.upstream.read_range(
                source.download_url, range_start, range_end
            ):
                yield piece

        return self.blobs.read_files(
            entry.blob, entry.size, start, end, None if self.offline else fetch, files=files
        )


def _check_identity(ref: RepoRef, document: Any) -> None:
    """Raise `RepoMoved` if upstream's repo info names another repo than `ref` (renamed
    without a redirect, or a legacy name): nothing is served before that id is authorized."""
    answered = document.get("id") if isinstance(document, dict) else None
    if isinstance(answered, str) and canonical_name(answered) != canonical_name(ref.repo_id):
        raise RepoMoved(ref.repo_type, answered)
