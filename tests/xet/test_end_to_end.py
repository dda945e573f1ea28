"""The default client (huggingface_hub with hf_xet, no environment variables) against a real
hubproxy: `upload_folder` sends the big file through the Xet CAS, the commit makes it an
ordinary LFS entry, and `snapshot_download` gets it back byte-identical over Xet and, with Xet
disabled, over plain HTTP (ranges included). A second upload of the same content sends no xorb;
a read-scope token cannot upload."""

import hashlib
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem, snapshot_download
from huggingface_hub.errors import HfHubHTTPError

from tests.hub.conftest import Hub, admin_batch, token_of, xet_disabled
from tests.xet.support import MiB, random_data

FILES = {
    "model.safetensors": random_data(50 * MiB, 31),
    "config.json": b'{"architectures": ["Tiny"]}\n',
    "README.md": b"---\nlicense: mit\n---\n# A model uploaded through Xet\n",
    "tokenizer/vocab.txt": random_data(8 * 1024, 32),  # over the test LFS threshold
}


XORB_UPLOAD = "POST /api/hubproxy/xet/v1/xorbs/default/"
SHARD_UPLOAD = "POST /api/hubproxy/xet/v1/shards"


def xet_bytes(hub: Hub) -> float:
    metrics = httpx.get(f"{hub.url}/metrics", timeout=30).text
    found = re.search(r'^hubproxy_hub_uploaded_bytes_total\{transfer="xet"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


def same_files(root: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        assert (
            hashlib.sha256((root / name).read_bytes()).digest() == hashlib.sha256(content).digest()
        ), name


@pytest.fixture(scope="module")
def pushed(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A repo the default client uploaded `FILES` to; its id."""
    folder = tmp_path_factory.mktemp("xet-folder")
    for name, content in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    repo_id = hub.new_repo("xet-e2e")
    before = xet_bytes(hub)
    hub.api().upload_folder(folder_path=folder, repo_id=repo_id, commit_message="Through Xet")
    log = hub.process.log()
    assert "/api/hubproxy/xet/v1/xorbs/default/" in log
    assert "/api/hubproxy/xet/v1/shards" in log
    # The big file travelled as xorbs (a shard registered it: it has a Xet hash below).
    assert xet_bytes(hub) - before >= 0.9 * len(FILES["model.safetensors"])
    return repo_id


def test_the_upload_is_an_ordinary_lfs_entry_that_advertises_xet(hub: Hub, pushed: str) -> None:
    entries = {
        item.path: item for item in hub.api().list_repo_tree(pushed, recursive=True, expand=False)
    }
    big = entries["model.safetensors"]
    content = FILES["model.safetensors"]
    assert big.lfs is not None
    assert big.lfs.sha256 == hashlib.sha256(content).hexdigest()
    assert big.size == len(content)
    assert big.xet_hash is not None
    assert re.fullmatch("[0-9a-f]{64}", big.xet_hash)
    assert entries["config.json"].xet_hash is None  # regular files stay plain
    head = httpx.head(
        f"{hub.url}/{pushed}/resolve/main/model.safetensors", headers=hub.headers(), timeout=30
    )
    assert head.headers["x-xet-hash"] == big.xet_hash
    assert re.fullmatch(
        rf'<{re.escape(hub.url)}/api/models/{pushed}/xet-read-token/[0-9a-f]{{40}}>; rel="xet-auth"',
        head.headers["link"],
    )
    assert head.headers["x-linked-etag"] == f'"{big.lfs.sha256}"'


def test_snapshot_download_over_xet_is_byte_identical(
    hub: Hub, pushed: str, tmp_path: Path
) -> None:
    xet_hash = next(
        item.xet_hash
        for item in hub.api().list_repo_tree(pushed)
        if item.path == "model.safetensors"
    )
    root = snapshot_download(
        pushed, cache_dir=tmp_path / "cache", token=hub.tokens["developer"], endpoint=hub.url
    )
    same_files(Path(root), FILES)
    # hf_xet asked the CAS for the file's reconstruction and fetched the xorb ranges.
    log = hub.process.log()
    assert f"/api/hubproxy/xet/v1/reconstructions/{xet_hash}" in log
    assert "/api/hubproxy/xet/v1/xorb-data/" in log


def test_snapshot_download_without_xet_reconstructs_on_the_server(
    hub: Hub, pushed: str, tmp_path: Path
) -> None:
    with xet_disabled():
        root = snapshot_download(
            pushed, cache_dir=tmp_path / "cache", token=hub.tokens["developer"], endpoint=hub.url
        )
    same_files(Path(root), FILES)
    content = FILES["model.safetensors"]
    url = f"{hub.url}/{pushed}/resolve/main/model.safetensors"
    for start, end in [(0, 0), (12_345, 2 * MiB + 7), (len(content) - 100, len(content) - 1)]:
        response = httpx.get(
            url, headers={**hub.headers(), "Range": f"bytes={start}-{end}"}, timeout=60
        )
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes {start}-{end}/{len(content)}"
        assert response.content == content[start : end + 1]
    past = httpx.get(url, headers={**hub.headers(), "Range": f"bytes={len(content)}-"}, timeout=30)
    assert past.status_code == 416


def test_a_second_upload_of_the_same_content_sends_no_xorb(
    hub: Hub, pushed: str, tmp_path: Path
) -> None:
    again = hub.new_repo("xet-again")
    before = xet_bytes(hub)
    sent = hub.process.log().count(XORB_UPLOAD)
    hub.api().upload_file(
        path_or_fileobj=FILES["model.safetensors"], path_in_repo="copy.safetensors", repo_id=again
    )
    # The client sent no xorb at all (not merely none the server kept): only a shard.
    log = hub.process.log()
    assert log.count(XORB_UPLOAD) == sent
    assert log.count(SHARD_UPLOAD) > 0
    assert xet_bytes(hub) == before
    path = hub.api().hf_hub_download(again, "copy.safetensors", cache_dir=tmp_path / "cache")
    assert (
        hashlib.sha256(Path(path).read_bytes()).digest()
        == hashlib.sha256(FILES["model.safetensors"]).digest()
    )


def test_a_read_scope_token_cannot_upload(hub: Hub, pushed: str) -> None:
    [created] = admin_batch(hub.data_dir, [("token", "create", "developer", "--scope", "read")])
    reader = HfApi(endpoint=hub.url, token=token_of(created))
    head = hub.head(pushed)
    with pytest.raises(HfHubHTTPError) as refused:
        reader.upload_file(
            path_or_fileobj=random_data(4096, 33), path_in_repo="nope.bin", repo_id=pushed
        )
    assert refused.value.response.status_code == 403
    token = httpx.get(
        f"{hub.url}/api/models/{pushed}/xet-write-token/main",
        headers={"Authorization": f"Bearer {token_of(created)}"},
        timeout=30,
    )
    assert token.status_code == 403
    assert hub.head(pushed) == head


def test_hf_file_system_reads_ranges_of_a_xet_file(hub: Hub, pushed: str, tmp_path: Path) -> None:
    """Range reads are plain `/resolve` ranges (reconstructed on the server); a whole-file
    `get_file` goes through hf_xet."""
    content = FILES["model.safetensors"]
    fs = HfFileSystem(endpoint=hub.url, token=hub.tokens["developer"], skip_instance_cache=True)
    path = f"{pushed}/model.safetensors"
    assert fs.info(path)["size"] == len(content)
    with fs.open(path, "rb", block_size=1_000_000) as handle:
        handle.seek(12_345_678)
        assert handle.read(100_000) == content[12_345_678:12_445_678]
        handle.seek(len(content) - 1000)
        assert handle.read() == content[-1000:]
    assert fs.cat_file(path, start=7, end=7 + 5 * MiB) == content[7 : 7 + 5 * MiB]
    assert fs.read_block(path, 40 * MiB, 1234) == content[40 * MiB : 40 * MiB + 1234]
    fetched = hub.process.log().count("/api/hubproxy/xet/v1/xorb-data/")
    fs.get_file(path, str(tmp_path / "whole"))
    same_files(tmp_path, {"whole": content})
    assert hub.process.log().count("/api/hubproxy/xet/v1/xorb-data/") > fetched


def test_a_pull_request_through_xet_leaves_the_branch_alone(hub: Hub, pushed: str) -> None:
    """`create_pr=True` with a Xet-sized file: the write token for `None?create_pr=1`, the
    xorbs, then a commit onto a new `refs/pr/N`; the branch does not move."""
    head = hub.head(pushed)
    content = random_data(64 * 1024, 34)  # over the test LFS threshold: through Xet
    api = hub.api()
    created = api.create_commit(
        pushed, [CommitOperationAdd("proposal.bin", content)],
        commit_message="A proposal", create_pr=True,
    )  # fmt: skip
    assert created.pr_url is not None
    assert created.pr_num is not None
    assert hub.head(pushed) == head
    proposed = httpx.get(
        f"{hub.url}/{pushed}/resolve/{quote(f'refs/pr/{created.pr_num}', safe='')}/proposal.bin",
        headers=hub.headers(),
        timeout=60,
    )
    assert proposed.status_code == 200
    assert hashlib.sha256(proposed.content).digest() == hashlib.sha256(content).digest()
