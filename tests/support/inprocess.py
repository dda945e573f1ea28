"""The fast tier: `create_app(settings)` served inside the test process, without a socket.

`InProcessServer` runs the app's lifespan (the same start-up and shut-down `hubproxy serve`
runs) on an event loop of its own, in a thread, and answers requests through
`httpx.ASGITransport`. Its clients are ordinary `httpx.Client` / `httpx.AsyncClient` objects
whose transport hands each request to that loop, so sync and async tests alike drive the real
routing, authentication, dispatch and handlers over HTTP — only uvicorn and the socket are
left out. What needs those (connection limits, streaming a response as it is produced, a crash,
real huggingface_hub clients) stays on the real-server tier (`tests/support/proxy.py`).

It keeps the shape of `ProxyProcess` where tests use it: `url`, `data_dir`, `log()`,
`start()`, `stop()`. Differences from a real server that tests must mind:
- a response is complete before the client sees it (ASGITransport buffers the body);
- the client address is 127.0.0.1 (as on the real tier, which listens there);
- an exception escaping the app is a 500 and a `Traceback` in `log()`, as uvicorn would log it.
"""

import asyncio
import concurrent.futures
import itertools
import logging
import threading
import traceback
from collections.abc import Coroutine, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
from starlette.types import Receive, Scope, Send

from hubproxy.app import create_app
from hubproxy.settings import Settings, load_settings
from tests.support.databases import database_url

Result = TypeVar("Result")

# Ports of the URLs in-process servers answer on: never bound, only named in absolute links.
_ports = itertools.count(47001)
CLIENT_ADDRESS = ("127.0.0.1", 50000)
REQUEST_TIMEOUT = 60.0


class _ServerLog(logging.Handler):
    """The log records of one server (those emitted on its loop thread), formatted as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread_id: int | None = None
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread_id:
            self.lines.append(self.format(record))


class _LoggerLevels:
    """The `hubproxy` logger's level while servers run: the most verbose any running server's
    `log_level` asks for (servers overlap: a session's and a module's); restored after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wanted: dict[int, int] = {}
        self._before = logging.NOTSET

    def want(self, server: object, level: int) -> None:
        with self._lock:
            logger = logging.getLogger("hubproxy")
            if not self._wanted:
                self._before = logger.level
            self._wanted[id(server)] = level
            logger.setLevel(min(self._wanted.values()))

    def release(self, server: object) -> None:
        with self._lock:
            self._wanted.pop(id(server), None)
            logger = logging.getLogger("hubproxy")
            logger.setLevel(min(self._wanted.values()) if self._wanted else self._before)


_levels = _LoggerLevels()


class InProcessServer:
    """One app in this process; `start()` / `stop()` may be called repeatedly (same data dir).

    `settings` are setting values by name, as strings or typed values (`"256KiB"`, `True`),
    parsed the way `hubproxy serve` parses its options.
    """

    def __init__(self, data_dir: Path, upstream: str, **settings: Any) -> None:
        self.data_dir = data_dir
        self.upstream = upstream
        self.port = next(_ports)
        self.settings_given = settings
        self._log = _ServerLog()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._transport: httpx.ASGITransport | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **extra: Any) -> Settings:
        given = {
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": self.data_dir,
            "upstream": self.upstream,
            "database_url": database_url(self.data_dir),
            **self.settings_given,
            **extra,
        }
        return load_settings(cli=given, environ={})

    def start(self, **extra: Any) -> "InProcessServer":
        """Run the lifespan; `extra` settings apply to this start only."""
        assert self._thread is None, "already running"
        settings = self.settings(**extra)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(settings, started)),
            name=f"hubproxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._log.thread_id = self._thread.ident
        logging.getLogger().addHandler(self._log)
        try:
            started.result(timeout=30)
        except BaseException:
            self._thread.join(30)
            self._thread = None
            logging.getLogger().removeHandler(self._log)
            raise
        return self

    async def _serve(self, settings: Settings, started: concurrent.futures.Future[None]) -> None:
        app = create_app(settings)
        _levels.want(self, getattr(logging, settings.log_level.upper()))
        try:
            async with app.router.lifespan_context(app) as state:

                async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
                    # What a server does with lifespan state: a shallow copy per request.
                    scope["state"] = dict(state or {})
                    try:
                        await app(scope, receive, send)
                    except Exception:
                        logging.getLogger("uvicorn.error").exception(
                            "Exception in ASGI application"
                        )
                        raise

                self._transport = httpx.ASGITransport(
                    with_state, raise_app_exceptions=False, client=CLIENT_ADDRESS
                )
                self._loop = asyncio.get_running_loop()
                self._stopping = asyncio.Event()
                started.set_result(None)
                await self._stopping.wait()
        except BaseException as error:
            self._log.lines.append("".join(traceback.format_exception(error)))
            if not started.done():
                started.set_exception(error)
            else:
                raise
        finally:
            _levels.release(self)
            self._transport = None

    def stop(self) -> None:
        """The shut-down `hubproxy serve` runs on SIGTERM (audit queue drained, and so on)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stopping = self._loop, self._stopping
        assert loop is not None
        assert stopping is not None
        loop.call_soon_threadsafe(stopping.set)
        thread.join(30)
        assert not thread.is_alive(), "the in-process server did not stop"
        logging.getLogger().removeHandler(self._log)
        self._loop = self._stopping = None

    def log(self) -> str:
        return "\n".join(self._log.lines)

    def run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        """Run `coroutine` on the server's loop (from any other thread); its result."""
        assert self._loop is not None, "not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(REQUEST_TIMEOUT)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """On the server's loop: `request` through the app, its body read."""
        assert self._transport is not None
        response = await self._transport.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(
            response.status_code, headers=response.headers.raw, stream=httpx.ByteStream(content)
        )

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        """A sync client of this server (base URL set), sending `token` if given."""
        return httpx.Client(
            transport=_SyncBridge(self), **_client_options(self.url, token, options)
        )

    def async_client(self, token: str | None = None, **options: Any) -> httpx.AsyncClient:
        """An async client of this server, usable on any event loop."""
        return httpx.AsyncClient(
            transport=_AsyncBridge(self), **_client_options(self.url, token, options)
        )

    def __enter__(self) -> "InProcessServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _client_options(url: str, token: str | None, options: dict[str, Any]) -> dict[str, Any]:
    headers = dict(options.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return {"base_url": url, "headers": headers, "timeout": REQUEST_TIMEOUT, **options}


class _SyncBridge(httpx.BaseTransport):
    def __init__(self, server: InProcessServer) -> None:
        self.server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a ByteStream from here on: readable on the server's loop
        return self.server.run(self.server._send(request))


class _AsyncBridge(httpx.AsyncBaseTransport):
    def __init__(self, server: InProcessServer) -> None:
        self.server = server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        assert self.server._loop is not None, "not running"
        future = asyncio.run_coroutine_threadsafe(self.server._send(request), self.server._loop)
        return await asyncio.wrap_future(future)


def running(server: InProcessServer) -> Iterator[InProcessServer]:
    """`server` started for a fixture's life; a traceback in its log fails the fixture."""
    with server:
        yield server
    assert "Traceback" not in server.log(), server.log()
