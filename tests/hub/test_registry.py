"""The model registry on hosted repos: protection rules, aliases moved by promotion, versions
with their card metadata, lineage and search, driven with the real huggingface_hub client
against the session's private hub (`tests/hub/conftest.py`)."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from tests.governance.conftest import admin
from tests.hub.conftest import Hub, unique_repo_id
from tests.support.cli import run_cli
from tests.support.webhooks import Receiver

CARD = """---
license: apache-2.0
base_model: {base}
datasets:
- team/reviews
tags:
- sentiment
model-index:
- name: sentiment
  results:
  - task:
      type: text-classification
    dataset:
      name: reviews
      type: team/reviews
    metrics:
    - type: accuracy
      value: {accuracy}
---
# Sentiment
"""


WEBHOOK_SECRET = "pipeline-secret"


def card(accuracy: float, base: str = "team/base") -> bytes:
    return CARD.format(accuracy=accuracy, base=base).encode()


def registry_url(hub: Hub, repo_id: str, *rest: str) -> str:
    return "/".join((hub.url, "api/hubproxy/models", repo_id, *rest))


def call(
    hub: Hub, principal: str, method: str, repo_id: str, *rest: str, **kwargs: Any
) -> httpx.Response:
    return httpx.request(
        method, registry_url(hub, repo_id, *rest), headers=hub.headers(principal), **kwargs
    )


def promote(hub: Hub, principal: str, repo_id: str, target: str, **body: Any) -> httpx.Response:
    payload = {"target": target, "message": f"promote {target}", **body}
    return call(hub, principal, "PUT", repo_id, "aliases", "champion", json=payload)


def protect(hub: Hub, repo_id: str, **rule: Any) -> None:
    answer = call(hub, "admin", "PUT", repo_id, "protections", json=rule)
    assert answer.status_code == 200, answer.text


def served_config(hub: Hub, repo_id: str, cache: Path) -> dict[str, Any]:
    """What a serving process loads with `revision="champion"`."""
    path = hf_hub_download(
        repo_id,
        "config.json",
        revision="champion",
        endpoint=hub.url,
        token=hub.tokens["viewer"],
        cache_dir=cache,
    )
    loaded: dict[str, Any] = json.loads(Path(path).read_text())
    return loaded


def audit_records(hub: Hub, repo_id: str) -> list[dict[str, Any]]:
    completed = admin(hub.data_dir, "audit", "--json", "--repo", repo_id)
    records: list[dict[str, Any]] = json.loads(completed.stdout)
    return records


def champion_moves(receiver: Receiver, until: str) -> list[tuple[str | None, str | None]]:
    """The moves of `refs/heads/champion` the webhook reported, up to the one to `until`; every
    delivery carries the secret."""
    moves: list[tuple[str | None, str | None]] = []
    while not moves or moves[-1][1] != until:
        got = receiver.until("repo.content", "update")
        assert got.headers["x-webhook-secret"] == WEBHOOK_SECRET
        for updated in got.payload["updatedRefs"]:
            if updated["ref"] == "refs/heads/champion":
                moves.append((updated["oldSha"], updated["newSha"]))
    return moves


def test_a_teams_week_tag_promote_serve_review_merge_promote(
    hub: Hub, receiver: Receiver, tmp_path: Path
) -> None:
    developer, maintainer = hub.api("developer"), hub.api("maintainer")
    repo_id = hub.new_repo("registry-week")
    # The deployment pipeline listens to the repo's ref moves.
    maintainer.create_webhook(
        url=receiver.url,
        watched=[{"type": "model", "name": repo_id}],
        domains=["repo"],
        secret=WEBHOOK_SECRET,
    )
    protect(hub, repo_id, pattern="v*", immutable=True, minRole="maintainer")
    protect(hub, repo_id, pattern="champion", minRole="maintainer")

    # Monday: v1 is uploaded, tagged (immutable), promoted to champion and served.
    developer.create_commit(
        repo_id,
        [
            CommitOperationAdd("config.json", b'{"model_type": "bert", "version": 1}'),
            CommitOperationAdd("README.md", card(0.81)),
        ],
        commit_message="v1",
    )
    v1 = hub.head(repo_id)
    maintainer.create_tag(repo_id, tag="v1")
    with pytest.raises(HfHubHTTPError) as moved:
        maintainer.delete_tag(repo_id, tag="v1")
    assert moved.value.response.status_code == 403
    assert moved.value.response.headers["x-error-code"] == "RefProtected"
    created = promote(hub, "maintainer", repo_id, "v1", expected=None)
    assert created.status_code == 200, created.text
    assert created.json()["from"] is None
    assert created.json()["to"] == v1
    assert served_config(hub, repo_id, tmp_path / "serving")["version"] == 1

    # From now on main changes only by a reviewed pull request.
    protect(hub, repo_id, pattern="main", viaPr=True)
    with pytest.raises(HfHubHTTPError) as direct:
        developer.upload_file(path_or_fileobj=b"x", path_in_repo="direct.txt", repo_id=repo_id)
    assert direct.value.response.status_code == 403
    assert "pull request" in direct.value.response.headers["x-error-message"]
    # The alias is no branch to push to.
    with pytest.raises(HfHubHTTPError) as pushed:
        maintainer.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, revision="champion"
        )
    assert pushed.value.response.status_code == 403
    assert "only by promotion" in pushed.value.response.headers["x-error-message"]

    # Wednesday: v2 in a pull request, merged by a maintainer (a developer may not).
    pull_request = developer.create_commit(
        repo_id,
        [
            CommitOperationAdd("config.json", b'{"model_type": "bert", "version": 2}'),
            CommitOperationAdd("README.md", card(0.87)),
        ],
        commit_message="v2",
        create_pr=True,
    )
    assert pull_request.pr_num is not None
    with pytest.raises(HfHubHTTPError, match="403"):
        developer.merge_pull_request(repo_id, pull_request.pr_num)
    maintainer.merge_pull_request(repo_id, pull_request.pr_num)
    v2 = hub.head(repo_id)
    assert served_config(hub, repo_id, tmp_path / "serving")["version"] == 1

    # A developer may not move champion (refused and audited); a stale expectation is a 409.
    refused = promote(hub, "developer", repo_id, v2, expected=v1)
    assert refused.status_code == 403
    stale = promote(hub, "maintainer", repo_id, v2, expected=v2)
    assert stale.status_code == 409
    moved_on = promote(hub, "maintainer", repo_id, v2, expected=v1[:12])
    assert moved_on.status_code == 200, moved_on.text
    assert served_config(hub, repo_id, tmp_path / "serving")["version"] == 2
    # The pipeline heard of both promotions, in order, with the secret.
    assert champion_moves(receiver, v2) == [(None, v1), (v1, v2)]

    history = call(hub, "viewer", "GET", repo_id, "aliases", "champion").json()
    assert [(item["from"], item["to"], item["by"]) for item in history["history"]] == [
        (None, v1, "maintainer"),
        (v1, v2, "maintainer"),
    ]
    assert history["commit"] == v2
    denials = [
        record
        for record in audit_records(hub, repo_id)
        if record["decision"] == "deny" and record["action"] == "alias_promote"
    ]
    assert [(record["actor_name"], record["status"]) for record in denials] == [("developer", 403)]

    view = call(hub, "viewer", "GET", repo_id, "registry").json()
    by_commit = {version["commit"]: version for version in view["versions"]}
    assert by_commit[v1]["tags"] == ["v1"]
    assert by_commit[v1]["card"]["metrics"][0]["value"] == 0.81
    assert by_commit[v2]["aliases"] == ["champion"]
    assert by_commit[v2]["card"]["metrics"][0]["value"] == 0.87
    assert by_commit[v2]["card"]["baseModel"] == ["team/base"]
    assert view["aliases"] == {"champion": v2}
    assert len(view["promotions"]) == 2


def test_aliases_are_refused_where_a_branch_or_tag_has_the_name(hub: Hub) -> None:
    repo_id = hub.new_repo("registry-names")
    hub.api("maintainer").create_branch(repo_id, branch="champion")
    taken = promote(hub, "maintainer", repo_id, "main")
    assert taken.status_code == 409
    assert "not an alias" in taken.headers["x-error-message"]
    missing = promote(hub, "maintainer", repo_id, "no-such-revision")
    assert missing.status_code == 404
    bad = call(hub, "maintainer", "PUT", repo_id, "aliases", "champion", json={"target": 3})
    assert bad.status_code == 400
    assert promote(hub, "maintainer", repo_id, "main", expected=None).status_code == 409
    # An alias of its own: deleted as an alias, never as a plain branch.
    made = call(hub, "maintainer", "PUT", repo_id, "aliases", "staging", json={"target": "main"})
    assert made.status_code == 200, made.text
    with pytest.raises(HfHubHTTPError) as deleted:
        hub.api("maintainer").delete_branch(repo_id, branch="staging")
    assert deleted.value.response.headers["x-error-code"] == "RefProtected"
    removed = call(hub, "maintainer", "DELETE", repo_id, "aliases", "staging")
    assert removed.status_code == 200
    branches = hub.api("viewer").list_repo_refs(repo_id).branches
    assert sorted(branch.name for branch in branches) == ["champion", "main"]
    assert call(hub, "viewer", "GET", repo_id, "aliases").json() == []


def test_project_rules_apply_to_every_repo_and_need_an_admin(hub: Hub) -> None:
    url = f"{hub.url}/api/hubproxy/projects/team/protections"
    rule = {"pattern": "release-*", "minRole": "admin"}
    refused = httpx.put(url, json=rule, headers=hub.headers("developer"))
    assert refused.status_code == 403
    set_rule = httpx.put(url, json=rule, headers=hub.headers("admin"))
    assert set_rule.status_code == 200, set_rule.text
    try:
        repo_id = unique_repo_id("team", "registry-project")
        hub.api("developer").create_repo(repo_id)
        with pytest.raises(HfHubHTTPError) as created:
            hub.api("developer").create_branch(repo_id, branch="release-1")
        assert created.value.response.headers["x-error-code"] == "RefProtected"
        rules = call(hub, "developer", "GET", repo_id, "protections").json()
        assert rules == [{**rule, "immutable": False, "viaPr": False, "scope": "project"}]
    finally:
        removed = httpx.delete(url, params={"pattern": "release-*"}, headers=hub.headers("admin"))
        assert removed.status_code == 200


def test_lineage_follows_base_models_and_refuses_cycles(hub: Hub) -> None:
    developer = hub.api("developer")
    base, middle, leaf = (unique_repo_id("team", name) for name in ("base", "middle", "leaf"))
    other = unique_repo_id("team", "other")
    cards = {
        base: "---\ndatasets: [team/raw]\n---\n",
        other: "---\ndatasets: [team/extra]\n---\n",
        middle: f"---\nbase_model: [{base}, {other}]\nbase_model_relation: merge\n---\n",
        leaf: f"---\nbase_model: {middle}\nbase_model_relation: finetune\n---\n",
    }
    for repo_id, text in cards.items():
        developer.create_repo(repo_id)
        developer.upload_file(path_or_fileobj=text.encode(), path_in_repo="README.md",
                              repo_id=repo_id)  # fmt: skip
    # A card leading back to its own repo is refused when committed.
    with pytest.raises(HfHubHTTPError) as cycle:
        developer.upload_file(path_or_fileobj=f"---\nbase_model: {leaf}\n---\n".encode(),
                              path_in_repo="README.md", repo_id=base)  # fmt: skip
    assert cycle.value.response.status_code == 400
    assert f"{base} -> {leaf} -> {middle} -> {base}" in cycle.value.response.text

    lineage = call(hub, "viewer", "GET", leaf, "lineage").json()
    depths = {node["id"]: node["depth"] for node in lineage["ancestors"]}
    assert depths == {middle: 1, base: 2, other: 2}
    assert lineage["cycles"] == []
    assert lineage["datasets"] == ["team/extra", "team/raw"]
    below = call(hub, "viewer", "GET", base, "lineage").json()["descendants"]
    assert [(item["id"], item["depth"]) for item in below] == [(middle, 1), (leaf, 2)]
    # A reader outside the project sees nothing of it.
    assert call(hub, "outsider", "GET", leaf, "lineage").status_code == 404


def test_list_models_filters_on_base_model_and_card_tags(hub: Hub) -> None:
    developer = hub.api("developer")
    base = unique_repo_id("team", "searchbase")
    tuned = [unique_repo_id("team", f"searchtuned{index}") for index in range(2)]
    for index, repo_id in enumerate(tuned):
        developer.create_repo(repo_id)
        tags = "[sentiment, searchable]" if index == 0 else "[searchable]"
        text = f"---\nbase_model: {base}\ntags: {tags}\nlicense: mit\n---\n"
        developer.upload_file(path_or_fileobj=text.encode(), path_in_repo="README.md",
                              repo_id=repo_id)  # fmt: skip
    found = list(
        hub.api("viewer").list_models(
            author="team", filter=[f"base_model:{base}"], sort="lastModified", cardData=True
        )
    )
    assert sorted(model.id for model in found) == tuned
    modified = [model.last_modified for model in found]
    assert modified == sorted(modified, reverse=True)  # type: ignore[type-var]
    assert found[0].card_data is not None
    assert found[0].card_data.license == "mit"
    assert "license:mit" in (found[0].tags or [])
    both = list(
        hub.api("viewer").list_models(filter=["searchable", "sentiment"], search="searchtuned")
    )
    assert [model.id for model in both] == [tuned[0]], [(m.id, m.tags) for m in both]


def test_the_command_line_protects_promotes_and_shows(hub: Hub) -> None:
    repo_id = hub.new_repo("registry-cli")
    hub.api("developer").upload_file(
        path_or_fileobj=card(0.9), path_in_repo="README.md", repo_id=repo_id
    )
    head = hub.head(repo_id)
    # On the data dir, beside the running server.
    admin(hub.data_dir, "protect", repo_id, "v*", "--immutable", "--min-role", "maintainer")
    listed = json.loads(admin(hub.data_dir, "protect", repo_id, "--json").stdout)
    assert listed == [
        {"pattern": "v*", "minRole": "maintainer", "immutable": True, "viaPr": False,
         "scope": "repo"}
    ]  # fmt: skip
    server = ("--endpoint", hub.url, "--token")
    maintainer = hub.tokens["maintainer"]
    assert maintainer is not None
    hub.api("maintainer").create_tag(repo_id, tag="v1")
    promoted = run_cli("registry", "promote", repo_id, "--alias", "champion", "--to", "v1",
                       "--expect", "none", *server, maintainer)  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    assert f"champion - -> {head[:12]} (v1)" in promoted.stdout
    stale = run_cli("registry", "promote", repo_id, "--alias", "champion", "--to", "main",
                    "--expect", "0" * 40, *server, maintainer)  # fmt: skip
    assert stale.returncode == 4
    assert "409" in stale.stderr
    shown = run_cli("registry", "show", repo_id, *server, maintainer)
    assert shown.returncode == 0, shown.stderr
    assert "accuracy=0.9" in shown.stdout
    assert "champion" in shown.stdout
    aliases = json.loads(run_cli("registry", "aliases", repo_id, "--json", *server,
                                 maintainer).stdout)  # fmt: skip
    assert [(item["name"], item["commit"]) for item in aliases] == [("champion", head)]
    refused = run_cli("admin", "protect", repo_id, "main", "--via-pr", *server,
                      hub.tokens["developer"] or "")  # fmt: skip
    assert refused.returncode == 1
    assert "403" in refused.stderr
