"""Page URLs: what `match_page` names, and that no API, download, LFS or Xet URL is a page."""

import pytest

from hubproxy.errors import BadRequest
from hubproxy.web.dispatch import is_page
from hubproxy.web.routing import match_page


def scope(path: bytes, method: str = "GET") -> dict[str, object]:
    return {"type": "http", "method": method, "path": path.decode(), "raw_path": path}


@pytest.mark.parametrize(
    "path",
    [
        b"/api/models/org/name",
        b"/api/models/org/name/tree/main/sub",
        b"/api/datasets/org/name/revision/main",
        b"/org/name/resolve/main/config.json",
        b"/datasets/org/name/resolve/main/data.csv",
        b"/org/name.git/info/lfs/objects/batch",
        b"/api/whoami-v2",
        b"/api/hubproxy/admin/audit",
        # The registry and lineage API of a repo, and a file called `registry`, stay the API's.
        b"/api/hubproxy/models/org/name/registry",
        b"/api/hubproxy/datasets/org/name/registry",
        b"/api/hubproxy/models/org/name/lineage",
        b"/api/hubproxy/models/org/name/aliases/champion",
        b"/org/name/resolve/main/registry",
        b"/org/name/resolve/champion/config.json",
    ],
)
def test_api_urls_are_never_pages(path: bytes) -> None:
    assert not is_page(scope(path))


def test_a_url_invalid_for_both_gets_the_apis_error() -> None:
    assert not is_page(scope(b"/bad%20name/x/resolve/main/file"))
    assert is_page(scope(b"/org/name/discussions/zero"))


def test_only_reading_and_form_methods_reach_pages() -> None:
    assert is_page(scope(b"/org/name"))
    assert is_page(scope(b"/org/name", "POST"))
    assert not is_page(scope(b"/org/name", "DELETE"))


@pytest.mark.parametrize(
    ("path", "endpoint", "repo", "revision", "file"),
    [
        (b"/", "page_home", None, None, ""),
        (b"/models", "page_listing", None, None, ""),
        (b"/org", "page_namespace", None, None, ""),
        (b"/org/name", "page_repo", "model:org/name", None, ""),
        (b"/datasets/org/name", "page_repo", "dataset:org/name", None, ""),
        (b"/org/name/tree/main", "page_tree", "model:org/name", "main", ""),
        (b"/org/name/tree/refs%2Fpr%2F1/a/b", "page_tree", "model:org/name", "refs/pr/1", "a/b"),
        # A folder called `resolve` is a tree page, not a download.
        (b"/org/name/tree/main/resolve/x", "page_tree", "model:org/name", "main", "resolve/x"),
        (b"/org/name/blob/v1/dir/file.txt", "page_blob", "model:org/name", "v1", "dir/file.txt"),
        (b"/org/name/commits/main", "page_commits", "model:org/name", "main", ""),
        (b"/org/name/commit/" + b"a" * 40, "page_commit", "model:org/name", "a" * 40, ""),
        (b"/org/name/discussions", "page_discussions", "model:org/name", None, ""),
        (b"/org/name/registry", "page_registry", "model:org/name", None, ""),
        (b"/org/name/registry/", "page_registry", "model:org/name", None, ""),
        (b"/datasets/org/name/registry", "page_registry", "dataset:org/name", None, ""),
        # A folder called `registry` is a tree page.
        (b"/org/name/tree/main/registry", "page_tree", "model:org/name", "main", "registry"),
        (b"/admin/audit", "page_admin_audit", None, None, ""),
    ],
)
def test_page_urls(
    path: bytes, endpoint: str, repo: str | None, revision: str | None, file: str
) -> None:
    match = match_page(path)
    assert match is not None
    assert match.endpoint == endpoint
    named = f"{match.ref.repo_type}:{match.ref.repo_id}" if match.ref else None
    assert (named, match.revision, match.path) == (repo, revision, file)
    assert is_page(scope(path))


def test_invalid_page_urls_are_bad_requests() -> None:
    with pytest.raises(BadRequest):
        match_page(b"/org/name/blob/main/../etc/passwd")
    with pytest.raises(BadRequest):
        match_page(b"/org/name/discussions/0")
    assert match_page(b"/org/name/unknown-tab") is None
    assert match_page(b"/org/name/registry/versions") is None
    assert match_page(b"/admin/unknown") is None
