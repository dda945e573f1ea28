"""Commits that must be refused, and refused without a trace: a stale `parentCommit` (412
`PreconditionFailed`), deleting a missing file (404 `EntryNotFound` with the Hub's text),
malformed NDJSON (400 `BadRequest`), `lfsFile` lines naming content this repo never received
(422 `UploadRejected`, also when another repo holds it), LFS uploads whose bytes do not match
their oid (422, and the oid stays unusable) and LFS upload hrefs with a tampered signature (403).
After each refusal the branch still points where it did.
"""

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

from tests.hub.conftest import LFS_JSON, LFS_THRESHOLD, Hub, random_bytes, sha256


def header_line(summary: str = "A commit", **extra: str) -> dict[str, Any]:
    return {"key": "header", "value": {"summary": summary, "description": "", **extra}}


def file_line(path: str, content: bytes) -> dict[str, Any]:
    encoded = base64.b64encode(content).decode()
    return {"key": "file", "value": {"content": encoded, "path": path, "encoding": "base64"}}


def lfs_line(path: str, oid: str, size: int) -> dict[str, Any]:
    return {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}


def post_commit(
    hub: Hub, repo_id: str, body: bytes | list[dict[str, Any]], principal: str = "developer"
) -> httpx.Response:
    """`POST /api/models/{repo}/commit/main` with an NDJSON body (or raw bytes)."""
    if isinstance(body, list):
        body = b"".join(json.dumps(line).encode() + b"\n" for line in body)
    return httpx.post(
        f"{hub.url}/api/models/{repo_id}/commit/main",
        content=body,
        headers={**hub.headers(principal), "Content-Type": "application/x-ndjson"},
        timeout=30,
    )


def lfs_upload_action(
    hub: Hub, repo_id: str, oid: str, size: int, principal: str = "developer"
) -> dict[str, Any]:
    """The LFS batch API's answer for one object to upload to `main`."""
    response = httpx.post(
        f"{hub.url}/{repo_id}.git/info/lfs/objects/batch",
        content=json.dumps(
            {
                "operation": "upload",
                "transfers": ["basic", "multipart"],
                "objects": [{"oid": oid, "size": size}],
                "hash_algo": "sha256",
                "ref": {"name": "main"},
            }
        ),
        headers={**hub.headers(principal), "Accept": LFS_JSON, "Content-Type": LFS_JSON},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    [found] = response.json()["objects"]
    assert (found["oid"], found["size"]) == (oid, size)
    assert "error" not in found, found
    actions: dict[str, Any] = found["actions"]
    assert actions["upload"]["href"].startswith("http"), actions
    return actions


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.headers, response.text)
    assert response.headers["x-error-code"] == code


@pytest.fixture(scope="module")
def repo_id(hub: Hub) -> str:
    """A repo whose `main` holds `file.txt`; only refused commits are sent to it."""
    repo_id = hub.new_repo("refusals")
    hub.api("developer").upload_file(
        path_or_fileobj=b"present\n", path_in_repo="file.txt", repo_id=repo_id
    )
    return repo_id


def test_a_stale_parent_commit_is_a_412(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("stale-parent")
    older = api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo_id).oid
    newer = api.upload_file(path_or_fileobj=b"2", path_in_repo="a.txt", repo_id=repo_id).oid

    with pytest.raises(HfHubHTTPError) as refused:
        api.create_commit(
            repo_id, [CommitOperationAdd("b.txt", b"b")], commit_message="Late",
            parent_commit=older,
        )  # fmt: skip

    assert refused.value.response is not None
    assert refused.value.response.status_code == 412
    assert refused.value.response.headers["x-error-code"] == "PreconditionFailed"
    assert hub.head(repo_id) == newer
    # The current parent is accepted.
    info = api.create_commit(
        repo_id, [CommitOperationAdd("b.txt", b"b")], commit_message="On time", parent_commit=newer
    )
    assert hub.head(repo_id) == info.oid


