"""The caching proxy with its chunks on S3 (a moto server): the same guarantees as on disk."""

import hashlib
import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_download

from tests.conftest import ProxyFactory, S3Service
from tests.fake_upstream import FakeHub, GeneratedFile
from tests.support.proxy import ProxyProcess

pytestmark = pytest.mark.clients

BIG = GeneratedFile(3_000_000, seed=21)
_prefixes = itertools.count()


@pytest.fixture
def s3_proxy(proxy_factory: ProxyFactory, s3_service: S3Service) -> ProxyFactory:
    prefix = f"proxy-{next(_prefixes)}"

    def make(*extra_args: str, **options: object) -> ProxyProcess:
        return proxy_factory(
            "--storage", "s3", "--s3-bucket", s3_service.bucket, "--s3-prefix", prefix,
            "--s3-endpoint-url", s3_service.endpoint_url, "--s3-region", "us-east-1", "--s3-path-style",
            *extra_args,
            environment={
                "HUBPROXY_S3_ACCESS_KEY_ID": s3_service.access_key_id,
                "HUBPROXY_S3_SECRET_ACCESS_KEY": s3_service.secret_access_key,
            },
            **options,
        )  # fmt: skip

    return make


@pytest.fixture
def model(upstream: FakeHub, repo_id: str) -> str:
    upstream.add_repo(repo_id, {"config.json": b'{"model_type": "bert"}', "big.bin": BIG})
    return repo_id


def test_concurrent_cold_clients_restart_and_offline_on_s3(
    s3_proxy: ProxyFactory, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    server = s3_proxy()
    upstream.cdn_bytes_per_second_per_connection = 20_000_000

    def download(number: int) -> str:
        path = hf_hub_download(
            model, "big.bin", cache_dir=tmp_path / f"c{number}", endpoint=server.url
        )
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(download, range(8))) == [BIG.sha256()] * 8
    assert BIG.size <= upstream.file_bytes_served() <= 1.05 * BIG.size
    ranged = httpx.get(
        f"{server.url}/{model}/resolve/main/big.bin", headers={"Range": "bytes=1000-1999"}
    )
    assert ranged.status_code == 206
    assert ranged.content == BIG.read(1000, 2000)
    # Everything lives in the bucket: a new process with an empty local data dir but the same
    # database serves it offline.
    server.stop()
    upstream.reset_stats()
    offline = s3_proxy("--offline", data_dir=server.data_dir)
    path = hf_hub_download(model, "big.bin", cache_dir=tmp_path / "offline", endpoint=offline.url)
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == BIG.sha256()
    assert not (server.data_dir / "storage").exists()  # no chunk was written to local disk
    assert upstream.count() == 0


def test_sigkill_mid_fill_on_s3_leaves_nothing_half_written(
    s3_proxy: ProxyFactory, s3_service: S3Service, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    server = s3_proxy()
    upstream.cdn_bytes_per_second_per_connection = 1_000_000
    with httpx.stream("GET", f"{server.url}/{model}/resolve/main/big.bin", timeout=30) as response:
        next(response.iter_bytes())
        server.kill()
    upstream.cdn_bytes_per_second_per_connection = None
    server.start()
    path = hf_hub_download(model, "big.bin", cache_dir=tmp_path, endpoint=server.url)
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == BIG.sha256()
