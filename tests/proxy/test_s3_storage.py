"""The caching proxy with its chunks on S3 (a moto server): the same guarantees as on disk."""

import hashlib
import itertools
import time
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
    # The restarted server takes the killed one's fill leases over after lease_seconds: 3 s
    # here, not the default 30 s of waiting.
    server = s3_proxy("--lease-seconds", "3")
    upstream.cdn_bytes_per_second_per_connection = 1_000_000
    with httpx.stream("GET", f"{server.url}/{model}/resolve/main/big.bin", timeout=30) as response:
        next(response.iter_bytes())
        server.kill()
    upstream.cdn_bytes_per_second_per_connection = None
    server.start()
    path = hf_hub_download(model, "big.bin", cache_dir=tmp_path, endpoint=server.url)
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == BIG.sha256()


def test_redirect_mode_sends_clients_to_presigned_whole_objects(
    s3_proxy: ProxyFactory, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    content = GeneratedFile(11_000_000, seed=23)  # three 5 MiB chunks: S3's smallest parts
    upstream.add_repo(repo_id, {"model.safetensors": content})
    server = s3_proxy("--s3-redirect", "--chunk-size", "5MiB")
    url = f"{server.url}/{repo_id}/resolve/main/model.safetensors"
    first = httpx.get(url)  # cold: streamed through hubproxy while it fills
    assert first.status_code == 200
    assert hashlib.sha256(first.content).hexdigest() == content.sha256()
    deadline = time.monotonic() + 30
    while (answer := httpx.get(url)).status_code != 302:  # verified, then composed server-side
        assert answer.status_code == 200
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert answer.headers["x-linked-etag"] == f'"{content.sha256()}"'
    assert answer.headers["x-linked-size"] == str(content.size)
    assert answer.headers["x-repo-commit"]
    assert answer.headers["x-hubproxy-cache"] == "redirect"
    assert not answer.headers["location"].startswith(server.url)
    upstream.reset_stats()
    path = hf_hub_download(repo_id, "model.safetensors", cache_dir=tmp_path, endpoint=server.url)
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == content.sha256()
    ranged = httpx.get(url, headers={"Range": "bytes=6000000-6000099"}, follow_redirects=True)
    assert ranged.status_code == 206
    assert ranged.content == content.read(6_000_000, 6_000_100)
    assert httpx.head(url).status_code == 200  # metadata is always answered directly
    assert upstream.file_bytes_served() == 0
