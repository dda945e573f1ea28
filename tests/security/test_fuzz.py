"""Hostile values in every parameter and body of every endpoint: no 5xx, a code on every 4xx,
and nothing changes.

The walk covers each endpoint of `hf_api.endpoints.ENDPOINTS` (a test checks none is missing)
with each of its methods, as an anonymous caller, a project developer and a platform admin:
hostile URL segments, query values, headers and bodies (huge and unicode digits, deep JSON,
wrong types, surrogates, NUL, very long strings). Afterwards the repos, refs, commits,
accounts, tokens, robots and policy read exactly as before. 501 (`NotImplemented`) is an
intended answer of some endpoints, not a failure.
"""

import itertools
from typing import Any

import httpx
import pytest

from hubproxy.hf_api.endpoints import ENDPOINTS
from tests.security.conftest import TARGET_REPO, Fortress

REPO_API = f"/api/models/{TARGET_REPO}"
OBJECT = "a" * 64
COMMENT = "b" * 24
WEBHOOK = "c" * 24
# "{v}" is replaced by each hostile URL segment.
URLS: dict[str, list[str]] = {
    "resolve": [f"/{TARGET_REPO}/resolve/{{v}}/README.md", f"/{TARGET_REPO}/resolve/main/{{v}}"],
    "repo_info": [REPO_API, f"{REPO_API}/revision/{{v}}", "/api/models/{v}/x"],
    "refs": [f"{REPO_API}/refs"],
    "commits": [f"{REPO_API}/commits/{{v}}", f"{REPO_API}/commits/main"],
    "tree": [f"{REPO_API}/tree/{{v}}", f"{REPO_API}/tree/main/{{v}}", f"{REPO_API}/tree/main"],
    "paths_info": [f"{REPO_API}/paths-info/{{v}}", f"{REPO_API}/paths-info/main"],
    "create_repo": ["/api/repos/create"],
    "delete_repo": ["/api/repos/delete"],
    "move_repo": ["/api/repos/move"],
    "repo_settings": [f"{REPO_API}/settings", "/api/models/{v}/x/settings"],
    "auth_check": [f"{REPO_API}/auth-check", "/api/models/{v}/x/auth-check"],
    "auth_check_write": [f"{REPO_API}/auth-check/write"],
    "preupload": [f"{REPO_API}/preupload/{{v}}", f"{REPO_API}/preupload/main"],
    "commit": [f"{REPO_API}/commit/{{v}}", f"{REPO_API}/commit/main"],
    "xet_write_token": [f"{REPO_API}/xet-write-token/{{v}}"],
    "xet_read_token": [f"{REPO_API}/xet-read-token/{{v}}"],
    "lfs_batch": [f"/{TARGET_REPO}.git/info/lfs/objects/batch"],
    "lfs_upload": [f"/api/hubproxy/lfs/models/{TARGET_REPO}/{OBJECT}"],
    "lfs_verify": [f"/{TARGET_REPO}.git/info/lfs/objects/verify"],
    "validate_yaml": ["/api/validate-yaml"],
    "list_repos": ["/api/models"],
    "branch": [f"{REPO_API}/branch/{{v}}"],
    "tag": [f"{REPO_API}/tag/{{v}}"],
    "super_squash": [f"{REPO_API}/super-squash/{{v}}"],
    "discussions": [f"{REPO_API}/discussions", "/api/models/{v}/x/discussions"],
    "discussion": [f"{REPO_API}/discussions/{{v}}", f"{REPO_API}/discussions/1"],
    "discussion_comment": [
        f"{REPO_API}/discussions/{{v}}/comment",
        f"{REPO_API}/discussions/1/comment",
    ],
    "discussion_comment_edit": [
        f"{REPO_API}/discussions/1/comment/{{v}}/edit",
        f"{REPO_API}/discussions/1/comment/{COMMENT}/edit",
    ],
    "discussion_comment_hide": [
        f"{REPO_API}/discussions/1/comment/{{v}}/hide",
        f"{REPO_API}/discussions/1/comment/{COMMENT}/hide",
    ],
    "discussion_title": [f"{REPO_API}/discussions/{{v}}/title", f"{REPO_API}/discussions/1/title"],
    "discussion_status": [
        f"{REPO_API}/discussions/{{v}}/status",
        f"{REPO_API}/discussions/1/status",
    ],
    "discussion_merge": [f"{REPO_API}/discussions/{{v}}/merge", f"{REPO_API}/discussions/1/merge"],
    "project_members": ["/api/organizations/{v}/members", "/api/organizations/team/members"],
    "project_member": ["/api/organizations/team/members/{v}"],
    "project_robots": ["/api/organizations/{v}/robots", "/api/organizations/team/robots"],
    "project_robot": ["/api/organizations/team/robots/{v}"],
    "tokens": ["/api/hubproxy/tokens"],
    "token": ["/api/hubproxy/tokens/{v}", "/api/hubproxy/tokens/tok_000000000000"],
    "webhooks": ["/api/settings/webhooks"],
    "webhook": ["/api/settings/webhooks/{v}", f"/api/settings/webhooks/{WEBHOOK}"],
    "webhook_switch": [
        "/api/settings/webhooks/{v}/enable",
        f"/api/settings/webhooks/{WEBHOOK}/disable",
    ],
    "webhook_deliveries": [f"/api/settings/webhooks/{WEBHOOK}/deliveries"],
    "whoami": ["/api/whoami-v2"],
    "repo_like": [f"{REPO_API}/like", "/api/models/{v}/x/like"],
    "user_likes": ["/api/users/{v}/likes"],
    "admin_users": ["/api/hubproxy/admin/users"],
    "admin_user_disabled": ["/api/hubproxy/admin/users/{v}/disabled"],
    "admin_projects": ["/api/hubproxy/admin/projects"],
    "admin_project": ["/api/hubproxy/admin/projects/{v}"],
    "admin_robots": ["/api/hubproxy/admin/robots"],
    "admin_policy": ["/api/hubproxy/admin/policy"],
    "admin_audit": ["/api/hubproxy/admin/audit"],
    "aliases": [
        f"/api/hubproxy/models/{TARGET_REPO}/aliases",
        "/api/hubproxy/models/{v}/x/aliases",
    ],
    "alias": [
        f"/api/hubproxy/models/{TARGET_REPO}/aliases/{{v}}",
        f"/api/hubproxy/models/{TARGET_REPO}/aliases/champion",
    ],
    "repo_protections": [
        f"/api/hubproxy/models/{TARGET_REPO}/protections",
        f"/api/hubproxy/models/{TARGET_REPO}/protections?pattern={{v}}",
    ],
    "project_protections": [
        "/api/hubproxy/projects/{v}/protections",
        "/api/hubproxy/projects/team/protections?pattern={v}",
    ],
    "repo_registry": [
        f"/api/hubproxy/models/{TARGET_REPO}/registry",
        "/api/hubproxy/models/{v}/x/registry",
    ],
    "repo_lineage": [f"/api/hubproxy/models/{TARGET_REPO}/lineage"],
    "agent_harnesses": ["/api/agent-harnesses"],
    "telemetry": ["/api/telemetry/{v}"],
}
# Raw (already percent-encoded where needed) URL segments and query values.
HOSTILE_TEXT = [
    "%C2%B2",  # ²: isdigit() but not int()
    "%D9%A3",  # Arabic-Indic three
    "9" * 5000,
    "-1",
    "1e400",
    "Infinity",
    "NaN",
    "%00",
    "%ED%A0%80",  # a UTF-8-encoded lone surrogate
    "%FF",
    "a" * 10_000,
    "..",
    "%2E%2E%2F%2E%2E",
    "refs%2Fpr%2F%C2%B2",
    "%22%3E%3Cscript%3E",
]
HOSTILE_QUERY_VALUES = ["%C2%B2", "9" * 5000, "1e400", "%00", "%ED%A0%80", "-1"]
QUERY_NAMES = [
    "p", "cursor", "limit", "recursive", "expand", "include_prs", "create_pr", "since", "before",
    "user", "repo", "action", "denied", "size", "expires", "by", "signature", "author", "search",
    "type", "status", "diff", "foo",
]  # fmt: skip
DEEP = b"[" * 100_000 + b"]" * 100_000
# Bodies no endpoint may accept (a well-formed object with unknown keys can be a valid
# request: those belong in each endpoint's own tests, not in a walk that must change nothing).
HOSTILE_BODIES = [
    DEEP,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b"null",
    b"[]",
    b'"text"',
    b"\xff\xfe\x00",
    b'{"name": "team/\\ud800", "tag": "\\udfff", "role": "\\ud800", "paths": ["\\ud800"]}',
    b'{"expires_in": 1e400, "name": "x", "size": 1e400}',
    b'{"expires_in": NaN, "permissions": [Infinity]}',
    b'{"oid": "' + OBJECT.encode() + b'", "size": ' + b"9" * 5000 + b"}",
    b'{"key": "header", "value": {"summary": "' + b"s" * 5000 + b'", "parentCommit": 5}}\n'
    b'{"key": "deletedFile", "value": {"path": "\\ud800"}}',
]
HOSTILE_HEADERS = [
    {"Range": "bytes=\xb2-"},
    {"Range": "bytes=" + "9" * 5000 + "-"},
    {"Range": "bytes=-" + "9" * 5000},
    {"If-Range": "\x01" * 100},
    {"Content-Type": "application/json; charset=\xff"},
    {"Authorization": "Bearer \xb2" + "x" * 5000},
    {"Authorization": "Basic %%%"},
]


