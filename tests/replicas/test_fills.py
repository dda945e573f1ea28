"""Cold fills across replicas: each chunk is fetched from upstream by one replica (the holder
of its lease in PostgreSQL), whatever replica a client asks; when the holder dies mid-file, the
others take its chunks over once its leases expire and resume after the last committed chunk.
"""

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import psycopg
import pytest
from huggingface_hub import hf_hub_download

from tests.fake_upstream import FakeHub, GeneratedFile
from tests.replicas.conftest import CHUNK_SIZE, REPLICAS, Replicas

MiB = 1024 * 1024
CLIENTS_PER_REPLICA = 8
# 32 chunks, every one of them wanted by 24 clients on 3 replicas at once.
CROWDED = GeneratedFile(32 * CHUNK_SIZE, seed=1801)
# 16 chunks; while the holder fills its first ones at a crawl, it is killed.
INTERRUPTED = GeneratedFile(16 * CHUNK_SIZE, seed=1802)
CRAWL = CHUNK_SIZE // 2  # bytes per second per upstream connection before the kill: 2 s a chunk


def sha256_of_download(url: str, started: threading.Event | None = None) -> str:
    """GET `url`, hashing the body as it streams; `started` is set at the first bytes."""
    digest = hashlib.sha256()
    with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
        assert response.status_code == 200, response.read()
        for piece in response.iter_raw(MiB):
            if started is not None:
                started.set()
            digest.update(piece)
    return digest.hexdigest()


def resolve_url(replicas: Replicas, index: int, repo_id: str) -> str:
    return f"{replicas.processes[index].url}/{repo_id}/resolve/main/model.safetensors"


def query(replicas: Replicas, sql: str, *parameters: object) -> list[tuple[object, ...]]:
    """Rows of `sql` on the replicas' shared database, as the replicas see it."""
    with psycopg.connect(replicas.database_url, autocommit=True) as connection:
        return [tuple(row) for row in connection.execute(sql, parameters).fetchall()]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stored_chunks(replicas: Replicas, file: GeneratedFile) -> list[tuple[object, ...]]:
    return query(
        replicas,
        "SELECT chunk_index, size FROM chunks WHERE blob_id = %s ORDER BY chunk_index",
        f"sha256:{file.sha256()}",
    )


