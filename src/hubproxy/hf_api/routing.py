"""Matching of Hub URLs on the RAW request path.

Clients percent-encode revisions and tree paths as one segment (`refs%2Fpr%2F1`, `sub%2Fdir`,
hf-protocol.md §1.3), so routing on the decoded path would split them. This module splits the
raw path on `/`, then decodes each segment. It returns what the URL names; the names are
validated here too (`naming.py`), so nothing unvalidated reaches a handler.
"""

import re
from dataclasses import dataclass
from urllib.parse import unquote

from hubproxy.constants import (
    REPO_TYPE_BY_PLURAL,
    SHA256_PATTERN,
    URL_PREFIX_BY_REPO_TYPE,
    RepoType,
)
from hubproxy.errors import BadRequest
from hubproxy.lru import LruMap
from hubproxy.naming import RepoRef, namespace, path_in_repo, repo_ref, revision
from hubproxy.numbers import InvalidNumber, whole_number

# Sub-resources of `/api/{type}s/{repo}/...`.
REPO_ACTIONS = frozenset(
    {
        "revision", "tree", "paths-info", "refs", "commits", "preupload", "commit", "branch",
        "tag", "xet-write-token", "xet-read-token", "settings", "auth-check", "super-squash",
        "discussions", "like",
    }
)  # fmt: skip
# Endpoints `/api/{type}s/{repo}/<segment>/{revision}` (writes, and the Xet read token).
_WRITE_ACTIONS = {
    "preupload": "preupload",
    "commit": "commit",
    "branch": "branch",
    "tag": "tag",
    "xet-write-token": "xet_write_token",
    "xet-read-token": "xet_read_token",
    "super-squash": "super_squash",
}
# Git LFS: `/{prefix}{namespace}/{name}.git/info/lfs/objects/<segment>` -> endpoint name.
_LFS_ACTIONS = {"batch": "lfs_batch", "verify": "lfs_verify"}
_PREFIX_TYPES: dict[str, RepoType] = {
    prefix.rstrip("/"): repo_type for repo_type, prefix in URL_PREFIX_BY_REPO_TYPE.items() if prefix
}


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """What a URL names: an endpoint and, for repo endpoints, the repo, revision and path."""

    endpoint: str
    ref: RepoRef | None = None
    revision: str | None = None
    # A file or folder in the repo.
    path: str = ""
    # Project administration endpoints: the project (namespace) they act on.
    project: str | None = None
    # What else the URL names: a member, robot or user name, a token id, an LFS object id.
    subject: str = ""
    # Listings (`list_models` & co.): the type of repo listed.
    listed_type: RepoType | None = None
    # Discussion endpoints: the discussion's number (0: none named).
    discussion: int = 0


def token_id(value: str) -> str:
    """A token id as listings show it: `tok_` and 12 hex digits."""
    if not re.fullmatch(r"tok_[0-9a-f]{12}", value):
        raise BadRequest(f"Invalid token id {value!r}")
    return value


def _project_route(segments: list[str]) -> RouteMatch | None:
    """`/api/organizations/{project}/members[/{user}]` and `.../robots[/{name}]`."""
    if len(segments) not in (2, 3) or segments[1] not in ("members", "robots"):
        return None
    project = namespace(segments[0])
    name = namespace(segments[2]) if len(segments) == 3 else ""
    kind = segments[1]
    endpoint = f"project_{kind[:-1]}" if name else f"project_{kind}"
    return RouteMatch(endpoint, project=project, subject=name)


def _admin_route(segments: list[str]) -> RouteMatch | None:
    """`/api/hubproxy/admin/...`: platform administration (`hf_api.admin`, `admin_audit`)."""
    match segments:
        case ["users"]:
            return RouteMatch("admin_users")
        case ["users", user, "disabled"]:
            return RouteMatch("admin_user_disabled", subject=namespace(user))
        case ["projects"]:
            return RouteMatch("admin_projects")
        case ["projects", project]:
            return RouteMatch("admin_project", project=namespace(project))
        case ["robots"]:
            return RouteMatch("admin_robots")
        case ["policy"]:
            return RouteMatch("admin_policy")
        case ["audit"]:
            return RouteMatch("admin_audit")
    return None


