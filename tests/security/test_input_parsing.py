"""Hostile numbers and JSON: every one is a precise 4xx with `X-Error-Code`, never a 500.

Digits that `str.isdigit()` accepts but `int()` refuses (`²`), numbers of more digits than
`int()` converts (4300), 100,000-deep JSON arrays (a RecursionError in Python's parser), JSON
constants and overflowing floats, and lone surrogates, on every endpoint that parses them.
"""

import httpx
import pytest

from tests.security.conftest import README, TARGET_REPO, Fortress, commit_body

HUGE = "9" * 5000
DEEP = b"[" * 100_000 + b"]" * 100_000
NDJSON = {"Content-Type": "application/x-ndjson"}
JSON = {"Content-Type": "application/json"}
RESOLVE = f"/{TARGET_REPO}/resolve/main/README.md"
LFS_OBJECT = "a" * 64


def assert_refused(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in (statuses or (400,)), (response.status_code, response.text)
    assert response.headers.get("x-error-code"), response.headers
    assert response.headers.get("x-error-message")


@pytest.mark.parametrize(
    ("range_header", "status"),
    [
        ("bytes=\xb2-", 400),
        ("bytes=-\xb2", 400),
        (f"bytes={HUGE}-", 416),
        (f"bytes=0-{HUGE}", 206),
        (f"bytes=-{HUGE}", 206),
        (f"bytes={HUGE}-{HUGE}", 416),
        ("bytes=" + ",".join(["0-1"] * 1000), 400),
    ],
)
def test_hostile_ranges(fortress: Fortress, range_header: str, status: int) -> None:
    with fortress.client(fortress.developer_token) as client:
        answer = client.get(RESOLVE, headers={"Range": range_header.encode("latin-1")})
    if status == 206:
        # A last position past the end means "to the end" (RFC 9110 §14.1.2).
        assert answer.status_code == 206, answer.text
        assert answer.content == README
    else:
        assert_refused(answer, status)
    if status == 416:
        assert answer.headers["content-range"] == f"bytes */{len(README)}"


@pytest.mark.parametrize("value", ["\xb2", "\u0663", HUGE, "-1", "1e3", " 1", "0x10"])
@pytest.mark.parametrize(
    "path_and_name",
    [
        (f"/api/models/{TARGET_REPO}/commits/main", "p"),
        (f"/api/models/{TARGET_REPO}/tree/main", "cursor"),
        ("/api/models", "limit"),
        ("/api/hubproxy/admin/audit", "limit"),
        ("/api/hubproxy/admin/audit", "since"),
    ],
)
def test_hostile_numbers_in_queries(
    fortress: Fortress, path_and_name: tuple[str, str], value: str
) -> None:
    path, name = path_and_name
    with fortress.client(fortress.admin_token) as client:
        answer = client.get(path, params={name: value})
    assert_refused(answer)
    assert name in answer.json()["error"]


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "-5", HUGE])
def test_hostile_timestamps(fortress: Fortress, value: str) -> None:
    with fortress.client(fortress.admin_token) as client:
        assert_refused(client.get("/api/hubproxy/admin/audit", params={"since": value}))
        assert_refused(client.delete("/api/hubproxy/admin/audit", params={"before": value}))


@pytest.mark.parametrize("size", ["\xb2", HUGE, "-1"])
def test_hostile_sizes_in_upload_links(fortress: Fortress, size: str) -> None:
    url = f"/api/hubproxy/lfs/models/{TARGET_REPO}/{LFS_OBJECT}"
    with fortress.client() as client:
        answer = client.put(
            url, params={"size": size, "expires": "1", "by": "user:x", "signature": "x"}
        )
    assert_refused(answer)


JSON_ENDPOINTS = [
    ("POST", "/api/repos/create"),
    ("DELETE", "/api/repos/delete"),
    ("POST", f"/api/models/{TARGET_REPO}/paths-info/main"),
    ("POST", f"/api/models/{TARGET_REPO}/preupload/main"),
    ("POST", f"/api/models/{TARGET_REPO}/branch/feature"),
    ("POST", f"/api/models/{TARGET_REPO}/tag/main"),
    ("POST", f"/{TARGET_REPO}.git/info/lfs/objects/batch"),
    ("POST", f"/{TARGET_REPO}.git/info/lfs/objects/verify"),
    ("POST", "/api/hubproxy/tokens"),
    ("POST", "/api/organizations/team/robots"),
    ("PUT", "/api/organizations/team/members/developer"),
    ("POST", "/api/hubproxy/admin/users"),
    ("POST", "/api/hubproxy/admin/projects"),
    ("PATCH", "/api/hubproxy/admin/policy"),
]
HOSTILE_BODIES = [
    DEEP,
    b'{"a": ' * 1000 + b"1" + b"}" * 1000,
    b'{"name": "team/x\\ud800", "tag": "t\\udfff", "files": [{"path": "a\\ud800"}]}',
    b'{"name": "\xff\xfe"}',
    b'{"expires_in": 1e400, "size": 1e400, "oid": NaN}',
    b'{"size": ' + b"9" * 5000 + b"}",
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=lambda body: repr(body[:20]))
@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_hostile_json_bodies(fortress: Fortress, method: str, path: str, body: bytes) -> None:
    with fortress.client(fortress.admin_token) as client:
        answer = client.request(method, path, content=body, headers=JSON)
    assert_refused(answer, 400, 413, 422)


@pytest.mark.parametrize(
    "line",
    [
        DEEP,
        b'{"key": "deletedFile", "value": {"path": "a\\ud800"}}',
        b'{"key": "file", "value": {"path": "\\udc00.txt", "content": ""}}',
        b'{"key": "lfsFile", "value": {"path": "x", "oid": "' + LFS_OBJECT.encode() + b'", '
        b'"size": 1e400}}',
        b"\xff\xfe",
    ],
    ids=lambda line: repr(line[:20]),
)
def test_hostile_commit_lines(fortress: Fortress, line: bytes) -> None:
    body = commit_body("hostile", {}) + line + b"\n"
    with fortress.client(fortress.developer_token) as client:
        answer = client.post(f"/api/models/{TARGET_REPO}/commit/main", content=body, headers=NDJSON)
        assert_refused(answer)
        # Nothing was committed.
        commits = client.get(f"/api/models/{TARGET_REPO}/commits/main").json()
    assert [commit["title"] for commit in commits] == ["first", "initial commit"]
