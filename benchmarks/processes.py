"""The processes a benchmark runs side by side: fake hub, hubproxy, nginx, olah; and curl."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


class Service:
    """A subprocess, stopped with SIGTERM (SIGKILL after 10 s)."""

    def __init__(
        self,
        arguments: list[str],
        log: Path,
        environment: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.log = log
        handle = open(log, "wb")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            arguments,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(environment or {})},
            cwd=cwd,
        )
        handle.close()

    def pids(self) -> list[int]:
        """The process and its descendants (a server's workers)."""
        found, pending = [], [self.process.pid]
        while pending:
            pid = pending.pop()
            found.append(pid)
            try:
                pending += [int(child) for child in _children(pid)]
            except OSError:
                continue
        return found

    def peak_rss_bytes(self) -> int:
        """VmHWM: the highest resident set size the process has had (summed over its workers:
        an upper bound of their peak together)."""
        return sum(_status_kib(pid, "VmHWM:") for pid in self.pids()) * 1024

    def rss_bytes(self) -> int:
        """The memory of the process and its workers now: the sum of their proportional set
        sizes (PSS), which counts a page shared by forked workers once, not once per worker."""
        total = 0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            except OSError:
                continue
            total += next((int(line.split()[1]) for line in lines if line.startswith("Pss:")), 0)
        return total * 1024

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def wait_idle(self, timeout: float = 300, window: float = 1.0) -> None:
        """Wait until the process uses under 5% of a core over `window` (background work done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.cpu_seconds()
            time.sleep(window)
            if self.cpu_seconds() - before < 0.05 * window:
                return
        raise RuntimeError("process did not become idle")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def _status_kib(pid: int, field: str) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(field):
            return int(line.split()[1])
    return 0


class FakeHub(Service):
    """tests/fake_upstream as a process, with generated files."""

    def __init__(self, work: Path, files: list[str], cdn_rate: int | None = None) -> None:
        self.port, self.cdn_port = free_port(), free_port()
        arguments = [
            sys.executable,
            "-m",
            "tests.fake_upstream",
            "--port",
            str(self.port),
            "--cdn-port",
            str(self.cdn_port),
        ]
        for spec in files:
            arguments += ["--generated", spec]
        if cdn_rate:
            arguments += ["--cdn-rate", str(cdn_rate)]
        super().__init__(arguments, work / "fake-hub.log")
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while not self.log.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"fake hub did not start: {self.log.read_text()}")
            time.sleep(0.1)
        self.info = json.loads(self.log.read_text().splitlines()[0])

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = httpx.get(f"{self.url}/_fake/stats").json()
        return result

    def reset_stats(self) -> None:
        httpx.post(f"{self.url}/_fake/reset-stats")

    def set_cdn_rate(self, bytes_per_second: int | None) -> None:
        httpx.post(
            f"{self.url}/_fake/cdn-rate", params={"bytes_per_second": bytes_per_second or ""}
        )


class Hubproxy(Service):
    def __init__(
        self,
        work: Path,
        name: str,
        upstream: str,
        *options: str,
        environment: dict[str, str] | None = None,
        keep_data_dir: bool = False,
    ) -> None:
        self.port = free_port()
        self.data_dir = work / name
        if not keep_data_dir:  # a scenario may seed the data dir before the server starts
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if "--workers" not in options:
            options = ("--workers", "1", *options)  # one process unless a scenario asks
        arguments = [
            sys.executable, "-m", "hubproxy", "serve", "--port", str(self.port),
            "--data-dir", str(self.data_dir), "--upstream", upstream, "--log-level", "warning", *options,
        ]  # fmt: skip
        super().__init__(arguments, work / f"{name}.log", environment)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(f"{self.url}/health/ready", self.process)


class Olah(Service):
    def __init__(self, work: Path, fake_hub: FakeHub) -> None:
        executable = ROOT / ".venv-olah" / "bin" / "olah-cli"
        if not executable.exists():
            raise RuntimeError("olah is not installed: run scripts/install-benchmark-deps.sh")
        self.port = free_port()
        repos = work / "olah-repos"
        shutil.rmtree(repos, ignore_errors=True)
        netloc = f"127.0.0.1:{self.port}"
        arguments = [
            str(executable), "--host", "127.0.0.1", "--port", str(self.port),
            "--hf-scheme", "http", "--hf-netloc", f"127.0.0.1:{fake_hub.port}",
            "--hf-lfs-netloc", f"127.0.0.1:{fake_hub.cdn_port}",
            "--mirror-scheme", "http", "--mirror-netloc", netloc, "--mirror-lfs-netloc", netloc,
            "--repos-path", str(repos),
        ]  # fmt: skip
        # olah writes a logs/ folder into its working directory.
        super().__init__(arguments, work / "olah.log", cwd=work)
        self.url = f"http://{netloc}"
        wait_http(self.url, self.process)


class Nginx(Service):
    """nginx with sendfile serving one directory: the ceiling for a warm download."""

    def __init__(
        self, work: Path, root: Path, *, accept_puts: bool = False, workers: str = "1"
    ) -> None:
        """`accept_puts`: also store files PUT under /uploads/ (WebDAV), the upload baseline;
        `workers`: nginx's `worker_processes` (`auto`: one per core)."""
        executable = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(executable).exists():
            raise RuntimeError("nginx is not installed: run scripts/install-benchmark-deps.sh")
        self.port = free_port()
        prefix = work / "nginx"
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        config = prefix / "nginx.conf"
        # Workers run as an unprivileged user when started by root: let them read the file.
        for directory in (work, root):
            directory.chmod(0o755)
        uploads = ""
        if accept_puts:
            (root / "uploads").mkdir(exist_ok=True)
            (root / "uploads").chmod(0o777)
            (prefix / "body").mkdir(parents=True, exist_ok=True)
            (prefix / "body").chmod(0o777)
            uploads = (
                "location /uploads/ { dav_methods PUT; client_max_body_size 0;"
                " client_body_buffer_size 1m; }"
            )
        config.write_text(
            f"""daemon off; worker_processes {workers}; pid {prefix}/nginx.pid; error_log {prefix}/logs/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  server {{ listen 127.0.0.1:{self.port}; root {root}; {uploads} }}
}}
"""
        )
        super().__init__([executable, "-p", str(prefix), "-c", str(config)], work / "nginx.log")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url, self.process)


