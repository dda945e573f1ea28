"""The one ASGI middleware around every request: request id, metrics, access record.

It gives each request an id (returned as `X-Request-Id`) and a `RequestFacts` that the
endpoints fill in (route family, principal, cache outcome), counts it by route family, method
and status, times it to the last byte, and writes one access record (logger `hubproxy.access`)
with what was sent.

File downloads — resolve GETs whose response has a body — are timed apart from everything else
(`hubproxy_download_duration_seconds`, `hubproxy_download_ttfb_seconds`, by cache outcome), so
multi-GB bodies never share a histogram with millisecond metadata calls.
"""

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubproxy.constants import HEADER_REQUEST_ID
from hubproxy.ids import new_id
from hubproxy.logs import ACCESS_LOGGER
from hubproxy.metrics import (
    DOWNLOAD_CACHE_OUTCOMES,
    DOWNLOAD_DURATION,
    DOWNLOAD_TIME_TO_FIRST_BYTE,
    REQUEST_DURATION,
    REQUESTS,
)

access_logger = logging.getLogger(ACCESS_LOGGER)
_BODY_MESSAGES = frozenset({"http.response.body", "http.response.zerocopysend"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


@dataclass(slots=True)
class RequestFacts:
    """What the metrics and the access log say about a request, filled by who knows it."""

    request_id: str
    # The bounded label of the request: set by the endpoint once the URL is matched.
    route: str = "unmatched"
    principal: str = "anonymous"
    # A download's cache outcome (`hit`, `miss`, `partial`, `stale`, `redirect`).
    cache: str | None = None


def request_facts(scope: Scope) -> RequestFacts:
    """The facts of the request `scope` belongs to; a bare app (a unit test) gets fresh ones."""
    state = scope.setdefault("state", {})
    facts = state.get("facts")
    if not isinstance(facts, RequestFacts):
        facts = state["facts"] = RequestFacts(new_id())
    return facts


# The metric children of the label values seen so far (route families, methods and statuses
# are bounded sets): `labels()` validates and locks on every call.
_counters: dict[tuple[str, str, int], Any] = {}
_durations: dict[tuple[str, str], Any] = {}


def _count(route: str, method: str, status: int) -> None:
    key = (route, method, status)
    counter = _counters.get(key)
    if counter is None:
        counter = _counters[key] = REQUESTS.labels(route, method, str(status))
    counter.inc()


def _request_duration(route: str, method: str) -> Any:
    key = (route, method)
    histogram = _durations.get(key)
    if histogram is None:
        histogram = _durations[key] = REQUEST_DURATION.labels(route, method)
    return histogram


class RequestMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts = RequestFacts(new_id())
        scope.setdefault("state", {})["facts"] = facts
        started = time.monotonic()
        status = 0
        sent = 0
        first_byte_at: float | None = None

        async def send_and_observe(message: Message) -> None:
            nonlocal status, sent, first_byte_at
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(HEADER_REQUEST_ID, facts.request_id)
            elif message["type"] in _BODY_MESSAGES:
                # Bytes, or a stored file's range sent with sendfile (`streaming.py`).
                length = (
                    message.get("count", 0) if "file" in message else len(message.get("body", b""))
                )
                if length and first_byte_at is None:
                    # Taken before the send: the time hubproxy needed, not the client's reading.
                    first_byte_at = time.monotonic()
                sent += length
            await send(message)

        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            duration = time.monotonic() - started
            client = (scope.get("client") or ("", 0))[0]
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = facts.route
            # Error answers to a resolve GET have a (JSON) body too: only file bodies count.
            is_download = route == "resolve" and method == "GET" and status in (200, 206)
            if is_download and first_byte_at is not None:
                outcome = facts.cache if facts.cache in DOWNLOAD_CACHE_OUTCOMES else "other"
                _count(route, method, status)
                DOWNLOAD_DURATION.labels(outcome).observe(duration)
                DOWNLOAD_TIME_TO_FIRST_BYTE.labels(outcome).observe(first_byte_at - started)
                log_access(scope["method"], scope["path"], status, facts, sent, duration, client)
            else:
                observe_request(
                    scope["method"], scope["path"], status, facts, sent, duration, client
                )


def observe_request(
    method: str,
    path: str,
    status: int,
    facts: RequestFacts,
    sent: int,
    duration: float,
    client: str,
) -> None:
    """Count and time a request that is not a file download, and write its access record;
    also for the warm HEADs the connection answers itself (`cli/connections.py`)."""
    label = method if method in _METHODS else "OTHER"
    _count(facts.route, label, status or 500)
    _request_duration(facts.route, label).observe(duration)
    log_access(method, path, status, facts, sent, duration, client)


def log_access(
    method: str,
    path: str,
    status: int,
    facts: RequestFacts,
    sent: int,
    duration: float,
    client: str,
) -> None:
    """The request's access record (logger `hubproxy.access`)."""
    # The record's fields cost a metadata request more than its metrics: only when someone
    # reads them.
    if not access_logger.isEnabledFor(logging.INFO):
        return
    access_logger.info(
        "%s %s %d",
        method,
        path,
        status or 500,
        extra={
            "request_id": facts.request_id,
            "principal": facts.principal,
            "route": facts.route,
            "status": status or 500,
            "bytes": sent,
            "duration_ms": round(duration * 1000, 1),
            "cache": facts.cache,
            "client": client,
            # Which worker answered (`serve --workers`).
            "pid": os.getpid(),
        },
    )
