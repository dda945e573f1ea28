"""hubproxy against its baselines, side by side in one run (the host is noisy: compare ratios).

    bash scripts/install-benchmark-deps.sh      # nginx, curl, olah 0.5.4 (once)
    .venv/bin/python -m benchmarks.run          # the whole set, 1 GiB files
    .venv/bin/python -m benchmarks.run --size 256MiB --only warm,range

Scenarios and the budgets they check (shared/DESIGN.md, "Performance budgets", and issue 17):
- warm:  cached download via curl ≥ 0.95 × nginx `sendfile` serving the same file (one process);
- warm8: 8 concurrent curl clients of the cached file, aggregate ≥ 0.9 × nginx
         (`worker_processes auto`), hubproxy with `--workers` = cores;
- head:  warm HEAD resolve requests/s (hey, `--workers` = cores) ≥ 0.5 × nginx (`worker_processes
         auto`) serving a small static file;
- cold:  first download ≥ 2.0 × downloading straight from a CDN that caps each connection
         (256 MiB/s by default), upstream bytes 1.00 × the file;
- olah:  warm ≥ 3 × olah 0.5.4 warm, cold ≥ 1 × olah cold, same file, same fake upstream;
- range: a cold 1 KiB range inside the file costs ≤ one chunk + read-ahead of upstream bytes;
- rss:   peak RSS of all processes together < 300 MB while 8 clients stream 8 different files,
         cold then warm (`--workers` = cores);
- metadata: warm repo info requests/s (wrk) ≥ 0.3 × a hello-world starlette endpoint,
         anonymous and with a token; a warm 512-byte download (audited) is reported beside it;
- upload: an LFS upload (PUT to the signed link) to a hosted repo against nginx storing the
         same PUT with WebDAV, reported; then that file's warm download ≥ 0.8 × nginx sendfile;
- s3:    chunks on S3 (a moto server): cold and warm against local storage and against reading
         the S3 object directly; warm with a local tier (`local_cache_dir`) against nginx
         sendfile; peak RSS < 300 MB while 4 clients stream 256 MiB files;
- xet:   a hosted repo with the real client: upload through Xet against Git LFS, download
         through Xet against plain `/resolve`, with server CPU time and peak RSS per transfer
         (`benchmarks/xet.py`; not in the default set: `--only xet`);
- replicas: 3 replicas on one PostgreSQL and one S3 bucket (moto) against 1, warm and cold,
         the same clients; metadata requests/s on PostgreSQL against SQLite
         (`benchmarks/replicas.py`; not in the default set: `--only replicas`, `--s3-size` files);
- ui:    web UI pages, p95 < 200 ms and < 300 KB: the tree page of a 10,000-file hosted repo and
         the audit page over 1,000,000 records (`benchmarks/ui.py`; `--only ui`).
Results go to stdout (a Markdown table) and benchmarks/results/latest.json.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.processes import (
    ROOT,
    FakeHub,
    Hello,
    Hubproxy,
    MotoS3,
    Nginx,
    Olah,
    aggregate,
    curl,
    curl_upload,
    hey_requests_per_second,
    raw_get,
    wrk_requests_per_second,
)
from benchmarks.replicas import scenario_replicas
from benchmarks.ui import scenario_ui
from benchmarks.xet import scenario_xet
from hubproxy.settings import parse_size

MB = 1_000_000
CORES = str(os.cpu_count() or 1)
REPO = "bench/model"
SMALL_FILE = "config.json"


@dataclass
class Result:
    scenario: str
    measured: str
    baseline: str
    ratio: float
    budget: str
    passed: bool


def throughput(seconds: float, size: int) -> float:
    return size / seconds


def median_throughput(download: Callable[[], tuple[float, int]], repeat: int) -> float:
    return statistics.median(throughput(*download()) for _ in range(repeat))


def wait_until_verified(proxy: Hubproxy, url: str) -> None:
    """A cold fill hashes the whole file once it completes: never measure during that."""
    deadline = time.monotonic() + 300
    while httpx.head(url).headers.get("x-hubproxy-cache") != "hit":
        if time.monotonic() > deadline:
            raise RuntimeError("fill did not finish")
        time.sleep(0.2)
    proxy.wait_idle()


def scenario_warm(work: Path, hub: FakeHub, size: int, repeat: int) -> list[Result]:
    """One warm stream: hubproxy (sendfile), hubproxy's copy path (`--no-sendfile`) and nginx
    sendfile, measured in turns."""
    proxy = Hubproxy(work, "hubproxy-warm", hub.url)
    copying = Hubproxy(work, "hubproxy-warm-copy", hub.url, "--no-sendfile")
    try:
        url = f"{proxy.url}/{REPO}/resolve/main/model.bin"
        copy_url = f"{copying.url}/{REPO}/resolve/main/model.bin"
        (work / "www").mkdir(exist_ok=True)
        curl(url, output=work / "www" / "model.bin")
        curl(copy_url)
        wait_until_verified(proxy, url)
        wait_until_verified(copying, copy_url)
        nginx = Nginx(work, work / "www")
        try:
            speeds: dict[str, list[float]] = {}
            for client, get in (("curl", curl), ("raw", raw_get)):
                for _ in range(repeat):
                    for name, target in (
                        ("nginx", f"{nginx.url}/model.bin"),
                        ("sendfile", url),
                        ("copy", copy_url),
                    ):
                        speeds.setdefault(f"{client} {name}", []).append(throughput(*get(target)))
        finally:
            nginx.stop()
        median = {name: statistics.median(values) for name, values in speeds.items()}
        nginx_speed, proxy_speed, copy_speed = (
            median[f"curl {name}"] for name in ("nginx", "sendfile", "copy")
        )
        ratio = proxy_speed / nginx_speed
        raw_rows = [
            Result(
                f"warm download (raw socket reader), {label}",
                f"{median[f'raw {name}'] / MB:.0f} MB/s",
                f"nginx sendfile {median['raw nginx'] / MB:.0f} MB/s",
                median[f"raw {name}"] / median["raw nginx"],
                "report",
                True,
            )
            for name, label in (("sendfile", "sendfile"), ("copy", "copy path"))
        ]
        return [
            *raw_rows,
            Result(
                "warm download (curl)",
                f"{proxy_speed / MB:.0f} MB/s",
                f"nginx sendfile {nginx_speed / MB:.0f} MB/s",
                ratio,
                "≥ 0.95",
                ratio >= 0.95,
            ),
            Result(
                "warm download (curl), copy path (--no-sendfile)",
                f"{copy_speed / MB:.0f} MB/s",
                f"nginx sendfile {nginx_speed / MB:.0f} MB/s",
                copy_speed / nginx_speed,
                "report",
                True,
            ),
        ]
    finally:
        for server in (proxy, copying):
            server.stop()
            shutil.rmtree(server.data_dir, ignore_errors=True)
        shutil.rmtree(work / "www", ignore_errors=True)


def _aggregate(url: str, clients: int) -> float:
    """Bytes/s of `clients` concurrent curl downloads of `url`, from first start to last end."""
    return aggregate([url] * clients)[0]


def scenario_warm_concurrent(
    work: Path, hub: FakeHub, size: int, repeat: int, clients: int
) -> list[Result]:
    """Every core: `clients` concurrent downloads of the cached file, hubproxy with one worker
    per core against nginx with one worker per core, measured in turns."""
    proxy = Hubproxy(work, "hubproxy-warm-concurrent", hub.url, "--workers", CORES)
    try:
        url = f"{proxy.url}/{REPO}/resolve/main/model.bin"
        (work / "www").mkdir(exist_ok=True)
        curl(url, output=work / "www" / "model.bin")
        wait_until_verified(proxy, url)
        nginx = Nginx(work, work / "www", workers="auto")
        try:
            _aggregate(url, clients)  # every worker's first read of it
            nginx_speeds, proxy_speeds = [], []
            for _ in range(repeat):
                nginx_speeds.append(_aggregate(f"{nginx.url}/model.bin", clients))
                proxy_speeds.append(_aggregate(url, clients))
        finally:
            nginx.stop()
        nginx_speed, proxy_speed = statistics.median(nginx_speeds), statistics.median(proxy_speeds)
        ratio = proxy_speed / nginx_speed
        return [
            Result(
                f"warm download, {clients} concurrent curl clients ({CORES} workers)",
                f"{proxy_speed / MB:.0f} MB/s in total",
                f"nginx worker_processes auto {nginx_speed / MB:.0f} MB/s",
                ratio, "≥ 0.9", ratio >= 0.9,
            )
        ]  # fmt: skip
    finally:
        proxy.stop()
        shutil.rmtree(proxy.data_dir, ignore_errors=True)
        shutil.rmtree(work / "www", ignore_errors=True)


def scenario_head(work: Path, hub: FakeHub, repeat: int) -> list[Result]:
    """Warm HEAD /resolve/ requests/s (the metadata call every client makes before a download)
    with one worker per core, against nginx (one worker per core) serving a small static file;
    both measured with hey, in turns."""
    proxy = Hubproxy(work, "hubproxy-head", hub.url, "--workers", CORES)
    www = work / "www-small"
    try:
        url = f"{proxy.url}/{REPO}/resolve/main/{SMALL_FILE}"
        assert httpx.get(url).status_code == 200
        assert httpx.head(url).status_code == 200
        www.mkdir(exist_ok=True)
        (www / SMALL_FILE).write_bytes(b"x" * 512)
        nginx = Nginx(work, www, workers="auto")
        try:
            hey_requests_per_second(url, method="HEAD", seconds=2)  # warm every worker
            nginx_rates, proxy_rates = [], []
            for _ in range(repeat):
                nginx_rates.append(hey_requests_per_second(f"{nginx.url}/{SMALL_FILE}"))
                proxy_rates.append(hey_requests_per_second(url, method="HEAD"))
        finally:
            nginx.stop()
    finally:
        proxy.stop()
        shutil.rmtree(proxy.data_dir, ignore_errors=True)
        shutil.rmtree(www, ignore_errors=True)
    nginx_rate, proxy_rate = statistics.median(nginx_rates), statistics.median(proxy_rates)
    ratio = proxy_rate / nginx_rate
    return [
        Result(
            f"warm HEAD resolve, hey -c 32 ({CORES} workers)",
            f"{proxy_rate:.0f} req/s",
            f"nginx small static file {nginx_rate:.0f} req/s",
            ratio, "≥ 0.5", ratio >= 0.5,
        )
    ]  # fmt: skip


def scenario_metadata(work: Path, hub: FakeHub) -> list[Result]:
    """Small warm requests against a hello-world endpoint: repo info and a 512-byte file (each
    download also writes an audit record), anonymous and with a hubproxy token (authentication
    and authorization included). wrk cannot measure HEAD (it waits for a body), so GET."""
    proxy = Hubproxy(work, "hubproxy-metadata", hub.url)
    try:
        admin = [sys.executable, "-m", "hubproxy", "admin", "--data-dir", str(proxy.data_dir)]
        subprocess.run([*admin, "user", "create", "bench"], check=True, capture_output=True)
        created = subprocess.run(
            [*admin, "token", "create", "bench"], check=True, capture_output=True, text=True
        )
        authorization = {"Authorization": f"Bearer {created.stdout.splitlines()[-1]}"}
        targets = {
            "repo info": f"{proxy.url}/api/models/{REPO}",
            "512-byte file": f"{proxy.url}/{REPO}/resolve/main/{SMALL_FILE}",
        }
        for url in targets.values():
            assert httpx.get(url, headers=authorization).status_code == 200
        hello = Hello(work)
        try:
            baseline = wrk_requests_per_second(f"{hello.url}/x", work)
            rates = {
                f"warm GET {name}, {who}": wrk_requests_per_second(url, work, headers=headers)
                for name, url in targets.items()
                for who, headers in (("anonymous", {}), ("with a token", authorization))
            }
        finally:
            hello.stop()
    finally:
        proxy.stop()
        shutil.rmtree(proxy.data_dir, ignore_errors=True)
    # The budget is for metadata endpoints; a small download is reported beside it.
    return [
        Result(
            scenario,
            f"{rate:.0f} req/s",
            f"hello-world starlette {baseline:.0f} req/s",
            rate / baseline,
            "≥ 0.3" if "repo info" in scenario else "report",
            rate / baseline >= 0.3 if "repo info" in scenario else True,
        )
        for scenario, rate in rates.items()
    ]


def _distinct_file(path: Path, size: int, number: int) -> str:
    """Random content whose first bytes differ per `number` (a new LFS object each time, so
    nothing is deduplicated); returns its sha256."""
    if not path.exists():
        with open(path, "wb") as output:
            for start in range(0, size, 64 * MB):
                output.write(os.urandom(min(64 * MB, size - start)))
    with open(path, "r+b") as output:
        output.write(number.to_bytes(8, "little"))
    return _sha256_of(path)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while piece := source.read(16 * MB):
            digest.update(piece)
    return digest.hexdigest()


def scenario_upload(work: Path, hub: FakeHub, size: int, repeat: int) -> list[Result]:
    """An LFS upload to a hosted repo (the PUT to the signed link: receive, hash, check, store
    as chunks) against nginx storing the same PUT (WebDAV) on the same disk."""
    proxy = Hubproxy(work, "hubproxy-upload", hub.url, "--upload-lfs-threshold", "1MiB")
    upload = work / "upload.bin"
    try:
        admin = [sys.executable, "-m", "hubproxy", "admin", "--data-dir", str(proxy.data_dir)]
        for command in (
            ["project", "create", "lab", "--kind", "hosted", "--public"],
            ["user", "create", "bench"],
            ["member", "add", "lab", "bench", "--role", "developer"],
        ):
            subprocess.run([*admin, *command], check=True, capture_output=True)
        created = subprocess.run(
            [*admin, "token", "create", "bench", "--scope", "write"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        authorization = {"Authorization": f"Bearer {created.stdout.splitlines()[-1]}"}

        def hubproxy_upload(number: int) -> tuple[float, int]:
            sha256 = _distinct_file(upload, size, number)
            name = f"up-{number}"
            httpx.post(
                f"{proxy.url}/api/repos/create", json={"name": f"lab/{name}"},
                headers=authorization,
            ).raise_for_status()  # fmt: skip
            batch = httpx.post(
                f"{proxy.url}/lab/{name}.git/info/lfs/objects/batch",
                json={"operation": "upload", "objects": [{"oid": sha256, "size": size}]},
                headers=authorization,
            )
            href = batch.json()["objects"][0]["actions"]["upload"]["href"]
            return curl_upload(href, upload)

        www = work / "www-upload"
        www.mkdir(exist_ok=True)
        nginx = Nginx(work, www, accept_puts=True)
        try:
            _distinct_file(upload, size, 0)
            nginx_speed = median_throughput(
                lambda: curl_upload(f"{nginx.url}/uploads/model.bin", upload), repeat
            )
        finally:
            nginx.stop()
            shutil.rmtree(www, ignore_errors=True)
        speeds = [throughput(*hubproxy_upload(number)) for number in range(1, repeat + 1)]
        proxy_speed = statistics.median(speeds)
        # The last upload, committed, then downloaded warm like a cached file.
        commit = [
            {"key": "header", "value": {"summary": "weights"}},
            {"key": "lfsFile", "value": {"path": "model.bin", "oid": _sha256_of(upload),
                                         "size": size, "algo": "sha256"}},
        ]  # fmt: skip
        httpx.post(
            f"{proxy.url}/api/models/lab/up-{repeat}/commit/main",
            content=b"".join(json.dumps(line).encode() + b"\n" for line in commit),
            headers={**authorization, "Content-Type": "application/x-ndjson"},
        ).raise_for_status()
        download_speed = median_throughput(
            lambda: curl(f"{proxy.url}/lab/up-{repeat}/resolve/main/model.bin"), repeat
        )
        nginx = Nginx(work, upload.parent)
        try:
            sendfile_speed = median_throughput(lambda: curl(f"{nginx.url}/{upload.name}"), repeat)
        finally:
            nginx.stop()
        return [
            Result(
                "LFS upload to a hosted repo (curl -T)",
                f"{proxy_speed / MB:.0f} MB/s",
                f"nginx WebDAV PUT {nginx_speed / MB:.0f} MB/s",
                proxy_speed / nginx_speed,
                "report",
                True,
            ),
            Result(
                "hosted file download, warm (curl)",
                f"{download_speed / MB:.0f} MB/s",
                f"nginx sendfile {sendfile_speed / MB:.0f} MB/s",
                download_speed / sendfile_speed,
                "≥ 0.8",
                download_speed / sendfile_speed >= 0.8,
            ),
        ]
    finally:
        proxy.stop()
        upload.unlink(missing_ok=True)
        shutil.rmtree(proxy.data_dir, ignore_errors=True)


def scenario_cold(work: Path, hub: FakeHub, size: int, cdn_rate: int) -> list[Result]:
    hub.set_cdn_rate(cdn_rate)
    try:
        direct_speed = throughput(*curl(f"{hub.url}/{REPO}/resolve/main/model.bin"))
        proxy = Hubproxy(work, "hubproxy-cold", hub.url)
        try:
            hub.reset_stats()
            proxy_speed = throughput(*curl(f"{proxy.url}/{REPO}/resolve/main/model.bin"))
            upstream_bytes = hub.stats()["file_bytes"]
        finally:
            proxy.stop()
            shutil.rmtree(proxy.data_dir, ignore_errors=True)
    finally:
        hub.set_cdn_rate(None)
    ratio = proxy_speed / direct_speed
    return [
        Result(
            f"cold download, CDN capped at {cdn_rate / MB:.0f} MB/s per connection",
            f"{proxy_speed / MB:.0f} MB/s ({upstream_bytes / size:.2f} × file from upstream)",
            f"direct from CDN {direct_speed / MB:.0f} MB/s", ratio, "≥ 2.0",
            ratio >= 2.0 and upstream_bytes == size,
        )
    ]  # fmt: skip


def scenario_olah(work: Path, hub: FakeHub, size: int, repeat: int) -> list[Result]:
    results: list[Result] = []
    olah = Olah(work, hub)
    proxy = Hubproxy(work, "hubproxy-vs-olah", hub.url)
    try:
        olah_url = f"{olah.url}/{REPO}/resolve/main/model.bin"
        proxy_url = f"{proxy.url}/{REPO}/resolve/main/model.bin"
        olah_cold = throughput(*curl(olah_url))
        proxy_cold = throughput(*curl(proxy_url))
        wait_until_verified(proxy, proxy_url)
        olah_warm = median_throughput(lambda: curl(olah_url), repeat)
        proxy_warm = median_throughput(lambda: curl(proxy_url), repeat)
    finally:
        olah.stop()
        proxy.stop()
        shutil.rmtree(proxy.data_dir, ignore_errors=True)
        shutil.rmtree(work / "olah-repos", ignore_errors=True)
    cold_ratio = proxy_cold / olah_cold
    warm_ratio = proxy_warm / olah_warm
    results.append(
        Result(
            "cold download vs olah 0.5.4",
            f"{proxy_cold / MB:.0f} MB/s",
            f"olah {olah_cold / MB:.0f} MB/s",
            cold_ratio,
            "≥ 1.0",
            cold_ratio >= 1.0,
        )
    )
    results.append(
        Result(
            "warm download vs olah 0.5.4",
            f"{proxy_warm / MB:.0f} MB/s",
            f"olah {olah_warm / MB:.0f} MB/s",
            warm_ratio,
            "≥ 3.0",
            warm_ratio >= 3.0,
        )
    )
    return results


def scenario_range(work: Path, hub: FakeHub, size: int) -> list[Result]:
    proxy = Hubproxy(work, "hubproxy-range", hub.url)
    try:
        settings_chunk, read_ahead = 16 * 1024 * 1024, 1
        hub.reset_stats()
        middle = size // 2 + 12345
        seconds, received = curl(
            f"{proxy.url}/{REPO}/resolve/main/model.bin",
            range_header=f"bytes={middle}-{middle + 1023}",
        )
        assert received == 1024
        time.sleep(2)  # let the read-ahead fill finish before counting
        upstream_bytes = hub.stats()["file_bytes"]
    finally:
        proxy.stop()
        shutil.rmtree(proxy.data_dir, ignore_errors=True)
    budget = settings_chunk * (1 + read_ahead)
    return [
        Result(
            "cold 1 KiB range inside the file", f"{upstream_bytes / MB:.1f} MB from upstream in {seconds * 1000:.0f} ms",
            f"budget {budget / MB:.1f} MB (one 16 MiB chunk + 1 read-ahead)", upstream_bytes / budget, "≤ 1.0",
            upstream_bytes <= budget,
        )
    ]  # fmt: skip


def scenario_rss(work: Path, hub: FakeHub, size: int, clients: int) -> list[Result]:
    proxy = Hubproxy(work, "hubproxy-rss", hub.url, "--workers", CORES)
    sampled = [0]
    sampling = threading.Event()

    def sample() -> None:
        # The memory of all processes together (PSS: pages the forked workers share count
        # once), every 50 ms: their peaks need not coincide.
        while not sampling.wait(0.05):
            sampled[0] = max(sampled[0], proxy.rss_bytes())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        urls = [
            f"{proxy.url}/bench/rss-{number}/resolve/main/model.bin" for number in range(clients)
        ]
        with ThreadPoolExecutor(clients) as pool:
            cold = list(pool.map(curl, urls))
        with ThreadPoolExecutor(clients) as pool:
            warm = list(pool.map(curl, urls))
        sampling.set()
        sampler.join()
        peak = sampled[0]
        upper_bound = proxy.peak_rss_bytes()
    finally:
        sampling.set()
        proxy.stop()
        shutil.rmtree(proxy.data_dir, ignore_errors=True)
    assert all(received == size for _, received in cold + warm)
    cold_total = clients * size / max(seconds for seconds, _ in cold)
    warm_total = clients * size / max(seconds for seconds, _ in warm)
    return [
        Result(
            f"peak RSS of {CORES} workers together, {clients} clients × {clients} different files, cold then warm",
            f"{peak / MB:.0f} MB PSS (sum of each process's peak RSS {upper_bound / MB:.0f} MB; cold {cold_total / MB:.0f} MB/s, warm {warm_total / MB:.0f} MB/s in total)",
            "budget 300 MB", peak / (300 * MB), "≤ 1.0", peak < 300 * MB,
        )
    ]  # fmt: skip


def _s3_local_tier_warm(
    work: Path, hub: FakeHub, moto: MotoS3, path: str, repeat: int
) -> tuple[float, float]:
    """Warm downloads from S3 storage with a local tier (sendfile from its copies) and from
    nginx sendfile serving the same file, in turns: (tier, nginx) median bytes/s."""
    name = "hubproxy-s3-tier"
    tier = Hubproxy(
        work, name, hub.url, *moto.hubproxy_options("tier"),
        "--local-cache-dir", str(work / f"{name}-hot-chunks"), environment=moto.environment,
    )  # fmt: skip
    www = work / "www-s3"
    try:
        www.mkdir(exist_ok=True)
        curl(f"{tier.url}/{path}", output=www / "model.bin")  # cold: S3 and the tier fill
        wait_until_verified(tier, f"{tier.url}/{path}")
        nginx = Nginx(work, www)
        try:
            speeds: dict[str, list[float]] = {"tier": [], "nginx": []}
            for _ in range(repeat):
                speeds["nginx"].append(throughput(*curl(f"{nginx.url}/model.bin")))
                speeds["tier"].append(throughput(*curl(f"{tier.url}/{path}")))
        finally:
            nginx.stop()
    finally:
        tier.stop()
        shutil.rmtree(www, ignore_errors=True)
        shutil.rmtree(work / f"{name}-hot-chunks", ignore_errors=True)
    return statistics.median(speeds["tier"]), statistics.median(speeds["nginx"])


def scenario_s3(work: Path, hub: FakeHub, size: int, clients: int, repeat: int) -> list[Result]:
    """Chunks on S3 (moto) against local disk and against reading the S3 object directly."""
    moto = MotoS3(work)
    results: list[Result] = []
    try:
        s3 = Hubproxy(
            work,
            "hubproxy-s3",
            hub.url,
            *moto.hubproxy_options("bench"),
            environment=moto.environment,
        )
        local = Hubproxy(work, "hubproxy-local", hub.url)
        try:
            path = "bench/s3-0/resolve/main/model.bin"
            s3_cold = throughput(*curl(f"{s3.url}/{path}", output=work / "object.bin"))
            local_cold = throughput(*curl(f"{local.url}/{path}"))
            wait_until_verified(s3, f"{s3.url}/{path}")
            wait_until_verified(local, f"{local.url}/{path}")
            moto.client().upload_file(str(work / "object.bin"), moto.bucket, "direct/object.bin")
            direct_url = moto.client().generate_presigned_url(
                "get_object",
                Params={"Bucket": moto.bucket, "Key": "direct/object.bin"},
                ExpiresIn=3600,
            )
            direct = median_throughput(lambda: curl(direct_url), repeat)
            s3_warm = median_throughput(lambda: curl(f"{s3.url}/{path}"), repeat)
            local_warm = median_throughput(lambda: curl(f"{local.url}/{path}"), repeat)
            tier_warm, nginx_warm = _s3_local_tier_warm(work, hub, moto, path, repeat)
        finally:
            s3.stop()
            local.stop()
            shutil.rmtree(local.data_dir, ignore_errors=True)
            (work / "object.bin").unlink(missing_ok=True)
        results.append(
            Result(
                "S3 storage: cold download",
                f"{s3_cold / MB:.0f} MB/s",
                f"local storage {local_cold / MB:.0f} MB/s",
                s3_cold / local_cold,
                "report",
                True,
            )
        )
        results.append(
            Result(
                "S3 storage: warm download",
                f"{s3_warm / MB:.0f} MB/s",
                f"local {local_warm / MB:.0f} MB/s; the S3 object read directly {direct / MB:.0f} MB/s",
                s3_warm / direct,
                "report (vs direct)",
                True,
            )
        )
        results.append(
            Result(
                "S3 storage with a local tier (local_cache_dir): warm download",
                f"{tier_warm / MB:.0f} MB/s",
                f"nginx sendfile {nginx_warm / MB:.0f} MB/s; S3 without the tier {s3_warm / MB:.0f} MB/s",
                tier_warm / nginx_warm,
                "report (vs nginx)",
                True,
            )
        )
        rss_proxy = Hubproxy(
            work,
            "hubproxy-s3-rss",
            hub.url,
            *moto.hubproxy_options("rss"),
            environment=moto.environment,
        )
        try:
            urls = [
                f"{rss_proxy.url}/bench/s3-{number}/resolve/main/model.bin"
                for number in range(1, clients + 1)
            ]
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(curl, urls))
            wait_until_verified(rss_proxy, urls[-1])
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(curl, urls))
            peak = rss_proxy.peak_rss_bytes()
        finally:
            rss_proxy.stop()
        results.append(
            Result(
                f"S3 storage: peak RSS, {clients} clients × {clients} files, cold then warm",
                f"{peak / MB:.0f} MB",
                "budget 300 MB",
                peak / (300 * MB),
                "≤ 1.0",
                peak < 300 * MB,
            )
        )
    finally:
        moto.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1GiB", help="file size (default 1GiB)")
    parser.add_argument(
        "--cdn-rate", default="256MiB", help="per-connection CDN cap for the cold scenario"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="downloads per warm measurement (median)"
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="clients (and files) of the RSS scenario"
    )
    parser.add_argument(
        "--only",
        default="warm,warm8,head,cold,olah,range,rss,s3",
        help="comma-separated scenarios",
    )
    parser.add_argument(
        "--s3-size",
        default="256MiB",
        help="file size of the S3 scenario (moto keeps objects in RAM)",
    )
    parser.add_argument(
        "--s3-clients", type=int, default=4, help="clients (and files) of the S3 RSS measurement"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="scratch space (needs ~(clients+3) × size)"
    )
    arguments = parser.parse_args()
    size = parse_size(arguments.size)
    only = set(arguments.only.split(","))
    work = arguments.work_dir or Path(tempfile.mkdtemp(prefix="hubproxy-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    files = [f"{REPO}:model.bin:{size}:1", f"{REPO}:{SMALL_FILE}:512:2"]
    if "rss" in only:
        files += [
            f"bench/rss-{number}:model.bin:{size}:{100 + number}"
            for number in range(arguments.clients)
        ]
    if "s3" in only:
        s3_size = parse_size(arguments.s3_size)
        files += [
            f"bench/s3-{number}:model.bin:{s3_size}:{200 + number}"
            for number in range(arguments.s3_clients + 1)
        ]
    if "replicas" in only:
        s3_size = parse_size(arguments.s3_size)
        files += [f"bench/replicas-{count}:model.bin:{s3_size}:{300 + count}" for count in (1, 3)]
    hub = FakeHub(work, files)
    results: list[Result] = []
    try:
        if "warm" in only:
            results += scenario_warm(work, hub, size, arguments.repeat)
        if "warm8" in only:
            results += scenario_warm_concurrent(work, hub, size, arguments.repeat, 8)
        if "head" in only:
            results += scenario_head(work, hub, arguments.repeat)
        if "metadata" in only:
            results += scenario_metadata(work, hub)
        if "upload" in only:
            results += scenario_upload(work, hub, size, arguments.repeat)
        if "cold" in only:
            results += scenario_cold(work, hub, size, parse_size(arguments.cdn_rate))
        if "olah" in only:
            results += scenario_olah(work, hub, size, arguments.repeat)
        if "range" in only:
            results += scenario_range(work, hub, size)
        if "rss" in only:
            results += scenario_rss(work, hub, size, arguments.clients)
        if "xet" in only:
            rows = scenario_xet(work, hub.url, size, arguments.repeat)
            results += [Result(**row) for row in rows]
        if "replicas" in only:
            rows = scenario_replicas(
                work,
                hub,
                ["bench/replicas-1", "bench/replicas-3"],
                REPO,
                parse_size(arguments.s3_size),
                arguments.clients,
                arguments.repeat,
            )
            results += [Result(**row) for row in rows]
        if "ui" in only:
            results += [Result(**row) for row in scenario_ui(work, hub.url)]
        if "s3" in only:
            results += scenario_s3(
                work, hub, parse_size(arguments.s3_size), arguments.s3_clients, arguments.repeat
            )
    finally:
        hub.stop()
        if arguments.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nhubproxy benchmarks, {arguments.size} files, {time.strftime('%Y-%m-%d')}\n")
    print("| scenario | hubproxy | baseline | ratio | budget | |")
    print("|---|---|---|---|---|---|")
    for result in results:
        print(
            f"| {result.scenario} | {result.measured} | {result.baseline} | {result.ratio:.2f} | {result.budget} | {'pass' if result.passed else 'FAIL'} |"
        )
    output = ROOT / "benchmarks" / "results"
    output.mkdir(parents=True, exist_ok=True)
    (output / "latest.json").write_text(
        json.dumps([asdict(result) for result in results], indent=2)
    )
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
