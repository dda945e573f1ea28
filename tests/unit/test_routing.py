"""URL matching on the raw path: encoded revisions and paths, canonical repos, bad names."""

import pytest

from hubproxy.errors import BadRequest
from hubproxy.hf_api.routing import RouteMatch, match_route
from hubproxy.naming import RepoRef


@pytest.mark.parametrize(
    ("raw_path", "expected"),
    [
        (
            b"/alice/m1/resolve/main/config.json",
            RouteMatch("resolve", RepoRef("model", "alice/m1"), "main", "config.json"),
        ),
        (
            b"/alice/m1/resolve/refs%2Fpr%2F1/a%20dir/f%231%3F.txt",
            RouteMatch("resolve", RepoRef("model", "alice/m1"), "refs/pr/1", "a dir/f#1?.txt"),
        ),
        (
            b"/alice/m1/resolve/refs/pr/1/sub/x.bin",
            RouteMatch("resolve", RepoRef("model", "alice/m1"), "refs/pr/1", "sub/x.bin"),
        ),
        (
            b"/datasets/alice/d1/resolve/main/data/train.csv",
            RouteMatch("resolve", RepoRef("dataset", "alice/d1"), "main", "data/train.csv"),
        ),
        (
            b"/spaces/alice/s1/resolve/main/app.py",
            RouteMatch("resolve", RepoRef("space", "alice/s1"), "main", "app.py"),
        ),
        (
            b"/gpt2/resolve/main/config.json",
            RouteMatch("resolve", RepoRef("model", "gpt2"), "main", "config.json"),
        ),
        (b"/api/models/alice/m1", RouteMatch("repo_info", RepoRef("model", "alice/m1"))),
        (
            b"/api/models/alice/m1/preupload/main",
            RouteMatch("preupload", RepoRef("model", "alice/m1"), "main"),
        ),
        (
            b"/api/datasets/alice/d1/commit/refs%2Fpr%2F2",
            RouteMatch("commit", RepoRef("dataset", "alice/d1"), "refs/pr/2"),
        ),
        (
            b"/api/models/alice/m1/branch/feature%2Fx",
            RouteMatch("branch", RepoRef("model", "alice/m1"), "feature/x"),
        ),
        (b"/api/models/alice/m1/tag/v1", RouteMatch("tag", RepoRef("model", "alice/m1"), "v1")),
        (b"/api/repos/create", RouteMatch("create_repo")),
        (b"/api/repos/delete", RouteMatch("delete_repo")),
        (b"/api/organizations/acme/members", RouteMatch("project_members", project="acme")),
        (
            b"/api/organizations/acme/members/bob",
            RouteMatch("project_member", subject="bob", project="acme"),
        ),
        (b"/api/organizations/acme/robots", RouteMatch("project_robots", project="acme")),
        (
            b"/api/organizations/acme/robots/ci",
            RouteMatch("project_robot", subject="ci", project="acme"),
        ),
        (b"/api/organizations/acme/settings", None),
        (b"/api/hubproxy/admin/users", RouteMatch("admin_users")),
        (
            b"/api/hubproxy/admin/users/bob/disabled",
            RouteMatch("admin_user_disabled", subject="bob"),
        ),
        (b"/api/hubproxy/admin/users/bob", None),
        (b"/api/hubproxy/admin/projects", RouteMatch("admin_projects")),
        (b"/api/hubproxy/admin/projects/acme", RouteMatch("admin_project", project="acme")),
        (b"/api/hubproxy/admin/robots", RouteMatch("admin_robots")),
        (b"/api/hubproxy/admin/policy", RouteMatch("admin_policy")),
        (b"/api/hubproxy/admin/audit", RouteMatch("admin_audit")),
        (b"/api/hubproxy/admin/secrets", None),
        (b"/api/hubproxy/tokens", RouteMatch("tokens")),
        (b"/api/hubproxy/tokens/tok_0123456789ab", RouteMatch("token", subject="tok_0123456789ab")),
        (b"/api/models/gpt2", RouteMatch("repo_info", RepoRef("model", "gpt2"))),
        (
            b"/api/models/gpt2/revision/main",
            RouteMatch("repo_info", RepoRef("model", "gpt2"), "main"),
        ),
        (
            b"/api/datasets/alice/d1/revision/refs%2Fconvert%2Fparquet",
            RouteMatch("repo_info", RepoRef("dataset", "alice/d1"), "refs/convert/parquet"),
        ),
        (
            b"/api/models/alice/m1/tree/main",
            RouteMatch("tree", RepoRef("model", "alice/m1"), "main", ""),
        ),
        (
            b"/api/models/alice/m1/tree/main/sub%2Fdir",
            RouteMatch("tree", RepoRef("model", "alice/m1"), "main", "sub/dir"),
        ),
        (
            b"/api/models/alice/m1/tree/main/sub/dir",
            RouteMatch("tree", RepoRef("model", "alice/m1"), "main", "sub/dir"),
        ),
        (
            b"/api/models/alice/m1/paths-info/main",
            RouteMatch("paths_info", RepoRef("model", "alice/m1"), "main"),
        ),
        (b"/api/models/alice/m1/refs", RouteMatch("refs", RepoRef("model", "alice/m1"))),
        (
            b"/api/models/alice/m1/commits/main",
            RouteMatch("commits", RepoRef("model", "alice/m1"), "main"),
        ),
        (b"/api/whoami-v2", RouteMatch("whoami")),
        (b"/api/agent-harnesses", RouteMatch("agent_harnesses")),
        (b"/api/telemetry/transformers/x", RouteMatch("telemetry")),
        (b"/", None),
        (b"/api/unknown", None),
        (b"/alice/m1/blob/main/x", None),
    ],
)
def test_match(raw_path: bytes, expected: RouteMatch | None) -> None:
    assert match_route(raw_path) == expected


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/alice/m1/resolve/main/../secret",
        b"/alice/m1/resolve/main/%2E%2E/secret",
        b"/alice/m1/resolve/main/a%00b",
        b"/alice/m1/resolve/main/%2Fetc%2Fpasswd",
        b"/alice/m1/resolve/main/",
        b"/al..ice/m1/resolve/main/x",
        b"/api/models/a--b/c",
        b"/api/models/alice/m1/tree/main/..%2F..",
        b"/alice/m1/resolve/%2E%2E/x",
        b"/alice/m1/resolve/main/%ff",
        b"/api/organizations/..%2Fetc/members",
        b"/api/organizations/acme/members/bad%20name",
        b"/api/hubproxy/tokens/..%2F..",
        b"/api/hubproxy/admin/projects/..%2Fetc",
        b"/api/hubproxy/admin/users/bad%20name/disabled",
    ],
)
def test_rejects_bad_names(raw_path: bytes) -> None:
    with pytest.raises(BadRequest):
        match_route(raw_path)


def test_remembered_matches_answer_like_fresh_ones_and_refusals_are_never_remembered() -> None:
    from hubproxy.hf_api import routing

    path = b"/memo/m1/resolve/main/config.json"
    first = match_route(path)
    assert first == RouteMatch("resolve", RepoRef("model", "memo/m1"), "main", "config.json")
    assert match_route(path) is first  # the remembered answer
    for _ in range(2):
        with pytest.raises(BadRequest):
            match_route(b"/memo/m1/resolve/ma%00in/config.json")
    assert match_route(b"/no/such/endpoint/here/at/all/x") is None
    for number in range(routing.MATCH_MEMORY_SIZE + 10):
        match_route(f"/memo/m{number}/resolve/main/f".encode())
    assert len(routing._matched) == routing.MATCH_MEMORY_SIZE
