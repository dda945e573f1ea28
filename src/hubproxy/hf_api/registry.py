"""The model registry of hosted repos: aliases and promotion, protection rules, versions.

- `GET /api/hubproxy/{type}s/{repo}/aliases`: every alias and where it points;
- `GET|PUT|DELETE /api/hubproxy/{type}s/{repo}/aliases/{name}`: an alias' history; promote
  it (`{"target", "expected", "message"}`, 409 when `expected` is stale); remove it;
- `GET|PUT|DELETE /api/hubproxy/{type}s/{repo}/protections` and
  `/api/hubproxy/projects/{project}/protections`: protection rules as data
  (`{"pattern", "minRole", "immutable", "viaPr"}`; DELETE `?pattern=`);
- `GET /api/hubproxy/{type}s/{repo}/registry`: versions (tags and commits) with the card
  metadata at each, the aliases pointing at each and the promotion history.

Lineage (`/lineage`) is `hf_api.lineage`. Authorization comes from the endpoint table; what
protection rules allow is decided in `auth.protections` when a ref moves.
"""

import re
from typing import Any

from starlette.responses import JSONResponse, Response

from hubproxy.auth.protections import invalid_rule
from hubproxy.errors import BadRequest, NotFound
from hubproxy.hf_api.bodies import json_object
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.model_cards import card_at
from hubproxy.hub.discussions import checked_comment
from hubproxy.hub.repos import BRANCH, DEFAULT_BRANCH, TAG
from hubproxy.hub.store import iso_date
from hubproxy.naming import revision
from hubproxy.ref_rules import DEFAULT_MIN_ROLE, ProtectionRule

# The newest commits of `main` the registry view lists besides tagged and aliased ones.
MAX_LISTED_COMMITS = 50
MAX_MESSAGE = 4096
# The commit a promotion expects the alias at: a full or abbreviated (git's 7 on) sha.
EXPECTED_SHA = re.compile(r"[0-9a-f]{7,40}")


def _require_hosted(call: Call) -> None:
    """Registry endpoints are about hosted repos; a proxied repo has no registry here."""
    if not call.hosted:
        raise NotFound("The model registry covers hosted repos: this repo is proxied from upstream")


async def alias_targets(call: Call) -> dict[str, str | None]:
    """Every alias of the (hosted) repo, sorted, and the commit it points at."""
    _require_hosted(call)
    names = await call.hub.registry.aliases(call.repo)
    branches = (await call.hub.repos.refs(call.repo))[BRANCH]
    return {name: branches.get(name) for name in sorted(names)}


async def aliases(call: Call) -> Response:
    targets = await alias_targets(call)
    history = await call.hub.registry.promotions(call.repo)
    answer = []
    for name, commit in targets.items():
        own = [promotion for promotion in history if promotion.alias == name]
        answer.append(
            {
                "name": name,
                "commit": commit,
                "promotions": len(own),
                "lastPromotion": own[-1].document() if own else None,
            }
        )
    return JSONResponse(answer)


async def alias(call: Call) -> Response:
    _require_hosted(call)
    name = call.revision
    if call.request.method == "PUT":
        return await _promote(call, name)
    if call.request.method == "DELETE":
        await call.hub.remove_alias(call.repo, name, call.actor)
        call.record.reason = "alias removed"
        return JSONResponse({"removed": name})
    if name not in await call.hub.registry.aliases(call.repo):
        raise NotFound(f"No alias {name!r} in {call.repo.repo_id}")
    commit = (await call.hub.repos.refs(call.repo))[BRANCH].get(name)
    history = await call.hub.registry.promotions(call.repo, name)
    return JSONResponse(
        {"name": name, "commit": commit, "history": [item.document() for item in history]}
    )


async def _promote(call: Call, name: str) -> Response:
    payload = await json_object(call.request)
    target = payload.get("target")
    if not isinstance(target, str) or not target:
        raise BadRequest("Request body needs a 'target' revision (a tag, branch or commit)")
    target = revision(target)
    check_expected = "expected" in payload
    expected = payload.get("expected")
    if expected is not None and (
        not isinstance(expected, str) or not EXPECTED_SHA.fullmatch(expected)
    ):
        raise BadRequest(
            "'expected' must be the commit the alias is at (7 to 40 hex digits), or null"
            " (a new alias)"
        )
    message = payload.get("message") or ""
    if message:
        message = checked_comment(message, "message")[:MAX_MESSAGE]
    promotion = await call.hub.promote(
        call.repo,
        name,
        target,
        call.actor,
        expected=expected,
        check_expected=check_expected,
        message=message,
    )
    call.record.commit_sha = promotion.to_commit
    call.record.reason = f"{promotion.from_commit or 'new'} -> {promotion.to_commit} ({target})"
    return JSONResponse(promotion.document())


