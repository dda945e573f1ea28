"""Fixtures shared by every tier: the fake upstream hub and real hubproxy server processes.

huggingface_hub reads HF_ENDPOINT (and HF_HOME) once, at import: so the port of the shared
proxy is chosen and the environment set here, before any test module imports a client.
"""

import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fake_upstream import FakeHub, FakeHubServer
from tests.support.databases import use_postgres
from tests.support.inprocess import InProcessServer
from tests.support.postgres import PostgresServer, binaries
from tests.support.proxy import ProxyProcess, free_port

# Fixtures of their own modules, for every test directory: `receiver` (a webhook receiver).
pytest_plugins = ["tests.support.webhooks"]

PROXY_PORT = free_port()
UPSTREAM_TOKEN = "hf_upstream_secret"
# The suite's servers pick account changes made on the data dir up this fast (seconds), so a
# test waits for a revocation no longer than it takes.
TEST_ACCOUNTS_REFRESH = 0.05
# The environment of the suite's real servers.
SERVER_ENVIRONMENT = {
    "HUBPROXY_UPSTREAM_TOKEN": UPSTREAM_TOKEN,
    "HUBPROXY_ACCOUNTS_REFRESH": str(TEST_ACCOUNTS_REFRESH),
    # One process per server: tests look at one process's metrics, logs and open files; the
    # tests of several workers ask for them.
    "HUBPROXY_WORKERS": "1",
}
CLIENT_HOME = Path(tempfile.mkdtemp(prefix="hubproxy-tests-"))

for _name in (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_HUB_DISABLE_XET",
    "HUGGINGFACE_CO_STAGING",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "HF_ENDPOINT": f"http://127.0.0.1:{PROXY_PORT}",
        "HF_HOME": str(CLIENT_HOME / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        "HF_HUB_ETAG_TIMEOUT": "30",
        "HF_HUB_DOWNLOAD_TIMEOUT": "30",
        "TOKENIZERS_PARALLELISM": "false",
    }
)

# Test chunk size: small, so that test files span many chunks.
TEST_CHUNK_SIZE = "256KiB"


@dataclass(frozen=True)
class S3Service:
    """A real S3 API (moto server) for the tests, with one bucket; or the one in
    HUBPROXY_TEST_S3_ENDPOINT (+ _BUCKET, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY) if set."""

    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str


