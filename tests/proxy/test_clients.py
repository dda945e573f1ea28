"""Real clients through a real hubproxy: huggingface_hub 2.x (hf_xet installed, xet not
disabled), transformers and datasets, all byte-identical to what the upstream holds."""

import hashlib
import io
import json
import struct
from pathlib import Path

import pytest
from huggingface_hub import (
    HfApi,
    HfFileSystem,
    file_exists,
    get_safetensors_metadata,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.fake_upstream import FakeHub, GeneratedFile
from tests.support.proxy import ProxyProcess

pytestmark = pytest.mark.clients


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return (
        struct.pack("<Q", len(encoded))
        + encoded
        + b"".join(data for _, _, data in tensors.values())
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


WEIGHTS = safetensors_bytes({"embed.weight": ("F32", [512, 256], bytes(range(256)) * 2048)})
BIG = GeneratedFile(2_000_000, seed=3)
FILES: dict[str, bytes | GeneratedFile] = {
    "config.json": b'{"model_type": "bert", "hidden_size": 8}',
    "model.safetensors": WEIGHTS,
    "big.bin": BIG,
    "sub/dir/notes.txt": b"notes\n",
    "sub/a.txt": b"a",
    "sub/b.txt": b"b",
}


def expected_bytes(path: str) -> bytes:
    content = FILES[path]
    return content if isinstance(content, bytes) else content.read(0, content.size)


@pytest.fixture
def model(upstream: FakeHub, repo_id: str) -> str:
    upstream.tree_page_size = 2
    upstream.add_repo(repo_id, FILES)
    return repo_id


def test_snapshot_download_is_byte_identical_and_pulls_once(
    proxy: ProxyProcess, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    folder = Path(snapshot_download(model, cache_dir=tmp_path / "a"))
    for path in FILES:
        assert sha256((folder / path).read_bytes()) == sha256(expected_bytes(path)), path
    first_round = upstream.file_bytes_served()
    assert first_round == sum(len(expected_bytes(path)) for path in FILES)
    # A second client with an empty cache: everything from hubproxy, nothing from upstream.
    again = Path(snapshot_download(model, cache_dir=tmp_path / "b"))
    assert sha256((again / "big.bin").read_bytes()) == BIG.sha256()
    assert upstream.file_bytes_served() == first_round


def test_hf_hub_download_and_revisions(
    proxy: ProxyProcess, upstream: FakeHub, model: str, tmp_path: Path
) -> None:
    path = hf_hub_download(model, "sub/dir/notes.txt", cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"notes\n"
    upstream.create_tag(model, "v1.0")
    tagged = hf_hub_download(model, "config.json", revision="v1.0", cache_dir=tmp_path)
    assert Path(tagged).read_bytes() == FILES["config.json"]
    pr_commit = upstream.add_pull_request(model, 1, {"config.json": b'{"model_type": "gpt2"}'})
    from_pr = hf_hub_download(model, "config.json", revision="refs/pr/1", cache_dir=tmp_path)
    assert Path(from_pr).read_bytes() == b'{"model_type": "gpt2"}'
    assert pr_commit in from_pr


@pytest.mark.storage_independent
def test_listing_and_existence(proxy: ProxyProcess, model: str) -> None:
    api = HfApi()
    assert sorted(api.list_repo_files(model)) == sorted(FILES)
    top = {entry.path for entry in api.list_repo_tree(model)}
    assert top == {"config.json", "model.safetensors", "big.bin", "sub"}
    nested = {entry.path for entry in api.list_repo_tree(model, path_in_repo="sub/dir")}
    assert nested == {"sub/dir/notes.txt"}
    info = api.model_info(model, files_metadata=True)
    assert info.sha is not None
    assert {sibling.rfilename for sibling in info.siblings or []} == set(FILES)
    assert file_exists(model, "config.json")
    assert not file_exists(model, "missing.json")
    assert api.revision_exists(model, "main")
    assert not api.revision_exists(model, "no-such-branch")
    assert api.repo_exists(model)
    assert not api.repo_exists("acme/never-existed")
    refs = api.list_repo_refs(model)
    assert [branch.name for branch in refs.branches] == ["main"]
    assert len(api.list_repo_commits(model)) == 1
    paths = api.get_paths_info(model, ["config.json", "sub", "nope"])
    assert {item.path for item in paths} == {"config.json", "sub"}


@pytest.mark.storage_independent
def test_error_classes(proxy: ProxyProcess, upstream: FakeHub, model: str, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("acme/no-such-repo", "config.json", cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(model, "config.json", revision="nope", cache_dir=tmp_path)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(model, "missing.txt", cache_dir=tmp_path)
    gated = model + "-gated"
    upstream.add_repo(gated, {"config.json": b"{}"}, gated=True)
    upstream.gated_grants.clear()  # hubproxy's upstream token is not approved
    with pytest.raises(GatedRepoError):
        hf_hub_download(gated, "config.json", cache_dir=tmp_path)


def test_hf_file_system_ranged_reads(proxy: ProxyProcess, upstream: FakeHub, model: str) -> None:
    fs = HfFileSystem(skip_instance_cache=True)
    assert sorted(fs.ls(model, detail=False)) == sorted(
        f"{model}/{name}" for name in ("config.json", "model.safetensors", "big.bin", "sub")
    )
    expected = BIG.read(0, BIG.size)
    with fs.open(f"{model}/big.bin", "rb", block_size=100_000) as handle:
        handle.seek(700_000)
        assert handle.read(50_000) == expected[700_000:750_000]
        handle.seek(1_999_990)
        assert handle.read() == expected[1_999_990:]
    assert fs.info(f"{model}/big.bin")["size"] == BIG.size
    # Ranged reads cost only their chunks (plus read-ahead), not the file.
    assert upstream.file_bytes_served() < BIG.size


def test_safetensors_metadata_uses_ranges(
    proxy: ProxyProcess, upstream: FakeHub, model: str
) -> None:
    metadata = get_safetensors_metadata(model)
    assert metadata.files_metadata["model.safetensors"].tensors["embed.weight"].shape == [512, 256]


def test_transformers_config_and_tokenizer(
    proxy: ProxyProcess, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoConfig, AutoTokenizer

    vocab = {"[UNK]": 0, "[PAD]": 1, "hello": 2, "world": 3}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    upstream.add_repo(
        repo_id,
        {
            "config.json": json.dumps(
                {
                    "model_type": "bert",
                    "vocab_size": 4,
                    "hidden_size": 8,
                    "num_attention_heads": 2,
                    "num_hidden_layers": 1,
                    "intermediate_size": 8,
                }
            ).encode(),
            "tokenizer.json": tokenizer.to_str().encode(),
            "tokenizer_config.json": json.dumps(
                {
                    "tokenizer_class": "PreTrainedTokenizerFast",
                    "unk_token": "[UNK]",
                    "pad_token": "[PAD]",
                }
            ).encode(),
        },
    )
    config = AutoConfig.from_pretrained(repo_id, cache_dir=tmp_path)
    assert config.model_type == "bert"
    assert config.hidden_size == 8
    loaded = AutoTokenizer.from_pretrained(repo_id, cache_dir=tmp_path)
    assert loaded("hello world")["input_ids"] == [2, 3]


def test_datasets_load_dataset(
    proxy: ProxyProcess, upstream: FakeHub, repo_id: str, tmp_path: Path
) -> None:
    import datasets

    csv = io.StringIO()
    csv.write("text,label\n")
    for number in range(50):
        csv.write(f"row {number},{number % 2}\n")
    upstream.add_repo(repo_id, {"data/train.csv": csv.getvalue().encode()}, repo_type="dataset")
    loaded = datasets.load_dataset(repo_id, split="train", cache_dir=str(tmp_path))
    assert loaded.num_rows == 50
    assert loaded[7] == {"text": "row 7", "label": 1}


@pytest.mark.storage_independent
def test_long_listings_page_through_hubproxy(
    proxy: ProxyProcess, upstream: FakeHub, repo_id: str
) -> None:
    # More entries than one hubproxy tree page (1000), and a history longer than upstream pages.
    files: dict[str, bytes | GeneratedFile] = {
        f"shards/part-{number:04d}.txt": b"%d" % number for number in range(1203)
    }
    upstream.commits_page_size = 2
    upstream.add_repo(repo_id, files)
    for number in range(4):
        upstream.commit(repo_id, {"extra.txt": b"%d" % number}, message=f"update {number}")
    api = HfApi()
    listed = api.list_repo_files(repo_id)
    assert len(listed) == 1204
    assert set(listed) == {*files, "extra.txt"}
    commits = api.list_repo_commits(repo_id, formatted=True)
    assert [commit.title for commit in commits] == [
        "update 3",
        "update 2",
        "update 1",
        "update 0",
        "initial commit",
    ]
    assert commits[0].formatted_title == "<p>update 3</p>"
