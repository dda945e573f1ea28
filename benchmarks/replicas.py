"""Replicas on one PostgreSQL and one S3 bucket (issue 18), measured side by side in one run:

- warm aggregate of `clients` concurrent curl clients spread over 3 replicas against the same
  clients on 1 replica (one worker each; chunks on S3, a moto server);
- cold: the same clients of one file nobody has fetched yet, 3 replicas against 1, with the
  bytes the upstream served (single-flight holds across replicas: about 1 × the file);
- metadata: warm repo-info requests/s (wrk) with the metadata store on PostgreSQL against SQLite.

`.venv/bin/python -m benchmarks.run --only replicas` (PostgreSQL comes from Debian's binaries, as
in the tests: `scripts/test.sh` installs them).
"""

import shutil
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.postgres import PostgresServer, binaries

from benchmarks.processes import (
    FakeHub,
    Hubproxy,
    MotoS3,
    aggregate,
    curl,
    wrk_requests_per_second,
)

MB = 1_000_000
REPLICAS = 3


@contextmanager
def _cluster(
    work: Path, name: str, hub: FakeHub, moto: MotoS3, database_url: str, count: int
) -> Iterator[list[Hubproxy]]:
    """`count` replicas on one database and one S3 prefix (the first one migrates the schema)."""
    environment = {**moto.environment, "HUBPROXY_DATABASE_URL": database_url}
    options = moto.hubproxy_options(name)
    replicas: list[Hubproxy] = []
    try:
        for index in range(count):
            replicas.append(
                Hubproxy(work, f"{name}-{index}", hub.url, *options, environment=environment)
            )
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()
            shutil.rmtree(replica.data_dir, ignore_errors=True)


def _spread(replicas: list[Hubproxy], path: str, clients: int) -> list[str]:
    return [f"{replicas[index % len(replicas)].url}/{path}" for index in range(clients)]


def scenario_replicas(
    work: Path,
    hub: FakeHub,
    repos: list[str],
    metadata_repo: str,
    size: int,
    clients: int,
    repeat: int,
) -> list[dict[str, Any]]:
    """Rows for benchmarks.run's table. `repos` are two repos with an unfetched `model.bin` of
    `size` bytes each, one per cluster shape (1 replica, then 3); `metadata_repo` is any repo."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: run scripts/test.sh once")
    postgres = PostgresServer.start(bin_dir)
    moto = MotoS3(work)
    rows: list[dict[str, Any]] = []
    try:
        measured: dict[int, dict[str, float]] = {}
        for count, repo in zip((1, REPLICAS), repos, strict=True):
            path = f"{repo}/resolve/main/model.bin"
            with _cluster(work, f"replicas-{count}", hub, moto, postgres.url(), count) as replicas:
                hub.reset_stats()
                cold, received = aggregate(_spread(replicas, path, clients))
                upstream = hub.stats()["file_bytes"]
                assert received == clients * size, "a cold client got short bytes"
                for replica in replicas:
                    replica.wait_idle()
                aggregate(_spread(replicas, path, len(replicas)))  # every replica's first read
                warm = statistics.median(
                    aggregate(_spread(replicas, path, clients))[0] for _ in range(repeat)
                )
                measured[count] = {"cold": cold, "warm": warm, "upstream": upstream / size}
        one, many = measured[1], measured[REPLICAS]
        for kind in ("warm", "cold"):
            rows.append(
                {
                    "scenario": f"{kind}, {clients} curl clients over {REPLICAS} replicas (PostgreSQL + S3)",
                    "measured": f"{many[kind] / MB:.0f} MB/s in total"
                    + (f" ({many['upstream']:.2f} × file from upstream)" if kind == "cold" else ""),
                    "baseline": f"1 replica {one[kind] / MB:.0f} MB/s"
                    + (f" ({one['upstream']:.2f} × file)" if kind == "cold" else ""),
                    "ratio": many[kind] / one[kind],
                    "budget": "report" if kind == "warm" else "upstream ≤ 1.05 × file",
                    "passed": kind == "warm" or many["upstream"] <= 1.05,
                }
            )
        rows.append(_metadata(work, hub, metadata_repo, postgres))
    finally:
        moto.stop()
        postgres.stop()
    return rows


def _metadata(work: Path, hub: FakeHub, repo: str, postgres: PostgresServer) -> dict[str, Any]:
    """Warm repo info requests/s of one replica, metadata on PostgreSQL against SQLite."""
    rates: dict[str, float] = {}
    for engine in ("sqlite", "postgresql"):
        environment = {"HUBPROXY_DATABASE_URL": postgres.url()} if engine == "postgresql" else {}
        proxy = Hubproxy(work, f"metadata-{engine}", hub.url, environment=environment)
        try:
            url = f"{proxy.url}/api/models/{repo}"
            curl(url)
            rates[engine] = wrk_requests_per_second(url, work)
        finally:
            proxy.stop()
            shutil.rmtree(proxy.data_dir, ignore_errors=True)
    ratio = rates["postgresql"] / rates["sqlite"]
    return {
        "scenario": "warm repo info requests/s, metadata store on PostgreSQL (1 replica)",
        "measured": f"{rates['postgresql']:.0f} req/s",
        "baseline": f"SQLite {rates['sqlite']:.0f} req/s",
        "ratio": ratio,
        "budget": "report",
        "passed": True,
    }