class Hello(Service):
    """A hello-world starlette endpoint (benchmarks/hello.py): the metadata baseline."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        arguments = [sys.executable, "-m", "benchmarks.hello", str(self.port)]
        super().__init__(arguments, work / "hello.log")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(f"{self.url}/", self.process)


def wrk_requests_per_second(
    url: str,
    work: Path,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    seconds: int = 5,
    connections: int = 32,
) -> float:
    """Requests/s that `wrk` (2 threads) sustains against `url`; every answer must be 2xx.
    wrk cannot measure HEAD (it waits for a body): see `hey_requests_per_second`."""
    executable = shutil.which("wrk")
    if executable is None:
        raise RuntimeError("wrk is not installed: run scripts/install-benchmark-deps.sh")
    script = work / "wrk.lua"
    lines = [f'wrk.headers["{name}"] = "{value}"' for name, value in (headers or {}).items()]
    lines.append(f'wrk.method = "{method}"')
    script.write_text("\n".join(lines) + "\n")
    completed = subprocess.run(
        [executable, "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    if "Non-2xx or 3xx responses" in completed.stdout:
        raise RuntimeError(f"wrk saw errors:\n{completed.stdout}")
    for line in completed.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"unexpected wrk output:\n{completed.stdout}")


def hey_requests_per_second(
    url: str, *, method: str = "GET", seconds: int = 5, connections: int = 32
) -> float:
    """Requests/s that `hey` sustains against `url` with `method` (HEAD included: hey knows
    its answer has no body); every answer must be 2xx."""
    executable = shutil.which("hey")
    if executable is None:
        raise RuntimeError("hey is not installed: run scripts/install-benchmark-deps.sh")
    completed = subprocess.run(
        [executable, "-m", method, "-c", str(connections), "-z", f"{seconds}s", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    distribution = completed.stdout.split("Status code distribution:", 1)[-1]
    statuses = [line.split("]")[0].strip(" [") for line in distribution.splitlines() if "]" in line]
    if not statuses or any(not status.startswith("2") for status in statuses):
        raise RuntimeError(f"hey saw errors:\n{completed.stdout}")
    for line in completed.stdout.splitlines():
        if line.strip().startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"unexpected hey output:\n{completed.stdout}")


class MotoS3(Service):
    """A moto S3 server process with one bucket (objects live in its memory: keep them small)."""

    bucket = "hubproxy-bench"

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        executable = Path(sys.executable).parent / "moto_server"
        super().__init__(
            [str(executable), "-H", "127.0.0.1", "-p", str(self.port)], work / "moto.log"
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url, self.process)
        self.client().create_bucket(Bucket=self.bucket)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench",  # noqa: S106 - moto takes any
        )  # fmt: skip

    def hubproxy_options(self, prefix: str) -> list[str]:
        return [
            "--storage", "s3", "--s3-bucket", self.bucket, "--s3-prefix", prefix,
            "--s3-endpoint-url", self.url, "--s3-region", "us-east-1", "--s3-path-style",
        ]  # fmt: skip

    environment = {"HUBPROXY_S3_ACCESS_KEY_ID": "bench", "HUBPROXY_S3_SECRET_ACCESS_KEY": "bench"}


def curl(
    url: str, *, range_header: str | None = None, output: Path | None = None
) -> tuple[float, int]:
    """Download with curl (following redirects); returns (seconds, bytes)."""
    arguments = [
        "curl",
        "-sS",
        "-L",
        "-o",
        str(output or "/dev/null"),
        "-w",
        "%{time_total} %{size_download} %{http_code}",
    ]
    if range_header:
        arguments += ["-H", f"Range: {range_header}"]
    result = subprocess.run(
        [*arguments, url], capture_output=True, text=True, check=True, timeout=900
    )
    seconds, size, status = result.stdout.split()
    if not status.startswith("2"):
        raise RuntimeError(f"curl {url}: HTTP {status}")
    return float(seconds), int(size)


def aggregate(urls: list[str]) -> tuple[float, int]:
    """Concurrent curl downloads of `urls`: bytes/s in total from first start to last end, and
    the bytes received."""
    started = time.monotonic()
    with ThreadPoolExecutor(len(urls)) as pool:
        results = list(pool.map(curl, urls))
    received = sum(size for _, size in results)
    return received / (time.monotonic() - started), received


def raw_get(url: str) -> tuple[float, int]:
    """GET with a bare socket reading into one reused buffer, discarding the body: where curl
    is the bottleneck (it copies every byte to its output), this shows the server's own speed.
    Returns (seconds, body bytes)."""
    address, _, path = url.removeprefix("http://").partition("/")
    host, _, port = address.partition(":")
    buffer = memoryview(bytearray(4 * 1024 * 1024))
    started = time.monotonic()
    with socket.create_connection((host, int(port or 80))) as connection:
        connection.sendall(
            f"GET /{path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            piece = connection.recv(65536)
            if not piece:
                raise RuntimeError(f"{url}: no response head")
            head += piece
        head, _, rest = head.partition(b"\r\n\r\n")
        if not head.split(b" ", 2)[1].startswith(b"2"):
            raise RuntimeError(f"{url}: {head.splitlines()[0]!r}")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        received = len(rest)
        while received < length:
            count = connection.recv_into(buffer)
            if not count:
                raise RuntimeError(f"{url}: body short by {length - received} bytes")
            received += count
    return time.monotonic() - started, received


def curl_upload(url: str, path: Path) -> tuple[float, int]:
    """PUT a file with curl; returns (seconds, bytes)."""
    result = subprocess.run(
        ["curl", "-sS", "-T", str(path), "-w", "%{time_total} %{size_upload} %{http_code}",
         "-o", "/dev/null", url],
        capture_output=True, text=True, check=True, timeout=900,
    )  # fmt: skip
    seconds, size, status = result.stdout.split()
    if not status.startswith("2"):
        raise RuntimeError(f"curl -T {url}: HTTP {status}")
    return float(seconds), int(size)