def expected_chunks(file: GeneratedFile) -> list[tuple[object, ...]]:
    return [
        (index, min(CHUNK_SIZE, file.size - index * CHUNK_SIZE))
        for index in range(-(-file.size // CHUNK_SIZE))
    ]


def test_24_clients_over_3_replicas_fetch_a_cold_file_from_upstream_once(
    replicas: Replicas, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    upstream.add_repo(repo_id, {"model.safetensors": CROWDED})
    clients = CLIENTS_PER_REPLICA * REPLICAS
    start = threading.Barrier(clients + 1)

    def client(number: int) -> str:
        start.wait()
        return sha256_of_download(resolve_url(replicas, number % REPLICAS, repo_id))

    def hub_client() -> str:
        start.wait()
        path = hf_hub_download(
            repo_id,
            "model.safetensors",
            cache_dir=tmp_path / "hf-cache",
            endpoint=replicas.processes[0].url,
        )
        digest = hashlib.sha256()
        with open(path, "rb") as downloaded:
            while piece := downloaded.read(8 * MiB):
                digest.update(piece)
        return digest.hexdigest()

    with ThreadPoolExecutor(clients + 1) as pool:
        results = [pool.submit(client, number) for number in range(clients)]
        results.append(pool.submit(hub_client))
        digests = [result.result() for result in results]
    assert digests == [CROWDED.sha256()] * (clients + 1)
    served = upstream.file_bytes_served()
    assert CROWDED.size <= served <= 1.05 * CROWDED.size, served / CROWDED.size
    assert stored_chunks(replicas, CROWDED) == expected_chunks(CROWDED)


def test_the_lease_holder_killed_mid_file_is_taken_over(
    replicas: Replicas, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"model.safetensors": INTERRUPTED})
    upstream.cdn_bytes_per_second_per_connection = CRAWL
    blob = f"sha256:{INTERRUPTED.sha256()}"
    pool = ThreadPoolExecutor(REPLICAS * 2)
    try:
        # One client on the first replica: its replica takes the first chunks' leases.
        first: Future[str] = pool.submit(sha256_of_download, resolve_url(replicas, 0, repo_id))

        def fill_owners() -> set[str]:
            rows = query(replicas, "SELECT owner FROM leases WHERE name LIKE %s", f"fill:{blob}:%")
            return {str(row[0]) for row in rows}

        wait_for(lambda: bool(fill_owners()), "the first fill leases")
        # Owners are host:pid:incarnation; the holder is found by its pid.
        pids = {int(owner.split(":")[1]) for owner in fill_owners()}
        assert len(pids) == 1, pids
        (holder,) = [i for i, process in enumerate(replicas.processes) if process.pid in pids]
        others = [index for index in range(REPLICAS) if index != holder]
        # Clients on the other replicas, reading (the committed chunks) before the holder dies.
        started = [threading.Event() for _ in others for _copy in range(2)]
        waiting = [
            pool.submit(sha256_of_download, resolve_url(replicas, index, repo_id), event)
            for index, event in zip([i for i in others for _ in range(2)], started, strict=True)
        ]
        wait_for(lambda: bool(stored_chunks(replicas, INTERRUPTED)), "a first committed chunk")
        wait_for(lambda: all(event.is_set() for event in started), "the other clients' bytes")
        committed_before = len(stored_chunks(replicas, INTERRUPTED))
        assert committed_before < len(expected_chunks(INTERRUPTED)), "the holder finished early"
        replicas.processes[holder].kill()
        upstream.cdn_bytes_per_second_per_connection = None  # the rest at full speed
        # The holder's client breaks (or, had it been quick, got everything); the others finish.
        assert [result.result(timeout=120) for result in waiting] == [INTERRUPTED.sha256()] * len(
            waiting
        )
        with pytest.raises(httpx.TransportError):
            first.result(timeout=60)
    finally:
        pool.shutdown(wait=True)
        upstream.cdn_bytes_per_second_per_connection = None
    # Every chunk committed once, whole, and what the bucket holds is the file.
    assert stored_chunks(replicas, INTERRUPTED) == expected_chunks(INTERRUPTED)
    assert committed_before >= 1
    served = upstream.file_bytes_served()
    assert INTERRUPTED.size <= served <= 1.3 * INTERRUPTED.size, served / INTERRUPTED.size
    assert bucket_content(replicas, INTERRUPTED) == INTERRUPTED.sha256()
    # No lease of the dead replica is left: the others took every one over and released it.
    assert query(replicas, "SELECT owner FROM leases WHERE name LIKE %s", f"fill:{blob}:%") == []
    replicas.processes[holder].start()  # the next tests use every replica


def bucket_content(replicas: Replicas, file: GeneratedFile) -> str:
    """The sha256 of the file's chunk objects in the bucket, concatenated in index order
    (and every object the size its row says)."""
    digest = file.sha256()
    prefix = f"{replicas.s3_prefix}/chunks/sha256/{digest[:2]}/{digest[2:4]}/{digest}/"
    client = boto3.client(
        "s3", endpoint_url=replicas.s3.endpoint_url, region_name="us-east-1",
        aws_access_key_id=replicas.s3.access_key_id,
        aws_secret_access_key=replicas.s3.secret_access_key,
    )  # fmt: skip
    try:
        listed = client.list_objects_v2(Bucket=replicas.s3.bucket, Prefix=prefix)
        objects = sorted((item["Key"], item["Size"]) for item in listed.get("Contents", []))
        assert [(key.rsplit("/", 1)[1], size) for key, size in objects] == [
            (f"{index:08d}", size) for index, size in expected_chunks(file)
        ]
        hasher = hashlib.sha256()
        for key, _size in objects:
            body = client.get_object(Bucket=replicas.s3.bucket, Key=key)["Body"]
            while piece := body.read(8 * MiB):
                hasher.update(piece)
        return hasher.hexdigest()
    finally:
        client.close()
