"""Every refusal is audited, on every route of the endpoint table.

The walk sends each method of each endpoint of `hf_api.endpoints.ENDPOINTS` as four
principals — anonymous, an outsider user with no role anywhere, the project's developer with a
read-only token, and the developer with a write token — with a well-formed URL and body. Every
answer that refuses (401, 403, and the 404 or 501 that hide the private project `team` from
those who may not read it) must have a `deny` record in the audit log under its request id.
"""

import time
from typing import Any

import httpx
import pytest

from hubproxy.hf_api.endpoints import ENDPOINTS
from tests.security.conftest import TARGET_REPO, Fortress

REPO_API = f"/api/models/{TARGET_REPO}"
OBJECT = "a" * 64
COMMENT = "b" * 24
WEBHOOK = "c" * 24
SIGNED_LINK = f"size=1&expires={2**40}&by=user:developer&token=tok_000000000000&signature=00"
# One well-formed URL per endpoint, every one about the private hosted project `team`.
URLS: dict[str, str] = {
    "resolve": f"/{TARGET_REPO}/resolve/main/README.md",
    "repo_info": REPO_API,
    "refs": f"{REPO_API}/refs",
    "commits": f"{REPO_API}/commits/main",
    "tree": f"{REPO_API}/tree/main",
    "paths_info": f"{REPO_API}/paths-info/main",
    "create_repo": "/api/repos/create",
    "delete_repo": "/api/repos/delete",
    "move_repo": "/api/repos/move",
    "repo_settings": f"{REPO_API}/settings",
    "auth_check": f"{REPO_API}/auth-check",
    "auth_check_write": f"{REPO_API}/auth-check/write",
    "preupload": f"{REPO_API}/preupload/main",
    "commit": f"{REPO_API}/commit/main",
    "xet_write_token": f"{REPO_API}/xet-write-token/main",
    "xet_read_token": f"{REPO_API}/xet-read-token/main",
    "lfs_batch": f"/{TARGET_REPO}.git/info/lfs/objects/batch",
    "lfs_upload": f"/api/hubproxy/lfs/models/{TARGET_REPO}/{OBJECT}?{SIGNED_LINK}",
    "lfs_verify": f"/{TARGET_REPO}.git/info/lfs/objects/verify",
    "validate_yaml": "/api/validate-yaml",
    "list_repos": "/api/models?author=team",
    "branch": f"{REPO_API}/branch/walked",
    "tag": f"{REPO_API}/tag/main",
    "super_squash": f"{REPO_API}/super-squash/main",
    "discussions": f"{REPO_API}/discussions",
    "discussion": f"{REPO_API}/discussions/1",
    "discussion_comment": f"{REPO_API}/discussions/1/comment",
    "discussion_comment_edit": f"{REPO_API}/discussions/1/comment/{COMMENT}/edit",
    "discussion_comment_hide": f"{REPO_API}/discussions/1/comment/{COMMENT}/hide",
    "discussion_title": f"{REPO_API}/discussions/1/title",
    "discussion_status": f"{REPO_API}/discussions/1/status",
    "discussion_merge": f"{REPO_API}/discussions/1/merge",
    "project_members": "/api/organizations/team/members",
    "project_member": "/api/organizations/team/members/developer",
    "project_robots": "/api/organizations/team/robots",
    "project_robot": "/api/organizations/team/robots/walker",
    "tokens": "/api/hubproxy/tokens?user=root",
    "token": "/api/hubproxy/tokens/tok_000000000000",
    "webhooks": "/api/settings/webhooks",
    "webhook": f"/api/settings/webhooks/{WEBHOOK}",
    "webhook_switch": f"/api/settings/webhooks/{WEBHOOK}/disable",
    "webhook_deliveries": f"/api/settings/webhooks/{WEBHOOK}/deliveries",
    "whoami": "/api/whoami-v2",
    "repo_like": f"{REPO_API}/like",
    "user_likes": "/api/users/developer/likes",
    "admin_users": "/api/hubproxy/admin/users",
    "admin_user_disabled": "/api/hubproxy/admin/users/developer/disabled",
    "admin_projects": "/api/hubproxy/admin/projects",
    "admin_project": "/api/hubproxy/admin/projects/team",
    "admin_robots": "/api/hubproxy/admin/robots",
    "admin_policy": "/api/hubproxy/admin/policy",
    "admin_audit": "/api/hubproxy/admin/audit?before=1",
    "aliases": f"/api/hubproxy/models/{TARGET_REPO}/aliases",
    "alias": f"/api/hubproxy/models/{TARGET_REPO}/aliases/champion",
    "repo_protections": f"/api/hubproxy/models/{TARGET_REPO}/protections?pattern=walked",
    "project_protections": "/api/hubproxy/projects/team/protections?pattern=walked",
    "repo_registry": f"/api/hubproxy/models/{TARGET_REPO}/registry",
    "repo_lineage": f"/api/hubproxy/models/{TARGET_REPO}/lineage",
    "agent_harnesses": "/api/agent-harnesses",
    "telemetry": "/api/telemetry/walk",
}
# Bodies that name what the URL cannot: valid, so that only authorization can refuse them.
BODIES: dict[str, Any] = {
    "create_repo": {"name": "walked", "organization": "team"},
    "delete_repo": {"name": "target", "organization": "team"},
    "move_repo": {"fromRepo": TARGET_REPO, "toRepo": "team/walked-away", "type": "model"},
    "repo_settings": {"gated": "manual"},
    "preupload": {"files": []},
    "lfs_batch": {"operation": "upload", "objects": []},
    "lfs_verify": {"oid": OBJECT, "size": 1},
    "project_member": {"role": "admin"},
    "project_robots": {"name": "walker", "permissions": ["admin"]},
    "tokens": {"user": "root", "name": "walked", "scope": "admin"},
    "admin_users": {"name": "walked"},
    "admin_projects": {"name": "walked"},
    "admin_policy": {"mode": "allow"},
    "branch": {},
    "tag": {"tag": "walked"},
    "discussions": {"title": "A walked discussion", "description": "walked"},
    "discussion_comment": {"comment": "walked"},
    "discussion_comment_edit": {"content": "walked"},
    "discussion_title": {"title": "A walked title"},
    "discussion_status": {"status": "closed"},
    "alias": {"target": "main", "message": "walked"},
    "repo_protections": {"pattern": "walked", "minRole": "admin"},
    "project_protections": {"pattern": "walked", "minRole": "admin"},
    "webhooks": {"url": "https://hooks.invalid/walk", "watched": [{"type": "org", "name": "team"}]},
    "webhook": {"url": "https://hooks.invalid/walk"},
}
# Answers that hide the private project from a caller who may not read it.
HIDING = {404, 501}
WALKED = {"anonymous", "outsider", "reader", "writer"}