# `/api/hubproxy/{type}s/{repo}/<segment>`: the model registry (`hf_api.registry`, `lineage`).
_REGISTRY_ACTIONS = frozenset({"aliases", "protections", "registry", "lineage"})


def _registry_route(repo_type: RepoType, segments: list[str]) -> RouteMatch | None:
    """`aliases[/{name}]`, `protections`, `registry`, `lineage` of a repo."""
    repo_id, rest = _split_repo(segments, _REGISTRY_ACTIONS)
    ref = repo_ref(repo_type, repo_id)
    match rest:
        case ["aliases"] | ["aliases", ""]:
            return RouteMatch("aliases", ref)
        case ["aliases", name]:
            return RouteMatch("alias", ref, revision(name))
        case ["protections"] | ["registry"] | ["lineage"]:
            return RouteMatch(f"repo_{rest[0]}", ref)
    return None


WEBHOOK_ID = re.compile(r"[0-9a-f]{24}")
_WEBHOOK_ACTIONS = {
    "enable": "webhook_switch",
    "disable": "webhook_switch",
    "deliveries": "webhook_deliveries",
}


def _webhook_route(segments: list[str]) -> RouteMatch | None:
    """`/api/settings/webhooks[/{id}[/enable|disable|deliveries]]`."""
    if not segments or segments == [""]:
        return RouteMatch("webhooks")
    if not WEBHOOK_ID.fullmatch(segments[0]):
        raise BadRequest("Invalid webhook id: 24 lowercase hexadecimal digits")
    if len(segments) == 1:
        return RouteMatch("webhook", subject=segments[0])
    if len(segments) == 2 and segments[1] in _WEBHOOK_ACTIONS:
        return RouteMatch(_WEBHOOK_ACTIONS[segments[1]], path=segments[1], subject=segments[0])
    return None


def _segments(raw_path: bytes) -> list[str]:
    try:
        text = raw_path.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("Invalid URL: non-ASCII bytes in the path") from None
    try:
        return [unquote(segment, errors="strict") for segment in text.split("/")[1:]]
    except UnicodeDecodeError:
        raise BadRequest("Invalid URL: percent-encoding is not UTF-8") from None


def segments_of(raw_path: bytes) -> list[str]:
    """The decoded segments of a raw path (what the web pages match on too)."""
    return _segments(raw_path)


def take_revision(segments: list[str]) -> tuple[str, list[str]]:
    """A revision from the front of `segments` and the segments after it."""
    return _take_revision(segments)


def _take_revision(segments: list[str]) -> tuple[str, list[str]]:
    """A revision from the front of `segments`: one (encoded) segment, or unencoded `refs/x/y`."""
    if not segments or not segments[0]:
        raise BadRequest("Invalid URL: revision missing")
    if segments[0] == "refs" and len(segments) >= 3 and segments[1] in ("pr", "convert"):
        return revision("/".join(segments[:3])), segments[3:]
    return revision(segments[0]), segments[1:]


def _split_repo(segments: list[str], markers: frozenset[str]) -> tuple[str, list[str]]:
    """`ns/name/<marker>...` or canonical `name/<marker>...` → (repo id, rest)."""
    if len(segments) >= 2 and (len(segments) == 2 or segments[2] in markers):
        return f"{segments[0]}/{segments[1]}", segments[2:]
    if len(segments) >= 1 and (len(segments) == 1 or segments[1] in markers):
        return segments[0], segments[1:]
    raise BadRequest("Invalid URL: cannot find the repo id")


