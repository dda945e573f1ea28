"""The web UI in a real headless Chromium (Debian's `/usr/bin/chromium`, driven by playwright)
against a running `hubproxy serve`: sign in, read a card, browse to a file, filter and export the
audit log, change a member's role; XSS attempts in a card, a file name and a commit message
render as text (no dialog ever opens); a private repo is not listed for a viewer without access.

One browser for the module, a context per principal. The screenshots in the README
(`docs/screenshots/*.png`, 1280x800) are taken here.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SERVER_ENVIRONMENT, TEST_CHUNK_SIZE
from tests.fake_upstream import FakeHubServer
from tests.support.proxy import ProxyProcess
from tests.web.conftest import XSS_COMMIT, XSS_FILE, WebSite, seed, site_accounts

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}

if not Path(CHROMIUM).exists():  # scripts/test.sh installs it
    pytest.skip(
        f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True
    )


class ServedSite(WebSite):
    """The seeded site on a real server process."""

    def __init__(self, process: ProxyProcess, tokens: dict[str, str]) -> None:
        super().__init__(None, tokens, "")  # type: ignore[arg-type]
        self.process = process

    def client(self, principal: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[principal]}"} if principal else {}
        return httpx.Client(base_url=self.process.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def served(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedSite]:
    data_dir = tmp_path_factory.mktemp("web-browser") / "data"
    tokens = site_accounts().create(data_dir)
    process = ProxyProcess(
        data_dir, fake_hub_server.url, extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment=SERVER_ENVIRONMENT,
    )  # fmt: skip
    with process:
        site = ServedSite(process, tokens)
        seed(site)
        yield site
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def dialogs() -> list[str]:
    """Every dialog (`alert(...)`) a page opened: an XSS attempt that ran."""
    return []


def signed_in(browser: object, site: ServedSite, principal: str, dialogs: list[str]) -> object:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)  # type: ignore[attr-defined]
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{site.process.url}/login")
    page.fill("input[name=token]", site.tokens[principal])
    page.click("form.stack button[type=submit]")
    page.wait_for_url(f"{site.process.url}/")
    assert page.text_content("#signed-in-as") == principal
    return page


def shoot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))  # type: ignore[attr-defined]


def test_sign_in_read_a_card_and_browse_to_a_file(
    browser: object, served: ServedSite, dialogs: list[str]
) -> None:
    page = signed_in(browser, served, "viewer", dialogs)
    url = served.process.url
    assert "team/secret-model" in page.text_content("table.list")
    shoot(page, "home")
    page.click("text=team/secret-model")
    page.wait_for_url("**/team/secret-model")
    page.wait_for_selector("#card h1")
    assert page.text_content("#card h1") == "Secret model"
    assert page.locator("#card script").count() == 0
    assert page.locator("#card img[onerror]").count() == 0
    assert "apache-2.0" in page.text_content("#metadata")
    shoot(page, "repo")
    page.click("nav.tabs >> text=Files")
    page.wait_for_selector("#files")
    # The file name is text: its link shows exactly the name, and no <img> was made of it.
    assert page.locator("#files img").count() == 0
    page.click(f"#files a:text-is('{XSS_FILE}')")
    page.wait_for_selector("#file-name")
    assert page.text_content("#file-name") == XSS_FILE
    assert page.text_content("#preview") == "hello"
    page.goto(f"{url}/team/secret-model/blob/main/config.json")
    assert '"hidden_size": 8' in page.text_content("#preview")
    shoot(page, "blob")
    page.goto(f"{url}/team/secret-model/commit/{served.secret_commit}")
    assert page.text_content("#commit-title") == XSS_COMMIT
    page.goto(f"{url}/open/public-model/tree/main/shards")
    assert page.locator("tr.file-row").count() == 10
    shoot(page, "tree")
    assert dialogs == []


def test_a_private_repo_is_not_listed_for_a_viewer_without_access(
    browser: object, served: ServedSite, dialogs: list[str]
) -> None:
    page = signed_in(browser, served, "outsider", dialogs)
    assert "open/public-model" in page.text_content("main")
    assert "secret-model" not in page.text_content("main")
    answer = page.goto(f"{served.process.url}/team/secret-model")
    assert answer is not None
    assert answer.status == 404


def test_filter_and_export_the_audit_log(
    browser: object, served: ServedSite, dialogs: list[str], tmp_path: Path
) -> None:
    with served.client() as anonymous:
        for _ in range(3):
            assert anonymous.get("/api/models/team/secret-model").status_code == 401
    page = signed_in(browser, served, "root", dialogs)
    page.goto(f"{served.process.url}/admin/audit")
    page.fill("#audit-filters input[name=user]", "anonymous")
    page.select_option("#audit-filters select[name=decision]", "deny")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_url("**decision=deny**")
    rows = page.locator("tr.audit-row")
    assert rows.count() >= 3
    assert page.locator("tr.audit-row.decision-allow").count() == 0
    shoot(page, "audit")
    with page.expect_download() as started:
        page.click("#export-csv")
    saved = tmp_path / "audit.csv"
    started.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("action,decision,")
    assert len(lines) - 1 == rows.count()
    assert all(",deny," in line for line in lines[1:])


def test_change_a_members_role(browser: object, served: ServedSite, dialogs: list[str]) -> None:
    page = signed_in(browser, served, "lead", dialogs)
    page.goto(f"{served.process.url}/admin/projects/team")
    row = page.locator("tr.member-row[data-user=viewer]")
    assert row.locator("td.role").text_content() == "viewer"
    row.locator("select[name=role]").select_option("developer")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("tr.member-row[data-user=viewer] td.role:text-is('developer')")
    shoot(page, "members")
    with served.client("lead") as lead:
        members = {m["user"]: m["role"] for m in lead.get("/api/organizations/team/members").json()}
    assert members["viewer"] == "developer"
    assert dialogs == []


def test_the_chromium_binary_is_debians() -> None:
    assert shutil.which("chromium") == CHROMIUM
