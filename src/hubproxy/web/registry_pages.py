"""The model registry page of a hosted repo (`/{repo}/registry`): its aliases with their
promotion history, its versions with card metadata, and its lineage.

Everything comes from the functions behind the API's `GET .../registry` and `GET .../lineage`
(`hf_api.registry.registry_document`, `hf_api.lineage.lineage_document`), so the page shows
exactly what the API answers, authorized by the same `read` check (the page table). A proxied
repo has no registry: the page is a 404, as the API's answer is.
"""

from typing import Any

from starlette.responses import Response

from hubproxy.constants import PLURAL_BY_REPO_TYPE
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.lineage import lineage_document
from hubproxy.hf_api.registry import registry_document
from hubproxy.naming import RepoRef
from hubproxy.web.render import page, repo_url

# A version row shows at most this many metrics of its card's model-index.
KEY_METRICS = 4


def _alias_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each alias, the commit it points at and its promotions, newest first."""
    promotions = document["promotions"]
    return [
        {
            "name": name,
            "commit": commit,
            "history": [item for item in reversed(promotions) if item["alias"] == name],
        }
        for name, commit in document["aliases"].items()
    ]


def _metric_text(metric: dict[str, Any]) -> str:
    """`name: value` (on `dataset`) of one model-index result."""
    text = f"{metric.get('name') or metric.get('type') or 'metric'}: {metric.get('value')}"
    return f"{text} ({metric['dataset']})" if metric.get("dataset") else text


def _version_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """What the versions table shows of each version: refs, license and key metrics."""
    rows = []
    for version in document["versions"]:
        card = version.get("card") or {}
        metrics = card.get("metrics", [])
        rows.append(
            {
                **version,
                "license": card.get("license") or "",
                "metrics": [_metric_text(metric) for metric in metrics[:KEY_METRICS]],
                "more_metrics": max(len(metrics) - KEY_METRICS, 0),
            }
        )
    return rows


def _model_link(node: dict[str, Any]) -> str | None:
    """The page of a lineage node the viewer may read, or None."""
    if not node.get("readable") or node.get("error") == "not a valid repo id":
        return None
    return repo_url(RepoRef("model", str(node["id"])))


async def registry(call: Call) -> Response:
    """Aliases and their history, versions, and lineage (ancestors, descendants, datasets)."""
    ref = call.repo
    document = await registry_document(call)
    lineage = await lineage_document(call)
    ancestors = [{**node, "href": _model_link(node)} for node in lineage["ancestors"]]
    descendants = [
        {**node, "href": repo_url(RepoRef("model", str(node["id"])))}
        for node in lineage["descendants"]
    ]
    return page(
        call,
        "registry.html",
        ref=ref,
        hosted=True,
        plural=PLURAL_BY_REPO_TYPE[ref.repo_type],
        title=f"{ref.repo_id}: registry",
        aliases=_alias_rows(document),
        versions=_version_rows(document),
        lineage=lineage,
        ancestors=sorted(ancestors, key=lambda node: node.get("depth", 0)),
        descendants=descendants,
    )
