"""`hubproxy admin migrate-to postgresql://... --storage s3`: a SQLite data dir with local
chunks moves into PostgreSQL and an S3 bucket (moto), verified; an interrupted copy resumes,
copying only what is missing or wrong; a replica on the copies serves every file bytes-exact
with upstream down."""

import json
import time
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
import yaml

from tests.conftest import SERVER_ENVIRONMENT, TEST_CHUNK_SIZE, S3Service
from tests.fake_upstream import FakeHub, FakeHubServer, GeneratedFile
from tests.support.cli import run_cli
from tests.support.databases import fetch_all
from tests.support.proxy import ProxyProcess

# The source is a data dir's own SQLite file.
pytestmark = pytest.mark.sqlite_file

WEIGHTS = GeneratedFile(3 * 1024 * 1024 + 5, seed=1803)  # 13 chunks of 256 KiB, the last short
CONFIG = b'{"model_type": "bert"}'
FILES = {"config.json": CONFIG, "model.safetensors": WEIGHTS.read(0, WEIGHTS.size)}


def wait_verified(data_dir: Path, count: int) -> None:
    """Until `count` blobs of the data dir are verified (after a first whole read, at once)."""
    deadline = time.monotonic() + 30
    while len(fetch_all(data_dir, "SELECT blob_id FROM blobs WHERE verified = 1")) < count:
        assert time.monotonic() < deadline, "the downloaded files were never verified"
        time.sleep(0.05)


def test_migrate_to_with_storage_copies_chunks_verified_and_resumes(
    fake_hub_server: FakeHubServer,
    upstream: FakeHub,
    repo_id: str,
    s3_service: S3Service,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    upstream.add_repo(repo_id, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    source = tmp_path / "source"
    with ProxyProcess(
        source, fake_hub_server.url, extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment=SERVER_ENVIRONMENT,
    ) as server:  # fmt: skip
        for path, body in FILES.items():
            response = httpx.get(f"{server.url}/{repo_id}/resolve/main/{path}", timeout=60)
            assert response.content == body
        wait_verified(source, len(FILES))

    prefix = f"migrated-{uuid.uuid4().hex[:8]}"
    s3_options = (
        "--s3-bucket", s3_service.bucket, "--s3-prefix", prefix, "--s3-endpoint-url",
        s3_service.endpoint_url, "--s3-region", "us-east-1", "--s3-path-style",
    )  # fmt: skip
    # Credentials as serve takes them: the environment or the config file, never a flag.
    config = tmp_path / "hubproxy.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "s3_access_key_id": s3_service.access_key_id,
                "s3_secret_access_key": s3_service.secret_access_key,
            }
        )
    )
    command = (
        "admin", "--data-dir", str(source), "--config", str(config), "migrate-to", postgres_url,
        "--storage", "s3", *s3_options, "--json",
    )  # fmt: skip
    copied = run_cli(*command)
    assert copied.returncode == 0, copied.stderr
    report = json.loads(copied.stdout)["storage"]
    chunks = 1 + 13  # config.json in one chunk, the weights in 13
    assert report == {
        "objects": chunks, "copied": chunks, "skipped": 0,
        "bytes_copied": len(CONFIG) + WEIGHTS.size, "blobs_hashed": 2, "missing_chunks": 0,
        "verified": True,
    }  # fmt: skip

    # Interrupted: one chunk never arrived, another arrived damaged (same size). Run again.
    bucket = boto3.client(
        "s3", endpoint_url=s3_service.endpoint_url, region_name="us-east-1",
        aws_access_key_id=s3_service.access_key_id,
        aws_secret_access_key=s3_service.secret_access_key,
    )  # fmt: skip
    try:
        listed = bucket.list_objects_v2(Bucket=s3_service.bucket, Prefix=f"{prefix}/")
        keys = sorted(item["Key"] for item in listed["Contents"])
        assert len(keys) == chunks
        weights_keys = [key for key in keys if WEIGHTS.sha256() in key]
        bucket.delete_object(Bucket=s3_service.bucket, Key=weights_keys[3])
        bucket.put_object(Bucket=s3_service.bucket, Key=weights_keys[5], Body=b"\0" * (256 * 1024))
    finally:
        bucket.close()
    resumed = run_cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["verified"] is True
    assert (again["storage"]["copied"], again["storage"]["skipped"]) == (2, chunks - 2)
    assert again["storage"]["bytes_copied"] == 2 * 256 * 1024
    assert "every object verified" in run_cli(*command[:-1]).stdout

    # A replica on PostgreSQL and the bucket serves everything, upstream down.
    upstream.down = True
    upstream.reset_stats()
    replica = ProxyProcess(
        tmp_path / "replica", fake_hub_server.url,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE, "--storage", "s3", *s3_options),
        environment={
            **SERVER_ENVIRONMENT,
            "HUBPROXY_DATABASE_URL": postgres_url,
            "HUBPROXY_S3_ACCESS_KEY_ID": s3_service.access_key_id,
            "HUBPROXY_S3_SECRET_ACCESS_KEY": s3_service.secret_access_key,
        },
    )  # fmt: skip
    with replica:
        for path, body in FILES.items():
            response = httpx.get(f"{replica.url}/{repo_id}/resolve/main/{path}", timeout=60)
            assert response.status_code == 200, response.text
            assert response.content == body
    assert upstream.file_bytes_served() == 0
    assert "Traceback" not in replica.log(), replica.log()


def test_migrate_to_storage_refusals(tmp_path: Path, postgres_url: str) -> None:
    data_dir = tmp_path / "data"
    local = run_cli("admin", "--data-dir", str(data_dir), "migrate-to", postgres_url,
                    "--storage", "local")  # fmt: skip
    assert local.returncode == 2
    assert "s3 only" in local.stderr
    lone = run_cli("admin", "--data-dir", str(data_dir), "migrate-to", postgres_url,
                   "--s3-bucket", "b")  # fmt: skip
    assert lone.returncode == 2
    assert "need --storage s3" in lone.stderr
    no_bucket = run_cli("admin", "--data-dir", str(data_dir), "migrate-to", postgres_url,
                        "--storage", "s3")  # fmt: skip
    assert no_bucket.returncode == 2
    assert "s3_bucket" in no_bucket.stderr
