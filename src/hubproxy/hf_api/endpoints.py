"""The Hub endpoint table: what each endpoint does to a repo, and how it is audited.

The single place that says, per endpoint and method, which `auth.roles` action it needs (or
which platform action: `administer`, `review`), what it is recorded as in the audit log, and
how large a body it may read. The dispatcher (`dispatch.py`) applies it to every request before
any handler runs; handlers never decide permissions.
"""

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.responses import Response

from hubproxy.auth.roles import (
    ADMINISTER,
    CREATE_REPO,
    DELETE_REPO,
    MANAGE_MEMBERS,
    MANAGE_REFS,
    READ,
    REVIEW,
    WRITE,
    Action,
    PlatformAction,
)
from hubproxy.hf_api import (
    admin,
    admin_audit,
    discussions,
    hosted,
    lfs,
    likes,
    lineage,
    projects,
    registry,
    repos,
    resolve,
    tokens,
    tree,
    users,
    webhooks,
    xet_tokens,
)
from hubproxy.hf_api.bodies import MAX_JSON_BYTES
from hubproxy.hf_api.call import Call
from hubproxy.hf_api.streaming import StreamResponse

Handler = Callable[[Call], Awaitable[Response | StreamResponse]]

_READ: dict[str, Action | None] = {"GET": READ, "HEAD": READ}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A Hub endpoint: handler, the repo action of each method, and audit names by method."""

    handler: Handler
    actions: Mapping[str, Action | PlatformAction | None]
    audited: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Only for users (not anonymous callers, not robots): self-service endpoints.
    users_only: bool = False
    # What a refused request is audited as, when it is not audited when allowed.
    denied_as: str = "read"
    # The largest body the handler reads; a larger declared Content-Length is refused (413)
    # before anything is read. None: the handler streams the body and bounds it itself.
    max_body: int | None = MAX_JSON_BYTES

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(self.actions)

    def audited_as(self, method: str) -> str:
        """The audit action of a request: its own, or what a refusal of it is recorded as."""
        return self.audited.get(method, self.denied_as)


ENDPOINTS: dict[str, Endpoint] = {
    "resolve": Endpoint(resolve.resolve, _READ, {"GET": "download"}, denied_as="download"),
    "repo_info": Endpoint(repos.repo_info, _READ),
    "refs": Endpoint(repos.refs, _READ),
    "commits": Endpoint(repos.commits, _READ),
    "tree": Endpoint(tree.tree, _READ),
    "paths_info": Endpoint(tree.paths_info, {"POST": READ}, max_body=tree.MAX_BODY_BYTES),
    "create_repo": Endpoint(hosted.create_repo, {"POST": CREATE_REPO}, {"POST": "repo_create"}),
    "delete_repo": Endpoint(hosted.delete_repo, {"DELETE": DELETE_REPO}, {"DELETE": "repo_delete"}),
    # The source repo is authorized here (the body names it); the target, by `hosted.move_repo`.
    "move_repo": Endpoint(hosted.move_repo, {"POST": DELETE_REPO}, {"POST": "repo_move"}),
    # Visibility and gating change who may read: as much as deleting the repo.
    "repo_settings": Endpoint(hosted.repo_settings, {"PUT": DELETE_REPO}, {"PUT": "repo_settings"}),
    "auth_check": Endpoint(repos.auth_check, _READ),
    "auth_check_write": Endpoint(repos.auth_check, {"GET": WRITE}),
    # Steps of an upload: the PUT of LFS bytes and the commit are what the audit log records.
    "preupload": Endpoint(
        hosted.preupload, {"POST": WRITE}, denied_as="upload", max_body=hosted.MAX_LISTING_BYTES
    ),
    # NDJSON read line by line, each line bounded (`hub.commits`).
    "commit": Endpoint(hosted.commit, {"POST": WRITE}, {"POST": "commit"}, max_body=None),
    "xet_write_token": Endpoint(xet_tokens.write_token, {"GET": WRITE}, denied_as="upload"),
    "xet_read_token": Endpoint(xet_tokens.read_token, _READ, denied_as="download"),
    "lfs_batch": Endpoint(
        lfs.batch, {"POST": WRITE}, denied_as="upload", max_body=hosted.MAX_LISTING_BYTES
    ),
    # Signed links: the link itself is the authorization (clients send no token); the body
    # is bounded by the size the link names.
    "lfs_upload": Endpoint(lfs.upload, {"PUT": None}, {"PUT": "upload"}, max_body=None),
    "lfs_verify": Endpoint(lfs.verify, {"POST": WRITE}, denied_as="upload"),
    "validate_yaml": Endpoint(hosted.validate_yaml, {"POST": None}),
    # Shows only what the caller may read (filtered in the handler).
    "list_repos": Endpoint(hosted.list_repos, {"GET": None}),
    "branch": Endpoint(
        hosted.branch,
        {"POST": WRITE, "DELETE": MANAGE_REFS},
        {"POST": "ref_create", "DELETE": "ref_delete"},
    ),
    # Rewrites a branch's history: as much as deleting branches.
    "super_squash": Endpoint(hosted.super_squash, {"POST": MANAGE_REFS}, {"POST": "commit"}),
    "tag": Endpoint(
        hosted.tag,
        {"POST": MANAGE_REFS, "DELETE": MANAGE_REFS},
        {"POST": "ref_create", "DELETE": "ref_delete"},
    ),
    # Discussions and pull requests: developers open and comment (`write`), maintainers merge
    # (`manage_refs`); who may rename, close or edit what is decided by the handler
    # (`authz.may_moderate_discussion`, `may_edit_comment`) once it has read the author.
    "discussions": Endpoint(
        discussions.discussions, {"GET": READ, "POST": WRITE}, {"POST": "discussion_create"}
    ),
    "discussion": Endpoint(discussions.discussion, _READ),
    "discussion_comment": Endpoint(
        discussions.comment, {"POST": WRITE}, {"POST": "discussion_comment"}
    ),
    "discussion_comment_edit": Endpoint(
        discussions.comment_edit, {"POST": WRITE}, {"POST": "discussion_edit"}
    ),
    "discussion_comment_hide": Endpoint(
        discussions.comment_hide, {"POST": WRITE}, {"POST": "discussion_edit"}
    ),
    "discussion_title": Endpoint(discussions.title, {"POST": WRITE}, {"POST": "discussion_edit"}),
    "discussion_status": Endpoint(
        discussions.status, {"POST": WRITE}, {"POST": "discussion_status"}
    ),
    "discussion_merge": Endpoint(
        discussions.merge_pull_request, {"POST": MANAGE_REFS}, {"POST": "discussion_merge"}
    ),
    # The model registry: reading is reading the repo; promoting and removing an alias is
    # `manage_refs` (maintainers), and the protection rules then decide per ref; changing the
    # rules is `manage_members` (admins), as much as deciding who is a maintainer.
    "aliases": Endpoint(registry.aliases, _READ),
    "alias": Endpoint(
        registry.alias,
        {"GET": READ, "HEAD": READ, "PUT": MANAGE_REFS, "DELETE": MANAGE_REFS},
        {"PUT": "alias_promote", "DELETE": "alias_delete"},
    ),
    "repo_protections": Endpoint(
        registry.protections,
        {"GET": READ, "PUT": MANAGE_MEMBERS, "DELETE": MANAGE_MEMBERS},
        {"PUT": "protection_change", "DELETE": "protection_change"},
    ),
    "project_protections": Endpoint(
        registry.project_protections,
        {"GET": READ, "PUT": MANAGE_MEMBERS, "DELETE": MANAGE_MEMBERS},
        {"PUT": "protection_change", "DELETE": "protection_change"},
    ),
    "repo_registry": Endpoint(registry.registry_view, _READ),
    "repo_lineage": Endpoint(lineage.lineage, _READ),
    "project_members": Endpoint(projects.members, {"GET": MANAGE_MEMBERS}),
    "project_member": Endpoint(
        projects.member,
        {"PUT": MANAGE_MEMBERS, "DELETE": MANAGE_MEMBERS},
        {"PUT": "member_add", "DELETE": "member_remove"},
    ),
    "project_robots": Endpoint(
        projects.robots, {"GET": MANAGE_MEMBERS, "POST": MANAGE_MEMBERS}, {"POST": "robot_create"}
    ),
    "project_robot": Endpoint(
        projects.robot, {"DELETE": MANAGE_MEMBERS}, {"DELETE": "robot_revoke"}
    ),
    "tokens": Endpoint(
        tokens.tokens, {"GET": None, "POST": None}, {"POST": "token_create"}, users_only=True
    ),
    "token": Endpoint(tokens.token, {"DELETE": None}, {"DELETE": "token_revoke"}, users_only=True),
    # A user's own webhooks (`auth/webhooks.py` decides the rest).
    "webhooks": Endpoint(
        webhooks.webhooks,
        {"GET": None, "POST": None},
        {"POST": "webhook_create"},
        users_only=True,
    ),
    "webhook": Endpoint(
        webhooks.webhook,
        {"GET": None, "POST": None, "DELETE": None},
        {"POST": "webhook_update", "DELETE": "webhook_delete"},
        users_only=True,
    ),
    "webhook_switch": Endpoint(
        webhooks.switch, {"POST": None}, {"POST": "webhook_update"}, users_only=True
    ),
    "webhook_deliveries": Endpoint(webhooks.deliveries, {"GET": None}, users_only=True),
    "whoami": Endpoint(users.whoami, {"GET": None}, {"GET": "login"}),
    # A like is the caller's own: reading the repo is enough, as on huggingface.co.
    "repo_like": Endpoint(likes.like, {"POST": READ, "DELETE": READ}, users_only=True),
    # Lists only the liked repos the caller may read.
    "user_likes": Endpoint(likes.user_likes, {"GET": None}),
    # Platform administration: what `hubproxy admin --endpoint` calls.
    "admin_users": Endpoint(
        admin.users, {"GET": ADMINISTER, "POST": ADMINISTER}, {"POST": "user_create"}
    ),
    "admin_user_disabled": Endpoint(
        admin.user_disabled,
        {"PUT": ADMINISTER, "DELETE": ADMINISTER},
        {"PUT": "user_disable", "DELETE": "user_enable"},
    ),
    "admin_projects": Endpoint(
        admin.projects, {"GET": REVIEW, "POST": ADMINISTER}, {"POST": "project_create"}
    ),
    "admin_project": Endpoint(admin.project, {"DELETE": ADMINISTER}, {"DELETE": "project_delete"}),
    "admin_robots": Endpoint(admin.robots, {"GET": REVIEW}),
    "admin_policy": Endpoint(
        admin.policy, {"GET": ADMINISTER, "PATCH": ADMINISTER}, {"PATCH": "policy_change"}
    ),
    "admin_audit": Endpoint(
        admin_audit.audit, {"GET": REVIEW, "DELETE": ADMINISTER}, {"DELETE": "audit_prune"}
    ),
    "agent_harnesses": Endpoint(users.agent_harnesses, {"GET": None}),
    "telemetry": Endpoint(users.telemetry, {"GET": None, "HEAD": None, "POST": None}),
}
