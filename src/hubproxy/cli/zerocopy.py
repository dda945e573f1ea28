"""The ASGI `http.response.zerocopysend` extension, added to uvicorn's httptools protocol.

uvicorn does not implement the extension, so `hubproxy serve` adds it in its own protocol class
(`connections.py`). A request whose connection can take it gets
`scope["extensions"]["http.response.zerocopysend"] = {}`; the application may then send, after
`http.response.start` and between body messages,

    {"type": "http.response.zerocopysend", "file": <binary file object>, "offset": int,
     "count": int, "more_body": bool}

and the bytes `[offset, offset + count)` of the file go from the page cache to the socket with
`sendfile(2)` (`loop.sendfile`), never through a Python buffer. Everything else about the
response stays uvicorn's: the head, `Content-Length` accounting (the zero-copy bytes count
against it), keep-alive, completion and pipelining — the message ends with an empty
`http.response.body` of the same `more_body`, handed to uvicorn's own `send`.

When the message returns or raises, the file's position is just past the last byte that went
out (asyncio keeps it so), which is how the sender counts what a broken send delivered. A send
to a client that is gone raises `ClientGone` (an `OSError`) after closing the transport at once.

The extension is offered only where sendfile really works: the default asyncio event loop
(uvloop would copy), a plain TCP transport (not TLS), and a uvicorn version this code was
tested with (it reads `RequestResponseCycle`'s response state).
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from hubproxy.metrics import SENDFILE_BYTES

logger = logging.getLogger(__name__)

ZERO_COPY_SEND = "http.response.zerocopysend"
# uvicorn releases whose `RequestResponseCycle` this module was tested against (major.minor).
TESTED_UVICORN_VERSIONS = frozenset({"0.54"})

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(ConnectionError):
    """The client went away while (or before) file bytes were sent to it."""


def uvicorn_is_tested(version: str = uvicorn.__version__) -> bool:
    return ".".join(version.split(".")[:2]) in TESTED_UVICORN_VERSIONS


def can_send_files(loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport) -> bool:
    """Whether `loop.sendfile` on `transport` is real sendfile(2), not a copying fallback."""
    return (
        hasattr(os, "sendfile")
        and isinstance(loop, asyncio.SelectorEventLoop)
        and transport.get_extra_info("sslcontext") is None
        and transport.get_extra_info("socket") is not None
        and uvicorn_is_tested()
    )


class ZeroCopySend:
    """The `send` of one request: zero-copy messages handled here, the rest by uvicorn's."""

    def __init__(self, cycle: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.cycle = cycle  # uvicorn.protocols.http.httptools_impl.RequestResponseCycle
        self.loop = loop
        self.send: Send = cycle.send

    async def __call__(self, message: Message) -> None:
        if message["type"] != ZERO_COPY_SEND:
            await self.send(message)
            return
        cycle = self.cycle
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(f"{ZERO_COPY_SEND} outside of a response body")
        if cycle.chunked_encoding:
            raise RuntimeError(f"{ZERO_COPY_SEND} needs a response with a Content-Length")
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()
        if cycle.disconnected:
            raise ClientGone("the client disconnected")
        file = message["file"]
        offset: int = message.get("offset") or 0
        count: int | None = message.get("count")
        if count is None:
            count = os.fstat(file.fileno()).st_size - offset
        if cycle.scope["method"] != "HEAD" and count:
            if count > cycle.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            await self._sendfile(file, offset, count)
        await self.send(
            {
                "type": "http.response.body",
                "body": b"",
                "more_body": message.get("more_body", False),
            }
        )

    async def _sendfile(self, file: Any, offset: int, count: int) -> None:
        transport = self.cycle.transport
        try:
            sent = await self.loop.sendfile(transport, file, offset, count, fallback=False)
        except (OSError, RuntimeError) as error:
            # A reset or broken pipe, a transport closed meanwhile, or sendfile refusing at
            # its first byte (asyncio says "not available" then): the connection is unusable.
            # Aborting closes the socket now; uvicorn then marks the cycle disconnected.
            logger.debug("sendfile stopped: %r", error)
            transport.abort()
            raise ClientGone(str(error) or type(error).__name__) from error
        SENDFILE_BYTES.inc(sent)
        self.cycle.expected_content_length -= sent
        if sent != count:
            # The file was shorter than promised: the body cannot be completed.
            transport.abort()
            raise ClientGone(f"sendfile sent {sent} of {count} bytes")


def offer_zero_copy(
    cycle: Any, loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport
) -> ZeroCopySend | None:
    """Offer the extension on the cycle's scope if the connection can take it: the `send`
    the application must be given then, else None (uvicorn's own send)."""
    if not can_send_files(loop, transport):
        return None
    cycle.scope.setdefault("extensions", {})[ZERO_COPY_SEND] = {}
    return ZeroCopySend(cycle, loop)