def _api_repo_route(repo_type: RepoType, segments: list[str]) -> RouteMatch | None:
    repo_id, rest = _split_repo(segments, REPO_ACTIONS)
    ref = repo_ref(repo_type, repo_id)
    if not rest or rest == [""]:
        return RouteMatch("repo_info", ref)
    action, rest = rest[0], rest[1:]
    if action == "revision":
        rev, remainder = _take_revision(rest)
        if remainder and remainder != [""]:
            # Unencoded slashes in a revision (`revision/feature/x`): take it all.
            rev = revision("/".join(rest).rstrip("/"))
        return RouteMatch("repo_info", ref, rev)
    if action == "tree":
        rev, remainder = _take_revision(rest)
        return RouteMatch("tree", ref, rev, path_in_repo("/".join(remainder), allow_root=True))
    if action == "paths-info":
        rev, remainder = _take_revision(rest)
        if remainder and remainder != [""]:
            rev = revision("/".join(rest).rstrip("/"))
        return RouteMatch("paths_info", ref, rev)
    if action == "refs" and not rest:
        return RouteMatch("refs", ref)
    if action == "discussions":
        return _discussion_route(ref, rest)
    if action == "like" and rest in ([], [""]):
        return RouteMatch("repo_like", ref)
    if action == "settings" and rest in ([], [""]):
        return RouteMatch("repo_settings", ref)
    if action == "auth-check" and rest in ([], [""], ["write"]):
        return RouteMatch("auth_check_write" if rest == ["write"] else "auth_check", ref)
    if action == "commits" or action in _WRITE_ACTIONS:
        rev, remainder = _take_revision(rest)
        if remainder and remainder != [""]:
            rev = revision("/".join(rest).rstrip("/"))
        return RouteMatch(_WRITE_ACTIONS.get(action, "commits"), ref, rev)
    return None


# `.../discussions/{num}/<action>` -> endpoint name.
_DISCUSSION_ACTIONS = {
    "title": "discussion_title",
    "status": "discussion_status",
    "merge": "discussion_merge",
    "comment": "discussion_comment",
}
# Discussion numbers the Hub could hand out (and that SQLite stores as integers).
MAX_DISCUSSION = 10**9
COMMENT_ID = re.compile(r"[0-9a-fA-F]{24}")


def _discussion_route(ref: RepoRef, rest: list[str]) -> RouteMatch | None:
    """`discussions`, `discussions/{num}`, `discussions/{num}/{title|status|merge|comment}`,
    `discussions/{num}/comment/{id}/{edit|hide}`."""
    if rest in ([], [""]):
        return RouteMatch("discussions", ref)
    try:
        num = whole_number(rest[0], minimum=1, maximum=MAX_DISCUSSION)
    except InvalidNumber:
        raise BadRequest(
            f"Invalid discussion number: a whole number from 1 to {MAX_DISCUSSION}"
        ) from None
    action = rest[1:]
    if action in ([], [""]):
        return RouteMatch("discussion", ref, discussion=num)
    if len(action) == 1 and action[0] in _DISCUSSION_ACTIONS:
        return RouteMatch(_DISCUSSION_ACTIONS[action[0]], ref, discussion=num)
    if len(action) == 3 and action[0] == "comment" and action[2] in ("edit", "hide"):
        if not COMMENT_ID.fullmatch(action[1]):
            raise BadRequest("Invalid comment id: 24 hexadecimal digits")
        return RouteMatch(
            f"discussion_comment_{action[2]}", ref, subject=action[1].lower(), discussion=num
        )
    return None


def _lfs_route(segments: list[str]) -> RouteMatch | None:
    """`[{prefix}/]{namespace}/{name}.git/info/lfs/objects/{batch|verify}`."""
    if len(segments) < 6 or segments[-4:-1] != ["info", "lfs", "objects"]:
        return None
    endpoint = _LFS_ACTIONS.get(segments[-1])
    head = segments[:-4]
    if endpoint is None or not head[-1].endswith(".git"):
        return None
    repo_type: RepoType = "model"
    if len(head) == 3 and head[0] in _PREFIX_TYPES:
        repo_type, head = _PREFIX_TYPES[head[0]], head[1:]
    if len(head) != 2:
        return None
    return RouteMatch(endpoint, repo_ref(repo_type, f"{head[0]}/{head[1].removesuffix('.git')}"))


def _upload_route(segments: list[str]) -> RouteMatch | None:
    """`/api/hubproxy/lfs/{type}s/{namespace}/{name}/{sha256}`: a signed LFS upload link."""
    if len(segments) != 7 or segments[3] not in REPO_TYPE_BY_PLURAL:
        return None
    ref = repo_ref(REPO_TYPE_BY_PLURAL[segments[3]], f"{segments[4]}/{segments[5]}")
    if not SHA256_PATTERN.match(segments[6]):
        raise BadRequest("Invalid LFS object id: expected a sha256")
    return RouteMatch("lfs_upload", ref, subject=segments[6])


