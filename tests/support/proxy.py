"""Run a real `hubproxy serve` process on 127.0.0.1, the way users run it.

`ProxyProcess` starts the console entry point in a subprocess (so tests can SIGKILL and restart
it), waits for `/health/ready`, and keeps its log in a file that tests can read.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.support.databases import database_environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ProxyProcess:
    """One hubproxy server process; `start()` / `stop()` / `kill()` may be called repeatedly."""

    def __init__(
        self,
        data_dir: Path,
        upstream: str,
        *,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        environment: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.upstream = upstream
        self.port = port or free_port()
        self.extra_args = extra_args
        self.environment = environment or {}
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: object = None

    @property
    def pid(self) -> int:
        """The server's process id (it must be running)."""
        assert self._process is not None
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        """A client of this server (base URL set), sending `token` if given; the same call as
        `InProcessServer.client`, so a site's helpers work on either tier."""
        headers = dict(options.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, **{"timeout": 30, **options})

    def start(self, *extra: str) -> "ProxyProcess":
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("HUBPROXY_")
        }
        environment.update(database_environment(self.data_dir))
        environment.update(self.environment)
        arguments = [
            sys.executable, "-m", "hubproxy", "serve",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--upstream", self.upstream,
            *self.extra_args,
            *extra,
        ]  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_handle = log
        self._process = subprocess.Popen(
            arguments, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"hubproxy exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"hubproxy did not become ready:\n{self.log()}")

    def _close_log(self) -> None:
        handle = self._log_handle
        self._log_handle = None
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Graceful stop (SIGTERM), as an orchestrator does."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
        self._close_log()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "ProxyProcess":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
