"""The Grafana dashboard is valid JSON and asks only for metrics a live hubproxy exports."""

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "hubproxy.json"
METRIC_NAME = re.compile(r"\b((?:hubproxy|process)_[a-z_]+)\b")


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "hubproxy"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


@pytest.mark.clients
def test_every_expression_uses_exported_metrics(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str
) -> None:
    upstream.add_repo(repo_id, {"config.json": b"{}"})
    server = proxy_factory()
    assert httpx.get(f"{server.url}/{repo_id}/resolve/main/config.json").status_code == 200
    # The download's audit record is written in the background: wait for its counter.
    deadline = time.monotonic() + 10
    text = httpx.get(f"{server.url}/metrics").text
    while "hubproxy_audit_records_total{" not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        text = httpx.get(f"{server.url}/metrics").text
    exported: set[str] = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        exported.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            exported.update(f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
        if family.type == "counter":
            exported.add(f"{family.name}_total")
    used = {
        name
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
        for name in METRIC_NAME.findall(target["expr"])
    }
    assert used
    assert used <= exported, f"not exported: {sorted(used - exported)}"
