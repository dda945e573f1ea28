"""Connection limits uvicorn's httptools protocol lacks: head size and count, and timeouts.

uvicorn arms its keep-alive timer only after a response, and httptools buffers a request head
of any size, so a connection that never finishes its headers (slowloris), a 64 MiB header or
a body that stops arriving stayed open forever. `limited_protocol(settings)` returns the
protocol class `hubproxy serve` runs, which adds:

- `max_header_bytes` / `max_headers`: a larger head is a 431 and the connection is closed;
- `idle_timeout`: a connection with no request in progress (new, or between keep-alive
  requests) is closed after it (uvicorn's keep-alive timer, also armed on connect);
- `header_timeout`: a request head must be complete this long after its first byte (408);
- `body_timeout`: the longest silence while a request body arrives. It is not a total time,
  and it does not run while hubproxy itself has paused reading (a slow handler), nor while a
  response is being sent: a slow but progressing download is never cut.

Refusals carry `X-Error-Code` like every other answer, including httptools' own 400.
It also implements the ASGI `http.response.zerocopysend` extension (`zerocopy.py`), and
answers warm `/resolve/` HEADs itself from the application's `WarmHeads` (in the lifespan
state): the decision is still `auth/`'s, only the ASGI cycle is skipped.
"""

import asyncio
import json
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from hubproxy.cli.zerocopy import offer_zero_copy
from hubproxy.hf_api.warm_heads import WarmHeads
from hubproxy.settings import Settings

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def _refusal(status: int, code: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status].decode()}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"x-error-code: {code}\r\nx-error-message: {message}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class LimitedProtocol(HttpToolsProtocol):
    """See the module docstring; the limits are class attributes set by `limited_protocol`."""

    max_header_bytes = 64 * 1024
    max_headers = 100
    header_timeout = 10.0
    body_timeout = 60.0

    _head_bytes = 0
    _header_count = 0
    _in_head = False
    _in_body = False
    _answered_warm = False
    _last_data = 0.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its idle timer only after a response: a silent new connection too.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last_data = self.loop.time()
        counting = not self._in_body
        super().data_received(data)
        if counting and self._in_head:
            # Still inside a head after this piece: count it all (a head split over reads).
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(431, "RequestHeaderFieldsTooLarge", "Request head too large")
        # Deadlines are armed once the piece is parsed, and only for a head or body still
        # incomplete: most requests (a HEAD, a GET) arrive whole in one piece, and arming and
        # cancelling two timers for each of them was a measurable part of a warm HEAD.
        if self._deadline is None and not self.transport.is_closing():
            if self._in_head:
                self._arm(self.header_timeout, self._head_expired)
            elif self._in_body:
                self._arm(self.body_timeout, self._body_check)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._header_count = True, 0, 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refuse(431, "RequestHeaderFieldsTooLarge", "Too many request headers")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_deadline()
        if self.transport.is_closing():
            return
        if self._answer_warm_head():
            return
        super().on_headers_complete()
        self._in_body = True

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_deadline()
        if self._answered_warm:
            self._answered_warm = False  # answered whole in `on_headers_complete`
            return
        super().on_message_complete()

    def _answer_warm_head(self) -> bool:
        """Answer a HEAD the application answered a moment ago (`hf_api/warm_heads.py`) here,
        without an ASGI task: only when nothing else of this connection is in progress, so
        answers keep the order of their requests."""
        warm_heads: WarmHeads | None = self.app_state.get("warm_heads")
        if (
            warm_heads is None
            or self.parser.get_method() != b"HEAD"
            or (self.cycle is not None and not self.cycle.response_complete)
            or self.pipeline
            or self.flow.write_paused
            or self.expect_100_continue
            or self.parser.get_http_version() != "1.1"
            or not self.parser.should_keep_alive()
        ):
            return False
        client = self.client[0] if self.client else ""
        answer = warm_heads.answer(
            self.url, self.headers, self.server_state.default_headers, client
        )
        if answer is None:
            return False
        self.transport.write(answer)
        self._answered_warm = True
        # What uvicorn does after each response (`on_response_complete`).
        self.server_state.total_requests += 1
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        return True

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # The one place every request (pipelined ones too) starts: offer zero-copy sends.
        send = offer_zero_copy(cycle, self.loop, self.transport)
        if send is not None:
            inner = app

            async def app(scope: Any, receive: Any, _send: Any) -> None:
                await inner(scope, receive, send)

        super()._start_asgi_task(cycle, app)

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "BadRequest", msg)

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._cancel_deadline()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete or not self._in_body:
            self.transport.write(_refusal(status, code, message))
        self.transport.close()

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(delay, callback)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_expired(self) -> None:
        self._deadline = None
        if self._in_head:
            self._refuse(408, "RequestTimeout", "The request head did not arrive in time")

    def _body_check(self) -> None:
        self._deadline = None
        if not self._in_body or self.transport.is_closing():
            return
        silent = self.loop.time() - self._last_data
        if self.flow.read_paused or silent < self.body_timeout:
            # hubproxy is the one not reading, or data came since: look again later.
            self._arm(max(self.body_timeout - silent, 0.1), self._body_check)
            return
        # Mid-request: the handler sees a disconnect (a 400), the client a closed connection.
        self.transport.close()


def limited_protocol(settings: Settings) -> type[LimitedProtocol]:
    """The protocol class for uvicorn's `http=`, with the limits of `settings`."""
    return type(
        "ConfiguredProtocol",
        (LimitedProtocol,),
        {
            "max_header_bytes": settings.max_header_bytes,
            "max_headers": settings.max_headers,
            "header_timeout": settings.header_timeout,
            "body_timeout": settings.body_timeout,
        },
    )