def _resolve_route(repo_type: RepoType, segments: list[str]) -> RouteMatch | None:
    repo_id, rest = _split_repo(segments, frozenset({"resolve"}))
    if not rest or rest[0] != "resolve":
        return None
    ref = repo_ref(repo_type, repo_id)
    rev, remainder = _take_revision(rest[1:])
    return RouteMatch("resolve", ref, rev, path_in_repo("/".join(remainder)))


# Paths matched lately and what they name. Matching is a pure function of the raw path and
# the answer is immutable, so the same URL asked again (every client of a model asks the same
# HEAD) skips the split, the decoding and the name checks. Bounded; only matches are kept
# (not refusals, nor paths that name no endpoint).
MATCH_MEMORY_SIZE = 4096
_matched: LruMap[bytes, "RouteMatch"] = LruMap(MATCH_MEMORY_SIZE)


def match_route(raw_path: bytes) -> RouteMatch | None:
    """The Hub endpoint `raw_path` names, or None. Raises `BadRequest` for invalid names."""
    match = _matched.get(raw_path)
    if match is None:
        match = _match_route(raw_path)
        if match is not None:
            _matched.put(raw_path, match)
    return match


def _match_route(raw_path: bytes) -> RouteMatch | None:
    segments = _segments(raw_path)
    if not segments or segments == [""]:
        return None
    if segments[0] == "api" and len(segments) >= 2:
        head = segments[1]
        if head in REPO_TYPE_BY_PLURAL and len(segments) >= 3:
            return _api_repo_route(REPO_TYPE_BY_PLURAL[head], segments[2:])
        if head in REPO_TYPE_BY_PLURAL and len(segments) == 2:
            # `list_models` & co.
            return RouteMatch("list_repos", listed_type=REPO_TYPE_BY_PLURAL[head])
        if segments[1:3] == ["hubproxy", "lfs"]:
            return _upload_route(segments)
        if segments[1] == "hubproxy" and len(segments) >= 5 and segments[2] in REPO_TYPE_BY_PLURAL:
            return _registry_route(REPO_TYPE_BY_PLURAL[segments[2]], segments[3:])
        if segments[1:3] == ["hubproxy", "projects"] and segments[4:] == ["protections"]:
            return RouteMatch("project_protections", project=namespace(segments[3]))
        if segments[1:] == ["validate-yaml"]:
            return RouteMatch("validate_yaml")
        if segments[1:3] == ["hubproxy", "admin"]:
            return _admin_route(segments[3:])
        if segments[1:3] == ["hubproxy", "tokens"] and len(segments) in (3, 4):
            if len(segments) == 3:
                return RouteMatch("tokens")
            return RouteMatch("token", subject=token_id(segments[3]))
        if head == "organizations" and len(segments) >= 4:
            return _project_route(segments[2:])
        if segments[1:] in (["repos", "create"], ["repos", "delete"], ["repos", "move"]):
            # The repo is named in the JSON body (`hosted.repo_from_body`).
            return RouteMatch(f"{segments[2]}_repo")
        if head == "users" and len(segments) == 4 and segments[3] == "likes":
            return RouteMatch("user_likes", subject=namespace(segments[2]))
        if segments[1:3] == ["settings", "webhooks"]:
            return _webhook_route(segments[3:])
        if segments[1:] == ["whoami-v2"]:
            return RouteMatch("whoami")
        if segments[1:] == ["agent-harnesses"]:
            return RouteMatch("agent_harnesses")
        if head == "telemetry":
            return RouteMatch("telemetry")
        return None
    if "resolve" not in segments:
        return _lfs_route(segments)
    if segments[0] in _PREFIX_TYPES and len(segments) >= 4 and segments[1] != "resolve":
        return _resolve_route(_PREFIX_TYPES[segments[0]], segments[1:])
    return _resolve_route("model", segments)
