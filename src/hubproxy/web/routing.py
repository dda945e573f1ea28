"""Page URLs, at huggingface.co's spellings, matched on the raw path like the API's
(`hf_api/routing.py`: revisions and paths may be percent-encoded as one segment).

`match_page` is only asked about paths the API does not claim (`dispatch.FrontDoor`), so a page
can never shadow `/api/...`, `/{repo}/resolve/...`, LFS or Xet routes. Repo pages name
`namespace/name` (canonical upstream ids without a namespace have no pages).
"""

from hubproxy.constants import REPO_TYPE_BY_PLURAL, RepoType
from hubproxy.errors import BadRequest
from hubproxy.hf_api.routing import RouteMatch, segments_of, take_revision
from hubproxy.naming import namespace, path_in_repo, repo_ref
from hubproxy.numbers import InvalidNumber, whole_number

# First segments that are pages of their own, never a namespace.
RESERVED = frozenset(
    {"admin", "login", "logout", "models", "datasets", "spaces", "-", "api", "health", "metrics"}
)
_ADMIN_PAGES = {
    (): "page_admin",
    ("audit",): "page_admin_audit",
    ("audit", "export"): "page_admin_audit_export",
    ("projects",): "page_admin_projects",
    ("tokens",): "page_admin_tokens",
    ("policy",): "page_admin_policy",
    ("cache",): "page_admin_cache",
}
_PREFIXES: dict[str, RepoType] = {"datasets": "dataset", "spaces": "space"}
MAX_DISCUSSION = 10**9


def _admin_page(rest: list[str]) -> RouteMatch | None:
    if rest and rest[-1] == "":
        rest = rest[:-1]
    found = _ADMIN_PAGES.get(tuple(rest))
    if found is not None:
        return RouteMatch(found)
    if len(rest) == 2 and rest[0] == "projects":
        return RouteMatch("page_admin_project", project=namespace(rest[1]))
    if len(rest) == 3 and rest[0] == "projects" and rest[2] == "members":
        return RouteMatch("page_admin_member", project=namespace(rest[1]))
    return None


def _repo_page(repo_type: RepoType, segments: list[str]) -> RouteMatch | None:
    if len(segments) < 2 or not segments[1]:
        return None
    ref = repo_ref(repo_type, f"{segments[0]}/{segments[1]}")
    rest = segments[2:]
    if rest in ([], [""]):
        return RouteMatch("page_repo", ref)
    kind, rest = rest[0], rest[1:]
    if kind in ("tree", "blob"):
        revision, remainder = take_revision(rest)
        path = path_in_repo("/".join(remainder).rstrip("/"), allow_root=kind == "tree")
        if kind == "blob" and not path:
            raise BadRequest("Invalid URL: name the file to show")
        return RouteMatch(f"page_{kind}", ref, revision, path)
    if kind == "commits":
        revision, remainder = take_revision(rest) if rest and rest[0] else ("main", [])
        if remainder not in ([], [""]):
            return None
        return RouteMatch("page_commits", ref, revision)
    if kind == "commit" and len(rest) == 1:
        return RouteMatch("page_commit", ref, take_revision(rest)[0])
    if kind == "registry" and rest in ([], [""]):
        return RouteMatch("page_registry", ref)
    if kind == "discussions":
        if rest in ([], [""]):
            return RouteMatch("page_discussions", ref)
        if len(rest) == 1:
            try:
                number = whole_number(rest[0], minimum=1, maximum=MAX_DISCUSSION)
            except InvalidNumber:
                raise BadRequest("Invalid discussion number") from None
            return RouteMatch("page_discussion", ref, discussion=number)
    return None


def match_page(raw_path: bytes) -> RouteMatch | None:
    """The page `raw_path` names, or None. Raises `BadRequest` for invalid names."""
    segments = segments_of(raw_path)
    if segments in ([], [""]):
        return RouteMatch("page_home")
    head = segments[0]
    if head == "admin":
        return _admin_page(segments[1:])
    if segments in (["login"], ["logout"]):
        return RouteMatch(f"page_{head}")
    if segments[1:] in ([], [""]) and head in REPO_TYPE_BY_PLURAL:
        return RouteMatch("page_listing", listed_type=REPO_TYPE_BY_PLURAL[head])
    if head in _PREFIXES and len(segments) >= 3:
        return _repo_page(_PREFIXES[head], segments[1:])
    if head in RESERVED:
        return None
    if segments[1:] in ([], [""]):
        return RouteMatch("page_namespace", project=namespace(head))
    return _repo_page("model", segments)
