"""`GET /metrics`: parseable, bounded labels, and counters that move by exactly what was sent."""

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub, GeneratedFile

WEIGHTS = GeneratedFile(1_000_000, seed=41)  # four 256 KiB chunks
DOWNLOADS = {"action": "download", "decision": "allow"}
pytestmark = pytest.mark.storage_independent


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_follow_a_scripted_workload(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"model.safetensors": WEIGHTS, "config.json": b"{}"})
    server = proxy_factory()
    before = scrape(server.url)
    url = f"{server.url}/{repo_id}/resolve/main/model.safetensors"
    assert len(httpx.get(url).content) == WEIGHTS.size  # cold
    deadline = time.monotonic() + 30
    while httpx.head(url).headers["x-hubproxy-cache"] != "hit":  # last chunks still committing
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert len(httpx.get(url).content) == WEIGHTS.size  # warm
    assert httpx.get(url, headers={"Range": "bytes=0-99"}).status_code == 206
    assert httpx.head(f"{server.url}/{repo_id}/resolve/main/missing.txt").status_code == 404
    after = scrape(server.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Which reader got which chunk from a fill or from storage depends on timing; the totals don't.
    served = delta("hubproxy_served_bytes_total", source="upstream") + delta(
        "hubproxy_served_bytes_total", source="cache"
    )
    assert served == 2 * WEIGHTS.size + 100
    assert delta("hubproxy_served_bytes_total", source="cache") >= WEIGHTS.size + 100  # warm reads
    assert delta("hubproxy_upstream_bytes_total") == WEIGHTS.size == upstream.file_bytes_served()
    reads = {
        result: delta("hubproxy_chunk_reads_total", result=result)
        for result in ("hit", "miss", "joined")
    }
    assert sum(reads.values()) == 9  # four chunks cold, four warm, one for the range
    assert reads["hit"] >= 5
    assert delta("hubproxy_fills_total", outcome="ok") == 4
    assert delta("hubproxy_requests_total", route="resolve", method="GET", status="200") == 2
    assert delta("hubproxy_requests_total", route="resolve", method="GET", status="206") == 1
    assert delta("hubproxy_requests_total", route="resolve", method="HEAD", status="404") == 1
    assert value(after, "hubproxy_fills_in_flight") == 0
    assert value(after, "hubproxy_cache_stored_bytes") == WEIGHTS.size
    assert ("hubproxy_cache_pinned_bytes", ()) in after
    assert ("hubproxy_cache_blobs", ()) in after
    # Downloads are timed in their own histograms, by cache outcome: one cold (miss), one warm
    # and one range of stored chunks (hits). Counts, never durations: timing is not asserted.
    assert delta("hubproxy_request_duration_seconds_count", route="resolve", method="GET") == 0
    assert delta("hubproxy_request_duration_seconds_count", route="resolve", method="HEAD") >= 2
    for family in ("hubproxy_download_duration_seconds", "hubproxy_download_ttfb_seconds"):
        assert delta(f"{family}_count", cache="miss") == 1
        assert delta(f"{family}_count", cache="hit") == 2
        assert delta(f"{family}_count", cache="partial") == 0
        assert delta(f"{family}_bucket", cache="hit", le="+Inf") == 2
    assert (
        "hubproxy_download_duration_seconds_bucket",
        (("cache", "miss"), ("le", "14400.0")),
    ) in (after)
    # Three GETs are three download audit records (HEADs are not downloads), written shortly.
    deadline = time.monotonic() + 10
    while value(scrape(server.url), "hubproxy_audit_records_total", **DOWNLOADS) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    audited = scrape(server.url)
    assert value(audited, "hubproxy_audit_records_total", **DOWNLOADS) == 3
    assert value(audited, "hubproxy_audit_queue_depth") == 0
    assert value(audited, "hubproxy_audit_write_seconds_count") >= 1
    # Bounded labels: no repo name or path anywhere in the exposition.
    exposition = httpx.get(f"{server.url}/metrics").text
    assert repo_id.split("/")[1] not in exposition
    assert "model.safetensors" not in exposition


def test_stale_answers_and_upstream_errors_are_counted(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"config.json": b"{}"})
    server = proxy_factory("--revision-ttl", "0")
    url = f"{server.url}/{repo_id}/resolve/main/config.json"
    assert httpx.get(url).status_code == 200
    before = scrape(server.url)
    upstream.down = True
    assert httpx.get(url).headers["x-hubproxy-stale"] == "true"
    after = scrape(server.url)
    assert (
        value(after, "hubproxy_stale_answers_total") - value(before, "hubproxy_stale_answers_total")
        == 1
    )
    unavailable = value(after, "hubproxy_upstream_errors_total", kind="unavailable")
    assert unavailable - value(before, "hubproxy_upstream_errors_total", kind="unavailable") == 1


def test_json_logs_have_one_access_record_per_request(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    import json

    upstream.add_repo(repo_id, {"model.safetensors": WEIGHTS})
    server = proxy_factory("--log-format", "json")
    response = httpx.get(
        f"{server.url}/{repo_id}/resolve/main/model.safetensors", headers={"Range": "bytes=0-999"}
    )
    assert response.status_code == 206
    server.stop()
    records = [
        json.loads(line) for line in server.log().splitlines() if line.strip()
    ]  # every line is JSON
    access = [
        record
        for record in records
        if record["logger"] == "hubproxy.access" and record.get("route") == "resolve"
    ]
    assert len(access) == 1
    record = access[0]
    assert record["request_id"] == response.headers["x-request-id"]
    assert (record["status"], record["bytes"], record["cache"]) == (206, 1000, "miss")
    assert record["principal"] == "anonymous"
    assert record["duration_ms"] >= 0


def test_build_info_names_the_installed_version(proxy_factory: ProxyFactory) -> None:
    import importlib.metadata

    server = proxy_factory()
    samples = scrape(server.url)
    version = importlib.metadata.version("hubproxy")
    assert value(samples, "hubproxy_build_info", version=version) == 1
    assert [key for key in samples if key[0] == "hubproxy_build_info"] == [
        ("hubproxy_build_info", (("version", version),))
    ]
