"""How each file of a preupload travels, decided as huggingface.co decides it.

A file is `lfs` when the repo's `.gitattributes` gives it `filter=lfs`, when its first bytes
look binary (a NUL byte, git's own test), or from the size threshold (10 MB on huggingface.co,
`upload_lfs_threshold` here); otherwise `regular`. Empty files are always `regular`. A file
the `.gitignore` of the upload (or else of the revision) ignores gets `shouldIgnore: true`.

`HF_UPLOAD_MODES` is the one switch: off, only the size threshold decides (what a hub
without a Xet CAS must answer, since a default client sends every `lfs` file through Xet and
says nothing of it in its preupload request, hf-protocol.md §3.2). hubproxy's CAS accepts
those uploads, so it is on.

Patterns follow git's rules (gitattributes(5), gitignore(5)): a pattern without a slash
matches the name in any directory, one with a slash matches from the root, `*` and `?` stay
inside one path segment, `**` crosses them; in `.gitignore`, a trailing slash matches
directories only, `!` re-includes, and the last matching pattern wins.
"""

import functools
import re
from dataclasses import dataclass
from typing import Final

HF_UPLOAD_MODES: Final = True
SAMPLE_BINARY_BYTE: Final = b"\0"


@functools.lru_cache(maxsize=1024)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A git wildmatch pattern (without `!` and trailing `/`) as a regex over full paths."""
    anchored = "/" in pattern
    pattern = pattern.lstrip("/")
    out = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("/**", index) and index + 3 == len(pattern):
            out.append("/.*")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if character == "*":
            out.append("[^/]*")
        elif character == "?":
            out.append("[^/]")
        elif character == "[":
            end = pattern.find("]", index + 2)
            if end < 0:
                out.append(re.escape(character))
            else:
                body = pattern[index + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body + "]")
                index = end
        elif character == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(character))
        index += 1
    prefix = "" if anchored else "(?:.*/)?"
    try:
        return re.compile(prefix + "".join(out))
    except re.error:
        return re.compile(r"(?!)")  # an unparseable pattern matches nothing, as in git


def matches(pattern: str, path: str) -> bool:
    """Whether the git pattern `pattern` matches `path` (a file or directory path)."""
    return _pattern_regex(pattern).fullmatch(path) is not None


def lfs_patterns(gitattributes: str) -> list[tuple[str, bool]]:
    """(pattern, tracked) of every `.gitattributes` line that sets or unsets `filter`."""
    rules = []
    for line in gitattributes.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        for attribute in fields[1:]:
            if attribute == "filter=lfs":
                rules.append((fields[0], True))
            elif attribute in ("-filter", "!filter") or (
                attribute.startswith("filter=") and attribute != "filter=lfs"
            ):
                rules.append((fields[0], False))
    return rules


def tracked_by_lfs(rules: list[tuple[str, bool]], path: str) -> bool:
    """Whether the last rule matching `path` gives it `filter=lfs`."""
    tracked = False
    for pattern, sets in rules:
        if matches(pattern, path):
            tracked = sets
    return tracked


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    pattern: str
    negated: bool
    directories_only: bool


def ignore_rules(gitignore: str) -> list[IgnoreRule]:
    rules = []
    for raw in gitignore.splitlines():
        line = raw.rstrip()
        if raw.endswith("\\ "):
            line += " "
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        directories_only = line.endswith("/")
        line = line.rstrip("/")
        if line:
            rules.append(IgnoreRule(line, negated, directories_only))
    return rules


def ignored(rules: list[IgnoreRule], path: str) -> bool:
    """Whether `.gitignore` rules ignore file `path`: git ignores a file when the last rule
    matching it (or any of its directories, which then cannot be re-included) ignores it."""
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        candidate = "/".join(parts[:depth])
        is_directory = depth < len(parts)
        verdict = False
        for rule in rules:
            if rule.directories_only and not is_directory:
                continue
            if matches(rule.pattern, candidate):
                verdict = not rule.negated
        if verdict:
            return True
    return False


def looks_binary(sample: bytes) -> bool:
    """git's test for binary content: a NUL byte in the first bytes."""
    return SAMPLE_BINARY_BYTE in sample
