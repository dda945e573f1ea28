"""A blob stored for a hosted repo is never served through a proxied entry.

The hosted project `team` keeps a private repo with an LFS file and a regular file. An upstream
repo then announces their sha256 and git sha1 (upstream only names the hashes, it has other
bytes): an anonymous client reading the upstream repo through hubproxy must get upstream's
bytes, never the hosted ones from the local store. When upstream really serves the same bytes,
the read succeeds, the bytes having come from upstream; from then on they are cached as usual.
"""

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.fake_upstream import FakeHub, FakeHubServer
from tests.hub.conftest import LFS_JSON, git_blob_oid
from tests.security.conftest import Fortress, commit_body

VAULT = "team/vault"
LURE = "lure/announcer"
SECRET_LFS = os.urandom(600 * 1024)  # more than two chunks of the test chunk size
SECRET_REGULAR = b"api_key = " + os.urandom(32).hex().encode() + b"\n"


def _lfs_upload(fortress: Fortress, client: httpx.Client, repo_id: str, data: bytes) -> str:
    """Upload `data` as an LFS object of `repo_id` (batch, then PUT to the signed link)."""
    oid = hashlib.sha256(data).hexdigest()
    batch = client.post(
        f"/{repo_id}.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{"oid": oid, "size": len(data)}],
        },
        headers={"Accept": LFS_JSON, "Content-Type": LFS_JSON},
    )
    assert batch.status_code == 200, batch.text
    (answer,) = batch.json()["objects"]
    with fortress.client() as anonymous:  # the signed link is the only credential
        stored = anonymous.put(answer["actions"]["upload"]["href"], content=data)
    assert stored.status_code == 200, stored.text
    return oid


@pytest.fixture(scope="module")
def vault(fortress: Fortress) -> Fortress:
    """`team/vault`, private, holding the secret LFS file and the secret regular file."""
    with fortress.client(fortress.developer_token) as client:
        created = client.post("/api/repos/create", json={"name": VAULT, "private": True})
        assert created.status_code == 200, created.text
        oid = _lfs_upload(fortress, client, VAULT, SECRET_LFS)
        body = commit_body("secrets", {"secret.txt": SECRET_REGULAR}).rstrip(b"\n")
        lfs_line = (
            b'{"key": "lfsFile", "value": {"path": "weights.bin", "algo": "sha256", '
            + f'"oid": "{oid}", "size": {len(SECRET_LFS)}}}}}'.encode()
        )
        committed = client.post(
            f"/api/models/{VAULT}/commit/main",
            content=body + b"\n" + lfs_line + b"\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert committed.status_code == 200, committed.text
        # The hosted repo itself serves its files.
        assert client.get(f"/{VAULT}/resolve/main/weights.bin").content == SECRET_LFS
        assert client.get(f"/{VAULT}/resolve/main/secret.txt").content == SECRET_REGULAR
    return fortress


@pytest.fixture
def announcer(fake_hub_server: FakeHubServer) -> Iterator[FakeHub]:
    hub = fake_hub_server.hub
    hub.add_repo(LURE, {"README.md": b"# nothing to see\n"})
    yield hub
    hub.repos.pop(("model", LURE), None)


def test_an_upstream_naming_a_hosted_hash_gets_no_hosted_bytes(
    vault: Fortress, announcer: FakeHub
) -> None:
    decoy_lfs = bytes(len(SECRET_LFS))
    decoy_regular = b"x" * len(SECRET_REGULAR)
    announcer.announce(
        LURE, "weights.bin", decoy_lfs, sha256=hashlib.sha256(SECRET_LFS).hexdigest()
    )
    commit = announcer.announce(
        LURE, "secret.txt", decoy_regular, git_oid=git_blob_oid(SECRET_REGULAR)
    )
    leaks = []
    tried = 0
    with vault.client() as anonymous:
        for path, secret in (("weights.bin", SECRET_LFS), ("secret.txt", SECRET_REGULAR)):
            url = f"/{LURE}/resolve/{commit}/{path}"
            for headers in ({}, {"Range": "bytes=0-99"}, {"Range": f"bytes=10-{len(secret) - 1}"}):
                tried += 1
                try:
                    response = anonymous.get(url, headers=headers)
                except httpx.HTTPError:
                    continue  # a broken transfer gives nothing away either
                start = 10 if headers.get("Range", "").startswith("bytes=10") else 0
                if response.content and response.content in secret[start:]:
                    leaks.append((path, headers, response.status_code))
    assert tried == 6
    assert leaks == [], leaks


def test_bytes_upstream_really_serves_are_read_from_upstream_then_cached(
    vault: Fortress, announcer: FakeHub
) -> None:
    commit = announcer.commit(LURE, {"weights.bin": SECRET_LFS, "secret.txt": SECRET_REGULAR})
    with vault.client() as anonymous:
        for path, content in (("weights.bin", SECRET_LFS), ("secret.txt", SECRET_REGULAR)):
            url = f"/{LURE}/resolve/{commit}/{path}"
            before = announcer.file_bytes_served()
            assert anonymous.get(url).content == content
            assert announcer.file_bytes_served() - before >= len(content)  # upstream served it
            again = announcer.file_bytes_served()
            assert anonymous.get(url).content == content
            assert announcer.file_bytes_served() == again  # now a cache hit
