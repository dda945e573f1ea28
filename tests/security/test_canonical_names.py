"""A repo id has one canonical form before anything decides on it.

The governed site has a private proxy project `llama` mirroring the gated upstream namespace
`gatedorg`, which only hubproxy's own upstream token may read. huggingface.co matches repo ids
case-insensitively and redirects the old names of renamed repos: every spelling and every old
name of `gatedorg/tiny` must be as private as `llama/tiny`, on every read endpoint, and neither
a second project nor a policy pattern may be spelled around.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import in_process
from tests.fake_upstream import FakeHub, FakeHubServer
from tests.governance.conftest import (
    FILES,
    GATED_UPSTREAM_REPO,
    Site,
    admin,
    populate,
)

# Old names upstream redirects to the gated repo, as after a rename.
OLD_NAMES = ("formerly-gated/tiny", "formerly-gated/old-tiny")
# Raw URL spellings of the gated repo (and of its project's name), percent-encoded or not.
SPELLINGS = (
    "GATEDORG/tiny", "GatedOrg/tiny", "gatedOrg/TINY", "gatedorg/Tiny", "%47atedorg/tiny",
    "%47%41%54%45%44%4f%52%47/tiny", "gAtEdOrG/tInY", "LLAMA/tiny", "Llama/TINY", "%4clama/tiny",
    "formerly-gated/tiny", "FORMERLY-GATED/tiny", "formerly-gated/old-tiny",
    "Formerly-Gated/Old-Tiny",
)  # fmt: skip
PRINCIPALS = ("anonymous", "outsider", "robot-acme")


def read_requests(repo: str) -> list[tuple[str, str, dict[str, str] | None]]:
    """(method, path, form) of every read endpoint on raw repo id `repo`."""
    return [
        ("HEAD", f"/{repo}/resolve/main/weights.bin", None),
        ("GET", f"/{repo}/resolve/main/weights.bin", None),
        ("GET", f"/{repo}/resolve/main/config.json", None),
        ("GET", f"/api/models/{repo}", None),
        ("GET", f"/api/models/{repo}/revision/main", None),
        ("GET", f"/api/models/{repo}/tree/main", None),
        ("GET", f"/api/models/{repo}/refs", None),
        ("GET", f"/api/models/{repo}/commits/main", None),
        ("POST", f"/api/models/{repo}/paths-info/main", {"paths": "weights.bin"}),
    ]


@pytest.fixture
def renamed_upstream(governed_hub: FakeHub) -> Iterator[FakeHub]:
    for old_name in OLD_NAMES:
        governed_hub.add_redirect(old_name, GATED_UPSTREAM_REPO)
    yield governed_hub
    for old_name in OLD_NAMES:
        governed_hub.moved.pop(("model", old_name), None)


def headers_of(site: Site, principal: str) -> dict[str, str]:
    token = site.tokens[principal]
    return {"Authorization": f"Bearer {token}"} if token else {}


def test_no_spelling_or_old_name_reaches_the_gated_upstream_repo(
    governed_site: Site, renamed_upstream: FakeHub
) -> None:
    secret = FILES["weights.bin"]
    leaks: list[str] = []
    tried = 0
    with governed_site.client() as client:
        for principal in PRINCIPALS:
            for spelling in SPELLINGS:
                for method, path, form in read_requests(spelling):
                    tried += 1
                    response = client.request(
                        method, path, data=form, headers=headers_of(governed_site, principal)
                    )
                    if (
                        response.status_code < 300
                        or secret[:64] in response.content
                        or response.status_code >= 500
                    ):
                        leaks.append(f"{principal} {method} {path} -> {response.status_code}")
                    elif response.headers.get("X-Error-Code") != "RepoNotFound":
                        leaks.append(
                            f"{principal} {method} {path} -> {response.status_code} "
                            f"{response.headers.get('X-Error-Code')}"
                        )
    assert tried == len(PRINCIPALS) * len(SPELLINGS) * 9
    assert leaks == [], f"{len(leaks)} of {tried} got through:\n" + "\n".join(leaks)


def test_members_read_every_spelling_and_old_name(
    governed_site: Site, renamed_upstream: FakeHub
) -> None:
    """The same names are the project's own repo for its members (nothing else broke)."""
    with governed_site.client() as client:
        for spelling in SPELLINGS:
            response = client.get(
                f"/{spelling}/resolve/main/config.json", headers=headers_of(governed_site, "viewer")
            )
            assert response.status_code == 200, (spelling, response.headers)
            assert response.content == FILES["config.json"]


