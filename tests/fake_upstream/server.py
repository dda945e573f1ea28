"""Run the hub and CDN apps on two real uvicorn servers (two origins) in a background thread."""

import asyncio
import logging
import threading
from types import TracebackType

import uvicorn

from tests.fake_upstream.cdn import CdnApp
from tests.fake_upstream.hub import HubApp
from tests.fake_upstream.repos import FakeHub
from tests.fake_upstream.wire import Abort


class _QuietAbort(logging.Filter):
    """Hide the tracebacks of deliberate connection cuts from the test output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Abort))


class FakeHubServer:
    """`with FakeHubServer(hub) as server:` → `server.url` (hub) and `server.cdn_url` (CDN)."""

    def __init__(self, hub: FakeHub | None = None, *, port: int = 0, cdn_port: int = 0) -> None:
        self.hub = hub or FakeHub()
        self.cdn_app = CdnApp(self.hub)
        self.hub_app = HubApp(self.hub, lambda: self.cdn_url)
        self._ports = (port, cdn_port)
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.url = ""
        self.cdn_url = ""

    def _config(self, app: object, port: int) -> uvicorn.Config:
        return uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="off", log_level="error",
            access_log=False, loop="asyncio", http="httptools",
        )  # fmt: skip

    def _run(self) -> None:
        async def main() -> None:
            self._servers = [
                uvicorn.Server(self._config(self.hub_app, self._ports[0])),
                uvicorn.Server(self._config(self.cdn_app, self._ports[1])),
            ]
            tasks = [asyncio.create_task(server.serve()) for server in self._servers]
            while not all(server.started for server in self._servers):
                if any(task.done() for task in tasks):
                    break
                await asyncio.sleep(0.01)
            hub_port = self._servers[0].servers[0].sockets[0].getsockname()[1]
            cdn_port = self._servers[1].servers[0].sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{hub_port}"
            self.cdn_url = f"http://127.0.0.1:{cdn_port}"
            self.hub_app.url = self.url
            self._ready.set()
            await asyncio.gather(*tasks)

        asyncio.run(main())

    def start(self) -> "FakeHubServer":
        logging.getLogger("uvicorn.error").addFilter(_QuietAbort())
        self._thread = threading.Thread(target=self._run, name="fake-hub", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("fake hub did not start")
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None

    def __enter__(self) -> "FakeHubServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
