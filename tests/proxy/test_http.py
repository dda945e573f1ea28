"""The Hub wire contract through a real hubproxy, checked header by header with httpx."""

import hashlib

import httpx
import pytest

from tests.fake_upstream import FakeHub, GeneratedFile
from tests.support.proxy import ProxyProcess

CONFIG = b'{"model_type": "bert", "hidden_size": 8}\n'
WEIGHTS = GeneratedFile(1_500_000, seed=7)  # LFS, six 256 KiB chunks


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@pytest.fixture
def repo(upstream: FakeHub, repo_id: str) -> tuple[str, str]:
    commit = upstream.add_repo(
        repo_id,
        {"config.json": CONFIG, "model.safetensors": WEIGHTS, "sub/dir/notes.txt": b"hello"},
    )
    return repo_id, commit


def test_head_regular_file(proxy: ProxyProcess, repo: tuple[str, str]) -> None:
    repo_id, commit = repo
    response = httpx.head(f"{proxy.url}/{repo_id}/resolve/main/config.json")
    assert response.status_code == 200
    assert response.headers["x-repo-commit"] == commit
    assert response.headers["etag"] == f'"{git_sha1(CONFIG)}"'
    assert response.headers["content-length"] == str(len(CONFIG))
    assert response.headers["accept-ranges"] == "bytes"
    assert "x-linked-etag" not in response.headers
    assert response.headers["x-request-id"]


def test_head_lfs_file_has_linked_headers_and_no_xet(
    proxy: ProxyProcess, repo: tuple[str, str]
) -> None:
    repo_id, commit = repo
    response = httpx.head(f"{proxy.url}/{repo_id}/resolve/main/model.safetensors")
    assert response.status_code == 200
    sha256 = WEIGHTS.sha256()
    assert response.headers["x-linked-etag"] == f'"{sha256}"'
    assert response.headers["etag"] == f'"{sha256}"'
    assert response.headers["x-linked-size"] == str(WEIGHTS.size)
    assert response.headers["content-length"] == str(WEIGHTS.size)
    assert response.headers["x-repo-commit"] == commit
    assert not any(name.startswith("x-xet") for name in response.headers)
    assert "link" not in response.headers


