"""Listings longer than one page: huggingface_hub follows the absolute `Link: <...>; rel="next"`
of tree and commit listings, so a directory of more than a thousand files and a history of more
than fifty commits come back whole, in order, with nothing repeated.
"""

import base64
import json

import httpx
from huggingface_hub import CommitOperationAdd, RepoFile

from tests.hub.conftest import Hub

FILES = 1100
COMMITS = 60


def test_a_tree_of_more_than_a_page(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("wide")
    names = [f"many/file-{index:05d}.txt" for index in range(FILES)]
    api.create_commit(
        repo_id,
        [CommitOperationAdd(name, name.encode()) for name in names],
        commit_message="Many files",
    )

    assert api.list_repo_files(repo_id) == sorted([".gitattributes", *names])
    inside = list(api.list_repo_tree(repo_id, path_in_repo="many"))
    assert [entry.path for entry in inside] == names
    assert all(isinstance(entry, RepoFile) and entry.size == len(entry.path) for entry in inside)
    first_page = httpx.get(
        f"{hub.url}/api/models/{repo_id}/tree/main/many", headers=hub.headers(), timeout=30
    )
    assert first_page.status_code == 200
    assert first_page.links["next"]["url"].startswith(f"{hub.url}/")


def test_a_history_of_more_than_a_page(hub: Hub) -> None:
    api = hub.api("developer")
    repo_id = hub.new_repo("long")
    oids = [hub.head(repo_id)]
    with httpx.Client(headers=hub.headers(), timeout=30) as client:
        for index in range(COMMITS):
            lines = [
                {"key": "header", "value": {"summary": f"Commit {index}", "description": ""}},
                {
                    "key": "file",
                    "value": {
                        "path": "counter.txt",
                        "content": base64.b64encode(b"%d\n" % index).decode(),
                        "encoding": "base64",
                    },
                },
            ]
            response = client.post(
                f"{hub.url}/api/models/{repo_id}/commit/main",
                content="".join(json.dumps(line) + "\n" for line in lines),
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert response.status_code == 200, response.text
            oids.append(response.json()["commitOid"])

    history = api.list_repo_commits(repo_id)

    assert [commit.commit_id for commit in history] == oids[::-1]
    assert [commit.title for commit in history[:2]] == [
        f"Commit {COMMITS - 1}", f"Commit {COMMITS - 2}",
    ]  # fmt: skip
