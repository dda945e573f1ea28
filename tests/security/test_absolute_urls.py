"""Absolute URLs (LFS upload hrefs, the repo URL of a new repo, `Link` pagination) are never
taken from an arbitrary `Host` header when `public_url` is unset: only a `trusted_hosts` name
or a loopback name is used as given; any other Host gets the address the connection reached.
With `metrics_require_auth`, `/metrics` needs a valid token and refusals are audited."""

import hashlib
from collections.abc import Iterator

import pytest

from tests.fake_upstream import FakeHubServer
from tests.hub.conftest import LFS_JSON
from tests.security.delegation_support import SecuritySite, eventually, running, with_root

HOSTILE_HOSTS = [
    "evil.example",
    "evil.example:443",
    "127.0.0.1:1@evil.example",
    "localhost.evil.example",
    "hub.example.com.evil.example",
    "evil.example/x",
    "[::1]@evil.example",
]


@pytest.fixture(scope="module")
def site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuritySite]:
    data_dir = tmp_path_factory.mktemp("absolute-urls") / "data"
    accounts = (
        with_root()
        .project("acme")
        .user("dev")
        .member("acme", "dev", "developer")
        .token("dev", "dev", "write")
        .robot("scraper", "acme", "scraper", ["read"])
    )
    yield from running(
        data_dir,
        fake_hub_server.url,
        accounts,
        trusted_hosts="hub.example.com",
        metrics_require_auth=True,
    )


def _absolute_urls(site: SecuritySite, host: str, name: str) -> list[str]:
    """The absolute URLs the server answers a client that sends `Host: host`."""
    headers = {"Host": host}
    created = site.request(
        "dev", "POST", "/api/repos/create", json={"name": name, "organization": "acme"},
        headers=headers,
    )  # fmt: skip
    assert created.status_code == 200, created.text
    urls = [created.json()["url"]]
    data = name.encode() * 100
    batch = site.request(
        "dev",
        "POST",
        f"/acme/{name}.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "objects": [{"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}],
        },
        headers={**headers, "Accept": LFS_JSON, "Content-Type": LFS_JSON},
    )
    assert batch.status_code == 200, batch.text
    actions = batch.json()["objects"][0]["actions"]
    urls += [actions["upload"]["href"], actions["verify"]["href"]]
    commits = site.request(
        "dev", "GET", f"/api/models/acme/{name}/commits/main?limit=1&p=0", headers=headers
    )
    link = commits.headers.get("link")
    if link:
        urls.append(link)
    return urls


def test_a_hostile_host_header_never_names_the_links(site: SecuritySite) -> None:
    tried = got_through = 0
    for index, host in enumerate(HOSTILE_HOSTS):
        for url in _absolute_urls(site, host, f"hostile-{index}"):
            tried += 1
            if "evil" in url or not url.lstrip("<").startswith(site.url):
                got_through += 1
                print("got through:", host, url)
    assert tried >= 3 * len(HOSTILE_HOSTS)
    assert got_through == 0


def test_trusted_and_loopback_hosts_name_the_links(site: SecuritySite) -> None:
    urls = _absolute_urls(site, "hub.example.com", "trusted")
    assert all(url.startswith("http://hub.example.com/") for url in urls), urls
    port = site.url.rsplit(":", 1)[1]
    urls = _absolute_urls(site, f"localhost:{port}", "loopback")
    assert all(url.startswith(f"http://localhost:{port}/") for url in urls), urls


def test_metrics_need_a_token(site: SecuritySite) -> None:
    attempts = [
        site.request(None, "GET", "/metrics"),
        site.request(None, "GET", "/metrics", headers={"Authorization": "Bearer hp_" + "x" * 40}),
        site.request(None, "GET", "/metrics", headers={"Authorization": "Basic abc"}),
    ]
    got_through = [answer.status_code for answer in attempts if answer.status_code != 401]
    assert got_through == []
    assert all(answer.headers.get("x-error-code") for answer in attempts[:1])
    assert "hubproxy_" not in attempts[0].text
    # A read-only robot is enough for a scraper.
    answer = site.request("scraper", "GET", "/metrics")
    assert answer.status_code == 200, answer.text
    assert "hubproxy_" in answer.text

    def audited() -> bool:
        return len([r for r in site.denials() if r["route"] == "metrics"]) >= len(attempts)

    eventually(audited)
