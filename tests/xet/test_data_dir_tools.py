"""Nothing uploaded through Xet is lost by the data-dir tools: `admin backup` / `restore` and
`mirror export` / `import` carry the xorbs and the `xet_*` rows, so the files come back
byte-identical over plain `/resolve` (with Range) and over Xet; `cache gc` deletes the xorbs no
file needs any more and never one a file still uses."""

import hashlib
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download

from tests.conftest import ProxyFactory
from tests.governance.conftest import admin, admin_json, new_token
from tests.hub.conftest import HUB_ENVIRONMENT
from tests.proxy.test_bundles import flip_byte, mirror
from tests.proxy.test_cache_cli import cache_cli, cache_json
from tests.support.cli import run_cli
from tests.support.proxy import ProxyProcess
from tests.xet.support import MiB, random_data

pytestmark = [pytest.mark.clients, pytest.mark.local_storage]

WEIGHTS = random_data(3 * MiB + 12_345, 41)
SHARED = random_data(2 * MiB + 7, 42)
REPO = "team/xet-kept"
XORB_DATA = "/api/hubproxy/xet/v1/xorb-data/"


def hosted_site(
    proxy_factory: ProxyFactory, data_dir: Path, *extra: str
) -> tuple[ProxyProcess, str]:
    """A server on `data_dir` with the hosted project `team` and a maintainer's token."""
    admin(data_dir, "user", "create", "root", "--admin")
    admin(data_dir, "project", "create", "team", "--kind", "hosted")
    token = member(data_dir, "owner", "maintainer")
    return proxy_factory(*extra, data_dir=data_dir, environment=HUB_ENVIRONMENT), token


def member(data_dir: Path, user: str, role: str) -> str:
    admin(data_dir, "user", "create", user)
    admin(data_dir, "member", "add", "team", user, "--role", role)
    return new_token(data_dir, "token", "create", user, "--scope", "write")


def upload(server: ProxyProcess, token: str, repo: str, files: dict[str, bytes]) -> None:
    """Upload through Xet (the default client), one commit per file: one upload session each."""
    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo, exist_ok=True)
    for name, content in files.items():
        api.upload_file(path_or_fileobj=content, path_in_repo=name, repo_id=repo)
    assert "/api/hubproxy/xet/v1/shards" in server.log()


def served(
    server: ProxyProcess, token: str, repo: str, name: str, content: bytes, tmp: Path
) -> None:
    """`name` comes back as `content`: plain, in ranges, and over Xet."""
    url = f"{server.url}/{repo}/resolve/main/{name}"
    headers = {"Authorization": f"Bearer {token}"}
    whole = httpx.get(url, headers=headers, timeout=60)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).digest() == hashlib.sha256(content).digest()
    for start, end in ((0, 99), (MiB + 3, 2 * MiB), (len(content) - 10, len(content) - 1)):
        part = httpx.get(url, headers={**headers, "Range": f"bytes={start}-{end}"}, timeout=60)
        assert part.status_code == 206
        assert part.content == content[start : end + 1]
    fetched_before = server.log().count(XORB_DATA)
    path = hf_hub_download(repo, name, token=token, endpoint=server.url, cache_dir=tmp)
    assert Path(path).read_bytes() == content
    assert server.log().count(XORB_DATA) > fetched_before  # hf_xet read the xorbs


def xorb_files(data_dir: Path) -> set[str]:
    return {path.name for path in (data_dir / "storage" / "xorbs").rglob("*") if path.is_file()}


def xorbs_of(data_dir: Path, content: bytes) -> set[str]:
    """The xorbs the registered file with this content is made of."""
    with sqlite3.connect(data_dir / "hubproxy.sqlite3") as connection:
        rows = connection.execute(
            "SELECT terms FROM xet_files WHERE sha256 = ?", (hashlib.sha256(content).hexdigest(),)
        ).fetchall()
    return {term[0] for (terms,) in rows for term in json.loads(terms)}


def test_backup_and_restore_carry_the_xorbs(proxy_factory: ProxyFactory, tmp_path: Path) -> None:
    source = tmp_path / "source"
    server, token = hosted_site(proxy_factory, source)
    upload(server, token, REPO, {"model.safetensors": WEIGHTS})
    stored = xorb_files(source)
    assert stored

    backup = tmp_path / "backup"
    completed = admin(source, "backup", "--to", str(backup))  # while the server runs
    assert f"Xet files 1: {len(stored)} xorbs" in completed.stdout
    manifest = json.loads((backup / "manifest.json").read_text())
    assert {item["hash"] for item in manifest["xorbs"]} == stored
    server.stop()

    restored = tmp_path / "restored"
    completed = run_cli("admin", "restore", str(backup), "--data-dir", str(restored))
    assert completed.returncode == 0, completed.stderr
    assert xorb_files(restored) == stored
    again = proxy_factory(data_dir=restored, environment=HUB_ENVIRONMENT)
    served(again, token, REPO, "model.safetensors", WEIGHTS, tmp_path / "client")


