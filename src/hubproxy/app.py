"""`create_app(settings)`: builds every object explicitly; the lifespan owns their life.

Start-up order: database (migrations) → storage (crash leftovers removed) → blob cache
(staging emptied, unverified blobs re-checked) → upstream client → accounts → audit log.
Shut-down runs in reverse, flushing the audit queue first, then cancelling fills.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hubproxy.auth.audit import (
    AuditRecord,
    AuditSink,
    DatabaseAuditSink,
    FanoutSink,
    QueuedSink,
    StdoutJsonSink,
)
from hubproxy.auth.audit_log import AuditReader, audit_database_for
from hubproxy.auth.authn import Authenticator
from hubproxy.cache.blobs import BlobCache
from hubproxy.cache.held import HeldContent
from hubproxy.cache.management import CacheManager
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.storage import ObjectNotFound, Storage, StorageError, open_storage
from hubproxy.cache.storage.local_tier import retire_worker_directories
from hubproxy.cache.store import CachingRepoStore
from hubproxy.cache.upstream import UpstreamClient
from hubproxy.cache.upstream_budget import UpstreamBudget
from hubproxy.cas.content import XetBackedContent
from hubproxy.cas.store import XetStore
from hubproxy.datadir import DataDirLock, ServerProcess
from hubproxy.db import Database, database_for
from hubproxy.db.notifications import ACCOUNTS_CHANNEL, ChangeListener
from hubproxy.errors import DatabaseUnavailable, HubError
from hubproxy.hf_api import cas, health
from hubproxy.hf_api.context import Services
from hubproxy.hf_api.errors import (
    handle_http_exception,
    handle_hub_error,
    handle_unexpected_error,
)
from hubproxy.hf_api.middleware import RequestMiddleware
from hubproxy.hf_api.warm_heads import WarmHeads
from hubproxy.hub.repos import HubRepos
from hubproxy.hub.service import HostedRepoWriter
from hubproxy.hub.store import HostedRepoStore
from hubproxy.settings import Settings
from hubproxy.signing import Signer
from hubproxy.web.dispatch import BrowserDownloads, FrontDoor, PageDispatcher
from hubproxy.web.render import STATIC
from hubproxy.webhooks.deliverer import WebhookDeliverer
from hubproxy.webhooks.publisher import WebhookPublisher
from hubproxy.webhooks.store import WebhookStore

logger = logging.getLogger(__name__)

REDIRECT_TTL_SECONDS = 3600
AUDIT_PRUNE_INTERVAL_SECONDS = 3600
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


async def _probe(database: Database, storage: Storage) -> dict[str, str]:
    checks = {"database": "ok", "storage": "ok"}
    try:
        await database.run(lambda connection: connection.execute("SELECT 1").fetchone())
    except Exception as error:
        checks["database"] = type(error).__name__
    try:
        await storage.stat("health/probe")
    except ObjectNotFound:
        pass
    except (StorageError, OSError) as error:
        checks["storage"] = type(error).__name__
    return checks


async def open_audit(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[QueuedSink, AuditReader]:
    """The audit sink: its database (`auth/audit_log.py`: the SQLite file, or the shared
    PostgreSQL; plus stdout JSON lines if asked), behind a queue, and the hourly pruning
    `audit_retention` asks for; and the reader of that log. Closed (drained) by `stack`."""
    database_sink = DatabaseAuditSink(audit_database_for(settings))
    await database_sink.open()
    inner: AuditSink = database_sink
    if settings.audit_stdout:
        inner = FanoutSink([database_sink, StdoutJsonSink()])
    queued = QueuedSink(inner, max_queued=settings.audit_queue_size)
    queued.start()
    stack.push_async_callback(queued.aclose)
    if settings.audit_retention is not None:
        pruning = asyncio.create_task(
            _prune_audit(database_sink, queued, settings.audit_retention), name="audit-retention"
        )
        stack.callback(pruning.cancel)
    shared = database_sink.database if settings.database_url is not None else None
    return queued, AuditReader(settings, shared)


async def _prune_audit(
    database_sink: DatabaseAuditSink, audit: AuditSink, retention: float
) -> None:
    # With replicas, each prunes the shared table: a second delete finds nothing, and only
    # the replica that deleted records audits it.
    while True:
        try:
            deleted = await database_sink.prune(time.time() - retention)
        except DatabaseUnavailable:
            logger.warning("audit retention: the database is unavailable; pruning next time")
        except Exception:
            logger.exception("audit retention: pruning failed")
        else:
            if deleted:
                logger.info("audit retention: deleted %d records", deleted)
                record = AuditRecord("audit_prune", actor_kind="system", actor_name="hubproxy")
                record.reason = f"deleted {deleted} records older than {retention:.0f} s"
                await audit.emit([record])
        await asyncio.sleep(AUDIT_PRUNE_INTERVAL_SECONDS)


def _links_base(settings: Settings) -> str:
    """The URL prefix of links in webhook payloads: sent with no request to take it from."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://{settings.host}:{settings.port}"


