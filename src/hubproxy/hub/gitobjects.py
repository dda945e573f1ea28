"""Git object ids for hosted repos: blobs, LFS pointers, trees and commits, exactly as git.

Hosted repos are not git repositories on disk, but every id they show is the one git would
compute for the same content: a regular file's `oid` is `git hash-object`, an LFS file's is
the id of its pointer file, a directory's is its tree id and a commit sha is the sha1 of a
real commit object. Clients compare these with what they hold locally (preupload `oid`,
ETags), and a repo exported to git elsewhere would keep the same shas.
"""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

FILE_MODE = "100644"
TREE_MODE = "40000"


def object_id(kind: str, content: bytes) -> str:
    """The sha1 git names an object of `kind` (`blob`, `tree`, `commit`) with `content` by."""
    header = f"{kind} {len(content)}\0".encode()
    return hashlib.sha1(header + content, usedforsecurity=False).hexdigest()


def git_blob_oid(content: bytes) -> str:
    """`git hash-object` of a file's bytes."""
    return object_id("blob", content)


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The Git LFS pointer file that stands in the tree for an LFS file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def _tree_object(entries: Mapping[str, tuple[str, str]]) -> bytes:
    """A tree object's content from name → (mode, hex id), in git's order: by name, with
    directories compared as if their name ended in '/'."""

    def order(name: str) -> bytes:
        mode, _ = entries[name]
        return (name + "/" if mode == TREE_MODE else name).encode()

    content = bytearray()
    for name in sorted(entries, key=order):
        mode, hex_id = entries[name]
        content += f"{mode} {name}\0".encode() + bytes.fromhex(hex_id)
    return bytes(content)


def directories(paths: Iterable[str]) -> set[str]:
    """Every directory the file `paths` lie in (the root '' excluded)."""
    found: set[str] = set()
    for path in paths:
        parts = path.split("/")
        found.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return found


def tree_ids(files: Mapping[str, str]) -> dict[str, str]:
    """The tree id of every directory ('' is the root) of a snapshot given as path → blob id."""
    children: dict[str, dict[str, tuple[str, str]]] = {
        directory: {} for directory in ("", *directories(files))
    }
    for path, blob in files.items():
        parent, _, name = path.rpartition("/")
        children[parent][name] = (FILE_MODE, blob)
    ids: dict[str, str] = {}
    # Deepest directories first, so a parent sees its subdirectories' ids.
    for directory in sorted(children, key=lambda item: item.count("/") + bool(item), reverse=True):
        ids[directory] = object_id("tree", _tree_object(children[directory]))
        if directory:
            parent, _, name = directory.rpartition("/")
            children[parent][name] = (TREE_MODE, ids[directory])
    return ids


@dataclass(frozen=True, slots=True)
class Signature:
    """Who made a commit and when (seconds since the epoch, UTC)."""

    name: str
    email: str
    timestamp: int

    def line(self) -> str:
        return f"{self.name} <{self.email}> {self.timestamp} +0000"


def commit_object(tree: str, parents: Sequence[str], author: Signature, message: str) -> bytes:
    """A commit object's content (author and committer are the same)."""
    lines = [f"tree {tree}", *(f"parent {parent}" for parent in parents)]
    lines += [f"author {author.line()}", f"committer {author.line()}", "", message]
    text = "\n".join(lines)
    return (text if text.endswith("\n") else text + "\n").encode()


def commit_id(tree: str, parents: Sequence[str], author: Signature, message: str) -> str:
    return object_id("commit", commit_object(tree, parents, author, message))
