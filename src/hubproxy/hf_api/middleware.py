"""ASGI middleware: a request id on every request and response."""

import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubproxy.constants import HEADER_REQUEST_ID


class RequestIdMiddleware:
    """Gives each request an id (`scope["state"]["request_id"]`), returned as `X-Request-Id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(HEADER_REQUEST_ID, request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)
