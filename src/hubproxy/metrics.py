"""Every Prometheus metric hubproxy exports, defined once, in one registry.

Labels are bounded by construction: route families, methods, status codes, sources, kinds,
backends, operations and cache outcomes — never repo names or paths. `GET /metrics` renders
`REGISTRY`.

Request durations are two families, because a metadata call takes milliseconds and a file body
can take hours: `hubproxy_request_duration_seconds` (every request except file downloads) and
`hubproxy_download_duration_seconds` (resolve GETs that send a body), with
`hubproxy_download_ttfb_seconds` for the time to the first body byte of those downloads.

With `serve --workers N` a scrape reaches one worker, yet must describe the whole server:
each worker keeps its values in files of its own in one directory (prometheus_client's
multiprocess mode, switched on in the worker right after the fork: `share_across_workers`),
and `exposition` sums them. Counters and histograms of a worker that exited stay counted;
its gauges go (`forget_worker`). Gauges say how they combine (`multiprocess_mode`): what is
per process (fills in flight, the audit queue) is summed over the live workers; what every
worker reads from the shared database (stored bytes, blobs) is the most recent reading.
The per-process `process_*` metrics are left out of such a scrape: they would describe
whichever worker answered.
"""

import importlib.metadata
import os
import shutil
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.process_collector import ProcessCollector

import hubproxy

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# A download of one file: from a small config (ms) to a multi-GB shard over a slow link (hours).
_DOWNLOAD_BUCKETS = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400,
)  # fmt: skip
# Cache outcomes a download is labelled with; anything else is counted as "other".
DOWNLOAD_CACHE_OUTCOMES = frozenset({"hit", "miss", "partial"})


def package_version() -> str:
    """The installed distribution's version, or the source tree's when not installed."""
    try:
        return importlib.metadata.version("hubproxy")
    except importlib.metadata.PackageNotFoundError:
        return hubproxy.__version__


BUILD_INFO = Info(
    "hubproxy_build",
    "The running hubproxy: its version (the value is always 1).",
    registry=REGISTRY,
)
BUILD_INFO.info({"version": package_version()})

