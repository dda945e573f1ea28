"""Branches and tags are separate namespaces: a developer (who may create branches but not
tags) cannot make `revision=v2.0` serve anything but the tag, whether by creating a branch of
that name (allowed, as on huggingface.co, but the tag wins as in git), smuggling a `refs/...`
prefix, or through data that holds both (an import, or a database written by an older
release); and a tag never takes a branch's name."""

import base64
import sqlite3
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.fake_upstream import FakeHubServer
from tests.security.delegation_support import SecuritySite, running, with_root


@pytest.fixture(scope="module")
def site(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuritySite]:
    data_dir = tmp_path_factory.mktemp("ref-namespaces") / "data"
    accounts = (
        with_root()
        .project("acme")
        .users("dev", "keeper")
        .member("acme", "dev", "developer")
        .member("acme", "keeper", "maintainer")
        .token("dev", "dev", "write")
        .token("keeper", "keeper", "write")
    )
    yield from running(data_dir, fake_hub_server.url, accounts)


def _commit(site: SecuritySite, repo_id: str, branch: str, content: str) -> str:
    lines = [
        '{"key": "header", "value": {"summary": "change", "description": ""}}',
        '{"key": "file", "value": {"path": "file.txt", "encoding": "base64", "content": "'
        + base64.b64encode(content.encode()).decode()
        + '"}}',
    ]
    answer = site.request(
        "dev",
        "POST",
        f"/api/models/{repo_id}/commit/{quote(branch, safe='')}",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    sha: str = answer.json()["commitOid"]
    return sha


def _served(site: SecuritySite, repo_id: str, revision: str) -> str:
    answer = site.request("dev", "GET", f"/{repo_id}/resolve/{quote(revision, safe='')}/file.txt")
    assert answer.status_code == 200, (revision, answer.text)
    return answer.text


def test_a_branch_never_captures_what_a_tag_serves(site: SecuritySite) -> None:
    repo_id = "acme/release"
    answer = site.request(
        "dev", "POST", "/api/repos/create", json={"name": "release", "organization": "acme"}
    )
    assert answer.status_code == 200, answer.text
    _commit(site, repo_id, "main", "released\n")
    answer = site.request("keeper", "POST", f"/api/models/{repo_id}/tag/main", json={"tag": "v2.0"})
    assert answer.status_code == 200, answer.text

    # What a developer tries, and what a maintainer tries the other way round.
    attempts = [
        ("dev", "branch", "refs/tags/v2.0"),
        ("dev", "branch", "refs/heads/refs/tags/v2.0"),
        ("keeper", "tag-of-branch", "main"),
    ]
    got_through = []
    for principal, kind, name in attempts:
        if kind == "branch":
            answer = site.request(
                principal, "POST", f"/api/models/{repo_id}/branch/{quote(name, safe='')}"
            )
        else:
            answer = site.request(
                principal, "POST", f"/api/models/{repo_id}/tag/main", json={"tag": name}
            )
        if answer.status_code not in (400, 409) or "x-error-code" not in answer.headers:
            got_through.append((principal, kind, name, answer.status_code))
    assert got_through == [], got_through
    assert _served(site, repo_id, "v2.0") == "released\n"
    # A branch of the tag's name may be made (huggingface.co allows it); the name stays the tag's.
    answer = site.request("dev", "POST", f"/api/models/{repo_id}/branch/v2.0")
    assert answer.status_code == 200, answer.text

    # The branch moves on: the tag still wins, and the full forms name exactly one kind.
    _commit(site, repo_id, "main", "captured\n")
    branch_head = site.request("dev", "GET", f"/api/models/{repo_id}/revision/main").json()["sha"]
    with sqlite3.connect(site.data_dir / "hubproxy.sqlite3") as connection:
        connection.execute(
            "UPDATE hub_refs SET commit_sha = ? WHERE repo_id = ? AND kind = 'branch'"
            " AND name = 'v2.0'",
            (branch_head, repo_id),
        )
    served = {revision: _served(site, repo_id, revision) for revision in ("v2.0", "refs/tags/v2.0")}
    assert served == {"v2.0": "released\n", "refs/tags/v2.0": "released\n"}, served
    assert _served(site, repo_id, "refs/heads/v2.0") == "captured\n"
