"""The CDN origin: serves LFS content on signed, expiring URLs (no Authorization needed)."""

import asyncio

from starlette.types import Receive, Scope, Send

from tests.fake_upstream.repos import FakeHub
from tests.fake_upstream.wire import Abort, Exchange


class CdnApp:
    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        exchange = Exchange(self.hub, "cdn", scope, receive, send)
        if exchange.method != "GET":
            await self.answer(exchange)
            return
        with self.hub.cdn_get():
            if self.hub.cdn_latency_seconds:
                await asyncio.sleep(self.hub.cdn_latency_seconds)
            await self.answer(exchange)

    async def answer(self, exchange: Exchange) -> None:
        if self.hub.down:
            if self.hub.down_mode == "reset":
                raise Abort("down")
            await exchange.respond(503, b"cdn down")
            return
        parts = exchange.raw_path.split("/")
        stored = self.hub.blobs.get(parts[-1]) if len(parts) == 3 and parts[1] == "lfs" else None
        if stored is None or stored.sha256 is None:
            await exchange.respond(404, b"<Error><Code>NoSuchKey</Code></Error>")
            return
        if not self.hub.signature_valid(
            stored.sha256, exchange.query_value("expires"), exchange.query_value("signature")
        ):
            await exchange.respond(
                403,
                b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            )
            return
        await exchange.stream_content(
            stored.content,
            stored.size,
            {"ETag": f'"{stored.sha256}"', "Content-Type": "application/octet-stream"},
            rate=self.hub.cdn_bytes_per_second_per_connection,
            cut=self.hub.take_cut,
            corrupt=self.hub.take_corruption,
        )
