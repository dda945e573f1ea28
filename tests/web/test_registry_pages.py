"""The registry page (in-process tier): aliases with their promotion history, versions with
card metrics, lineage links, all escaped, and refused exactly like the repo page."""

import httpx

from tests.fake_upstream import FakeHubServer
from tests.web.conftest import WebSite, commit, create_repo

BASE_CARD = """---
license: apache-2.0
datasets:
  - team/corpus
---
# Base
"""
TUNED_CARD = """---
license: mit
base_model: team/registry-base
model-index:
  - name: registry-tuned
    results:
      - task: {type: text-generation}
        dataset: {name: team/eval, type: eval}
        metrics:
          - {name: accuracy, type: accuracy, value: 0.875}
---
# Tuned
"""
XSS_MESSAGE = "<script>alert(1)</script>"


def _registry_repos(site: WebSite) -> str:
    """`team/registry-tuned` (base model `team/registry-base`), tagged `v1` and promoted to
    `champion` with a script as the message; the tagged commit's sha."""
    with site.client("developer") as developer:
        create_repo(developer, "team/registry-base", private=True)
        commit(developer, "team/registry-base", "Base card", {"README.md": BASE_CARD.encode()})
        create_repo(developer, "team/registry-tuned", private=True)
        sha = commit(
            developer, "team/registry-tuned", "Tuned card", {"README.md": TUNED_CARD.encode()}
        )
    with site.client("lead") as lead:
        tagged = lead.post("/api/models/team/registry-tuned/tag/main", json={"tag": "v1"})
        assert tagged.status_code == 200, tagged.text
        promoted = lead.put(
            "/api/hubproxy/models/team/registry-tuned/aliases/champion",
            json={"target": "v1", "expected": None, "message": XSS_MESSAGE},
        )
        assert promoted.status_code == 200, promoted.text
    return sha


def test_the_registry_page_shows_aliases_versions_and_lineage(site: WebSite) -> None:
    sha = _registry_repos(site)
    with site.browser("viewer") as viewer:
        answer = viewer.get("/team/registry-tuned/registry")
        assert answer.status_code == 200, answer.text
        text = answer.text
        # The alias, the commit it points at and its promotion row (by lead, new → sha).
        assert 'class="tag" href="/team/registry-tuned/tree/champion">champion<' in text
        assert f'href="/team/registry-tuned/commit/{sha}"><code>{sha[:12]}</code>' in text
        assert 'class="promotion-row"' in text
        assert "lead:" in text
        # A version row with its tag, alias, license and metric.
        assert '<span class="tag">v1</span>' in text
        assert '<span class="tag alias">champion</span>' in text
        assert "accuracy: 0.875 (team/eval)" in text
        assert "<td>mit</td>" in text
        # Lineage: the base model links to its page, and its dataset is listed.
        assert '<a href="/team/registry-base">team/registry-base</a>' in text
        assert 'href="/datasets/team/corpus"' in text
        # The promotion message is text, never markup.
        assert XSS_MESSAGE not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        # The base model's page lists the tuned one as a descendant.
        base = viewer.get("/team/registry-base/registry").text
        assert '<a href="/team/registry-tuned">team/registry-tuned</a>' in base
        # The repo page links to the registry and shows the aliases panel.
        repo = viewer.get("/team/registry-tuned").text
        assert 'href="/team/registry-tuned/registry" id="registry-link"' in repo
        assert 'id="aliases"' in repo
        assert f"<code>{sha[:12]}</code>" in repo


def _refusal(client: httpx.Client, path: str) -> tuple[int, str | None]:
    answer = client.get(path)
    return answer.status_code, answer.headers.get("x-error-code")


def test_the_registry_page_is_refused_like_the_repo_page(site: WebSite) -> None:
    with site.browser("outsider") as outsider, site.browser() as anonymous:
        for client in (outsider, anonymous):
            repo = _refusal(client, "/team/secret-model")
            assert repo[0] in (401, 404)
            assert _refusal(client, "/team/secret-model/registry") == repo
            assert _refusal(client, "/team/no-such-model/registry") == repo


def test_a_repo_without_aliases_has_no_aliases_panel(site: WebSite) -> None:
    with site.browser("viewer") as viewer:
        repo = viewer.get("/open/public-model").text
        assert 'id="registry-link"' in repo
        assert 'id="aliases"' not in repo
        registry = viewer.get("/open/public-model/registry")
        assert registry.status_code == 200
        assert "No aliases yet" in registry.text


def test_a_proxied_repo_has_no_registry_page_as_it_has_no_registry_api(
    site: WebSite, fake_hub_server: FakeHubServer
) -> None:
    fake_hub_server.hub.add_repo("acme/registry-cached", {"README.md": b"# Upstream\n"})
    with site.browser() as browser:
        repo = browser.get("/acme/registry-cached")
        assert repo.status_code == 200
        assert 'id="registry-link"' not in repo.text
        page = browser.get("/acme/registry-cached/registry")
        api = browser.get("/api/hubproxy/models/acme/registry-cached/registry")
        assert page.status_code == api.status_code == 404
        assert "hosted repos" in page.text