def test_a_bundle_carries_the_xorbs_and_a_corrupt_one_imports_nothing(
    proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    online_dir = tmp_path / "online"
    online, token = hosted_site(proxy_factory, online_dir)
    upload(online, token, REPO, {"model.safetensors": WEIGHTS, "notes.txt": b"small\n"})
    online.stop()

    bundle = tmp_path / "bundle"
    exported = mirror("export", REPO, "--to", str(bundle), "--data-dir", str(online_dir))
    assert exported.returncode == 0, exported.stderr
    assert "1 Xet files in" in exported.stdout
    assert {path.name for path in (bundle / "xorbs").iterdir()} == xorb_files(online_dir)
    # The Xet file travels as xorbs, not as a whole blob.
    assert not (bundle / "blobs" / "sha256" / hashlib.sha256(WEIGHTS).hexdigest()).exists()

    site = tmp_path / "site"
    imported = mirror("import", str(bundle), "--data-dir", str(site))
    assert imported.returncode == 0, imported.stderr
    assert mirror("import", str(bundle), "--data-dir", str(site)).returncode == 0  # idempotent
    reader = member(site, "bob", "viewer")
    offline = proxy_factory("--offline", data_dir=site)
    served(offline, reader, REPO, "model.safetensors", WEIGHTS, tmp_path / "client")
    tree = HfApi(endpoint=offline.url, token=reader).list_repo_tree(REPO)
    assert {item.path: getattr(item, "xet_hash", None) is not None for item in tree} == {
        ".gitattributes": False,
        "model.safetensors": True,
        "notes.txt": False,
    }

    xorb = next((bundle / "xorbs").iterdir())
    flip_byte(xorb, xorb.stat().st_size // 2)
    corrupt_site = tmp_path / "corrupt-site"
    refused = mirror("import", str(bundle), "--data-dir", str(corrupt_site))
    assert refused.returncode == 2
    assert f"xorb {xorb.name} is corrupt in the bundle" in refused.stderr
    assert admin_json(corrupt_site, "project", "list") == []


def test_gc_deletes_the_xorbs_no_file_uses_and_keeps_the_others(
    proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server, token = hosted_site(proxy_factory, data_dir)
    upload(server, token, "team/doomed", {"weights.bin": WEIGHTS, "shared.bin": SHARED})
    upload(server, token, "team/survivor", {"shared.bin": SHARED})  # the same xorbs
    only_doomed, shared = xorbs_of(data_dir, WEIGHTS), xorbs_of(data_dir, SHARED)
    assert only_doomed
    assert shared
    assert not only_doomed & shared
    assert xorb_files(data_dir) == only_doomed | shared

    HfApi(endpoint=server.url, token=token).delete_repo("team/doomed")
    # Within the grace (hf_xet may still name them in a later upload) nothing is deleted.
    kept = cache_json(data_dir, "gc")["xet"]
    assert kept == {"files": 1, "xorbs": 0, "xorb_bytes": 0, "orphan_objects": 0}
    assert xorb_files(data_dir) == only_doomed | shared
    report = cache_json(data_dir, "gc", "--xet-grace", "0s")["xet"]
    assert report["xorbs"] == len(only_doomed)
    assert report["xorb_bytes"] > len(WEIGHTS) // 2
    assert xorb_files(data_dir) == shared
    served(server, token, "team/survivor", "shared.bin", SHARED, tmp_path / "client")

    # A xorb object no row records (a crash between storing and recording it) goes only while
    # no server runs.
    stray = data_dir / "storage" / "xorbs" / "ab" / ("ab" + "0" * 62)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"stray")
    assert cache_json(data_dir, "gc", "--xet-grace", "0s")["xet"]["orphan_objects"] == 0
    server.stop()
    swept = cache_json(data_dir, "gc", "--xet-grace", "0s")["xet"]
    assert swept == {"files": 0, "xorbs": 0, "xorb_bytes": 0, "orphan_objects": 1}
    assert not stray.exists()
    server.start()
    served(server, token, "team/survivor", "shared.bin", SHARED, tmp_path / "client-2")
    assert cache_cli(data_dir, "gc", "--xet-grace", "soon").returncode == 2