def test_policy_patterns_match_any_spelling(governed_site: Site, governed_hub: FakeHub) -> None:
    """A deny-list pattern `Freeorg/*` refuses every spelling of `freeorg/tiny`."""
    if ("model", "freeorg/tiny") not in governed_hub.repos:
        governed_hub.add_repo("freeorg/tiny", FILES)
    spellings = ("freeorg/tiny", "FREEORG/tiny", "%46reeorg/tiny", "Freeorg/TINY", "freeORG/Tiny")
    governed_site.admin("policy", "set", "--mode", "deny-list", "--pattern", "Freeorg/*")
    try:
        with governed_site.client() as client:
            statuses: dict[str, int] = {}
            for _attempt in range(50):
                statuses = {
                    spelling: client.get(f"/api/models/{spelling}").status_code
                    for spelling in spellings
                }
                if 200 not in statuses.values():
                    break
                time.sleep(0.1)
        assert all(status in (401, 404) for status in statuses.values()), statuses
    finally:
        governed_site.admin("policy", "set", "--mode", "allow-all")


def test_listing_by_author_matches_any_spelling(governed_site: Site) -> None:
    with governed_site.client() as client:
        exact = client.get(
            "/api/models", params={"author": "acme"}, headers=headers_of(governed_site, "viewer")
        )
        shouted = client.get(
            "/api/models", params={"author": "ACME"}, headers=headers_of(governed_site, "viewer")
        )
    assert exact.status_code == 200
    assert shouted.status_code == 200
    assert shouted.json() == exact.json()


@pytest.fixture
def fresh_data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    populate(data_dir)
    return data_dir


# Projects that would govern (or un-govern) the namespace `llama` already mirrors.
CLAIMS = (
    ("gatedorg", "--kind", "proxy", "--public"),
    ("GatedOrg", "--kind", "proxy", "--public"),
    ("GATEDORG", "--kind", "hosted", "--public"),
    ("gatedorg", "--kind", "hosted", "--public"),
    ("other", "--kind", "proxy", "--public", "--upstream-namespace", "gatedorg"),
    ("other2", "--kind", "proxy", "--public", "--upstream-namespace", "GATEDORG"),
    ("LLAMA", "--kind", "proxy", "--public"),
    ("Llama", "--kind", "hosted", "--public"),
    ("ACME", "--kind", "hosted", "--public"),
    ("Mirror", "--kind", "proxy", "--public", "--upstream-namespace", "elsewhere"),
    ("openly", "--kind", "proxy"),
    ("third", "--kind", "proxy", "--upstream-namespace", "Openly"),
    ("acme2", "--kind", "proxy", "--public", "--upstream-namespace", "LLAMA"),
)


def test_one_project_per_upstream_namespace(
    fresh_data_dir: Path, fake_hub_server: FakeHubServer, governed_hub: FakeHub
) -> None:
    accepted = []
    for name, *options in CLAIMS:
        completed = admin(fresh_data_dir, "project", "create", name, *options, check=False)
        if completed.returncode == 0:
            accepted.append(f"{name} {' '.join(options)}")
        else:
            assert completed.returncode == 4, completed.stderr  # a conflict, not a crash
    with in_process(fresh_data_dir, fake_hub_server.url) as server, server.client() as client:
        gated = client.get(f"/{GATED_UPSTREAM_REPO}/resolve/main/config.json")
    assert gated.status_code == 401, gated.status_code
    assert accepted == [], f"{len(accepted)} of {len(CLAIMS)} got through: {accepted}"
