"""S3 storage with a local tier (`local_cache_dir`): a cold download fills S3 and the tier, warm
downloads are sent from the tier with sendfile and never read S3, a damaged copy is never
served, and the tier survives restarts within its bound."""

import hashlib
import itertools
import time
from pathlib import Path

import boto3
import httpx
import pytest
from huggingface_hub import hf_hub_download

from tests.conftest import ProxyFactory, S3Service
from tests.fake_upstream import FakeHub, GeneratedFile
from tests.proxy.test_metrics import scrape, value
from tests.support.proxy import ProxyProcess

# The S3 pass of the suite (`--proxy-storage s3`) would run it again unchanged.
pytestmark = [pytest.mark.clients, pytest.mark.storage_independent]

WEIGHTS = GeneratedFile(1_000_000, seed=181)  # four 256 KiB chunks, the last one short
_prefixes = itertools.count()

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def copies(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def grown(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def s3_keys(service: S3Service, prefix: str) -> list[str]:
    client = boto3.client(
        "s3", endpoint_url=service.endpoint_url, region_name="us-east-1",
        aws_access_key_id=service.access_key_id, aws_secret_access_key=service.secret_access_key,
    )  # fmt: skip
    try:
        listed = client.list_objects_v2(Bucket=service.bucket, Prefix=f"{prefix}/")
        return [item["Key"] for item in listed.get("Contents", [])]
    finally:
        client.close()


def warm_download(server: ProxyProcess, url: str) -> tuple[bytes, Samples, Samples]:
    """One whole download: its bytes and the metrics before and after it."""
    before = scrape(server.url)
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200
    return response.content, before, scrape(server.url)


def wait_for_sendfile(server: ProxyProcess, url: str) -> None:
    """Download until one goes out with sendfile: the blob is verified then."""
    deadline = time.monotonic() + 30
    while True:
        content, before, after = warm_download(server, url)
        assert content == WEIGHTS.read(0, WEIGHTS.size)
        if grown(before, after, "hubproxy_sendfile_bytes_total") == WEIGHTS.size:
            return
        assert time.monotonic() < deadline, "the blob was never served with sendfile"
        time.sleep(0.05)


def test_warm_reads_come_from_the_local_tier(
    proxy_factory: ProxyFactory, s3_service: S3Service, upstream: FakeHub, repo_id: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    upstream.add_repo(repo_id, {"model.safetensors": WEIGHTS})
    prefix = f"local-tier-{next(_prefixes)}"
    tier = tmp_path / "hot-chunks"

    def start(*extra: str, data_dir: Path | None = None) -> ProxyProcess:
        return proxy_factory(
            "--storage", "s3", "--s3-bucket", s3_service.bucket, "--s3-prefix", prefix,
            "--s3-endpoint-url", s3_service.endpoint_url, "--s3-region", "us-east-1",
            "--s3-path-style", "--local-cache-dir", str(tier), *extra,
            data_dir=data_dir,
            environment={
                "HUBPROXY_S3_ACCESS_KEY_ID": s3_service.access_key_id,
                "HUBPROXY_S3_SECRET_ACCESS_KEY": s3_service.secret_access_key,
            },
        )  # fmt: skip

    server = start()
    url = f"{server.url}/{repo_id}/resolve/main/model.safetensors"
    expected = WEIGHTS.read(0, WEIGHTS.size)

    # Cold, with huggingface_hub: the chunks land in S3 (the truth) and in the tier.
    path = hf_hub_download(
        repo_id, "model.safetensors", cache_dir=tmp_path / "client", endpoint=server.url
    )
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == WEIGHTS.sha256()
    assert len([key for key in s3_keys(s3_service, prefix) if "/chunks/" in key]) == 4
    assert len(copies(tier / "worker-0")) == 4
    assert sum(path.stat().st_size for path in copies(tier)) == WEIGHTS.size

    # Warm: every chunk from the tier, with sendfile; S3 is not read.
    wait_for_sendfile(server, url)
    content, before, after = warm_download(server, url)
    assert content == expected
    assert grown(before, after, "hubproxy_local_tier_reads_total", outcome="hit") == 4
    assert grown(before, after, "hubproxy_local_tier_reads_total", outcome="miss") == 0
    assert grown(before, after, "hubproxy_local_tier_bytes_total", source="remote") == 0
    assert grown(before, after, "hubproxy_sendfile_bytes_total") == WEIGHTS.size
    assert upstream.file_bytes_served() == WEIGHTS.size

    # A copy damaged on disk: the download is still exact (that chunk from S3), and the copy
    # is replaced by a good one.
    damaged = copies(tier)[1]
    chunk_bytes = damaged.read_bytes()
    with open(damaged, "r+b") as file:
        file.seek(1000)
        file.write(bytes([chunk_bytes[1000] ^ 0xFF]))
    content, before, after = warm_download(server, url)
    assert content == expected
    assert grown(before, after, "hubproxy_local_tier_dropped_total", reason="damaged") == 1
    assert grown(before, after, "hubproxy_local_tier_bytes_total", source="remote") == len(
        chunk_bytes
    )
    [replaced] = [path for path in copies(tier) if path.name == damaged.name]
    assert replaced.read_bytes() == chunk_bytes

    # A restart keeps the tier: every copy is checked once, none is read from S3.
    server.stop()
    server = start(data_dir=server.data_dir)
    url = f"{server.url}/{repo_id}/resolve/main/model.safetensors"
    content, before, after = warm_download(server, url)
    assert content == expected
    assert grown(before, after, "hubproxy_local_tier_reads_total", outcome="hit") == 4
    assert grown(before, after, "hubproxy_local_tier_bytes_total", source="remote") == 0
    assert grown(before, after, "hubproxy_sendfile_bytes_total") == WEIGHTS.size

    # A smaller bound: the tier shrinks to it at start and stays under it while serving.
    server.stop()
    server = start("--local-cache-max-bytes", "600KiB", data_dir=server.data_dir)
    url = f"{server.url}/{repo_id}/resolve/main/model.safetensors"
    for _round in range(2):
        content, _before, _after = warm_download(server, url)
        assert content == expected
        assert sum(path.stat().st_size for path in copies(tier)) <= 600 * 1024
    assert len(copies(tier)) == 2
    assert upstream.file_bytes_served() == WEIGHTS.size  # S3 kept everything
    assert "Traceback" not in server.log()
