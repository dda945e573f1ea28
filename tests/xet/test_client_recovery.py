"""The real client recovers from what runs out: an expired Xet access token (hf_xet asks the
hub's refresh URL for a new one before it uses it: it does not retry a CAS 401, so expiries
must be told truly) and an expired signed xorb-range URL (403, hf_xet asks the CAS for the
reconstruction again). The lifetimes are settings
(`xet_token_lifetime`, `xet_url_lifetime`), shortened here; a relay in front of the CAS
(`public_url`) holds one xorb-range GET back until its URL has expired."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hf_xet
import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from tests.conftest import ProxyFactory
from tests.hub.conftest import HUB_ENVIRONMENT, populate_hub
from tests.support.proxy import ProxyProcess
from tests.xet.support import MiB, Relay, mixed, relay

pytestmark = pytest.mark.clients

CAS = "/api/hubproxy/xet"
CONTENT = mixed(3 * MiB, 51)


@dataclass
class Site:
    server: ProxyProcess
    relay: Relay
    token: str
    repo_id: str

    def token_url(self, kind: str) -> str:
        return f"{self.server.url}/api/models/{self.repo_id}/xet-{kind}-token/main"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def expired_token(self, kind: str) -> tuple[str, int, str]:
        """A token, its expiry and CAS URL, once it has expired."""
        answer = httpx.get(self.token_url(kind), headers=self.headers(), timeout=30).json()
        time.sleep(max(0.0, answer["exp"] - time.time()) + 1.1)
        return str(answer["accessToken"]), int(answer["exp"]), str(answer["casUrl"])


def start_site(
    proxy_factory: ProxyFactory, tmp_path: Path, relayed: Relay, **settings: str
) -> Site:
    data_dir = tmp_path / "data"
    tokens = populate_hub(data_dir)
    server = proxy_factory(
        data_dir=data_dir,
        start=False,
        environment={
            **HUB_ENVIRONMENT,
            "HUBPROXY_PUBLIC_URL": relayed.url,
            **{f"HUBPROXY_{name.upper()}": value for name, value in settings.items()},
        },
    )
    relayed.target = server.url
    server.start()
    token = tokens["developer"]
    assert token is not None
    api = HfApi(endpoint=server.url, token=token)
    repo_id = "team/recovery"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=CONTENT, path_in_repo="weights.bin", repo_id=repo_id)
    return Site(server, relayed, token, repo_id)


@pytest.fixture
def short_tokens(proxy_factory: ProxyFactory, tmp_path: Path) -> Iterator[Site]:
    with relay() as relayed:
        yield start_site(proxy_factory, tmp_path, relayed, xet_token_lifetime="3s")


@pytest.fixture
def short_urls(proxy_factory: ProxyFactory, tmp_path: Path) -> Iterator[Site]:
    with relay() as relayed:
        yield start_site(proxy_factory, tmp_path, relayed, xet_url_lifetime="5s")


def refreshed(site: Site, kind: str, since: int) -> bool:
    """Whether, after request `since` of the relay, the client got a new token from the hub
    and no CAS call was refused for an expired one."""
    later = site.relay.requests[since:]
    refused = [r for r in later if r.status == 401 and r.path.startswith(CAS)]
    renewed = [r for r in later if f"xet-{kind}-token" in r.path and r.status == 200]
    return bool(renewed) and not refused


def test_an_expired_token_is_refreshed_by_the_client(short_tokens: Site, tmp_path: Path) -> None:
    site = short_tokens
    xet_hash = httpx.head(
        f"{site.server.url}/{site.repo_id}/resolve/main/weights.bin", headers=site.headers()
    ).headers["x-xet-hash"]
    # A download group handed a token that has run out asks the refresh URL for a new one.
    token, expires, cas_url = site.expired_token("read")
    since = len(site.relay.requests)
    group = hf_xet.XetSession().new_file_download_group(
        endpoint=cas_url,
        token=token,
        token_expiry_unix_secs=expires,
        token_refresh_url=site.token_url("read").replace(site.server.url, site.relay.url),
        token_refresh_headers=site.headers(),
    )
    group.start_download_file(hf_xet.XetFileInfo(xet_hash, len(CONTENT)), str(tmp_path / "out"))
    group.wait_to_finish()
    assert (tmp_path / "out").read_bytes() == CONTENT
    assert refreshed(site, "read", since), site.relay.requests[since:]

    # The same for an upload commit.
    token, expires, cas_url = site.expired_token("write")
    since = len(site.relay.requests)
    commit = hf_xet.XetSession().new_upload_commit(
        endpoint=cas_url,
        token=token,
        token_expiry_unix_secs=expires,
        token_refresh_url=site.token_url("write").replace(site.server.url, site.relay.url),
        token_refresh_headers=site.headers(),
    )
    other = mixed(2 * MiB, 52)
    handle = commit.start_upload_bytes(other, sha256=hf_xet.COMPUTE_SHA256)
    commit.wait_to_finish()
    assert handle.result().xet_info.file_size == len(other)
    assert refreshed(site, "write", since), site.relay.requests[since:]

    # huggingface_hub with 3-second tokens, end to end: upload and download.
    api = HfApi(endpoint=site.server.url, token=site.token)
    api.upload_file(path_or_fileobj=other, path_in_repo="other.bin", repo_id=site.repo_id)
    path = hf_hub_download(
        site.repo_id, "other.bin", token=site.token, endpoint=site.server.url,
        cache_dir=tmp_path / "client",
    )  # fmt: skip
    assert Path(path).read_bytes() == other


def test_an_expired_range_url_is_refreshed_by_the_client(short_urls: Site, tmp_path: Path) -> None:
    site = short_urls
    # Longer than the URL lives; the lifetime leaves a loaded machine seconds for the rest.
    site.relay.delay, site.relay.delays_left = 6.5, 1
    since = len(site.relay.requests)
    path = hf_hub_download(
        site.repo_id, "weights.bin", token=site.token, endpoint=site.server.url,
        cache_dir=tmp_path / "client",
    )  # fmt: skip
    assert Path(path).read_bytes() == CONTENT
    seen = [
        (r.method, r.path.split("?")[0].split("/")[-2], r.status)
        for r in site.relay.requests[since:]
    ]
    expired = seen.index(("GET", "xorb-data", 403))
    # A new reconstruction after the 403, and the range fetched with its fresh URL.
    again = seen.index(("GET", "reconstructions", 200), expired)
    assert ("GET", "xorb-data", 206) in seen[again:]
