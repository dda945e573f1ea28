"""The one ASGI middleware around every request: request id, metrics, access record.

It gives each request an id (`scope["state"]["request_id"]`, returned as `X-Request-Id`),
counts it by route family, method and status, times it to the last byte, and writes one access
record (logger `hubproxy.access`) with what was sent.
"""

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubproxy.constants import HEADER_CACHE_STATUS, HEADER_REQUEST_ID
from hubproxy.ids import new_id
from hubproxy.logs import ACCESS_LOGGER
from hubproxy.metrics import REQUEST_DURATION, REQUESTS

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

        async def send_and_observe(message: Message) -> None:
            nonlocal status, sent, cache
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.append(HEADER_REQUEST_ID, request_id)
                cache = headers.get(HEADER_CACHE_STATUS, "")
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            duration = time.monotonic() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = route_family(scope)
            REQUESTS.labels(route, method, str(status or 500)).inc()
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
