"""Existence stays hidden: a private project's name must not be learnable.

For a caller who may not read it, every repo of a private project (an existing one, a missing
one, a private proxy project's) gets exactly the answer a namespace that exists nowhere gets:
same status, `X-Error-Code`, `X-Error-Message`, challenge and body, on reads, writes and
listings. Only the request id may differ.
"""

import json
import uuid

import httpx
import pytest

from tests.governance.conftest import Site

COMPARED_HEADERS = ("x-error-code", "x-error-message", "www-authenticate", "content-type")
PRINCIPALS = ("anonymous", "outsider", "robot-llama")
# A robot sees its own project: it is an outsider of the other one.
OUTSIDER_ROBOT = {"acme": "robot-llama", "ACME": "robot-llama", "llama": "robot-acme"}


@pytest.fixture(scope="module")
def site(governed_site: Site) -> Site:
    """The governed site in process: these tests speak HTTP themselves."""
    return governed_site


@pytest.fixture(scope="module")
def private_repo(site: Site) -> str:
    """An existing repo of the private hosted project `acme`."""
    repo_id = f"acme/hidden-{uuid.uuid4().hex[:8]}"
    with site.client("platform-admin") as client:
        response = client.post(
            "/api/repos/create",
            json={"name": repo_id.split("/")[1], "organization": "acme", "type": "model"},
        )
    assert response.status_code == 200, response.text
    return repo_id


def requests_on(repo: str) -> list[tuple[str, str, dict[str, object]]]:
    """(method, path, httpx keyword arguments) of every repo endpoint on `repo`."""
    namespace, name = repo.split("/")
    commit_body = (
        json.dumps({"key": "header", "value": {"summary": "x", "description": ""}})
        + "\n"
        + json.dumps({"key": "file", "value": {"path": "a.txt", "content": "eA==", "encoding": "base64"}})
    )  # fmt: skip
    lfs_body = {
        "operation": "upload",
        "transfers": ["basic"],
        "objects": [{"oid": "a" * 64, "size": 1}],
        "hash_algo": "sha256",
    }
    return [
        ("HEAD", f"/{repo}/resolve/main/config.json", {}),
        ("GET", f"/{repo}/resolve/main/config.json", {}),
        ("GET", f"/{repo}/resolve/0123456789abcdef0123456789abcdef01234567/x.bin", {}),
        ("GET", f"/api/models/{repo}", {}),
        ("GET", f"/api/models/{repo}/revision/main", {}),
        ("GET", f"/api/models/{repo}/tree/main", {}),
        ("GET", f"/api/models/{repo}/tree/main/sub", {}),
        ("GET", f"/api/models/{repo}/refs", {}),
        ("GET", f"/api/models/{repo}/commits/main", {}),
        ("POST", f"/api/models/{repo}/paths-info/main", {"data": {"paths": "config.json"}}),
        ("GET", f"/api/datasets/{repo}", {}),
        ("GET", f"/datasets/{repo}/resolve/main/data.csv", {}),
        ("POST", f"/api/models/{repo}/preupload/main", {"json": {"files": []}}),
        (
            "POST",
            f"/api/models/{repo}/commit/main",
            {"content": commit_body, "headers": {"Content-Type": "application/x-ndjson"}},
        ),
        ("POST", f"/api/models/{repo}/branch/feature", {"json": {}}),
        ("DELETE", f"/api/models/{repo}/branch/feature", {}),
        ("POST", f"/api/models/{repo}/tag/main", {"json": {"tag": "v1"}}),
        ("DELETE", f"/api/models/{repo}/tag/v1", {}),
        ("GET", f"/api/models/{repo}/xet-write-token/main", {}),
        ("GET", f"/api/models/{repo}/xet-read-token/main", {}),
        (
            "POST",
            "/api/repos/create",
            {"json": {"name": name, "organization": namespace, "type": "model"}},
        ),
        ("DELETE", "/api/repos/delete", {"json": {"name": name, "organization": namespace}}),
        ("POST", f"/{repo}.git/info/lfs/objects/batch", {"json": lfs_body}),
        ("POST", f"/{repo}.git/info/lfs/objects/verify", {"json": {"oid": "a" * 64, "size": 1}}),
    ]


