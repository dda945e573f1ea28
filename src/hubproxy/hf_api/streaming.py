"""The one response that streams file bytes: headers first, then the body piece by piece.

The caller primes the body iterator (awaits its first piece) before building the response, so
that a failure to get any byte becomes a proper error response. A failure after the headers
went out can only break the connection: the client sees a short body against its
`Content-Length` and retries or resumes, it never takes a truncated file for a whole one.

A piece is bytes or, on the zero-copy path, a `FileSegment`: part of a stored chunk file, sent
with the ASGI `http.response.zerocopysend` extension (sendfile(2), `cli/zerocopy.py`).
`sends_files` is the one decision of which path a download takes: the connection must offer
the extension and the `sendfile` setting allow it; the blob cache then hands out files for
what it holds verified on local disk — local storage, or the local tier of S3 storage
(`local_cache_dir`, `cache/storage/local_tier.py`) — and bytes for everything else (chunks in
flight, S3 without a local tier, a blob not verified yet), so one response may mix both, and
the client gets the same bytes either way.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from starlette.types import Receive, Scope, Send

from hubproxy.cache.storage import FileSegment
from hubproxy.errors import HubError
from hubproxy.metrics import DOWNLOAD_BODIES

logger = logging.getLogger(__name__)

ZERO_COPY_SEND = "http.response.zerocopysend"
Piece = bytes | FileSegment


def sends_files(scope: Scope, allowed: bool) -> bool:
    """Whether a download on this connection may send stored files with sendfile(2)."""
    return allowed and ZERO_COPY_SEND in scope.get("extensions", {})


async def _wait_for_disconnect(receive: Receive) -> None:
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a broken receive channel: treat as gone
        logger.debug("receive failed while streaming", exc_info=True)


def _release(piece: Piece | None) -> None:
    if isinstance(piece, FileSegment):
        piece.close()


async def _settle(pending: "asyncio.Future[Piece | None] | None") -> None:
    """Stop a read-ahead; a file it produced meanwhile is closed."""
    if pending is None:
        return
    pending.cancel()
    with contextlib.suppress(BaseException):
        _release(await pending)


class StreamResponse:
    """ASGI response: `status` and `headers`, then `first` and the rest of `body`."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        first: Piece = b"",
        body: AsyncIterator[Piece] | None = None,
    ) -> None:
        self.status = status
        self.headers = [
            (name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()
        ]
        self.first: Piece | None = first
        self.body = body
        self.bytes_sent = 0
        self.completed = False
        self.sent_files = False

    async def _send(self, send: Send, piece: Piece, *, more_body: bool) -> None:
        if isinstance(piece, bytes | bytearray | memoryview):
            await send({"type": "http.response.body", "body": piece, "more_body": more_body})
            self.bytes_sent += len(piece)
            return
        self.sent_files = True
        try:
            await send(
                {
                    "type": ZERO_COPY_SEND,
                    "file": piece.file,
                    "offset": piece.offset,
                    "count": piece.count,
                    "more_body": more_body,
                }
            )
        finally:
            # Sent or broken, the file's position is past the last byte that went out.
            with contextlib.suppress(OSError, ValueError):
                self.bytes_sent += max(0, piece.file.tell() - piece.offset)
            piece.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Watched only once a second piece exists: a one-piece answer needs no watcher.
        disconnected: asyncio.Future[None] | None = None
        pending: asyncio.Future[Piece | None] | None = None
        try:
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self.headers}
            )
            first, self.first = self.first, None
            if self.body is None:
                await self._send(send, first or b"", more_body=False)
                self.completed = True
                return
            if first:
                await self._send(send, first, more_body=True)
            # Read the next piece while the current one is being sent: disk and socket overlap.
            pending = asyncio.ensure_future(anext(self.body, None))
            while True:
                piece = await pending
                pending = None
                if piece is None:
                    break
                if disconnected is None:
                    disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
                elif disconnected.done():
                    _release(piece)
                    logger.debug("client disconnected after %d bytes", self.bytes_sent)
                    return
                pending = asyncio.ensure_future(anext(self.body, None))
                await self._send(send, piece, more_body=True)
            await send({"type": "http.response.body", "body": b""})
            self.completed = True
        except OSError:
            # The client went away (uvicorn raises ClientDisconnected, an OSError; so does a
            # broken sendfile).
            logger.debug("client disconnected after %d bytes", self.bytes_sent)
        except HubError as error:
            logger.warning(
                "stream of %s broke after %d bytes: %s",
                scope.get("path"),
                self.bytes_sent,
                error.message,
            )
            # Returning without completing makes the server close the connection.
        finally:
            _release(self.first)
            await _settle(pending)
            if disconnected is not None:
                disconnected.cancel()
            if self.body is not None:
                await self.body.aclose()  # type: ignore[attr-defined]
                DOWNLOAD_BODIES.labels("sendfile" if self.sent_files else "copy").inc()
