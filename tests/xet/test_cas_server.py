"""The CAS routes of a real hubproxy, driven by hf_xet itself (the calls huggingface_hub
makes) and by hand for what the client never sends: tokens, scopes, revocation, signed range
URLs, 416 paging, fallback routes, bounded bodies."""

import socket
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import hf_xet
import httpx
import pytest

from hubproxy.xet.xorbs import MAX_XORB_BYTES
from tests.hub.conftest import Hub, admin_batch, token_of
from tests.xet.support import MiB, mixed

CAS = "/api/hubproxy/xet"


def token_url(hub: Hub, repo_id: str, kind: str = "write") -> str:
    return f"{hub.url}/api/models/{repo_id}/xet-{kind}-token/main"


def xet_token(
    hub: Hub, repo_id: str, kind: str = "write", principal: str = "developer"
) -> dict[str, object]:
    response = httpx.get(token_url(hub, repo_id, kind), headers=hub.headers(principal), timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["x-xet-access-token"] == body["accessToken"]
    assert response.headers["x-xet-cas-url"] == body["casUrl"] == f"{hub.url}{CAS}"
    assert int(response.headers["x-xet-token-expiration"]) == body["exp"] > time.time() + 600
    return dict(body)


def upload(hub: Hub, repo_id: str, path: Path, principal: str = "developer") -> str:
    session = hf_xet.XetSession()
    commit = session.new_upload_commit(
        token_refresh_url=token_url(hub, repo_id), token_refresh_headers=hub.headers(principal)
    )
    handle = commit.start_upload_file(str(path), sha256=hf_xet.COMPUTE_SHA256)
    commit.wait_to_finish()
    return str(handle.result().xet_info.hash)


def download(hub: Hub, repo_id: str, xet_hash: str, size: int, destination: Path) -> bytes:
    session = hf_xet.XetSession()
    group = session.new_file_download_group(
        token_refresh_url=token_url(hub, repo_id, "read"), token_refresh_headers=hub.headers()
    )
    group.start_download_file(hf_xet.XetFileInfo(xet_hash, size), str(destination))
    group.wait_to_finish()
    return destination.read_bytes()


@pytest.fixture(scope="module")
def uploaded(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes, str]:
    """A repo with a 5 MiB file uploaded through Xet: (repo id, content, Xet hash)."""
    repo_id = hub.new_repo("xet-cas")
    path = tmp_path_factory.mktemp("xet-cas") / "weights.bin"
    content = mixed(5 * MiB, 21)
    path.write_bytes(content)
    return repo_id, content, upload(hub, repo_id, path)


def cas_get(hub: Hub, path: str, token: object, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{hub.url}{CAS}{path}", headers={"Authorization": f"Bearer {token}", **headers}, timeout=30
    )


def test_hf_xet_downloads_what_it_uploaded(
    hub: Hub, uploaded: tuple[str, bytes, str], tmp_path: Path
) -> None:
    repo_id, content, xet_hash = uploaded
    assert download(hub, repo_id, xet_hash, len(content), tmp_path / "out") == content


def test_reconstruction_ranges_signed_urls_and_416(
    hub: Hub, uploaded: tuple[str, bytes, str]
) -> None:
    repo_id, content, xet_hash = uploaded
    token = xet_token(hub, repo_id, "read")["accessToken"]
    start, end = 1_000_000, 1_300_000
    answer = cas_get(
        hub, f"/v1/reconstructions/{xet_hash}", token, Range=f"bytes={start}-{end - 1}"
    )
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert sum(term["unpacked_length"] for term in plan["terms"]) >= end - start
    # Fetch every range without credentials, as hf_xet does, and rebuild the bytes.
    from hubproxy.xet.xorbs import ChunkStream

    rebuilt = b""
    for term in plan["terms"]:
        [info] = [
            item for item in plan["fetch_info"][term["hash"]] if item["range"] == term["range"]
        ]
        span = info["url_range"]
        fetched = httpx.get(
            info["url"], headers={"Range": f"bytes={span['start']}-{span['end']}"}, timeout=30
        )
        assert fetched.status_code == 206
        rebuilt += b"".join(ChunkStream().feed(fetched.content))
    skip = plan["offset_into_first_range"]
    assert rebuilt[skip : skip + end - start] == content[start:end]
    # A tampered or expired URL is a 403, so hf_xet asks for a new reconstruction.
    url = plan["fetch_info"][plan["terms"][0]["hash"]][0]["url"]
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for changed in (
        {"range": "0-99999999"},
        {"expires": str(int(time.time()) - 5)},
        {"signature": "0" * 64},
    ):
        forged = parts._replace(query=urlencode({**query, **changed})).geturl()
        assert httpx.get(forged, timeout=30).status_code == 403
    # Past the end: 416 (hf_xet's "nothing more").
    past = cas_get(
        hub,
        f"/v1/reconstructions/{xet_hash}",
        token,
        Range=f"bytes={len(content)}-{len(content) + 10}",
    )
    assert past.status_code == 416
    assert past.headers["x-error-code"] == "RangeNotSatisfiable"


def test_tokens_scopes_and_refusals(hub: Hub, uploaded: tuple[str, bytes, str]) -> None:
    repo_id, _, xet_hash = uploaded
    read = xet_token(hub, repo_id, "read")["accessToken"]
    write = xet_token(hub, repo_id, "write")["accessToken"]
    # A read token cannot upload.
    posted = httpx.post(
        f"{hub.url}{CAS}/v1/xorbs/default/{'a' * 64}",
        headers={"Authorization": f"Bearer {read}"},
        content=b"x",
        timeout=30,
    )
    assert posted.status_code == 403
    assert posted.headers["x-error-code"] == "Forbidden"
    # A write token reads too (write supersedes read).
    assert cas_get(hub, f"/v1/reconstructions/{xet_hash}", write).status_code == 200
    tampered = str(read)[:-1] + ("0" if str(read)[-1] != "0" else "1")
    for refused in (
        httpx.get(f"{hub.url}{CAS}/v1/reconstructions/{xet_hash}", timeout=30),
        cas_get(hub, f"/v1/reconstructions/{xet_hash}", "garbage"),
        cas_get(hub, f"/v1/reconstructions/{xet_hash}", tampered),
        # A hubproxy token is not a Xet token.
        cas_get(hub, f"/v1/reconstructions/{xet_hash}", hub.tokens["developer"]),
    ):
        assert refused.status_code == 401
        assert refused.headers["x-error-code"] == "Unauthorized"
    # A token for another repo does not read this repo's files.
    other = hub.new_repo("xet-other")
    foreign = xet_token(hub, other, "read")["accessToken"]
    assert cas_get(hub, f"/v1/reconstructions/{xet_hash}", foreign).status_code == 404
    # Who may not write gets no write token; who may not read gets no read token.
    assert (
        httpx.get(token_url(hub, repo_id), headers=hub.headers("viewer"), timeout=30).status_code
        == 403
    )
    assert (
        httpx.get(
            token_url(hub, repo_id, "read"), headers=hub.headers("outsider"), timeout=30
        ).status_code
        == 404
    )
    assert httpx.get(token_url(hub, repo_id, "read"), timeout=30).status_code == 401
    assert xet_token(hub, repo_id, "read", principal="viewer")


def test_a_disabled_users_xet_token_stops_working(
    hub: Hub, uploaded: tuple[str, bytes, str]
) -> None:
    repo_id, _, xet_hash = uploaded
    [_, _, created] = admin_batch(
        hub.data_dir,
        [
            ("user", "create", "xet-leaver"),
            ("member", "add", "team", "xet-leaver", "--role", "developer"),
            ("token", "create", "xet-leaver", "--scope", "write"),
        ],
    )
    hub.tokens["xet-leaver"] = token_of(created)
    deadline = time.time() + 15
    while (
        httpx.get(
            token_url(hub, repo_id), headers=hub.headers("xet-leaver"), timeout=30
        ).status_code
        != 200
    ):
        assert time.time() < deadline
        time.sleep(0.2)
    token = xet_token(hub, repo_id, "write", principal="xet-leaver")["accessToken"]
    assert cas_get(hub, f"/v1/reconstructions/{xet_hash}", token).status_code == 200
    admin_batch(hub.data_dir, [("user", "disable", "xet-leaver")])
    deadline = time.time() + 15
    while (status := cas_get(hub, f"/v1/reconstructions/{xet_hash}", token).status_code) == 200:
        assert time.time() < deadline
        time.sleep(0.2)
    assert status == 401


def test_fallback_routes_are_404_and_telemetry_is_200(
    hub: Hub, uploaded: tuple[str, bytes, str]
) -> None:
    repo_id, _, xet_hash = uploaded
    token = xet_token(hub, repo_id)["accessToken"]
    auth = {"Authorization": f"Bearer {token}"}
    for method, path in [
        ("POST", f"/v1/xorb-grants/default/{'a' * 64}"),
        ("POST", "/v2/shards"),
        ("GET", f"/v2/reconstructions/{xet_hash}"),
        ("GET", f"/v1/chunks/default/{'a' * 64}"),
        ("GET", f"/v1/chunks/default-merkledb/{'a' * 64}"),
    ]:
        response = httpx.request(method, f"{hub.url}{CAS}{path}", headers=auth, timeout=30)
        assert response.status_code == 404, path
        assert response.headers["x-error-code"] == "NotFound"
    assert (
        httpx.post(
            f"{hub.url}{CAS}/v1/telemetry", headers=auth, json={"event": "x"}, timeout=30
        ).status_code
        == 200
    )
    too_big = httpx.post(
        f"{hub.url}{CAS}/v1/telemetry", headers=auth, content=b"x" * (MiB + 1), timeout=30
    )
    assert too_big.status_code == 413


def test_bad_uploads_are_precise_400s_and_store_nothing(
    hub: Hub, uploaded: tuple[str, bytes, str]
) -> None:
    repo_id, _, _ = uploaded
    auth = {"Authorization": f"Bearer {xet_token(hub, repo_id)['accessToken']}"}
    cases = [
        (
            f"/v1/xorbs/default/{'b' * 64}",
            b"\x00\x05\x00\x00\x00\x05\x00\x00hello",
            400,
            "InvalidXorb",
        ),
        ("/v1/xorbs/default/NOTAHASH", b"x", 400, "BadRequest"),
        (
            "/v1/shards",
            b"not a shard at all, not even close to 48 bytes long....",
            400,
            "InvalidShard",
        ),
    ]
    for path, body, status, code in cases:
        response = httpx.post(f"{hub.url}{CAS}{path}", headers=auth, content=body, timeout=30)
        assert (response.status_code, response.headers.get("x-error-code")) == (status, code), (
            response.text
        )
    # Refused by its Content-Length, before a byte of the body is sent.
    host, port = urlsplit(hub.url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            f"POST {CAS}/v1/xorbs/default/{'c' * 64} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {auth['Authorization']}\r\nContent-Length: {MAX_XORB_BYTES + 1}\r\n\r\n".encode()
        )
        assert connection.recv(65536).startswith(b"HTTP/1.1 413")
    stored = hub.data_dir / "storage" / "xorbs"
    assert list(stored.glob("*/*"))  # the good upload's
    assert not list(stored.glob(f"bb/{'b' * 64}"))