def answer(response: httpx.Response) -> tuple[object, ...]:
    body = response.content
    try:
        document = response.json()
        if isinstance(document, dict):
            document.pop("request_id", None)
        body = json.dumps(document, sort_keys=True).encode()
    except ValueError:
        pass
    return (
        response.status_code,
        *(response.headers.get(name) for name in COMPARED_HEADERS),
        body,
    )


def headers_of(site: Site, principal: str) -> dict[str, str]:
    token = site.tokens[principal]
    return {"Authorization": f"Bearer {token}"} if token else {}


def test_private_repos_answer_like_a_namespace_that_does_not_exist(
    site: Site, private_repo: str, governed_hub: object
) -> None:
    private_name = private_repo.split("/")[1]
    hidden = (
        private_repo, "acme/never-created", "llama/tiny", "gatedorg/tiny", f"ACME/{private_name}",
        "llama/never-created",
    )  # fmt: skip
    differences: list[str] = []
    tried = 0
    with site.client() as client:
        for repo in hidden:
            robot = OUTSIDER_ROBOT.get(repo.split("/")[0], "robot-acme")
            for principal in ("anonymous", "outsider", robot):
                headers = headers_of(site, principal)
                nowhere = f"nowhere{uuid.uuid4().hex[:8]}/{repo.split('/')[1]}"
                for (method, path, arguments), (_, reference_path, reference_arguments) in zip(
                    requests_on(repo), requests_on(nowhere), strict=True
                ):
                    tried += 1
                    extra = dict(arguments)
                    request_headers = {**headers, **extra.pop("headers", {})}  # type: ignore[dict-item]
                    got = client.request(method, path, headers=request_headers, **extra)  # type: ignore[arg-type]
                    reference_extra = dict(reference_arguments)
                    reference_headers = {**headers, **reference_extra.pop("headers", {})}  # type: ignore[dict-item]
                    expected = client.request(
                        method,
                        reference_path,
                        headers=reference_headers,
                        **reference_extra,  # type: ignore[arg-type]
                    )
                    seen, wanted = answer(got), answer(expected)
                    if seen[0] >= 500 or wanted[0] >= 500:
                        differences.append(f"{principal} {method} {path}: a 5xx {seen[0]}")
                    # The nowhere namespace names itself in messages; compare with the
                    # private name put in its place.
                    wanted_text = repr(wanted).replace(nowhere.split("/")[0], repo.split("/")[0])
                    if repr(seen) != wanted_text and seen != wanted:
                        differences.append(f"{principal} {method} {path}:\n  {seen}\n  {wanted}")
    assert tried == 3 * len(hidden) * len(requests_on("a/b"))
    assert differences == [], f"{len(differences)} of {tried} differ:\n" + "\n".join(differences)


def test_listing_by_author_does_not_tell_a_private_project_from_nothing(site: Site) -> None:
    differences = []
    tried = 0
    with site.client() as client:
        for principal in PRINCIPALS:
            for kind in ("models", "datasets"):
                for author in ("acme", "ACME", "llama", "Llama"):
                    tried += 1
                    params = {"author": author}
                    got = client.get(
                        f"/api/{kind}", params=params, headers=headers_of(site, principal)
                    )
                    expected = client.get(
                        f"/api/{kind}",
                        params={"author": "nowhere" + author[1:]},
                        headers=headers_of(site, principal),
                    )
                    seen = repr(answer(got)).replace(author, "<author>")
                    wanted = repr(answer(expected)).replace("nowhere" + author[1:], "<author>")
                    if seen != wanted:
                        differences.append(
                            f"{principal} {kind} author={author}:\n  {seen}\n  {wanted}"
                        )
    assert differences == [], f"{len(differences)} of {tried} differ:\n" + "\n".join(differences)