# Protection rules -----------------------------------------------------------------------


def _rule_from(payload: dict[str, Any]) -> ProtectionRule:
    pattern = payload.get("pattern")
    min_role = payload.get("minRole", DEFAULT_MIN_ROLE)
    if not isinstance(pattern, str) or not isinstance(min_role, str):
        raise BadRequest("Request body needs a 'pattern' and, optionally, a 'minRole'")
    problem = invalid_rule(pattern, min_role)
    if problem is not None:
        raise BadRequest(problem)
    flags = {}
    for field in ("immutable", "viaPr"):
        value = payload.get(field, False)
        if not isinstance(value, bool):
            raise BadRequest(f"{field!r} must be true or false")
        flags[field] = value
    return ProtectionRule(pattern, min_role, flags["immutable"], flags["viaPr"])


async def protections(call: Call) -> Response:
    """A repo's rules, and those its project adds (`scope`); changes are to the repo's own."""
    _require_hosted(call)
    return await _protections(call, repo=True)


async def project_protections(call: Call) -> Response:
    project = call.project
    if project is None or project.kind != "hosted":
        raise NotFound("Protection rules are for hosted projects")
    return await _protections(call, repo=False)


async def _protections(call: Call, *, repo: bool) -> Response:
    registry = call.hub.registry
    on_repo = call.repo if repo else None
    on_project = None if repo else call.route.project
    method = call.request.method
    if method == "PUT":
        rule = _rule_from(await json_object(call.request))
        await registry.protect(rule, call.principal.name, repo=on_repo, project=on_project)
        call.record.reason = (
            f"protect {rule.pattern} min_role={rule.min_role}"
            f" immutable={rule.immutable} via_pr={rule.via_pr}"
        )
    elif method == "DELETE":
        pattern = call.request.query_params.get("pattern", "")
        if not await registry.unprotect(pattern, repo=on_repo, project=on_project):
            raise NotFound(f"No protection rule for {pattern!r}")
        call.record.reason = f"unprotect {pattern}"
    if repo:
        rules = await registry.rules(call.repo)
    else:
        assert call.route.project is not None
        rules = await registry.project_rules(call.route.project)
    return JSONResponse([rule.document() for rule in rules])


# The registry view ------------------------------------------------------------------------


async def registry_view(call: Call) -> Response:
    return JSONResponse(await registry_document(call))


async def registry_document(call: Call) -> dict[str, Any]:
    """The registry view (`GET .../registry`, and the web UI's registry page): versions
    newest first: every tagged, aliased or branch-head commit and the newest
    commits of `main`, each with its card metadata and the refs pointing at it."""
    _require_hosted(call)
    repos, ref = call.hub.repos, call.repo
    refs = await repos.refs(ref)
    alias_names = await call.hub.registry.aliases(ref)
    pointing: dict[str, dict[str, list[str]]] = {}
    for kind, key in ((TAG, "tags"), (BRANCH, "branches")):
        for name, commit in refs[kind].items():
            listed = "aliases" if kind == BRANCH and name in alias_names else key
            pointing.setdefault(commit, {}).setdefault(listed, []).append(name)
    history = await repos.history(ref, refs[BRANCH].get(DEFAULT_BRANCH, ""))
    commits = {record.sha: record for record in history[:MAX_LISTED_COMMITS]}
    for sha in pointing:
        if sha not in commits:
            commits[sha] = await repos.commit(ref, sha)
    versions = []
    for record in sorted(commits.values(), key=lambda item: item.created, reverse=True):
        named = pointing.get(record.sha, {})
        versions.append(
            {
                "commit": record.sha,
                "title": record.title,
                "author": record.author,
                "date": iso_date(record.created),
                "tags": named.get("tags", []),
                "branches": named.get("branches", []),
                "aliases": named.get("aliases", []),
                "card": await card_at(call.services.hosted, ref, record.sha),
            }
        )
    promotions = await call.hub.registry.promotions(ref)
    return {
        "id": ref.repo_id,
        "type": ref.repo_type,
        "aliases": {name: refs[BRANCH].get(name) for name in sorted(alias_names)},
        "versions": versions,
        "promotions": [promotion.document() for promotion in promotions],
    }