def create_app(settings: Settings, process: ServerProcess | None = None) -> Starlette:
    """The ASGI application for `settings`; `process`: it runs in a worker of a server of
    several (`cli/workers.py`), which holds the data-dir lock for it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        # Each part is closed (in reverse) however far start-up got.
        async with contextlib.AsyncExitStack() as stack:
            if process is None:
                lock = DataDirLock(settings.data_dir)
                lock.acquire()
                stack.callback(lock.release)
            else:
                process.lock.confirm()
            database = database_for(settings)
            await database.open()
            stack.push_async_callback(database.aclose)
            if process is None and settings.local_cache_dir is not None:
                # Alone on the data dir: the tiers of workers of an earlier run are orphans.
                await asyncio.to_thread(retire_worker_directories, settings.local_cache_dir, 1)
            storage = open_storage(
                settings,
                worker_index=0 if process is None else process.index,
                worker_count=1 if process is None else process.count,
            )
            stack.push_async_callback(storage.aclose)
            metadata = CacheMetadata(database)
            await metadata.open()
            blobs = BlobCache(
                storage,
                metadata,
                # A worker's fills stage in a directory of its own (followers are local).
                settings.staging_path
                if process is None
                else settings.staging_path / f"worker-{process.index}",
                chunk_size=settings.chunk_size,
                read_ahead_chunks=settings.read_ahead_chunks,
                parallel_chunk_fetches=settings.parallel_chunk_fetches,
                lease_seconds=settings.lease_seconds,
                max_bytes=settings.cache_max_bytes,
                redirect_ttl=REDIRECT_TTL_SECONDS if settings.s3_redirect else None,
            )
            stack.push_async_callback(blobs.aclose)
            # Other processes (workers, replicas) share the metadata store: the upstream budget
            # and the cache size limit hold for all of them together.
            shared_store = process is not None or settings.database_url is not None
            await blobs.start(
                sole=process is None,
                reverify=process is None or process.index == 0,
                shared=shared_store,
            )
            upstream = UpstreamClient(
                settings,
                UpstreamBudget(settings.upstream_concurrency, database if shared_store else None),
            )
            await upstream.start()
            stack.push_async_callback(upstream.aclose)
            store = CachingRepoStore(
                upstream,
                metadata,
                blobs,
                revision_ttl=settings.revision_ttl,
                offline=settings.offline,
            )
            if settings.offline:
                logger.warning("offline mode: upstream is never contacted; serving only the cache")
            logger.info(
                "hubproxy ready: upstream %s, %s storage, data in %s",
                settings.upstream,
                storage.name,
                settings.data_dir,
            )

            async def check_ready() -> dict[str, str]:
                return await _probe(database, storage)

            authenticator = Authenticator(database, refresh_interval=settings.accounts_refresh)
            await authenticator.start()
            stack.push_async_callback(authenticator.aclose)
            if settings.database_url is not None:
                # Account changes made on other replicas, at once (polling stays the fallback).
                listener = ChangeListener(
                    settings.database_url, ACCOUNTS_CHANNEL, authenticator.refresh
                )
                listener.start()
                stack.push_async_callback(listener.aclose)
            # Closed after the server stopped taking requests: every record is written first.
            audit, audit_log = await open_audit(settings, stack)

            xet = XetStore(storage, database, settings.staging_path)
            # Files uploaded through Xet are stored once, in xorbs, and reconstructed on read.
            content = XetBackedContent(HeldContent(blobs), xet)
            hub_repos = HubRepos(database)
            signer = Signer(database)
            webhooks = WebhookStore(database)
            deliverer = WebhookDeliverer(
                webhooks,
                lambda: authenticator.snapshot,
                audit,
                allowed_networks=settings.webhook_networks,
                require_auth=settings.require_auth,
            )
            # Closed before the audit log: its last records are written.
            await deliverer.start(sole=process is None)
            stack.push_async_callback(deliverer.aclose)
            publisher = WebhookPublisher(webhooks, _links_base(settings), deliverer.wake)
            hub = HostedRepoWriter(
                hub_repos,
                content,
                signer,
                lfs_threshold=settings.upload_lfs_threshold,
                events=publisher,
            )
            hosted = HostedRepoStore(hub_repos, content)
            warm_heads = WarmHeads(authenticator, settings)
            yield {
                # Also read by the connections (`cli/connections.py`), before any ASGI.
                "warm_heads": warm_heads,
                "services": Services(
                    settings,
                    store,
                    hosted,
                    hub,
                    authenticator,
                    audit,
                    audit_log,
                    check_ready,
                    xet,
                    signer,
                    webhooks,
                    CacheManager(database, storage),
                    warm_heads,
                ),
            }

    return Starlette(
        routes=[
            Route("/health/live", health.live, methods=["GET", "HEAD"]),
            Route("/health/ready", health.ready, methods=["GET", "HEAD"]),
            Route("/metrics", health.metrics, methods=["GET"]),
            # Before the catch-all: `/api/hubproxy/...` is never a repo URL.
            Mount(cas.CAS_PATH, routes=cas.ROUTES),
            # Web UI assets: a path no Hub URL or repo page can take (`-` is no namespace).
            Mount("/-/static", StaticFiles(directory=STATIC), name="static"),
            # Pages only where the Hub API claims no route (`web.dispatch.FrontDoor`).
            Route(
                "/{path:path}",
                FrontDoor(BrowserDownloads(), PageDispatcher()),
                methods=ALL_METHODS,
            ),
        ],
        middleware=[Middleware(RequestMiddleware)],
        exception_handlers={
            HubError: handle_hub_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected_error,
        },
        lifespan=lifespan,
    )
