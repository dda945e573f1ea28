"""Branch and tag → commit resolution with a TTL and a stale fallback.

Commit shas are immutable and need no lookup. A branch or tag is trusted for `ttl` seconds
after upstream last confirmed it; after that upstream is asked again (one request however many
clients ask at once). If upstream is down, slow, rate-limiting or hubproxy is offline, the last
known commit is served and marked stale, with a warning in the log: keeping clients working
matters more than freshness, and the response says so.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.upstream import is_upstream_failure
from hubproxy.constants import COMMIT_SHA_PATTERN
from hubproxy.errors import UpstreamUnavailable
from hubproxy.metrics import STALE_ANSWERS
from hubproxy.naming import RepoRef
from hubproxy.singleflight import SingleFlight

logger = logging.getLogger(__name__)

# The key used for "the default branch" (`/api/models/{repo}` without a revision).
DEFAULT_BRANCH_KEY = ""

# Asks upstream for the repo info at a revision (None = default branch); returns the document.
InfoFetcher = Callable[[RepoRef, str | None], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ResolvedRevision:
    commit: str
    stale: bool = False


class RevisionResolver:
    """Maps (repo, revision) to a commit, asking upstream at most once per TTL."""

    def __init__(self, metadata: CacheMetadata, fetch_info: InfoFetcher, ttl: float) -> None:
        self.metadata = metadata
        self.fetch_info = fetch_info
        self.ttl = ttl
        self._asking: SingleFlight[tuple[RepoRef, str], ResolvedRevision] = SingleFlight()

    async def resolve(self, ref: RepoRef, revision: str | None) -> ResolvedRevision:
        """The commit `revision` points at (None: the default branch)."""
        if revision is not None and COMMIT_SHA_PATTERN.match(revision):
            return ResolvedRevision(revision)
        key = DEFAULT_BRANCH_KEY if revision is None else revision
        record = await self.metadata.get_revision(ref, key)
        if record is not None and time.time() - record.resolved_at < self.ttl:
            return ResolvedRevision(record.commit)
        return await self._asking.run((ref, key), lambda: self._ask_upstream(ref, revision, key))

    async def _ask_upstream(self, ref: RepoRef, revision: str | None, key: str) -> ResolvedRevision:
        try:
            document = await self.fetch_info(ref, revision)
        except Exception as error:
            if not is_upstream_failure(error):
                raise
            record = await self.metadata.get_revision(ref, key)
            if record is None:
                raise
            logger.warning(
                "serving %s@%s as %s (stale): upstream failed: %s",
                ref,
                key or "<default>",
                record.commit,
                error,
            )
            STALE_ANSWERS.inc()
            return ResolvedRevision(record.commit, stale=True)
        commit = document.get("sha") if isinstance(document, dict) else None
        if not isinstance(commit, str) or not COMMIT_SHA_PATTERN.match(commit):
            raise UpstreamUnavailable("The upstream repo info has no commit sha")
        await self.metadata.put_revision(ref, key, commit)
        return ResolvedRevision(commit)
