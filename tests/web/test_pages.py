"""The web UI over HTTP (in-process tier): pages authorized and audited like the API, the API
and downloads untouched by the pages, sessions and CSRF, sanitized cards and names."""

import csv
import io
import json
import time

from tests.fake_upstream import FakeHub
from tests.web.conftest import XSS_COMMIT, WebSite, commit, create_repo, csrf_of


def audit_records(site: WebSite, **query: str) -> list[dict[str, object]]:
    """Records of the audit log through the admin API (the queue is flushed first)."""
    deadline = time.monotonic() + 10
    with site.client("root") as root:
        while True:
            records: list[dict[str, object]] = root.get(
                "/api/hubproxy/admin/audit", params=query
            ).json()
            if records or time.monotonic() > deadline:
                return records
            time.sleep(0.05)


def test_api_and_downloads_are_not_shadowed_by_pages(site: WebSite) -> None:
    with site.client() as client:
        info = client.get("/api/models/open/public-model")
        assert info.headers["content-type"] == "application/json"
        assert info.json()["id"] == "open/public-model"
        tree = client.get("/api/models/open/public-model/tree/main/shards")
        assert len(tree.json()) == 10
        # A browser GET of a download URL downloads the bytes.
        download = client.get("/open/public-model/resolve/main/shards/part-03.bin")
        assert download.status_code == 200
        assert download.content == bytes([3]) * 10
        assert "text/html" not in download.headers.get("content-type", "")
        # The same repo's page is HTML.
        page = client.get("/open/public-model")
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]


def test_anonymous_sees_exactly_what_anonymous_may_read(site: WebSite) -> None:
    with site.browser() as browser:
        home = browser.get("/")
        assert home.status_code == 200
        assert "open/public-model" in home.text
        assert "secret-model" not in home.text
        refused = browser.get("/team/secret-model")
        assert refused.status_code == 401
        assert refused.headers["x-error-code"] == "RepoNotFound"
        # Exactly the answer for a repo that does not exist: nothing tells them apart.
        missing = browser.get("/team/no-such-model")
        assert (missing.status_code, missing.headers["x-error-code"]) == (401, "RepoNotFound")
        assert browser.get("/team/secret-model/tree/main").status_code == 401


def test_a_private_repo_is_not_listed_for_a_viewer_without_access(site: WebSite) -> None:
    with site.browser("outsider") as outsider, site.browser("viewer") as viewer:
        assert "secret-model" not in outsider.get("/").text
        assert "secret-model" not in outsider.get("/team").text
        assert outsider.get("/team/secret-model").status_code == 404
        assert "team/secret-model" in viewer.get("/").text
        assert "team/secret-model" in viewer.get("/?project=team&type=model").text
        assert "team/secret-model" not in viewer.get("/?type=dataset").text
        assert "open/public-model" in viewer.get("/?tag=").text


