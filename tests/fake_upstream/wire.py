"""Small ASGI plumbing shared by the hub and CDN apps: responses that count their bytes."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from tests.fake_upstream.repos import Content, FakeHub, RequestRecord, read_content

PIECE = 1024 * 1024


class Abort(Exception):
    """Raised mid-body to make uvicorn drop the connection."""


class Exchange:
    """One request: parsed bits in, a recorded response out."""

    def __init__(
        self, hub: FakeHub, origin: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.hub = hub
        self.origin = origin
        self.scope = scope
        self.receive = receive
        self._send = send
        self.method: str = scope["method"]
        self.raw_path: str = scope.get("raw_path", scope["path"].encode()).decode()
        self.query_string: str = scope.get("query_string", b"").decode()
        self.query = parse_qs(self.query_string, keep_blank_values=True)
        self.headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        # Recorded on arrival and updated as bytes go out, so counters never lag the wire.
        self.entry = RequestRecord(
            self.method, origin, self.raw_path, self.query_string, self.header("range"),
            self.header("authorization"), 0, 0,
        )  # fmt: skip
        hub.record(self.entry)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def query_value(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    async def body(self) -> bytes:
        chunks = []
        while True:
            message = await self.receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def start(self, status: int, headers: dict[str, str]) -> None:
        self.entry.status = status
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            }
        )

    async def send_bytes(self, data: bytes, *, more: bool = False) -> None:
        if self.method != "HEAD":
            with self.hub.lock:
                self.entry.body_bytes += len(data)
            await self._send({"type": "http.response.body", "body": data, "more_body": more})
        elif not more:
            await self._send({"type": "http.response.body", "body": b""})

    async def respond(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        all_headers = {"Content-Length": str(len(body)), **(headers or {})}
        await self.start(status, all_headers)
        await self.send_bytes(body)

    async def json(
        self, document: Any, headers: dict[str, str] | None = None, status: int = 200
    ) -> None:
        await self.respond(
            status,
            json.dumps(document).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    async def error(
        self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None
    ) -> None:
        error_headers = {"X-Error-Message": message, **(headers or {})}
        if code is not None:
            error_headers["X-Error-Code"] = code
        await self.json({"error": message}, error_headers, status)

    async def stream_content(
        self,
        content: Content,
        size: int,
        headers: dict[str, str],
        *,
        rate: int | None = None,
        cut: Callable[[], int | None] | None = None,
        corrupt: Callable[[int, int, int], int | None] | None = None,
    ) -> None:
        """200 or 206 (single Range) with the content; 416 when unsatisfiable. `cut` may end
        the body early; `corrupt` may name a file offset whose byte is sent flipped."""
        start, end, status = 0, size, 200
        range_header = self.header("range")
        if range_header and range_header.startswith("bytes="):
            first, _, last = range_header[6:].partition("-")
            if first == "":
                start, end = max(0, size - int(last)), size
            else:
                start = int(first)
                end = min(int(last) + 1, size) if last else size
            if start >= size:
                await self.respond(416, b"", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{size}"}
        await self.start(
            status, {**headers, "Content-Length": str(end - start), "Accept-Ranges": "bytes"}
        )
        if self.method == "HEAD":
            await self.send_bytes(b"")
            return
        limit = cut() if cut is not None else None
        flipped = corrupt(start, end, size) if corrupt is not None else None
        loop = asyncio.get_running_loop()
        began = loop.time()
        sent = 0
        for offset in range(start, end, PIECE):
            data = read_content(content, offset, min(offset + PIECE, end))
            if flipped is not None and offset <= flipped < offset + len(data):
                position = flipped - offset
                data = data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]
            if limit is not None and sent + len(data) >= limit:
                await self.send_bytes(data[: max(0, limit - sent)], more=True)
                raise Abort("cut by the test")
            await self.send_bytes(data, more=True)
            sent += len(data)
            if rate:
                # Keep this connection at `rate` bytes per second.
                delay = began + sent / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        await self.send_bytes(b"")


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data
