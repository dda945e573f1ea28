"""The web UI's budgets (issue 19): p95 under 200 ms and pages under 300 KB for the tree page of
a 10,000-file hosted repo and the audit page over 1,000,000 audit records.

    .venv/bin/python -m benchmarks.run --only ui

The data dir is seeded before the server starts: accounts (`tests/support/accounts.py`), a
million audit records written straight into the audit file (the server's own `write_records`),
then a hosted repo committed to over the API with 10,000 small files in one folder. Each page
is fetched sequentially by one signed-in client (a session cookie from the login form), after
a warm-up, and its latencies are measured client-side.
"""

import base64
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.processes import Hubproxy
from hubproxy.auth.audit import AuditRecord, open_audit_database, write_records
from hubproxy.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.accounts import Accounts

FILES = 10_000
AUDIT_RECORDS = 1_000_000
BUDGET_MS = 200.0
BUDGET_BYTES = 300_000
REQUESTS = 100
WARM_UP = 5
ACTIONS = ("download", "read", "commit", "upload", "login", "member_add")


def _seed_audit(path: Path, count: int) -> None:
    chooser = random.Random(19)
    connection = open_audit_database(path)
    start = time.time() - 86400 * 30
    try:
        batch: list[AuditRecord] = []
        for number in range(count):
            denied = chooser.random() < 0.05
            batch.append(
                AuditRecord(
                    chooser.choice(ACTIONS),
                    decision="deny" if denied else "allow",
                    time=start + number * 2.5,
                    actor_kind="user",
                    actor_name=f"user{chooser.randrange(50)}",
                    repo_type="model",
                    repo_id=f"lab/repo-{chooser.randrange(100)}",
                    path="model.safetensors",
                    method="GET",
                    route="resolve",
                    status=403 if denied else 200,
                    bytes_sent=0 if denied else 4096,
                )
            )
            if len(batch) == 10_000:
                write_records(connection, batch)
                batch = []
        if batch:
            write_records(connection, batch)
    finally:
        connection.close()


def _commit_big_repo(url: str, token: str, repo: str, files: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        created = client.post(
            "/api/repos/create",
            json={"name": repo.split("/")[1], "organization": repo.split("/")[0]},
        )
        created.raise_for_status()
        lines = [{"key": "header", "value": {"summary": f"{files} files", "description": ""}}]
        for number in range(files):
            content = base64.b64encode(f"file {number}\n".encode()).decode()
            lines.append(
                {
                    "key": "file",
                    "value": {
                        "path": f"shard-{number:05}.txt",
                        "content": content,
                        "encoding": "base64",
                    },
                }
            )
        body = "\n".join(json.dumps(line) for line in lines).encode()
        answer = client.post(
            f"/api/models/{repo}/commit/main",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        answer.raise_for_status()


def _signed_in(url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    form = client.get("/login").text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', form)
    assert found is not None
    answer = client.post("/login", data={"token": token, "csrf": found.group(1)})
    assert answer.status_code == 303, answer.text
    return client


def _measure(client: httpx.Client, path: str) -> dict[str, Any]:
    for _ in range(WARM_UP):
        client.get(path).raise_for_status()
    latencies, size = [], 0
    for _ in range(REQUESTS):
        start = time.perf_counter()
        answer = client.get(path)
        latencies.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
        size = max(size, len(answer.content))
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p95": latencies[int(len(latencies) * 0.95) - 1],
        "bytes": size,
    }


def scenario_ui(work: Path, upstream: str) -> list[dict[str, Any]]:
    """Rows for the report (`run.Result` fields)."""
    data_dir = work / "hubproxy-ui"
    tokens = (
        Accounts()
        .user("root", admin=True)
        .project("lab", "hosted")
        .user("bench")
        .member("lab", "bench", "maintainer")
        .token("root", "root", "admin")
        .token("bench", "bench", "write")
        .create(data_dir)
    )
    seeding = time.perf_counter()
    _seed_audit(Settings(data_dir=data_dir).audit_path, AUDIT_RECORDS)
    print(
        f"ui: {AUDIT_RECORDS} audit records in {time.perf_counter() - seeding:.0f} s",
        file=sys.stderr,
    )
    proxy = Hubproxy(work, "hubproxy-ui", upstream, keep_data_dir=True)
    rows: list[dict[str, Any]] = []
    try:
        seeding = time.perf_counter()
        _commit_big_repo(proxy.url, tokens["bench"], "lab/big", FILES)
        print(f"ui: {FILES}-file commit in {time.perf_counter() - seeding:.0f} s", file=sys.stderr)
        pages = {
            "ui tree, 10,000 files (first page)": (tokens["bench"], "/lab/big/tree/main"),
            "ui tree, 10,000 files (page 26)": (tokens["bench"], "/lab/big/tree/main?cursor=5000"),
            "ui audit, 1M records": (tokens["root"], "/admin/audit"),
            "ui audit, 1M records, user filter": (tokens["root"], "/admin/audit?user=user7"),
            "ui audit, 1M records, action+deny": (
                tokens["root"],
                "/admin/audit?action=commit&decision=deny",
            ),
        }
        clients: dict[str, httpx.Client] = {}
        for name, (token, path) in pages.items():
            client = clients.get(token) or clients.setdefault(token, _signed_in(proxy.url, token))
            figures = _measure(client, path)
            passed = figures["p95"] < BUDGET_MS and figures["bytes"] < BUDGET_BYTES
            rows.append(
                {
                    "scenario": name,
                    "measured": f"p95 {figures['p95']:.0f} ms (p50 {figures['p50']:.0f}), {figures['bytes'] / 1000:.0f} kB",
                    "baseline": f"< {BUDGET_MS:.0f} ms, < {BUDGET_BYTES / 1000:.0f} kB",
                    "ratio": figures["p95"] / BUDGET_MS,
                    "budget": "p95 ≤ 1.00 × 200 ms",
                    "passed": passed,
                }
            )
        for client in clients.values():
            client.close()
    finally:
        proxy.stop()
    return rows
