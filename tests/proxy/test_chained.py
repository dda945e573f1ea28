"""A hubproxy whose upstream is another hubproxy: client → edge → central → upstream hub."""

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError

from tests.conftest import TEST_CHUNK_SIZE, UPSTREAM_TOKEN
from tests.fake_upstream import FakeHub, FakeHubServer, GeneratedFile
from tests.governance.conftest import admin as run_admin
from tests.governance.conftest import new_token
from tests.support.databases import database_environment
from tests.support.proxy import ProxyProcess

pytestmark = pytest.mark.clients

BIG = GeneratedFile(2_000_000, seed=61)


def test_edge_in_front_of_central_pulls_once(
    fake_hub_server: FakeHubServer, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    upstream.tree_page_size = 2
    upstream.add_repo(
        repo_id, {"config.json": b'{"model_type": "bert"}', "big.bin": BIG, "sub/a.txt": b"a"}
    )
    central = ProxyProcess(
        tmp_path / "central", fake_hub_server.url, extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment={"HUBPROXY_UPSTREAM_TOKEN": UPSTREAM_TOKEN},
    )  # fmt: skip
    with (
        central,
        ProxyProcess(tmp_path / "edge", central.url, extra_args=("--chunk-size", "1MiB")) as edge,
    ):

        def download(number: int) -> str:
            path = hf_hub_download(
                repo_id, "big.bin", cache_dir=tmp_path / f"client-{number}", endpoint=edge.url
            )
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(download, range(6))) == [BIG.sha256()] * 6
        folder = Path(
            snapshot_download(repo_id, cache_dir=tmp_path / "snapshot", endpoint=edge.url)
        )
        assert (folder / "sub" / "a.txt").read_bytes() == b"a"
        assert sorted(HfApi(endpoint=edge.url).list_repo_files(repo_id)) == [
            "big.bin",
            "config.json",
            "sub/a.txt",
        ]
        assert upstream.file_bytes_served() == BIG.size + len(b'{"model_type": "bert"}') + 1


@pytest.mark.storage_independent
def test_edge_reaches_a_private_project_of_its_parent_with_a_token(
    fake_hub_server: FakeHubServer, upstream: FakeHub, tmp_path: Path
) -> None:
    """The central hubproxy keeps `vault` (a gated upstream namespace) private; an edge whose
    upstream token is a robot of that project serves it, an edge without one cannot."""
    upstream.add_repo("vault/model", {"config.json": b'{"secret": true}'}, gated=True)
    central_dir = tmp_path / "central"
    admin = [sys.executable, "-m", "hubproxy", "admin", "--data-dir", str(central_dir)]
    # The commands act on the central's database, wherever the suite keeps it.
    environment = {**os.environ, **database_environment(central_dir)}
    subprocess.run([*admin, "user", "create", "root", "--admin"], check=True, env=environment)
    subprocess.run(
        [*admin, "project", "create", "vault", "--kind", "proxy"], check=True, env=environment
    )
    created = subprocess.run(
        [*admin, "robot", "create", "vault", "edge-site", "-p", "read"],
        check=True, capture_output=True, text=True, env=environment,
    )  # fmt: skip
    robot_token = created.stdout.splitlines()[-1]
    central = ProxyProcess(
        central_dir, fake_hub_server.url, extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment={"HUBPROXY_UPSTREAM_TOKEN": UPSTREAM_TOKEN},
    )  # fmt: skip
    with (
        central,
        ProxyProcess(
            tmp_path / "edge", central.url, environment={"HUBPROXY_UPSTREAM_TOKEN": robot_token}
        ) as edge,
        ProxyProcess(tmp_path / "stranger", central.url) as stranger,
    ):
        path = hf_hub_download(
            "vault/model", "config.json", cache_dir=tmp_path / "c", endpoint=edge.url
        )
        assert Path(path).read_bytes() == b'{"secret": true}'
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(
                "vault/model", "config.json", cache_dir=tmp_path / "s", endpoint=stranger.url
            )
        audit = subprocess.run(
            [*admin, "audit", "--json", "--action", "download", "--repo", "vault/model"],
            check=True, capture_output=True, text=True, env=environment,
        )  # fmt: skip
        actors = {
            (r["actor_kind"], r["actor_name"], r["decision"]) for r in json.loads(audit.stdout)
        }
        assert ("robot", "edge-site", "allow") in actors


def test_edge_serves_a_hosted_project_of_its_parent(
    fake_hub_server: FakeHubServer, tmp_path: Path
) -> None:
    """A private hosted repo on the central hubproxy, uploaded there by a developer, is served
    by an edge whose upstream token is a robot of that project: same commits, same bytes; new
    commits show up at the edge; an edge without the token sees nothing."""
    central_dir = tmp_path / "central"
    run_admin(central_dir, "user", "create", "root", "--admin")
    run_admin(central_dir, "project", "create", "labs", "--kind", "hosted")
    run_admin(central_dir, "user", "create", "alice")
    run_admin(central_dir, "member", "add", "labs", "alice", "--role", "developer")
    alice_token = new_token(central_dir, "token", "create", "alice", "--scope", "write")
    robot_token = new_token(central_dir, "robot", "create", "labs", "edge-site", "-p", "read")
    with (
        ProxyProcess(central_dir, fake_hub_server.url) as central,
        ProxyProcess(
            tmp_path / "edge", central.url, extra_args=("--revision-ttl", "0"),
            environment={"HUBPROXY_UPSTREAM_TOKEN": robot_token},
        ) as edge,
        ProxyProcess(tmp_path / "stranger", central.url) as stranger,
    ):  # fmt: skip
        alice = HfApi(endpoint=central.url, token=alice_token)
        alice.create_repo("labs/model")
        first = alice.create_commit(
            "labs/model",
            [
                CommitOperationAdd("big.bin", BIG.read(0, BIG.size)),
                CommitOperationAdd("sub/a.txt", b"a"),
            ],
            commit_message="weights",
        ).oid
        folder = Path(snapshot_download("labs/model", cache_dir=tmp_path / "c1", endpoint=edge.url))
        assert folder.name == first
        assert hashlib.sha256((folder / "big.bin").read_bytes()).hexdigest() == BIG.sha256()
        assert (folder / "sub" / "a.txt").read_bytes() == b"a"
        second = alice.create_commit(
            "labs/model", [CommitOperationAdd("sub/a.txt", b"b")], commit_message="fix a"
        ).oid
        path = hf_hub_download(
            "labs/model", "sub/a.txt", cache_dir=tmp_path / "c2", endpoint=edge.url
        )
        assert Path(path).read_bytes() == b"b"
        assert HfApi(endpoint=edge.url).model_info("labs/model").sha == second
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=stranger.url).model_info("labs/model")