def snapshot(fortress: Fortress) -> dict[str, Any]:
    """What hostile requests must not change, as the platform admin sees it."""
    with fortress.client(fortress.admin_token) as client:
        reads = {
            "repos": "/api/models?author=team",
            "refs": f"{REPO_API}/refs",
            "commits": f"{REPO_API}/commits/main",
            "tree": f"{REPO_API}/tree/main",
            "discussions": f"{REPO_API}/discussions?status=all",
            "users": "/api/hubproxy/admin/users",
            "projects": "/api/hubproxy/admin/projects",
            "robots": "/api/hubproxy/admin/robots",
            "policy": "/api/hubproxy/admin/policy",
            "members": "/api/organizations/team/members",
            "admin tokens": "/api/hubproxy/tokens",
        }
        state: dict[str, Any] = {}
        for name, path in reads.items():
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            state[name] = answer.json()
    with fortress.client(fortress.developer_token) as client:
        state["developer tokens"] = client.get("/api/hubproxy/tokens").json()
        state["developer webhooks"] = client.get("/api/settings/webhooks").json()
    for name in ("admin tokens", "developer tokens"):
        # When a token was last used changes with every request: not state an attack changes.
        state[name] = [
            {key: value for key, value in token.items() if "last" not in key.lower()}
            for token in state[name]
        ]
    return state


