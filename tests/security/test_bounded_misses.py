"""Misses cost bounded work: random query values and random missing paths must not each become
an upstream request and a database row that stays forever."""

import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from hubproxy.cache.metadata import MAX_RECORDED_ABSENCES
from tests.fake_upstream import FakeHub
from tests.support.proxy import ProxyProcess


def _count(data_dir: Path, sql: str) -> int:
    with sqlite3.connect(data_dir / "hubproxy.sqlite3") as connection:
        return int(connection.execute(sql).fetchone()[0])


def _hub_requests(upstream: FakeHub, marker: str) -> int:
    return sum(1 for record in upstream.requests if marker in record.path)


def test_random_expand_values_are_neither_forwarded_nor_cache_keys(
    proxy: ProxyProcess, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"config.json": b"{}"})
    url = f"{proxy.url}/api/models/{repo_id}"
    assert httpx.get(url, params={"expand": "sha"}).status_code == 200
    documents = _count(proxy.data_dir, "SELECT COUNT(*) FROM documents")
    before = _hub_requests(upstream, f"/api/models/{repo_id}")
    for number in range(100):
        answer = httpx.get(url, params=[("expand", "sha"), ("expand", f"junk{number}")])
        assert answer.status_code == 200, answer.text
        # The same document as the plain `expand=sha`: the junk was not part of the question.
        assert answer.json()["sha"]
    # 100 distinct queries, one question: nothing more asked upstream, nothing more stored.
    assert _hub_requests(upstream, f"/api/models/{repo_id}/revision/") <= before
    assert _count(proxy.data_dir, "SELECT COUNT(*) FROM documents") == documents
    forwarded = [record.query for record in upstream.requests if "junk" in record.query]
    assert not forwarded


def test_random_missing_paths_leave_a_bounded_trace(
    proxy: ProxyProcess, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"config.json": b"{}"})
    base = f"{proxy.url}/{repo_id}/resolve/main"
    probes = [f"missing-{uuid.uuid4().hex}.bin" for _ in range(MAX_RECORDED_ABSENCES + 200)]
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda path: client.head(f"{base}/{path}").status_code, probes))
        assert set(statuses) == {404}
        recorded = _count(
            proxy.data_dir,
            f"SELECT COUNT(*) FROM entries WHERE NOT present AND repo_id = '{repo_id}'",
        )
        # Capped in the database; the rest are known from memory only.
        assert recorded <= MAX_RECORDED_ABSENCES
        upstream.reset_stats()
        again = list(pool.map(lambda path: client.head(f"{base}/{path}").status_code, probes))
    assert set(again) == {404}
    # Every absence is remembered: asking again costs upstream nothing.
    assert _hub_requests(upstream, "missing-") == 0
    # Missing folders of a listing are remembered in memory, never stored.
    tree = f"{proxy.url}/api/models/{repo_id}/tree/main"
    documents = _count(proxy.data_dir, "SELECT COUNT(*) FROM documents WHERE body = 'null'")
    for number in range(50):
        assert httpx.get(f"{tree}/absent-{number}").status_code == 404
    assert _count(proxy.data_dir, "SELECT COUNT(*) FROM documents WHERE body = 'null'") == documents