@pytest.fixture(scope="session")
def s3_service() -> Iterator[S3Service]:
    if os.environ.get("HUBPROXY_TEST_S3_ENDPOINT"):
        yield S3Service(
            os.environ["HUBPROXY_TEST_S3_ENDPOINT"],
            os.environ.get("HUBPROXY_TEST_S3_BUCKET", "hubproxy-test"),
            os.environ.get("HUBPROXY_TEST_S3_ACCESS_KEY_ID", ""),
            os.environ.get("HUBPROXY_TEST_S3_SECRET_ACCESS_KEY", ""),
        )
        return
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    service = S3Service(f"http://{host}:{port}", "hubproxy-test", "testing", "testing")
    client = boto3.client(
        "s3", endpoint_url=service.endpoint_url, region_name="us-east-1",
        aws_access_key_id=service.access_key_id, aws_secret_access_key=service.secret_access_key,
    )  # fmt: skip
    client.create_bucket(Bucket=service.bucket)
    client.close()
    yield service
    server.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--proxy-storage",
        choices=("local", "s3"),
        default="local",
        help="chunk storage of the hubproxy processes the proxy tests start",
    )
    parser.addoption(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="metadata database of the hubproxy servers and commands the tests start",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--proxy-storage") == "s3":
        local_files = pytest.mark.skip(reason="looks at local chunk files")
        # The S3 pass is there for what the chunk storage changes; the rest already ran once.
        ran_once = pytest.mark.skip(reason="no chunk storage changes it: the first pass tests it")
        for item in items:
            if "local_storage" in item.keywords:
                item.add_marker(local_files)
            elif "storage_independent" in item.keywords:
                item.add_marker(ran_once)
    if config.getoption("--database") == "postgresql":
        skip = pytest.mark.skip(reason="looks at the SQLite file of a data dir")
        for item in items:
            if "sqlite_file" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this session (`tests/support/postgres.py`)."""
    bin_dir = binaries()
    if bin_dir is None:
        message = "PostgreSQL is not installed (initdb, pg_ctl): apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (scripts/test.sh): never a silent skip there
        pytest.skip(message)
    server = PostgresServer.start(bin_dir)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of an empty PostgreSQL schema of this test's own."""
    return postgres_server.url()


@pytest.fixture(scope="session", autouse=True)
def suite_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """With `--database postgresql`, every data dir's metadata lives in PostgreSQL."""
    if request.config.getoption("--database") != "postgresql":
        yield
        return
    use_postgres(request.getfixturevalue("postgres_server"))
    yield
    use_postgres(None)


_s3_prefixes = itertools.count()


def storage_options(request: pytest.FixtureRequest) -> tuple[tuple[str, ...], dict[str, str]]:
    """Command-line options and environment for the storage `--proxy-storage` selects."""
    if request.config.getoption("--proxy-storage") != "s3":
        return (), {}
    service: S3Service = request.getfixturevalue("s3_service")
    arguments = (
        "--storage", "s3", "--s3-bucket", service.bucket, "--s3-prefix", f"suite-{next(_s3_prefixes)}",
        "--s3-endpoint-url", service.endpoint_url, "--s3-region", "us-east-1", "--s3-path-style",
    )  # fmt: skip
    environment = {
        "HUBPROXY_S3_ACCESS_KEY_ID": service.access_key_id,
        "HUBPROXY_S3_SECRET_ACCESS_KEY": service.secret_access_key,
    }
    return arguments, environment


@pytest.fixture(scope="session")
def fake_hub_server() -> Iterator[FakeHubServer]:
    with FakeHubServer() as server:
        yield server


@pytest.fixture
def upstream(fake_hub_server: FakeHubServer) -> FakeHub:
    """The fake upstream hub, emptied and with default controls for this test."""
    fake_hub_server.hub.reset()
    return fake_hub_server.hub


@pytest.fixture(scope="session")
def proxy(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """The shared hubproxy at HF_ENDPOINT, proxying the fake hub."""
    process = ProxyProcess(
        tmp_path_factory.mktemp("shared-proxy") / "data",
        fake_hub_server.url,
        port=PROXY_PORT,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment=SERVER_ENVIRONMENT,
    )
    with process:
        yield process
    assert "Traceback" not in process.log(), process.log()


ProxyFactory = Callable[..., ProxyProcess]


@pytest.fixture
def proxy_factory(
    fake_hub_server: FakeHubServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ProxyFactory]:
    """Start dedicated hubproxy processes (own port and data dir) with extra options.

    Passing the `data_dir` of an earlier process restarts on the same cache (same storage).
    """
    started: list[ProxyProcess] = []
    storage_by_data_dir: dict[Path, tuple[tuple[str, ...], dict[str, str]]] = {}

    def make(
        *extra_args: str,
        data_dir: Path | None = None,
        start: bool = True,
        environment: dict[str, str] | None = None,
    ) -> ProxyProcess:
        data_dir = data_dir or tmp_path / f"proxy-{len(started)}"
        if data_dir not in storage_by_data_dir:
            storage_by_data_dir[data_dir] = storage_options(request)
        storage_arguments, storage_environment = storage_by_data_dir[data_dir]
        process = ProxyProcess(
            data_dir,
            fake_hub_server.url,
            extra_args=("--chunk-size", TEST_CHUNK_SIZE, *storage_arguments, *extra_args),
            environment={
                **SERVER_ENVIRONMENT,
                **storage_environment,
                **(environment or {}),
            },
        )
        started.append(process)
        return process.start() if start else process

    yield make
    for process in started:
        process.stop()


def in_process(data_dir: Path, upstream_url: str, **settings: Any) -> InProcessServer:
    """An in-process hubproxy (`tests/support/inprocess.py`) with the suite's settings: memory
    chunk storage, test chunk size, the upstream token, a fast accounts refresh, warnings."""
    return InProcessServer(
        data_dir,
        upstream_url,
        **{
            "storage": "memory",
            "chunk_size": TEST_CHUNK_SIZE,
            "upstream_token": UPSTREAM_TOKEN,
            "accounts_refresh": TEST_ACCOUNTS_REFRESH,
            # Its records go through this process's logging (and pytest's capture): warnings
            # and errors (every traceback) only, unless a test asks for more.
            "log_level": "warning",
            **settings,
        },
    )


InProcessFactory = Callable[..., InProcessServer]


@pytest.fixture
def in_process_factory(
    fake_hub_server: FakeHubServer, tmp_path: Path
) -> Iterator[InProcessFactory]:
    """Start in-process hubproxy servers (own data dir) with extra settings, by name."""
    started: list[InProcessServer] = []

    def make(
        *, data_dir: Path | None = None, start: bool = True, **settings: Any
    ) -> InProcessServer:
        server = in_process(
            data_dir or tmp_path / f"app-{len(started)}", fake_hub_server.url, **settings
        )
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop()
    for server in started:
        assert "Traceback" not in server.log(), server.log()


_counter = itertools.count()


@pytest.fixture
def repo_id(request: pytest.FixtureRequest) -> str:
    """A repo id unique to this test, so caches never mix tests."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
    return f"acme/{name}-{next(_counter)}"