def requests_for(endpoint: str) -> list[tuple[str, str, dict[str, str | bytes], bytes | None]]:
    """(method, raw URL, headers, body) of every hostile request to `endpoint`."""
    made: list[tuple[str, str, dict[str, str | bytes], bytes | None]] = []
    for method in sorted(ENDPOINTS[endpoint].methods):
        templates = URLS[endpoint]
        for template in templates:
            if "{v}" in template:
                made += [
                    (method, template.replace("{v}", value), {}, None) for value in HOSTILE_TEXT
                ]
        plain = next((url for url in templates if "{v}" not in url), None)
        if plain is None:
            plain = templates[0].replace("{v}", "main")
            if endpoint in ("branch", "tag", "super_squash"):
                plain = templates[0].replace("{v}", "fuzzed")
        names = QUERY_NAMES if method in ("GET", "HEAD") else ["size", "expires", "create_pr"]
        made += [
            (method, f"{plain}?{name}={value}", {}, None)
            for name, value in itertools.product(names, HOSTILE_QUERY_VALUES)
        ]
        if method not in ("GET", "HEAD"):
            made += [
                (method, plain, {"Content-Type": "application/json"}, body)
                for body in HOSTILE_BODIES
            ]
        made += [(method, plain, dict(headers), None) for headers in HOSTILE_HEADERS]
    # A write without a body can be a valid request (create a token, a branch): hostile URLs,
    # queries and headers on writes come with a body no endpoint accepts.
    return [
        (method, url, headers, b"[]" if body is None and method not in ("GET", "HEAD") else body)
        for method, url, headers, body in made
    ]


def test_every_endpoint_is_fuzzed() -> None:
    assert set(URLS) == set(ENDPOINTS)


@pytest.mark.parametrize("principal", ["anonymous", "developer", "admin"])
def test_hostile_requests_never_fail_inside(fortress: Fortress, principal: str) -> None:
    token = {"anonymous": None, "developer": fortress.developer_token}.get(
        principal, fortress.admin_token
    )
    before = snapshot(fortress)
    failures: list[str] = []
    counts: dict[int, int] = {}
    with fortress.client(token) as client:
        for endpoint in sorted(ENDPOINTS):
            for method, url, headers, body in requests_for(endpoint):
                encoded = {name: value.encode("latin-1") if isinstance(value, str) else value
                           for name, value in headers.items()}  # fmt: skip
                try:
                    answer = client.request(method, url, headers=encoded, content=body)
                except httpx.RemoteProtocolError as error:
                    failures.append(f"{method} {url[:80]}: connection dropped ({error})")
                    continue
                counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
                if answer.status_code >= 500 and answer.status_code != 501:
                    failures.append(f"{method} {url[:80]} {body!r:.60}: {answer.status_code}")
                elif answer.status_code >= 400 and not answer.headers.get("x-error-code"):
                    failures.append(
                        f"{method} {url[:80]} {headers!r:.60}: {answer.status_code} without a code"
                    )
    assert not failures, f"{len(failures)} failures, e.g.:\n" + "\n".join(failures[:30])
    assert sum(counts.values()) > 1000, counts
    assert snapshot(fortress) == before
