"""Xet against Git LFS and plain HTTP for a hosted repo, side by side in one run.

The real client (huggingface_hub with hf_xet) moves the same size of file three ways, each in
a fresh process with a fresh `HF_HOME` (nothing deduplicated or cached on the client side) and
fresh random content (nothing deduplicated on the server):

- upload through Xet (the default client) and through Git LFS basic transfer
  (`HF_HUB_DISABLE_XET=1`);
- download of the Xet-uploaded file through Xet (hf_xet's parallel range requests to the CAS)
  and through plain `/resolve` (`HF_HUB_DISABLE_XET=1`: reconstructed from the xorbs on the
  server), and of the LFS-uploaded file through plain `/resolve` (its chunks); curl of both
  `/resolve` URLs shows the server alone.

Each row has the wall time measured inside the client process, the client's CPU time, and the
server's CPU time and peak RSS during that transfer (`/proc/<pid>/clear_refs` resets the peak).
"""

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.processes import Hubproxy

MB = 1_000_000
PROJECT = "lab"

CLIENT = r"""
import json, sys, time
from huggingface_hub import HfApi, hf_hub_download
action, endpoint, token, repo, path, name = sys.argv[1:7]
start = time.perf_counter()
if action == "upload":
    HfApi(endpoint=endpoint, token=token).upload_file(
        path_or_fileobj=path, path_in_repo=name, repo_id=repo, commit_message="benchmark"
    )
else:
    hf_hub_download(repo, name, endpoint=endpoint, token=token, cache_dir=path)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


@dataclass
class Transfer:
    seconds: float
    client_cpu: float
    server_cpu: float
    server_peak_rss: int


def _random_file(path: Path, size: int, seed: int) -> None:
    generator = np.random.default_rng(seed)
    with open(path, "wb") as output:
        for start in range(0, size, 64 * MB):
            output.write(generator.bytes(min(64 * MB, size - start)))


def _reset_peak_rss(proxy: Hubproxy) -> None:
    Path(f"/proc/{proxy.process.pid}/clear_refs").write_text("5")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measured(proxy: Hubproxy, run: Any) -> Transfer:
    """Run `run()` (returns wall seconds) with the server's CPU and peak RSS measured."""
    proxy.wait_idle()
    _reset_peak_rss(proxy)
    server_before, client_before = proxy.cpu_seconds(), _children_cpu()
    seconds = run()
    client_cpu = _children_cpu() - client_before
    # Work the server finishes after answering (an upload's bookkeeping) belongs to it too.
    proxy.wait_idle()
    return Transfer(
        seconds, client_cpu, proxy.cpu_seconds() - server_before, proxy.peak_rss_bytes()
    )


def _client(
    proxy: Hubproxy, token: str, work: Path, action: str, repo: str, path: Path, *, xet: bool
) -> Transfer:
    home = work / "client-home"
    shutil.rmtree(home, ignore_errors=True)
    environment = {
        **os.environ,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_XET_TELEMETRY_ENABLED": "0",
    }
    environment.pop("HF_HUB_DISABLE_XET", None)
    if not xet:
        environment["HF_HUB_DISABLE_XET"] = "1"

    def run() -> float:
        completed = subprocess.run(
            [sys.executable, "-c", CLIENT, action, proxy.url, token, repo, str(path), "model.bin"],
            env=environment, capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if completed.returncode != 0:
            raise RuntimeError(f"{action} {repo} failed:\n{completed.stderr[-3000:]}")
        seconds: float = json.loads(completed.stdout.strip().splitlines()[-1])["seconds"]
        return seconds

    try:
        return _measured(proxy, run)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if action == "download":
            shutil.rmtree(path, ignore_errors=True)


def _curl(proxy: Hubproxy, token: str, repo: str, size: int) -> Transfer:
    url = f"{proxy.url}/{repo}/resolve/main/model.bin"

    def run() -> float:
        seconds, received = _curl_auth(url, token)
        if received != size:
            raise RuntimeError(f"curl {url}: {received} bytes, not {size}")
        return seconds

    return _measured(proxy, run)


def _curl_auth(url: str, token: str) -> tuple[float, int]:
    completed = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
         "-w", "%{time_total} %{size_download} %{http_code}", url],
        capture_output=True, text=True, check=True, timeout=900,
    )  # fmt: skip
    seconds, size, status = completed.stdout.split()
    if status != "200":
        raise RuntimeError(f"curl {url}: HTTP {status}")
    return float(seconds), int(size)