def test_get_full_and_ranges(proxy: ProxyProcess, upstream: FakeHub, repo: tuple[str, str]) -> None:
    repo_id, _ = repo
    url = f"{proxy.url}/{repo_id}/resolve/main/model.safetensors"
    full = httpx.get(url)
    assert full.status_code == 200
    assert hashlib.sha256(full.content).hexdigest() == WEIGHTS.sha256()
    expected = WEIGHTS.read(0, WEIGHTS.size)
    for header, start, end in [
        ("bytes=0-99", 0, 100),
        ("bytes=300000-", 300000, WEIGHTS.size),
        ("bytes=-10", WEIGHTS.size - 10, WEIGHTS.size),
        ("bytes=262140-262150", 262140, 262151),
    ]:
        response = httpx.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{WEIGHTS.size}"
        assert response.headers["content-length"] == str(end - start)
        assert response.content == expected[start:end]
    unsatisfiable = httpx.get(url, headers={"Range": f"bytes={WEIGHTS.size}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{WEIGHTS.size}"
    assert unsatisfiable.headers["x-error-code"] == "RangeNotSatisfiable"
    malformed = httpx.get(url, headers={"Range": "bytes=9-2"})
    assert malformed.status_code == 400
    assert malformed.headers["x-error-code"] == "BadRequest"
    stale_validator = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": '"0000"'})
    assert stale_validator.status_code == 200
    assert len(stale_validator.content) == WEIGHTS.size
    fresh_validator = httpx.get(
        url, headers={"Range": "bytes=0-9", "If-Range": f'"{WEIGHTS.sha256()}"'}
    )
    assert fresh_validator.status_code == 206
    # Upstream paid for the file once, however many times it was read.
    assert upstream.file_bytes_served() == WEIGHTS.size


def test_errors_carry_hub_error_codes(
    proxy: ProxyProcess, upstream: FakeHub, repo: tuple[str, str]
) -> None:
    repo_id, commit = repo
    missing_file = httpx.head(f"{proxy.url}/{repo_id}/resolve/main/nope.txt")
    assert missing_file.status_code == 404
    assert missing_file.headers["x-error-code"] == "EntryNotFound"
    assert missing_file.headers["x-repo-commit"] == commit
    missing_revision = httpx.get(f"{proxy.url}/{repo_id}/resolve/nobranch/config.json")
    assert missing_revision.headers["x-error-code"] == "RevisionNotFound"
    assert missing_revision.status_code == 404
    missing_repo = httpx.get(f"{proxy.url}/api/models/acme/does-not-exist")
    assert missing_repo.headers["x-error-code"] == "RepoNotFound"
    assert missing_repo.json() == {"error": "Repository not found"}
    upstream.add_repo("acme/gated-" + repo_id.split("/")[1], {"w.bin": b"x" * 20}, gated=True)
    upstream.gated_grants.clear()
    gated = httpx.get(f"{proxy.url}/acme/gated-{repo_id.split('/')[1]}/resolve/main/w.bin")
    assert gated.headers["x-error-code"] == "GatedRepo"
    assert gated.status_code in (401, 403)


@pytest.mark.parametrize(
    "path",
    [
        "/acme/x/resolve/main/%2E%2E/%2E%2E/etc/passwd",
        "/acme/x/resolve/main/a%00b",
        "/acme/x/resolve/main/%2Fetc%2Fpasswd",
        "/ac..me/x/resolve/main/config.json",
        "/api/models/acme/x/tree/main/..%2F..%2F",
    ],
)
def test_bad_names_are_rejected_before_anything_else(
    proxy: ProxyProcess, upstream: FakeHub, path: str
) -> None:
    response = httpx.get(proxy.url + path)
    assert response.status_code == 400
    assert response.headers["x-error-code"] == "BadRequest"
    assert upstream.count() == 0


def test_tree_pages_point_back_at_the_proxy_and_hide_xet(
    proxy: ProxyProcess, upstream: FakeHub, repo: tuple[str, str]
) -> None:
    repo_id, commit = repo
    upstream.tree_page_size = 2  # upstream paginates too; the proxy follows it itself
    url = f"{proxy.url}/api/models/{repo_id}/tree/main?recursive=true&expand=false"
    entries = []
    while url:
        response = httpx.get(url)
        assert response.status_code == 200
        entries.extend(response.json())
        link = response.links.get("next", {}).get("url")
        assert link is None or link.startswith(proxy.url)
        url = link
    paths = {entry["path"] for entry in entries}
    assert paths == {"config.json", "model.safetensors", "sub", "sub/dir", "sub/dir/notes.txt"}
    assert all("xetHash" not in entry for entry in entries)
    lfs = next(entry for entry in entries if entry["path"] == "model.safetensors")
    assert lfs["lfs"]["oid"] == WEIGHTS.sha256()
    subdir = httpx.get(f"{proxy.url}/api/models/{repo_id}/tree/{commit}/sub%2Fdir")
    assert [entry["path"] for entry in subdir.json()] == ["sub/dir/notes.txt"]
    missing = httpx.get(f"{proxy.url}/api/models/{repo_id}/tree/main/nothing")
    assert missing.status_code == 404
    assert missing.headers["x-error-code"] == "EntryNotFound"


def test_repo_info_refs_commits_paths_info(
    proxy: ProxyProcess, upstream: FakeHub, repo: tuple[str, str]
) -> None:
    repo_id, commit = repo
    info = httpx.get(f"{proxy.url}/api/models/{repo_id}/revision/main").json()
    assert info["sha"] == commit
    assert "xetEnabled" not in info
    refs = httpx.get(f"{proxy.url}/api/models/{repo_id}/refs").json()
    assert refs["branches"][0]["targetCommit"] == commit
    assert refs["converts"] == []
    commits = httpx.get(f"{proxy.url}/api/models/{repo_id}/commits/main").json()
    assert [item["id"] for item in commits] == [commit]
    paths = httpx.post(
        f"{proxy.url}/api/models/{repo_id}/paths-info/main",
        data={"paths": ["config.json", "missing", "sub"], "expand": "false"},
    ).json()
    assert {entry["path"] for entry in paths} == {"config.json", "sub"}


def test_client_tokens_never_reach_upstream(
    proxy: ProxyProcess, upstream: FakeHub, repo: tuple[str, str]
) -> None:
    repo_id, _ = repo
    headers = {"Authorization": "Bearer hf_client_personal_token"}
    httpx.get(f"{proxy.url}/{repo_id}/resolve/main/model.safetensors", headers=headers)
    httpx.get(f"{proxy.url}/api/models/{repo_id}", headers=headers)
    records = upstream.requests
    assert records
    for record in records:
        if record.origin == "hub":
            assert record.authorization == "Bearer hf_upstream_secret"
        else:
            assert record.authorization is None  # the CDN gets no credential at all


def test_whoami_and_side_endpoints(proxy: ProxyProcess) -> None:
    anonymous = httpx.get(f"{proxy.url}/api/whoami-v2")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "token" in anonymous.json()["error"]
    assert httpx.get(f"{proxy.url}/api/agent-harnesses").json() == {
        "standardEnvVars": [],
        "harnesses": {},
    }
    assert httpx.head(f"{proxy.url}/api/telemetry/transformers").status_code == 200
    assert httpx.get(f"{proxy.url}/health/live").json() == {"status": "ok"}
    assert httpx.get(f"{proxy.url}/health/ready").json()["status"] == "ready"


def test_every_error_has_the_hub_shape(proxy: ProxyProcess) -> None:
    for method, path, status, code in [
        ("PATCH", "/acme/x/resolve/main/config.json", 405, "MethodNotAllowed"),
        ("GET", "/no/such/page", 404, "NotFound"),
        ("DELETE", "/api/models/acme/x/refs", 405, "MethodNotAllowed"),
    ]:
        response = httpx.request(method, proxy.url + path)
        assert response.status_code == status, path
        assert response.headers["x-error-code"] == code, path
        assert response.headers["x-error-message"]
        assert "error" in response.json()
