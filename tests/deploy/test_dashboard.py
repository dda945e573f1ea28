"""The Grafana dashboard is valid JSON and asks only for metrics a live hubproxy exports.

It must fit a Prometheus shared with other jobs: one `$datasource`, and every query filtered by
the `$job` and `$instance` variables, which list only what exports `hubproxy_build_info`.
"""

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hubproxy.metrics import REGISTRY
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "hubproxy.json"
METRIC_NAME = re.compile(r"\b((?:hubproxy|process)_[a-z_]+)\b")
# A metric name and the label matchers that follow it, if any.
SELECTOR = re.compile(r"\b((?:hubproxy|process)_[a-z_]+)\b(\{[^}]*\})?")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCOPE_MATCHERS = ('job=~"$job"', 'instance=~"$instance"')


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def expressions() -> list[str]:
    return [target["expr"] for panel in load_dashboard()["panels"] for target in panel["targets"]]


def metrics_module_names() -> set[str]:
    """Every series name the registry in `hubproxy.metrics` can export."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "info": ("_info",),
        }.get(family.type, ())
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_dashboard_is_well_formed() -> None:
    dashboard = load_dashboard()
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
    used = {name for expression in expressions() for name in METRIC_NAME.findall(expression)}
    assert used
    assert used <= exported, f"not exported: {sorted(used - exported)}"


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    dashboard = load_dashboard()
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_job_and_instance_variables_list_only_hubproxy_targets() -> None:
    variables = {variable["name"]: variable for variable in load_dashboard()["templating"]["list"]}
    for name in ("job", "instance"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        assert variable["definition"].startswith("label_values(hubproxy_build_info")
        assert variable["definition"].endswith(f", {name})")
        # A match-all value would let "All" pull in every job's process_* series.
        assert variable.get("allValue") in (None, "")
    assert 'job=~"$job"' in variables["instance"]["definition"]


def test_every_query_is_filtered_by_job_and_instance() -> None:
    for expression in expressions():
        selectors = SELECTOR.findall(expression)
        assert selectors, expression
        for name, matchers in selectors:
            for matcher in SCOPE_MATCHERS:
                assert matcher in matchers, f"{name} in {expression!r} lacks {matcher}"


def test_resource_and_download_panels_are_present() -> None:
    used = {name for expression in expressions() for name in METRIC_NAME.findall(expression)}
    assert {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "hubproxy_download_ttfb_seconds_bucket",
        "hubproxy_download_duration_seconds_bucket",
        "hubproxy_request_duration_seconds_bucket",
        "hubproxy_build_info",
    } <= used
    quantiles = [expression for expression in expressions() if "histogram_quantile" in expression]
    for family in ("hubproxy_download_ttfb_seconds", "hubproxy_download_duration_seconds"):
        asked = {
            expression.split(",")[0] for expression in quantiles if f"{family}_bucket" in expression
        }
        assert asked == {"histogram_quantile(0.5", "histogram_quantile(0.95"}, family


def test_every_queried_metric_is_defined_in_the_metrics_module() -> None:
    used = {name for expression in expressions() for name in METRIC_NAME.findall(expression)}
    defined = metrics_module_names()
    assert used <= defined, f"not defined in hubproxy.metrics: {sorted(used - defined)}"
