"""The one ASGI middleware around every request: request id, metrics, access record.

It gives each request an id (`scope["state"]["request_id"]`, returned as `X-Request-Id`),
counts it by route family, method and status, times it to the last byte, and writes one access
record (logger `hubproxy.access`) with what was sent.

File downloads — resolve GETs whose response has a body — are timed apart from everything else
(`hubproxy_download_duration_seconds`, `hubproxy_download_ttfb_seconds`, by cache outcome), so
multi-GB bodies never share a histogram with millisecond metadata calls.
"""

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubproxy.constants import HEADER_CACHE_STATUS, HEADER_REQUEST_ID
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
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def route_family(scope: Scope) -> str:
    """The bounded label of a request: set by the dispatcher once the URL is matched."""
    return str(scope.get("state", {}).get("route", "unmatched"))


class RequestMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.monotonic()
        status = 0
        sent = 0
        cache = ""
        first_byte_at: float | None = None

        async def send_and_observe(message: Message) -> None:
            nonlocal status, sent, cache, first_byte_at
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.append(HEADER_REQUEST_ID, request_id)
                cache = headers.get(HEADER_CACHE_STATUS, "")
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and first_byte_at is None:
                    # Taken before the send: the time hubproxy needed, not the client's reading.
                    first_byte_at = time.monotonic()
                sent += len(body)
            await send(message)

        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            duration = time.monotonic() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = route_family(scope)
            REQUESTS.labels(route, method, str(status or 500)).inc()
            # Error answers to a resolve GET have a (JSON) body too: only file bodies count.
            is_download = route == "resolve" and method == "GET" and status in (200, 206)
            if is_download and first_byte_at is not None:
                outcome = cache if cache in DOWNLOAD_CACHE_OUTCOMES else "other"
                DOWNLOAD_DURATION.labels(outcome).observe(duration)
                DOWNLOAD_TIME_TO_FIRST_BYTE.labels(outcome).observe(first_byte_at - started)
            else:
                REQUEST_DURATION.labels(route, method).observe(duration)
            access_logger.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status or 500,
                extra={
                    "request_id": request_id,
                    "principal": state.get("principal", "anonymous"),
                    "route": route,
                    "status": status or 500,
                    "bytes": sent,
                    "duration_ms": round(duration * 1000, 1),
                    "cache": cache or None,
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