def _median(transfers: list[Transfer]) -> Transfer:
    middle = sorted(transfers, key=lambda transfer: transfer.seconds)[len(transfers) // 2]
    return Transfer(
        middle.seconds,
        statistics.median(t.client_cpu for t in transfers),
        statistics.median(t.server_cpu for t in transfers),
        max(t.server_peak_rss for t in transfers),
    )


def _describe(transfer: Transfer, size: int) -> str:
    return (
        f"{size / transfer.seconds / MB:.0f} MB/s ({transfer.seconds:.1f} s); server CPU"
        f" {transfer.server_cpu:.1f} s, peak RSS {transfer.server_peak_rss / MB:.0f} MB;"
        f" client CPU {transfer.client_cpu:.1f} s"
    )


def _setup(proxy: Hubproxy) -> str:
    """The hosted project and a maintainer's token (the admin CLI beside the server)."""
    admin = [sys.executable, "-m", "hubproxy", "admin", "--data-dir", str(proxy.data_dir)]
    for command in (
        ["project", "create", PROJECT, "--kind", "hosted"],
        ["user", "create", "bench"],
        ["member", "add", PROJECT, "bench", "--role", "maintainer"],
    ):
        subprocess.run([*admin, *command], check=True, capture_output=True)
    created = subprocess.run(
        [*admin, "token", "create", "bench", "--scope", "write"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    time.sleep(2)  # the server picks account changes up within `accounts_refresh`
    return created.stdout.strip().splitlines()[-1]


def scenario_xet(work: Path, upstream: str, size: int, repeat: int) -> list[dict[str, Any]]:
    """Rows for the report (`run.Result` fields)."""
    proxy = Hubproxy(work, "hubproxy-xet", upstream)
    upload = work / "xet-upload.bin"
    try:
        token = _setup(proxy)
        repos = {"xet": f"{PROJECT}/through-xet", "lfs": f"{PROJECT}/through-lfs"}
        create = [sys.executable, "-c", "import sys; from huggingface_hub import HfApi; "
                  "HfApi(endpoint=sys.argv[1], token=sys.argv[2]).create_repo(sys.argv[3])"]  # fmt: skip
        for repo in repos.values():
            subprocess.run([*create, proxy.url, token, repo], check=True, capture_output=True)
        uploads = {}
        for seed, (kind, repo) in enumerate(repos.items(), start=1):
            _random_file(upload, size, seed)  # new content: nothing deduplicated
            uploads[kind] = _client(proxy, token, work, "upload", repo, upload, xet=kind == "xet")
        upload.unlink()
        target = work / "xet-download"
        downloads = {
            "xet over Xet": _median([
                _client(proxy, token, work, "download", repos["xet"], target, xet=True)
                for _ in range(repeat)
            ]),
            "xet over /resolve": _median([
                _client(proxy, token, work, "download", repos["xet"], target, xet=False)
                for _ in range(repeat)
            ]),
            "lfs over /resolve": _median([
                _client(proxy, token, work, "download", repos["lfs"], target, xet=False)
                for _ in range(repeat)
            ]),
            "xet curl": _median([_curl(proxy, token, repos["xet"], size) for _ in range(repeat)]),
            "lfs curl": _median([_curl(proxy, token, repos["lfs"], size) for _ in range(repeat)]),
        }  # fmt: skip
    finally:
        proxy.stop()
        upload.unlink(missing_ok=True)
        shutil.rmtree(proxy.data_dir, ignore_errors=True)

    def speed(transfer: Transfer) -> float:
        return size / transfer.seconds

    def row(scenario: str, measured: Transfer, baseline: Transfer, label: str) -> dict[str, Any]:
        return {
            "scenario": scenario,
            "measured": _describe(measured, size),
            "baseline": f"{label}: {_describe(baseline, size)}",
            "ratio": speed(measured) / speed(baseline),
            "budget": "report",
            "passed": True,
        }

    return [
        row("hosted upload through Xet (huggingface_hub + hf_xet)", uploads["xet"],
            uploads["lfs"], "Git LFS basic transfer (HF_HUB_DISABLE_XET=1)"),
        row("hosted download of the Xet-uploaded file through Xet", downloads["xet over Xet"],
            downloads["xet over /resolve"], "plain /resolve (HF_HUB_DISABLE_XET=1)"),
        row("hosted download of the Xet-uploaded file, plain /resolve (reconstructed)",
            downloads["xet over /resolve"], downloads["lfs over /resolve"],
            "the LFS-uploaded file, plain /resolve"),
        row("the same two /resolve downloads with curl", downloads["xet curl"],
            downloads["lfs curl"], "LFS-uploaded"),
    ]  # fmt: skip
