"""Every Prometheus metric hubproxy exports, defined once, in one registry.

Labels are bounded by construction: route families, methods, status codes, sources, kinds,
backends and operations — never repo names or paths. `GET /metrics` renders `REGISTRY`.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter(
    "hubproxy_requests",
    "HTTP requests answered, by route family, method and status.",
    ("route", "method", "status"),
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "hubproxy_request_duration_seconds",
    "Time from request to the last byte of the response, by route family.",
    ("route", "method"),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SERVED_BYTES = Counter(
    "hubproxy_served_bytes",
    "File bytes sent to clients, by source: cache (stored chunks) or upstream (chunks in flight).",
    ("source",),
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
    registry=REGISTRY,
)
CACHE_BLOBS = Gauge(
    "hubproxy_cache_blobs",
    "Files (blobs) with at least one chunk in storage; refreshed every 30 s.",
    registry=REGISTRY,
)
CACHE_PINNED_BYTES = Gauge(
    "hubproxy_cache_pinned_bytes",
    "Stored bytes of pinned repos (never evicted); refreshed every 30 s.",
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
    "Bytes uploaded to hosted repos and stored, by transfer: regular (inside commits) or lfs.",
    ("transfer",),
    registry=REGISTRY,
)
HUB_COMMITS = Counter(
    "hubproxy_hub_commits",
    "Commits to hosted repos, by outcome: created, or refused (invalid, conflicting, missing).",
    ("outcome",),
    registry=REGISTRY,
)
