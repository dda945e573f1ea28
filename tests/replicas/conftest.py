"""Three `hubproxy serve` replicas on one PostgreSQL database and one S3 bucket, shared by every
test of this directory (each uses repos of its own). Modules run in name order: the test that
stops PostgreSQL is the last one of `test_replicas.py`, the last module.
"""

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from huggingface_hub import HfApi

from tests.conftest import S3Service
from tests.fake_upstream import FakeHubServer
from tests.hub.conftest import HUB_ENVIRONMENT, populate_hub
from tests.support.databases import share_database
from tests.support.postgres import PostgresServer
from tests.support.proxy import ProxyProcess

REPLICAS = 3
# 1 MiB chunks: a 32 MiB file is 32 of them (32 leases, 32 S3 objects), each one still a whole
# block of the fake hub's generated content (distinct bytes in every chunk).
CHUNK_SIZE = 1024 * 1024
# A replica killed mid-fill loses its leases this soon: the takeover test waits for it.
LEASE_SECONDS = 3


@dataclass
class Replicas:
    processes: list[ProxyProcess]
    tokens: dict[str, str | None]
    database: PostgresServer
    database_url: str
    s3: S3Service
    s3_prefix: str

    def api(self, index: int, principal: str = "developer") -> HfApi:
        return HfApi(endpoint=self.processes[index].url, token=self.tokens[principal] or False)


@pytest.fixture(scope="package")
def replicas(
    postgres_server: PostgresServer,
    s3_service: S3Service,
    fake_hub_server: FakeHubServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    url = postgres_server.url()
    root = tmp_path_factory.mktemp("replicas")
    data_dirs = [root / f"replica-{index}" for index in range(REPLICAS)]
    share_database(url, *data_dirs)
    tokens = populate_hub(data_dirs[0])
    prefix = f"replicas-{uuid.uuid4().hex[:8]}"
    storage = (
        "--storage", "s3", "--s3-bucket", s3_service.bucket, "--s3-prefix", prefix,
        "--s3-endpoint-url", s3_service.endpoint_url, "--s3-region", "us-east-1",
        "--s3-path-style",
    )  # fmt: skip
    environment = {
        **HUB_ENVIRONMENT,
        # Polling far slower than the second a change may take to reach another replica:
        # the tests prove the change notices (LISTEN/NOTIFY), not polling.
        "HUBPROXY_ACCOUNTS_REFRESH": "60",
        "HUBPROXY_LEASE_SECONDS": str(LEASE_SECONDS),
        "HUBPROXY_S3_ACCESS_KEY_ID": s3_service.access_key_id,
        "HUBPROXY_S3_SECRET_ACCESS_KEY": s3_service.secret_access_key,
    }
    processes = [
        ProxyProcess(
            data_dir,
            fake_hub_server.url,
            extra_args=("--chunk-size", str(CHUNK_SIZE), *storage),
            environment=environment,
        )
        for data_dir in data_dirs
    ]
    try:
        with ThreadPoolExecutor(len(processes)) as pool:  # start together: a third of the wait
            list(pool.map(ProxyProcess.start, processes))
        yield Replicas(processes, tokens, postgres_server, url, s3_service, prefix)
    finally:
        for process in processes:
            process.stop()
    for process in processes:
        assert "Traceback" not in process.log(), process.log()
