"""The `hf` command line against the private hub, as a user runs it with `HF_TOKEN` set:
`hf upload` creates the repo and uploads a folder (a nested small file and an LFS file), and
`hf download` brings back the same bytes.
"""

import os
import subprocess
import sys
from pathlib import Path

from tests.hub.conftest import LFS_THRESHOLD, Hub, random_bytes, sha256, unique_repo_id, write_files


def hf(hub: Hub, home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    token = hub.tokens["developer"]
    assert token is not None
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("HF_")},
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_TOKEN": token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "huggingface_hub.cli.hf", *arguments],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed


def test_hf_upload_then_hf_download(hub: Hub, tmp_path: Path) -> None:
    repo_id = unique_repo_id("team", "cli-repo")
    files = {
        "config.json": b'{"from": "cli"}\n',
        "sub/dir/notes.txt": b"nested\n",
        "weights.bin": random_bytes(4 * LFS_THRESHOLD),
    }
    folder = write_files(tmp_path / "upload", files)

    hf(hub, tmp_path / "home", "upload", repo_id, str(folder))
    hf(hub, tmp_path / "home", "download", repo_id, "--local-dir", str(tmp_path / "download"))

    downloaded = {
        path.relative_to(tmp_path / "download").as_posix(): sha256(path.read_bytes())
        for path in (tmp_path / "download").rglob("*")
        if path.is_file() and ".cache" not in path.parts
    }
    assert downloaded.pop(".gitattributes")
    assert downloaded == {name: sha256(content) for name, content in files.items()}
    assert sorted(hub.api("developer").list_repo_files(repo_id)) == sorted(
        [".gitattributes", *files]
    )
