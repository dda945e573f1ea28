"""The one response that streams file bytes: headers first, then the body piece by piece.

The caller primes the body iterator (awaits its first piece) before building the response, so
that a failure to get any byte becomes a proper error response. A failure after the headers
went out can only break the connection: the client sees a short body against its
`Content-Length` and retries or resumes, it never takes a truncated file for a whole one.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from starlette.types import Receive, Scope, Send

from hubproxy.errors import HubError

logger = logging.getLogger(__name__)


async def _wait_for_disconnect(receive: Receive) -> None:
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a broken receive channel: treat as gone
        logger.debug("receive failed while streaming", exc_info=True)


class StreamResponse:
    """ASGI response: `status` and `headers`, then `first` and the rest of `body`."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        first: bytes = b"",
        body: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.status = status
        self.headers = [
            (name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()
        ]
        self.first = first
        self.body = body
        self.bytes_sent = 0
        self.completed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Watched only once a second piece exists: a one-piece answer needs no watcher.
        disconnected: asyncio.Future[None] | None = None
        try:
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self.headers}
            )
            if self.body is None:
                await send({"type": "http.response.body", "body": self.first})
                self.bytes_sent = len(self.first)
                self.completed = True
                return
            if self.first:
                await send({"type": "http.response.body", "body": self.first, "more_body": True})
                self.bytes_sent += len(self.first)
            # Read the next piece while the current one is being sent: disk and socket overlap.
            pending = asyncio.ensure_future(anext(self.body, None))
            while True:
                piece = await pending
                if piece is None:
                    break
                if disconnected is None:
                    disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
                elif disconnected.done():
                    logger.debug("client disconnected after %d bytes", self.bytes_sent)
                    return
                pending = asyncio.ensure_future(anext(self.body, None))
                try:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                except BaseException:
                    pending.cancel()
                    with contextlib.suppress(BaseException):
                        await pending
                    raise
                self.bytes_sent += len(piece)
            await send({"type": "http.response.body", "body": b""})
            self.completed = True
        except OSError:
            # The client went away (uvicorn raises ClientDisconnected, an OSError).
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
            if disconnected is not None:
                disconnected.cancel()
            if self.body is not None:
                await self.body.aclose()  # type: ignore[attr-defined]