def test_every_endpoint_is_walked() -> None:
    assert set(URLS) == set(ENDPOINTS)


def _tokens(fortress: Fortress) -> dict[str, str | None]:
    """A token per walked principal; the outsider and the read token are made here."""
    with fortress.client(fortress.admin_token) as admin:
        created = admin.post("/api/hubproxy/admin/users", json={"name": "outsider"})
        assert created.status_code in (201, 409), created.text
        outsider = admin.post("/api/hubproxy/tokens", json={"user": "outsider", "scope": "write"})
        assert outsider.status_code == 201, outsider.text
    with fortress.client(fortress.developer_token) as developer:
        reader = developer.post("/api/hubproxy/tokens", json={"scope": "read"})
        assert reader.status_code == 201, reader.text
    return {
        "anonymous": None,
        "outsider": outsider.json()["token"],
        "reader": reader.json()["token"],
        "writer": fortress.developer_token,
    }


def _refuses(principal: str, endpoint: str, response: httpx.Response) -> bool:
    """Whether the answer is a refusal: 401/403 always; on the project's own URLs, for callers
    who may not read it, the 404/501 that stand in for one."""
    if response.status_code in (401, 403):
        return True
    about_the_project = "team" in URLS[endpoint] and not endpoint.startswith("admin_")
    hidden_from = {"anonymous", "outsider"}
    return about_the_project and principal in hidden_from and response.status_code in HIDING


def _denied_request_ids(fortress: Fortress) -> set[str]:
    with fortress.client(fortress.admin_token) as admin:
        answer = admin.get("/api/hubproxy/admin/audit", params={"denied": "true", "limit": 100000})
        assert answer.status_code == 200, answer.text
        return {record["request_id"] for record in answer.json() if record["decision"] == "deny"}


@pytest.mark.timeout(300)
def test_every_refusal_has_a_deny_record(fortress: Fortress) -> None:
    tokens = _tokens(fortress)
    refused: dict[str, str] = {}  # request id -> what was refused, for the failure message
    tried = 0
    for principal in sorted(WALKED):
        with fortress.client(tokens[principal]) as client:
            for endpoint_name, endpoint in sorted(ENDPOINTS.items()):
                for method in sorted(endpoint.methods):
                    body = BODIES.get(endpoint_name) if method in ("POST", "PUT", "PATCH") else None
                    response = client.request(
                        method,
                        URLS[endpoint_name],
                        json=body,
                        content=b"x" if endpoint_name == "lfs_upload" else None,
                    )
                    tried += 1
                    assert response.status_code < 500 or response.status_code == 501, (
                        endpoint_name,
                        method,
                        response.text,
                    )
                    if _refuses(principal, endpoint_name, response):
                        request_id = response.headers["x-request-id"]
                        refused[request_id] = (
                            f"{principal} {method} {endpoint_name} -> {response.status_code}"
                        )
    # Every principal is refused somewhere, and the anonymous caller almost everywhere.
    assert len(refused) > len(ENDPOINTS), refused
    deadline = time.monotonic() + 30
    missing = set(refused)
    while missing and time.monotonic() < deadline:
        missing -= _denied_request_ids(fortress)
        if missing:
            time.sleep(0.2)  # the audit queue writes in batches
    assert not missing, sorted(refused[request_id] for request_id in missing)
    print(f"{tried} requests, {len(refused)} refusals, all audited")
