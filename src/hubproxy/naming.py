"""Validation of every user-supplied name: repo ids, revisions and paths inside a repo.

Nothing reaches storage, the database or an upstream URL without passing through here. Each
function returns the validated value or raises `BadRequest` with a message naming the problem.
"""

import re
from dataclasses import dataclass

from hubproxy.constants import (
    REPO_ID_MAX_LENGTH,
    REPO_SEGMENT_PATTERN,
    URL_PREFIX_BY_REPO_TYPE,
    RepoType,
)
from hubproxy.errors import BadRequest

REVISION_MAX_LENGTH = 256
PATH_MAX_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class RepoRef:
    """A validated (repo type, repo id); `repo_id` is `namespace/name` or a canonical `name`."""

    repo_type: RepoType
    repo_id: str

    @property
    def url_path(self) -> str:
        """The repo's prefix in file URLs: `ns/name`, `datasets/ns/name`, ..."""
        return URL_PREFIX_BY_REPO_TYPE[self.repo_type] + self.repo_id

    @property
    def canonical(self) -> "RepoRef":
        """The same repo in its matching form: ids are compared case-insensitively, as on
        huggingface.co. What decides (authorization, project lookup, policy, cache keys) sees
        this form; output keeps the spelling the repo was created or found with."""
        return RepoRef(self.repo_type, canonical_name(self.repo_id))

    def same_repo(self, other: "RepoRef") -> bool:
        """Whether `other` names this repo (in any letter case)."""
        return self.canonical == other.canonical

    def __str__(self) -> str:
        return f"{self.repo_type}:{self.repo_id}"


def canonical_name(value: str) -> str:
    """The matching form of a namespace, repo name or repo id: case-folded (ids are ASCII)."""
    return value.lower()


def canonical_document_key(key: str) -> str:
    """A cached document's key (`kind:type:repo_id` then `@commit...` or `?query`) with its
    repo id in canonical form; the commit, path and query after it keep their case."""
    kind, _, rest = key.partition(":")
    repo_type, separator, rest = rest.partition(":")
    if not separator:
        return key
    ends = [index for index in (rest.find("@"), rest.find("?")) if index >= 0]
    end = min(ends, default=len(rest))
    return f"{kind}:{repo_type}:{canonical_name(rest[:end])}{rest[end:]}"


def _check_segment(segment: str) -> None:
    if not REPO_SEGMENT_PATTERN.match(segment):
        raise BadRequest(
            f"Invalid repo id segment {segment!r}: use letters, digits, '-', '_' and '.'"
        )
    if "--" in segment or ".." in segment:
        raise BadRequest(f"Invalid repo id segment {segment!r}: '--' and '..' are forbidden")
    if segment.endswith((".", "-")):
        raise BadRequest(f"Invalid repo id segment {segment!r}: must not end with '-' or '.'")


def repo_ref(repo_type: RepoType, repo_id: str) -> RepoRef:
    """Validate a repo id (`namespace/name` or a single canonical name) for `repo_type`."""
    segments = repo_id.split("/")
    if len(segments) > 2 or not all(segments):
        raise BadRequest(f"Invalid repo id {repo_id!r}: expected 'namespace/name'")
    if len(repo_id) > REPO_ID_MAX_LENGTH:
        raise BadRequest(
            f"Invalid repo id {repo_id!r}: longer than {REPO_ID_MAX_LENGTH} characters"
        )
    for segment in segments:
        _check_segment(segment)
    if repo_id.endswith(".git"):
        raise BadRequest(f"Invalid repo id {repo_id!r}: must not end with '.git'")
    return RepoRef(repo_type, repo_id)


def namespace(value: str) -> str:
    """Validate a namespace (user, project) or robot name: one repo id segment."""
    if not value or len(value) > REPO_ID_MAX_LENGTH:
        raise BadRequest("Invalid name: empty or too long")
    _check_segment(value)
    return value


_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def _check_printable(kind: str, value: str) -> None:
    if _CONTROL_CHARACTER.search(value):
        raise BadRequest(f"Invalid {kind}: control characters are forbidden")


def revision(value: str) -> str:
    """Validate a revision: branch, tag, `refs/pr/N`, `refs/convert/parquet` or a commit sha."""
    if not value or len(value) > REVISION_MAX_LENGTH:
        raise BadRequest("Invalid revision: empty or too long")
    _check_printable("revision", value)
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts) or value.startswith("/"):
        raise BadRequest(f"Invalid revision {value!r}")
    return value


def path_in_repo(value: str, *, allow_root: bool = False) -> str:
    """Validate a relative POSIX path inside a repo: no `..`, no absolute paths, no NUL.

    With `allow_root`, the empty path (the repo root) is accepted; trailing slashes are dropped.
    """
    stripped = value.strip("/") if allow_root else value
    if not stripped:
        if allow_root:
            return ""
        raise BadRequest("Invalid path: empty")
    if len(stripped) > PATH_MAX_LENGTH:
        raise BadRequest("Invalid path: too long")
    _check_printable("path", stripped)
    # A backslash is an ordinary character of a name (as on huggingface.co and in git).
    if stripped.startswith("/"):
        raise BadRequest(f"Invalid path {value!r}: must be relative, with '/' separators")
    if any(part in ("", ".", "..") for part in stripped.split("/")):
        raise BadRequest(f"Invalid path {value!r}: empty, '.' or '..' segments are forbidden")
    return stripped
