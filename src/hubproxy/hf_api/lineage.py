"""`GET /api/hubproxy/{type}s/{repo}/lineage`: where a model comes from and what came of it.

- ancestors: through the `base_model` of each card (at `main`), across hosted repos and
  proxied (cached) ones, chains and merges (several base models) alike; a cycle is reported
  in `cycles` and never followed;
- descendants: hosted repos whose card names this repo (then theirs, and so on);
- datasets: those the cards of the repo and its ancestors name.

Every repo on the way is authorized for reading as the caller; one it may not read is listed
as not readable, with nothing of its card.
"""

from typing import Any

from starlette.responses import JSONResponse, Response

from hubproxy.auth.authz import authorize
from hubproxy.auth.roles import READ
from hubproxy.errors import BadRequest, HubError
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.hosted import hosted_repo
from hubproxy.hf_api.model_cards import metadata_at
from hubproxy.hub.cards import strings
from hubproxy.hub.repos import DEFAULT_BRANCH
from hubproxy.naming import RepoRef, canonical_name, repo_ref
from hubproxy.stores import RepoStore

MAX_DEPTH = 16
MAX_NODES = 200


class _Walk:
    """One lineage request: the cards read so far (each repo once), by canonical id."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.cards: dict[str, dict[str, Any] | None] = {}
        self.nodes: dict[str, dict[str, Any]] = {}

    async def read(self, repo_id: str) -> dict[str, Any] | None:
        """The node of `repo_id` (in `nodes`) and its card metadata (None: none readable)."""
        key = canonical_name(repo_id)
        if key in self.cards:
            return self.cards[key]
        node: dict[str, Any] = {"id": repo_id}
        metadata: dict[str, Any] | None = None
        try:
            store, ref, hosted = await self._locate(repo_ref("model", repo_id))
        except BadRequest:
            node["error"] = "not a valid repo id"
        else:
            node["hosted"] = hosted
            if store is None:
                node["readable"] = False
            else:
                node["id"], node["readable"] = ref.repo_id, True
                try:
                    metadata = await metadata_at(store, ref, DEFAULT_BRANCH)
                except HubError as error:
                    node["error"] = error.message
        if metadata is not None:
            node["baseModels"] = strings(metadata.get("base_model"))
            node["relation"] = metadata.get("base_model_relation")
            node["datasets"] = strings(metadata.get("datasets"))
            node["license"] = metadata.get("license")
        self.cards[key], self.nodes[key] = metadata, node
        return metadata

    async def _locate(self, ref: RepoRef) -> tuple[RepoStore | None, RepoRef, bool]:
        """Where `ref`'s card is read from, as the caller may: (None, ...) when it may not."""
        call = self.call
        hosted_ref, visibility = await hosted_repo(call, ref)
        decision = authorize(
            call.principal,
            READ,
            (hosted_ref or ref).repo_id,
            call.snapshot,
            require_auth=call.settings.require_auth,
            repo=visibility,
        )
        project = decision.project
        if not decision.allowed:
            return None, ref, hosted_ref is not None
        if project is not None and project.kind == "hosted" and hosted_ref is not None:
            return call.services.hosted, hosted_ref, True
        if project is not None and project.upstream:
            ref = RepoRef(ref.repo_type, f"{project.upstream}/{ref.repo_id.split('/')[-1]}")
        return call.services.proxied, ref.canonical, False


async def lineage(call: Call) -> Response:
    return JSONResponse(await lineage_document(call))


async def lineage_document(call: Call) -> dict[str, Any]:
    """The lineage of the call's repo (`GET .../lineage`, and the web UI's registry page)."""
    walk = _Walk(call)
    root = call.repo.repo_id
    cycles: list[list[str]] = []
    edges: list[dict[str, str]] = []
    truncated = False

    async def visit(repo_id: str, path: list[str]) -> None:
        nonlocal truncated
        metadata = await walk.read(repo_id)
        for parent in strings((metadata or {}).get("base_model")):
            edges.append({"from": repo_id, "to": parent})
            if canonical_name(parent) in (canonical_name(item) for item in path):
                cycles.append([*path, parent])
                continue
            if canonical_name(parent) in walk.nodes:
                continue  # a merge: reached through another base model already
            if len(path) > MAX_DEPTH or len(walk.nodes) >= MAX_NODES:
                truncated = True
                continue
            await visit(parent, [*path, parent])

    await visit(root, [root])
    own = walk.nodes.pop(canonical_name(root))
    depths = _depths(root, edges)
    ancestors = [{**node, "depth": depths.get(key, 0)} for key, node in walk.nodes.items()]
    datasets = sorted({name for node in [own, *ancestors] for name in node.get("datasets", [])})
    return {
        "id": own["id"],
        "baseModels": own.get("baseModels", []),
        "ancestors": ancestors,
        "edges": edges,
        "cycles": cycles,
        "descendants": await _descendants(call, root),
        "datasets": datasets,
        "truncated": truncated,
    }


def _depths(root: str, edges: list[dict[str, str]]) -> dict[str, int]:
    """How many `base_model` steps each ancestor is from the root (the shortest way)."""
    depths = {canonical_name(root): 0}
    frontier = [canonical_name(root)]
    while frontier:
        following = []
        for edge in edges:
            source, target = canonical_name(edge["from"]), canonical_name(edge["to"])
            if source in frontier and target not in depths:
                depths[target] = depths[source] + 1
                following.append(target)
        frontier = following
    return depths


async def _descendants(call: Call, root: str) -> list[dict[str, Any]]:
    """Hosted models the caller may read whose cards name `root` as a base model, then
    theirs (`depth` 1 for the direct ones)."""
    walk = _Walk(call)
    children: dict[str, list[str]] = {}
    for record in await call.hub.repos.list_repos():
        if record.ref.repo_type != "model" or record.ref.repo_id == root:
            continue
        metadata = await walk.read(record.ref.repo_id)
        for parent in strings((metadata or {}).get("base_model")):
            children.setdefault(canonical_name(parent), []).append(record.ref.repo_id)
    found: list[dict[str, Any]] = []
    seen = {canonical_name(root)}
    frontier, depth = [root], 1
    while frontier and depth <= MAX_DEPTH:
        following = []
        for parent in frontier:
            for child in children.get(canonical_name(parent), []):
                if canonical_name(child) in seen:
                    continue
                seen.add(canonical_name(child))
                node = walk.nodes[canonical_name(child)]
                found.append({"id": child, "parent": parent, "depth": depth,
                              "relation": node.get("relation")})  # fmt: skip
                following.append(child)
        frontier, depth = following, depth + 1
    return found
