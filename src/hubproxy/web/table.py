"""The page table: per page and method, the `auth.roles` action the dispatcher checks before
the handler runs, and what is audited — built like the API's `hf_api.endpoints.ENDPOINTS`, with
the same `Endpoint` type, so pages are authorized and audited exactly as API calls are.

Reads are audited as the API audits reads (refusals only); the forms that change something
are audited under the API's names for the same change (`member_add`, `token_revoke`).
"""

from hubproxy.auth.roles import ADMINISTER, MANAGE_MEMBERS, READ, REVIEW, Action
from hubproxy.hf_api.endpoints import Endpoint
from hubproxy.web import admin_pages, pages, registry_pages, repo_pages

_READ: dict[str, Action | None] = {"GET": READ, "HEAD": READ}
_OPEN: dict[str, Action | None] = {"GET": None, "HEAD": None}

PAGES: dict[str, Endpoint] = {
    # Listings show only what the caller may read (filtered by `auth.authz.readable`).
    "page_home": Endpoint(pages.home, _OPEN),
    "page_listing": Endpoint(pages.home, _OPEN),
    "page_namespace": Endpoint(pages.namespace, _OPEN),
    "page_login": Endpoint(
        pages.login, {"GET": None, "HEAD": None, "POST": None}, {"POST": "login"}
    ),
    "page_logout": Endpoint(pages.logout, {"POST": None}),
    "page_repo": Endpoint(repo_pages.repo, _READ),
    "page_tree": Endpoint(repo_pages.tree, _READ),
    "page_blob": Endpoint(repo_pages.blob, _READ),
    "page_commits": Endpoint(repo_pages.commits, _READ),
    "page_commit": Endpoint(repo_pages.commit, _READ),
    "page_discussions": Endpoint(repo_pages.discussions, _READ),
    "page_discussion": Endpoint(repo_pages.discussion, _READ),
    # The model registry of a hosted repo: read like the API's `GET .../registry`.
    "page_registry": Endpoint(registry_pages.registry, _READ),
    # Administration: platform admins see everything, project admins their projects.
    "page_admin": Endpoint(admin_pages.overview, {"GET": REVIEW}),
    "page_admin_audit": Endpoint(admin_pages.audit, {"GET": REVIEW}),
    "page_admin_audit_export": Endpoint(admin_pages.audit_export, {"GET": REVIEW}),
    "page_admin_projects": Endpoint(admin_pages.projects, {"GET": REVIEW}),
    "page_admin_project": Endpoint(admin_pages.project, {"GET": MANAGE_MEMBERS}),
    "page_admin_member": Endpoint(
        admin_pages.member, {"POST": MANAGE_MEMBERS}, {"POST": "member_add"}
    ),
    "page_admin_tokens": Endpoint(
        admin_pages.tokens, {"GET": None, "POST": None}, {"POST": "token_revoke"}, users_only=True
    ),
    "page_admin_policy": Endpoint(admin_pages.policy, {"GET": ADMINISTER}),
    "page_admin_cache": Endpoint(admin_pages.cache, {"GET": ADMINISTER}),
}
