"""What a pull request changes, whether it still merges, and its diff.

A pull request records the commit of its target branch it started from (`base_commit`). Its
changes are the files that differ between that commit and its head; it merges into the target
branch's current head file by file (a three-way merge on whole files): a path the pull request
changed and the target branch changed differently since is a conflict. Pure functions, except
`diff`, which reads small text files to show their lines.
"""

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from hubproxy.hub.repos import HubFile
from hubproxy.stores import ContentStore

# Files larger than this (or not UTF-8 text, or in LFS) are shown as "Binary files differ".
MAX_DIFF_FILE = 256 * 1024
# Past this many characters the diff is cut (a note says so).
MAX_DIFF = 4 * 1024 * 1024
CONFLICT_MESSAGE = "This pull request has conflicts with the target branch and cannot be merged"


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The target branch's files with the pull request's changes, or what conflicts."""

    files: dict[str, HubFile]
    conflicts: list[str]


def changed_paths(before: Mapping[str, HubFile], after: Mapping[str, HubFile]) -> list[str]:
    """Paths added, removed or changed between two file lists, sorted."""
    paths = before.keys() | after.keys()
    return sorted(path for path in paths if before.get(path) != after.get(path))


def merge(
    base: Mapping[str, HubFile], target: Mapping[str, HubFile], head: Mapping[str, HubFile]
) -> MergeResult:
    """Apply what `head` changed since `base` onto `target`."""
    files = dict(target)
    conflicts = []
    for path in changed_paths(base, head):
        wanted = head.get(path)
        if target.get(path) != base.get(path) and target.get(path) != wanted:
            conflicts.append(path)
            continue
        if wanted is None:
            files.pop(path, None)
        else:
            files[path] = wanted
    return MergeResult(files, conflicts)


async def _text(content: ContentStore, file: HubFile | None) -> list[str] | None:
    """The lines of a small regular text file ([] for none), or None when shown as binary."""
    if file is None:
        return []
    if file.sha256 is not None or file.size > MAX_DIFF_FILE:
        return None
    data = b"".join([piece async for piece in content.read(file.blob_id, file.size, 0, file.size)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\0" in text:
        return None
    return text.splitlines(keepends=True)


async def diff(
    content: ContentStore, before: Mapping[str, HubFile], after: Mapping[str, HubFile]
) -> str:
    """A git-style diff of two file lists."""
    parts: list[str] = []
    size = 0
    for path in changed_paths(before, after):
        old, new = before.get(path), after.get(path)
        lines = [f"diff --git a/{path} b/{path}\n"]
        if old is None:
            lines.append("new file mode 100644\n")
        elif new is None:
            lines.append("deleted file mode 100644\n")
        old_id = old.git_oid[:7] if old else "0000000"
        new_id = new.git_oid[:7] if new else "0000000"
        lines.append(f"index {old_id}..{new_id}" + (" 100644\n" if old and new else "\n"))
        old_lines, new_lines = await _text(content, old), await _text(content, new)
        if old_lines is None or new_lines is None:
            source = f"a/{path}" if old else "/dev/null"
            target = f"b/{path}" if new else "/dev/null"
            lines.append(f"Binary files {source} and {target} differ\n")
        else:
            hunks = difflib.unified_diff(
                old_lines,
                new_lines,
                f"a/{path}" if old else "/dev/null",
                f"b/{path}" if new else "/dev/null",
            )
            lines.extend(line if line.endswith("\n") else line + "\n" for line in hunks)
        part = "".join(lines)
        size += len(part)
        if size > MAX_DIFF:
            parts.append(f"# diff cut: more than {MAX_DIFF} characters\n")
            break
        parts.append(part)
    return "".join(parts)