REQUESTS = Counter(
    "hubproxy_requests",
    "HTTP requests answered, by route family, method and status.",
    ("route", "method", "status"),
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "hubproxy_request_duration_seconds",
    "Time from request to the last byte of the response, by route family; file downloads"
    " (resolve GETs with a body) are in hubproxy_download_duration_seconds instead.",
    ("route", "method"),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
DOWNLOAD_DURATION = Histogram(
    "hubproxy_download_duration_seconds",
    "Time from request to the last byte of a file download (resolve GET with a body),"
    " by cache outcome (hit, miss, partial).",
    ("cache",),
    buckets=_DOWNLOAD_BUCKETS,
    registry=REGISTRY,
)
DOWNLOAD_TIME_TO_FIRST_BYTE = Histogram(
    "hubproxy_download_ttfb_seconds",
    "Time from request to the first body byte of a file download, by cache outcome.",
    ("cache",),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SERVED_BYTES = Counter(
    "hubproxy_served_bytes",
    "File bytes sent to clients, by source: cache (stored chunks) or upstream (chunks in flight).",
    ("source",),
    registry=REGISTRY,
)
SENDFILE_BYTES = Counter(
    "hubproxy_sendfile_bytes",
    "File bytes sent from stored chunk files straight to the socket with sendfile(2).",
    registry=REGISTRY,
)
WARM_HEADS = Counter(
    "hubproxy_warm_head_answers",
    "HEAD /resolve/ requests the connection answered again from an answer of the last second "
    "(re-authorized, never a hosted repo; hf_api/warm_heads.py).",
    registry=REGISTRY,
)
DOWNLOAD_BODIES = Counter(
    "hubproxy_download_bodies",
    "File bodies sent, by path: sendfile (verified local chunks, zero-copy) or copy.",
    ("path",),
    registry=REGISTRY,
)
REDIRECTS = Counter(
    "hubproxy_redirects",
    "Downloads answered with a 302 to a presigned storage URL (S3 redirect mode).",
    registry=REGISTRY,
)
UPSTREAM_BYTES = Counter(
    "hubproxy_upstream_bytes",
    "File bytes fetched from the upstream hub.",
    registry=REGISTRY,
)
CHUNK_READS = Counter(
    "hubproxy_chunk_reads",
    "Chunk reads by result: hit (stored), miss (started a fill), joined (followed a fill).",
    ("result",),
    registry=REGISTRY,
)
FILLS_IN_FLIGHT = Gauge(
    "hubproxy_fills_in_flight",
    "Chunk fills from upstream under way.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
FILLS = Counter(
    "hubproxy_fills",
    "Chunk fills finished, by outcome (ok, failed).",
    ("outcome",),
    registry=REGISTRY,
)
FILL_DURATION = Histogram(
    "hubproxy_fill_duration_seconds",
    "Time to fetch, store and commit one chunk.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
VERIFICATION_FAILURES = Counter(
    "hubproxy_verification_failures",
    "Cached files whose content did not match their hash (deleted and refetched).",
    registry=REGISTRY,
)
STALE_ANSWERS = Counter(
    "hubproxy_stale_answers",
    "Branch/tag resolutions served from the last known commit because upstream failed.",
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "hubproxy_upstream_errors",
    "Upstream failures by kind (unavailable, timeout, rate_limited, truncated, url_expired).",
    ("kind",),
    registry=REGISTRY,
)
CACHE_STORED_BYTES = Gauge(
    "hubproxy_cache_stored_bytes",
    "Bytes of committed chunks in storage.",
    multiprocess_mode="livemostrecent",
    registry=REGISTRY,
)
CACHE_BLOBS = Gauge(
    "hubproxy_cache_blobs",
    "Files (blobs) with at least one chunk in storage; refreshed every 30 s.",
    multiprocess_mode="livemostrecent",
    registry=REGISTRY,
)
CACHE_PINNED_BYTES = Gauge(
    "hubproxy_cache_pinned_bytes",
    "Stored bytes of pinned repos (never evicted); refreshed every 30 s.",
    multiprocess_mode="livemostrecent",
    registry=REGISTRY,
)
EVICTIONS = Counter(
    "hubproxy_evictions",
    "Files evicted to stay under cache_max_bytes.",
    registry=REGISTRY,
)
EVICTED_BYTES = Counter(
    "hubproxy_evicted_bytes",
    "Bytes evicted to stay under cache_max_bytes.",
    registry=REGISTRY,
)
LOCAL_TIER_READS = Counter(
    "hubproxy_local_tier_reads",
    "Whole-object reads through the local tier of S3 storage (local_cache_dir), by outcome: hit"
    " (a local copy) or miss (read from S3).",
    ("outcome",),
    registry=REGISTRY,
)
LOCAL_TIER_BYTES = Counter(
    "hubproxy_local_tier_bytes",
    "Bytes read through the local tier, by source: local (its copies) or remote (S3).",
    ("source",),
    registry=REGISTRY,
)
LOCAL_TIER_STORED_BYTES = Gauge(
    "hubproxy_local_tier_stored_bytes",
    "Bytes of the local tier's copies (kept under local_cache_max_bytes).",
    registry=REGISTRY,
)
LOCAL_TIER_EVICTED_BYTES = Counter(
    "hubproxy_local_tier_evicted_bytes",
    "Bytes of local copies dropped to stay under local_cache_max_bytes (S3 keeps them).",
    registry=REGISTRY,
)
LOCAL_TIER_DROPPED = Counter(
    "hubproxy_local_tier_dropped",
    "Local copies that failed a check and were deleted, by reason: damaged (bytes not matching"
    " their sha256, truncated, gone) or stale (the S3 object was deleted or replaced).",
    ("reason",),
    registry=REGISTRY,
)
STORAGE_OPERATION_DURATION = Histogram(
    "hubproxy_storage_operation_seconds",
    "Storage backend calls, by backend and operation.",
    ("backend", "operation"),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

AUDIT_RECORDS = Counter(
    "hubproxy_audit_records_total",
    "Audit records written, by action and decision (allow, deny).",
    ["action", "decision"],
    registry=REGISTRY,
)
AUDIT_QUEUE_DEPTH = Gauge(
    "hubproxy_audit_queue_depth",
    "Audit records waiting to be written.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
AUDIT_QUEUE_WAITS = Counter(
    "hubproxy_audit_queue_full_total",
    "Times a request waited because the audit queue was full (backpressure, nothing dropped).",
    registry=REGISTRY,
)
AUDIT_WRITE_DURATION = Histogram(
    "hubproxy_audit_write_seconds",
    "Time to write one batch of audit records.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
AUDIT_WRITE_FAILURES = Counter(
    "hubproxy_audit_write_failures_total",
    "Audit batch writes that failed and were retried.",
    registry=REGISTRY,
)
HUB_UPLOADED_BYTES = Counter(
    "hubproxy_hub_uploaded_bytes",
    "Bytes uploaded to hosted repos and stored, by transfer: regular (inside commits), lfs or"
    " xet (xorbs).",
    ("transfer",),
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "hubproxy_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered, retried (to be tried again), failed"
    " (attempts exhausted) or skipped (webhook disabled, or its owner may no longer see the repo).",
    ("outcome",),
    registry=REGISTRY,
)
HUB_COMMITS = Counter(
    "hubproxy_hub_commits",
    "Commits to hosted repos, by outcome: created, or refused (invalid, conflicting, missing).",
    ("outcome",),
    registry=REGISTRY,
)


# The registry `exposition` renders: `REGISTRY`, or the workers' sum once shared.
_exposed = REGISTRY


def prepare_worker_directory(directory: Path) -> None:
    """Empty `directory` for the workers' metric files (the supervisor, before any fork):
    a new server counts from zero, as a single process does."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def share_across_workers(directory: Path) -> None:
    """Keep this worker's metric values in files in `directory`, summed with the other
    workers' by `exposition`. Called in the worker right after the fork, before it serves.

    The metrics were created at import, in the supervisor, with in-memory values; they get
    file-backed values here, which is what creating them after the fork would have done.
    """
    global _exposed
    defined = [
        metric
        for metric in globals().values()
        # The build info is the same in every process: rendered as it is.
        if isinstance(metric, MetricWrapperBase) and not isinstance(metric, Info)
    ]
    for metric in defined:
        if metric._labelnames:
            metric.clear()  # children are created again, file-backed, on first use
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    for metric in defined:
        if not metric._labelnames:
            metric._metric_init()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    registry.register(BUILD_INFO)
    _exposed = registry


def forget_worker(directory: Path, pid: int) -> None:
    """Drop the live gauges of worker `pid`, which exited (its counters stay counted)."""
    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The Prometheus text of every metric of this server (all its workers)."""
    return generate_latest(_exposed)