def test_sign_in_sets_a_signed_session_without_the_secret(site: WebSite) -> None:
    with site.server.client() as client:
        form = client.get("/login")
        answer = client.post(
            "/login",
            data={"token": site.tokens["viewer"], "csrf": csrf_of(form.text), "next": "/team"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/team"
        cookie = next(
            value
            for value in answer.headers.get_list("set-cookie")
            if value.startswith("hp_session=")
        )
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert site.tokens["viewer"] not in cookie
        assert site.tokens["viewer"][3:20] not in cookie
        assert 'id="signed-in-as">viewer<' in client.get("/").text


def test_a_wrong_token_is_refused_and_audited(site: WebSite) -> None:
    with site.server.client() as client:
        form = client.get("/login")
        answer = client.post("/login", data={"token": "hp_" + "0" * 40, "csrf": csrf_of(form.text)})
        assert answer.status_code == 401
        assert "not valid" in answer.text
        assert not any(
            value.startswith("hp_session=") for value in answer.headers.get_list("set-cookie")
        )
    denied = audit_records(site, action="login", denied="true")
    assert any(record["route"] == "page_login" for record in denied)


def test_posts_without_the_csrf_token_are_refused(site: WebSite) -> None:
    with site.browser("lead") as lead:
        answer = lead.post("/admin/projects/team/members", data={"user": "viewer", "role": "admin"})
        assert answer.status_code == 403
        assert lead.post("/logout", data={"csrf": "0" * 64}).status_code == 403
        members = {
            row["user"]: row["role"]
            for row in site.client("lead").get("/api/organizations/team/members").json()
        }
        assert members["viewer"] == "viewer"
        # Still signed in: the refused sign-out did nothing.
        assert 'id="signed-in-as">lead<' in lead.get("/").text


def test_a_card_renders_with_its_metadata_and_without_scripts(site: WebSite) -> None:
    with site.browser("viewer") as viewer:
        page = viewer.get("/team/secret-model").text
    card = page.split('id="card">')[1].split("</article>")[0]
    assert "<h1>Secret model</h1>" in card
    assert "<table>" in card
    assert "<script" not in page.replace('<script src="/-/static', "")
    assert "onerror" not in card
    assert 'href="javascript' not in card
    panel = page.split('id="metadata">')[1].split("</section>")[0]
    for shown in ("apache-2.0", "meta/base-7b", "team/corpus", "text-generation", "accuracy"):
        assert shown in panel
    assert "&lt;script&gt;alert(&#39;tag&#39;)&lt;/script&gt;" in panel
    assert f"revision {site.secret_commit}" in page
    assert "vllm serve team/secret-model --revision" in page


def test_file_names_and_commit_messages_render_as_text(site: WebSite) -> None:
    with site.browser("viewer") as viewer:
        tree = viewer.get("/team/secret-model/tree/main").text
        assert "&lt;img src=x onerror=alert(1)&gt;.txt" in tree
        assert "<img src=x" not in tree
        history = viewer.get("/team/secret-model/commits/main").text
        assert "&lt;script&gt;alert(&#39;commit&#39;)&lt;/script&gt;" in history
        assert "<script>alert" not in history
        change = viewer.get(f"/team/secret-model/commit/{site.secret_commit}").text
        assert "<script>alert" not in change
        assert "<img src=x" not in change
        assert "2 files changed" in change
        assert "config.json" in change
        assert "added" in change
        assert XSS_COMMIT not in change


def test_blob_page_shows_file_facts_and_a_preview(site: WebSite) -> None:
    with site.browser("viewer") as viewer:
        page = viewer.get("/team/secret-model/blob/main/config.json")
        assert page.status_code == 200
        assert "&#34;hidden_size&#34;: 8" in page.text or "&quot;hidden_size&quot;: 8" in page.text
        assert "19 bytes" in page.text
        oid = (
            site.client("viewer")
            .post("/api/models/team/secret-model/paths-info/main", json={"paths": ["config.json"]})
            .json()[0]["oid"]
        )
        assert oid in page.text
        missing = viewer.get("/team/secret-model/blob/main/nope.txt")
        assert missing.status_code == 404
        assert missing.headers["x-error-code"] == "EntryNotFound"


def test_a_signed_in_browser_downloads_private_files(site: WebSite) -> None:
    url = "/team/secret-model/resolve/main/config.json"
    with site.browser("viewer") as viewer, site.browser() as anonymous:
        assert viewer.get(url).content == b'{"hidden_size": 8}\n'
        assert anonymous.get(url).status_code == 401


def test_tree_pages_a_large_folder(site: WebSite) -> None:
    with site.client("developer") as developer:
        create_repo(developer, "open/many-files")
        commit(
            developer, "open/many-files", "Many", {f"f{index:04}.txt": b"x" for index in range(450)}
        )
    with site.browser() as browser:
        first = browser.get("/open/many-files/tree/main")
        assert first.text.count('class="file-row"') == 200
        assert "451 entries" in first.text  # and the .gitattributes every new repo has
        assert "?cursor=200" in first.text
        last = browser.get("/open/many-files/tree/main?cursor=400")
        assert last.text.count('class="file-row"') == 51
        assert "f0449.txt" in last.text
        assert 'id="next-page"' not in last.text


def test_revoking_the_token_signs_the_browser_out_at_once(site: WebSite) -> None:
    with site.client("viewer") as viewer_api:
        made = viewer_api.post("/api/hubproxy/tokens", json={"name": "browser", "scope": "read"})
        assert made.status_code == 201, made.text
        token, token_id = made.json()["token"], made.json()["id"]
    with site.server.client() as browser:
        form = browser.get("/login")
        browser.post("/login", data={"token": token, "csrf": csrf_of(form.text)})
        assert 'id="signed-in-as">viewer<' in browser.get("/").text
        with site.client("root") as root:
            assert root.delete(f"/api/hubproxy/tokens/{token_id}").status_code == 200
        after = browser.get("/team/secret-model")
        assert after.status_code == 401
        assert "Sign in" in after.text
        assert any(v.startswith("hp_session=;") for v in after.headers.get_list("set-cookie"))


def test_discussion_comments_are_sanitized(site: WebSite) -> None:
    with site.client("developer") as developer:
        created = developer.post(
            "/api/models/team/secret-model/discussions",
            json={"title": "<b>Title</b>", "description": "**bold** <script>alert(2)</script>"},
        )
        assert created.status_code == 200, created.text
        number = created.json()["num"]
    with site.browser("viewer") as viewer:
        listing = viewer.get("/team/secret-model/discussions").text
        assert "&lt;b&gt;Title&lt;/b&gt;" in listing
        page = viewer.get(f"/team/secret-model/discussions/{number}").text
        assert "<strong>bold</strong>" in page
        assert "<script>alert(2)" not in page


def test_admin_pages_need_review_rights(site: WebSite) -> None:
    with site.browser("viewer") as viewer, site.browser() as anonymous:
        assert viewer.get("/admin/audit").status_code == 403
        assert anonymous.get("/admin/audit").status_code == 401
        assert viewer.get("/admin/projects/team").status_code == 403
    with site.browser("lead") as lead:
        assert lead.get("/admin/audit").status_code == 200
        assert lead.get("/admin/policy").status_code == 403
        projects = lead.get("/admin/projects").text
        assert "/admin/projects/team" in projects
        assert "/admin/projects/open" not in projects


def test_audit_log_filters_pages_and_exports(site: WebSite) -> None:
    with site.browser("outsider") as outsider:
        for _ in range(3):
            outsider.get("/team/secret-model")
    audit_records(site, user="outsider", denied="true")
    with site.browser("root") as root:
        page = root.get("/admin/audit", params={"user": "outsider", "decision": "deny"}).text
        assert page.count('class="audit-row decision-deny"') >= 3
        assert "page_repo" in page
        everything = root.get("/admin/audit").text
        assert 'id="older"' not in everything or "before=" in everything
        exported = root.get(
            "/admin/audit/export", params={"user": "outsider", "decision": "deny", "format": "csv"}
        )
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) >= 3
        assert {row["actor_name"] for row in rows} == {"outsider"}
        as_json = json.loads(
            root.get("/admin/audit/export", params={"user": "outsider", "format": "json"}).text
        )
        assert all(record["actor_name"] == "outsider" for record in as_json)
        bad = root.get("/admin/audit", params={"since": "yesterday"})
        assert bad.status_code == 400
        assert bad.headers["x-error-code"] == "BadRequest"


def test_audit_pages_continue_where_the_last_stopped(site: WebSite) -> None:
    with site.browser() as anonymous:
        for _ in range(120):
            anonymous.get("/team/nothing-here")
    audit_records(site, repo="team/nothing-here")
    with site.browser("root") as root:
        first = root.get("/admin/audit", params={"repo": "team/nothing-here"}).text
        assert first.count('class="audit-row') == 100
        older = first.split('id="older" href="')[1].split('"')[0].replace("&amp;", "&")
        second = root.get(older).text
        assert 20 <= second.count('class="audit-row') < 100


def test_a_project_admin_changes_a_members_role(site: WebSite) -> None:
    with site.browser("lead") as lead:
        page = lead.get("/admin/projects/team")
        assert page.status_code == 200
        answer = lead.post(
            "/admin/projects/team/members",
            data={"user": "outsider", "role": "viewer", "csrf": csrf_of(page.text)},
        )
        assert answer.status_code == 303
        assert "outsider" in lead.get("/admin/projects/team").text
    members = {
        row["user"]: row["role"]
        for row in site.client("lead").get("/api/organizations/team/members").json()
    }
    assert members["outsider"] == "viewer"
    assert any(
        record["route"] == "page_admin_member" and record["path"] == "outsider"
        for record in audit_records(site, action="member_add")
    )
    with site.browser("developer") as developer:
        refused = developer.get("/admin/projects/team")
        assert refused.status_code == 403


def test_tokens_page_lists_and_revokes_your_own(site: WebSite) -> None:
    with site.client("developer") as api:
        made = api.post("/api/hubproxy/tokens", json={"name": "old-ci", "scope": "read"}).json()
    with site.browser("developer") as developer:
        page = developer.get("/admin/tokens")
        assert made["id"] in page.text
        assert "this session" in page.text
        answer = developer.post(
            "/admin/tokens", data={"token_id": made["id"], "csrf": csrf_of(page.text)}
        )
        assert answer.status_code == 303
    assert (
        site.client()
        .get("/api/whoami-v2", headers={"Authorization": f"Bearer {made['token']}"})
        .status_code
        == 401
    )


def test_bad_page_urls_are_precise_errors(site: WebSite) -> None:
    with site.browser() as browser:
        assert browser.get("/open/public-model/discussions/zero").status_code == 400
        assert browser.get("/open/public-model/nonsense").status_code == 404
        assert browser.get("/?type=bogus").status_code == 400
        assert browser.put("/open/public-model").status_code in (404, 405)
        unknown = browser.get("/nobody-here")
        assert unknown.status_code == 404
        assert unknown.headers["x-error-code"]


def test_static_assets_are_served_from_the_package(site: WebSite) -> None:
    with site.browser() as browser:
        css = browser.get("/-/static/hubproxy.css")
        assert css.status_code == 200
        assert "--accent" in css.text
        assert "http" not in css.text  # nothing external


def test_a_cached_upstream_repo_shows_its_cache_state(site: WebSite, upstream: FakeHub) -> None:
    # `upstream`: the fake hub with no fault another test may have left pending.
    card = b"---\nlicense: mit\n---\n# Upstream model\n"
    upstream.add_repo("acme/web-cached", {"README.md": card, "weights.bin": b"w" * 5000})
    with site.browser() as browser:
        first = browser.get("/acme/web-cached")
        assert first.status_code == 200
        assert "<h1>Upstream model</h1>" in first.text
        # Reading the card cached the card, not the weights.
        assert 'class="state state-partial">partial<' in first.text
        assert "open/public-model" in browser.get("/").text
        assert browser.get("/acme/web-cached/resolve/main/weights.bin").content == b"w" * 5000
        after = browser.get("/acme/web-cached").text
        assert 'class="state state-complete">complete<' in after
        assert "acme/web-cached" in browser.get("/?type=model").text
        blob = browser.get("/acme/web-cached/blob/main/weights.bin").text
        assert "5.0 kB of 5.0 kB" in blob
