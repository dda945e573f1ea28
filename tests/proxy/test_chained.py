"""A hubproxy whose upstream is another hubproxy: client → edge → central → upstream hub."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download

from tests.conftest import TEST_CHUNK_SIZE, UPSTREAM_TOKEN
from tests.fake_upstream import FakeHub, FakeHubServer, GeneratedFile
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