def test_deleting_a_missing_file_is_entry_not_found(hub: Hub, repo_id: str) -> None:
    before = hub.head(repo_id)

    with pytest.raises(EntryNotFoundError) as missing:
        hub.api("developer").create_commit(
            repo_id, [CommitOperationDelete("no-such-file.txt")], commit_message="Delete"
        )

    assert isinstance(missing.value, HfHubHTTPError)
    assert missing.value.response.status_code == 404
    assert "A file with this name doesn't exist" in str(missing.value)
    assert hub.head(repo_id) == before


MALFORMED: dict[str, bytes | list[dict[str, Any]]] = {
    "not-json": b"this is not json\n",
    "no-header-first": [file_line("x.txt", b"x"), header_line()],
    "absolute-path": [header_line(), file_line("/etc/x.txt", b"x")],
    "unknown-key": [header_line(), file_line("ok.txt", b"ok"), {"key": "frobnicate", "value": {}}],
    # git refuses trees with a `.git` entry (fsck `hasDotgit`); huggingface_hub refuses such
    # paths client-side too, so only a raw request can send one.
    "dot-git-folder": [header_line(), file_line(".git/config", b"[core]\n")],
    "nested-dot-git-folder": [header_line(), file_line("sub/.git/hooks/post-checkout", b"x")],
    "bad-base64": [
        header_line(),
        {"key": "file", "value": {"content": "!!!", "path": "x.txt", "encoding": "base64"}},
    ],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_commit_is_a_400_and_commits_nothing(hub: Hub, repo_id: str, case: str) -> None:
    before = hub.head(repo_id)
    files = hub.api("developer").list_repo_files(repo_id)

    response = post_commit(hub, repo_id, MALFORMED[case])

    assert_refused(response, 400, "BadRequest")
    assert hub.head(repo_id) == before
    assert hub.api("developer").list_repo_files(repo_id) == files


def test_a_dot_dot_path_is_a_422_and_commits_nothing(hub: Hub, repo_id: str) -> None:
    # huggingface.co answers 422 for a `..` segment (other malformed paths are 400s).
    before = hub.head(repo_id)

    response = post_commit(
        hub, repo_id, [header_line(), file_line("ok.txt", b"ok"), file_line("a/../../x.txt", b"x")]
    )

    assert_refused(response, 422, "UploadRejected")
    assert hub.head(repo_id) == before


def test_an_lfs_file_never_uploaded_is_rejected(hub: Hub, repo_id: str) -> None:
    before = hub.head(repo_id)
    content = random_bytes(2 * LFS_THRESHOLD)

    response = post_commit(
        hub, repo_id, [header_line(), lfs_line("ghost.bin", sha256(content), len(content))]
    )

    assert_refused(response, 422, "UploadRejected")
    assert hub.head(repo_id) == before


def test_an_lfs_object_of_another_repo_cannot_be_committed(hub: Hub) -> None:
    """Knowing the sha256 of a file in a private repo must not give its bytes to someone who
    cannot read that repo (the blob store is shared)."""
    private_repo = hub.new_repo("owner")
    secret = random_bytes(2 * LFS_THRESHOLD)
    actions = lfs_upload_action(hub, private_repo, sha256(secret), len(secret))
    assert httpx.put(actions["upload"]["href"], content=secret, timeout=30).status_code in (
        200,
        201,
    )
    own = post_commit(
        hub, private_repo, [header_line(), lfs_line("secret.bin", sha256(secret), len(secret))]
    )
    assert own.status_code == 200, own.text
    public_repo = hub.new_repo("borrower", project="open")
    before = hub.head(public_repo)

    response = post_commit(
        hub,
        public_repo,
        [header_line(), lfs_line("stolen.bin", sha256(secret), len(secret))],
        principal="outsider",
    )

    assert_refused(response, 422, "UploadRejected")
    assert hub.head(public_repo) == before


def test_an_lfs_upload_with_the_wrong_bytes_is_rejected(hub: Hub, repo_id: str) -> None:
    before = hub.head(repo_id)
    announced = random_bytes(2 * LFS_THRESHOLD)
    actions = lfs_upload_action(hub, repo_id, sha256(announced), len(announced))

    put = httpx.put(actions["upload"]["href"], content=random_bytes(len(announced)), timeout=30)

    assert_refused(put, 422, "UploadRejected")
    response = post_commit(
        hub, repo_id, [header_line(), lfs_line("wrong.bin", sha256(announced), len(announced))]
    )
    assert_refused(response, 422, "UploadRejected")
    assert hub.head(repo_id) == before


def tampered(href: str) -> str:
    """`href` with one character of its signature changed (the query parameter whose name says
    signature, else the last one; without a query, the last path character)."""

    def flip(text: str) -> str:
        return text[:-1] + ("A" if text[-1] != "A" else "B")

    parts = urlsplit(href)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not query:
        return urlunsplit(parts._replace(path=flip(parts.path)))
    names = [name for name, _ in query]
    signature = next((name for name in names if "sig" in name.lower()), names[-1])
    query = [(name, flip(value) if name == signature else value) for name, value in query]
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_tampered_upload_href_is_refused(hub: Hub) -> None:
    repo_id = hub.new_repo("tampered")
    content = random_bytes(2 * LFS_THRESHOLD)
    actions = lfs_upload_action(hub, repo_id, sha256(content), len(content))
    href = actions["upload"]["href"]

    put = httpx.put(tampered(href), content=content, timeout=30)

    assert put.status_code == 403, (put.status_code, put.headers, put.text)
    refused = post_commit(
        hub, repo_id, [header_line(), lfs_line("tampered.bin", sha256(content), len(content))]
    )
    assert_refused(refused, 422, "UploadRejected")
    # The genuine href still works, and then the object can be committed.
    assert httpx.put(href, content=content, timeout=30).status_code in (200, 201)
    if "verify" in actions:
        verify = httpx.post(
            actions["verify"]["href"],
            json={"oid": sha256(content), "size": len(content)},
            headers=hub.headers(),
            timeout=30,
        )
        assert verify.is_success, verify.text
    committed = post_commit(
        hub, repo_id, [header_line(), lfs_line("genuine.bin", sha256(content), len(content))]
    )
    assert committed.status_code == 200, committed.text
    assert committed.json()["commitOid"] == hub.head(repo_id)


def staged_uploads(hub: Hub) -> list[Path]:
    return sorted((hub.data_dir / "staging").glob("upload-*"))


def test_an_upload_cut_short_leaves_nothing_and_can_be_sent_again(hub: Hub) -> None:
    """The client disconnects halfway through the PUT: its staged chunks are removed, the object
    stays unusable, and a complete upload to the same link then works."""
    repo_id = hub.new_repo("cut")
    # The server writes 4 MiB at a time: half of this is staged, in several chunk files.
    content = random_bytes(10 * 1024 * 1024 + 1000)
    oid = sha256(content)
    actions = lfs_upload_action(hub, repo_id, oid, len(content))
    href = urlsplit(actions["upload"]["href"])
    assert href.hostname is not None
    assert href.port is not None
    with socket.create_connection((href.hostname, href.port), timeout=30) as connection:
        connection.sendall(
            f"PUT {href.path}?{href.query} HTTP/1.1\r\nHost: {href.netloc}\r\n"
            f"Content-Length: {len(content)}\r\n\r\n".encode()
            + content[: len(content) // 2]
        )
        deadline = time.monotonic() + 10
        while not staged_uploads(hub) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert staged_uploads(hub), "the upload was being staged"
    deadline = time.monotonic() + 10
    while staged_uploads(hub) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert staged_uploads(hub) == []
    refused = post_commit(hub, repo_id, [header_line(), lfs_line("cut.bin", oid, len(content))])
    assert_refused(refused, 422, "UploadRejected")

    assert httpx.put(actions["upload"]["href"], content=content, timeout=30).status_code == 200
    committed = post_commit(hub, repo_id, [header_line(), lfs_line("cut.bin", oid, len(content))])
    assert committed.status_code == 200, committed.text
    downloaded = httpx.get(
        f"{hub.url}/{repo_id}/resolve/main/cut.bin", headers=hub.headers(), timeout=30
    )
    assert sha256(downloaded.content) == oid
