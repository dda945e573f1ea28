"""Preupload decides like huggingface.co (`hub/upload_modes.py`), seen through the real client:
the repo's `.gitattributes` `filter=lfs` patterns, a binary sample and the size threshold make
a file `lfs`; `.gitignore` (sent with the upload, or the repo's) makes it `shouldIgnore`; what
the client then commits follows, through Xet (the default) and through Git LFS.
"""

import base64
from pathlib import Path
from typing import Any

import httpx
from huggingface_hub import CommitOperationAdd, RepoFile

from tests.hub.conftest import LFS_THRESHOLD, Hub, write_files, xet_disabled


def preupload(hub: Hub, repo_id: str, files: dict[str, bytes], **extra: Any) -> dict[str, Any]:
    body = {
        "files": [
            {"path": path, "sample": base64.b64encode(data[:512]).decode(), "size": len(data)}
            for path, data in files.items()
        ],
        **extra,
    }
    response = httpx.post(
        f"{hub.url}/api/models/{repo_id}/preupload/main",
        json=body,
        headers=hub.headers(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {
        entry["path"]: (entry["uploadMode"], entry["shouldIgnore"])
        for entry in response.json()["files"]
    }


def test_gitattributes_binary_samples_and_size_decide_the_mode(hub: Hub) -> None:
    repo_id = hub.new_repo("modes")

    modes = preupload(
        hub,
        repo_id,
        {
            "weights.bin": b"tiny text",  # *.bin in the default .gitattributes
            "sub/model.safetensors": b"{}",
            "image.raw": b"\x89PNG\r\n\x1a\n\0\0\0",  # a NUL byte: binary
            "notes.txt": b"plain text",
            "big.txt": b"a" * LFS_THRESHOLD,
            "empty.bin": b"",
        },
    )

    assert modes == {
        "weights.bin": ("lfs", False),
        "sub/model.safetensors": ("lfs", False),
        "image.raw": ("lfs", False),
        "notes.txt": ("regular", False),
        "big.txt": ("lfs", False),
        "empty.bin": ("regular", False),
    }


def test_the_repos_own_gitattributes_and_gitignore_count(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("rules")
    api.create_commit(
        repo_id,
        [
            CommitOperationAdd(".gitattributes", b"*.dat filter=lfs\n*.bin -filter\n"),
            CommitOperationAdd(".gitignore", b"*.log\n!keep.log\nscratch/\n"),
        ],
        commit_message="rules",
    )

    modes = preupload(
        hub,
        repo_id,
        {"a.dat": b"text", "a.bin": b"text", "debug.log": b"x", "keep.log": b"x"},
    )
    assert modes == {
        "a.dat": ("lfs", False),
        "a.bin": ("regular", False),
        "debug.log": ("regular", True),
        "keep.log": ("regular", False),
    }
    # The .gitignore of the upload replaces the repo's.
    sent = preupload(hub, repo_id, {"debug.log": b"x", "b.tmp": b"x"}, gitIgnore="*.tmp\n")
    assert sent == {"debug.log": ("regular", False), "b.tmp": ("regular", True)}


def test_the_client_skips_ignored_files_and_sends_lfs_files_as_lfs(
    hub: Hub, tmp_path: Path
) -> None:
    api = hub.api("developer")
    folder = write_files(
        tmp_path / "upload",
        {
            ".gitignore": b"*.log\n",
            "train.log": b"noise\n",
            "config.json": b'{"a": 1}\n',
            "tiny.bin": b"small but tracked by LFS",
        },
    )
    for transport, repo_id in (("xet", hub.new_repo("xet")), ("lfs", hub.new_repo("lfs"))):
        if transport == "lfs":
            with xet_disabled():
                api.upload_folder(repo_id=repo_id, folder_path=folder)
        else:
            api.upload_folder(repo_id=repo_id, folder_path=folder)

        entries = {
            entry.path: entry
            for entry in api.list_repo_tree(repo_id)
            if isinstance(entry, RepoFile)
        }
        assert sorted(entries) == [".gitattributes", ".gitignore", "config.json", "tiny.bin"]
        assert entries["config.json"].lfs is None
        tiny = entries["tiny.bin"].lfs
        assert tiny is not None, transport
        assert tiny.size == len(b"small but tracked by LFS")
        path = api.hf_hub_download(repo_id, "tiny.bin", cache_dir=tmp_path / transport)
        assert Path(path).read_bytes() == b"small but tracked by LFS"
