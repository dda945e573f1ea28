"""The commit payload (hf-protocol.md §6.4): NDJSON lines in, a new file list out.

`read_operations` parses the request body as it arrives, one line at a time, and refuses
anything malformed before a single byte is stored. `apply_operations` is pure: the base
commit's files plus the operations, checked for paths git could not represent.
"""

import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hubproxy.blob_ids import BlobId
from hubproxy.constants import SHA256_PATTERN
from hubproxy.errors import BadRequest, EntryNotFound, UploadRejected
from hubproxy.hub.gitobjects import directories, git_blob_oid, lfs_pointer
from hubproxy.hub.repos import HubFile
from hubproxy.json_input import parse_json
from hubproxy.naming import path_in_repo

SUMMARY_MAX_LENGTH = 1024
DESCRIPTION_MAX_LENGTH = 64 * 1024


@dataclass(frozen=True, slots=True)
class CommitHeader:
    summary: str
    description: str
    parent: str | None  # a commit sha or a prefix of one (at least 5 hex digits)

    @property
    def message(self) -> str:
        return f"{self.summary}\n\n{self.description}" if self.description else self.summary


@dataclass(frozen=True, slots=True)
class AddFile:
    """A regular file whose content travelled inside the commit (and is stored by now)."""

    path: str
    size: int
    git_oid: str


@dataclass(frozen=True, slots=True)
class AddLfsFile:
    """An LFS file uploaded before the commit; no `size` means a copy of a known object."""

    path: str
    sha256: str
    size: int | None


@dataclass(frozen=True, slots=True)
class DeleteFile:
    path: str


@dataclass(frozen=True, slots=True)
class DeleteFolder:
    path: str


Operation = AddFile | AddLfsFile | DeleteFile | DeleteFolder


def _text(value: dict[str, Any], name: str, *, required: bool = True) -> str:
    found = value.get(name)
    if found is None and not required:
        return ""
    if not isinstance(found, str):
        raise BadRequest(f"Commit line needs a string {name!r}")
    return found


def _header(value: dict[str, Any]) -> CommitHeader:
    summary = _text(value, "summary").strip()
    description = _text(value, "description", required=False)
    if not summary or len(summary) > SUMMARY_MAX_LENGTH:
        raise BadRequest("The commit summary must be 1 to 1024 characters")
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise BadRequest("The commit description is too long")
    parent = value.get("parentCommit")
    if parent is not None and (
        not isinstance(parent, str)
        or not 5 <= len(parent) <= 40
        or any(character not in "0123456789abcdef" for character in parent)
    ):
        raise BadRequest("'parentCommit' must be 5 to 40 lowercase hex digits")
    return CommitHeader(summary, description, parent)


# Stores a regular file's verified content under its blob id before the commit is applied.
StoreContent = Callable[[str, bytes], Awaitable[None]]


def commit_path(raw: str) -> str:
    """A path a commit line names: a `..` segment is a 422 (as on huggingface.co), anything
    else `naming.path_in_repo` refuses a 400. A backslash is an ordinary character, but a
    path that starts with `..\\` is refused like `../` (huggingface.co does the same; later
    `..\\` are left to clients, which refuse to download such files)."""
    if ".." in raw.split("/") or raw.startswith("..\\"):
        raise UploadRejected(f"Invalid path '{raw}': a path cannot contain '..' segments")
    return path_in_repo(raw)


async def _operation(key: str, value: dict[str, Any], store: StoreContent) -> Operation:
    raw_path = _text(value, "path")
    path = commit_path(raw_path.rstrip("/") if key == "deletedFolder" else raw_path)
    if ".git" in path.split("/"):
        # git refuses trees with a `.git` entry; a clone of the repo would break.
        raise BadRequest(f"Invalid path {path!r}: '.git' is reserved")
    if key == "file":
        encoding = value.get("encoding", "base64")
        if encoding != "base64":
            raise BadRequest(f"Unsupported encoding {encoding!r} for {path}: use base64")
        try:
            content = base64.b64decode(_text(value, "content"), validate=True)
        except binascii.Error:
            raise BadRequest(f"The content of {path} is not valid base64") from None
        # Stored at once, so that a commit holds at most one line's content in memory.
        git_oid = git_blob_oid(content)
        await store(str(BlobId("gitsha1", git_oid)), content)
        return AddFile(path, len(content), git_oid)
    if key == "lfsFile":
        sha256 = _text(value, "oid")
        if value.get("algo", "sha256") != "sha256" or not SHA256_PATTERN.match(sha256):
            raise BadRequest(f"LFS file {path} needs a sha256 'oid'")
        size = value.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise BadRequest(f"LFS file {path} has an invalid 'size'")
        return AddLfsFile(path, sha256, size)
    if key == "deletedFile":
        return DeleteFile(path)
    if key == "deletedFolder":
        return DeleteFolder(path)
    raise BadRequest(f"Unknown commit line {key!r}")


async def _lines(body: AsyncIterator[bytes], max_line: int) -> AsyncIterator[bytes]:
    pending = bytearray()
    async for piece in body:
        pending += piece
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[:end])
            del pending[: end + 1]
            if line.strip():
                yield line
        if len(pending) > max_line:
            raise BadRequest(
                f"A commit line is longer than {max_line} bytes: upload large files as LFS files"
            )
    if pending.strip():
        yield bytes(pending)


async def read_operations(
    body: AsyncIterator[bytes], max_line: int, store: StoreContent
) -> tuple[CommitHeader, list[Operation]]:
    """The header and operations of an NDJSON commit body; `BadRequest` for anything else.

    Regular files' contents go to `store` as they arrive (a refused commit leaves them
    unreferenced, for `hubproxy cache gc`)."""
    header: CommitHeader | None = None
    operations: list[Operation] = []
    async for line in _lines(body, max_line):
        item = parse_json(line, what="A commit line")
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise BadRequest('Each commit line must be {"key": ..., "value": {...}}')
        key = item.get("key")
        if header is None:
            if key != "header":
                raise BadRequest("The first commit line must be the header")
            header = _header(item["value"])
            continue
        if key == "header":
            raise BadRequest("Only one commit header is allowed")
        operations.append(await _operation(str(key), item["value"], store))
    if header is None:
        raise BadRequest("Empty commit body: a header line is required")
    return header, operations


def apply_operations(
    base: Mapping[str, HubFile], operations: list[Operation], lfs_sizes: Mapping[str, int]
) -> dict[str, HubFile]:
    """`base` with `operations` applied in order. `lfs_sizes` gives the size of every LFS
    object the operations may use (the caller checked each was uploaded to this repo)."""
    files = dict(base)
    for operation in operations:
        if isinstance(operation, AddFile):
            files[operation.path] = HubFile(operation.size, operation.git_oid)
        elif isinstance(operation, AddLfsFile):
            size = lfs_sizes[operation.sha256]
            pointer = lfs_pointer(operation.sha256, size)
            files[operation.path] = HubFile(size, git_blob_oid(pointer), operation.sha256)
        elif isinstance(operation, DeleteFile) and operation.path in files:
            del files[operation.path]
        else:
            # A folder, or (huggingface.co's implicit folder delete) a `deletedFile` line
            # naming one: `delete_folder("1")` and `delete_file("1")` both remove `1/`.
            prefix = operation.path + "/"
            doomed = [path for path in files if path.startswith(prefix)]
            if not doomed and isinstance(operation, DeleteFile):
                raise EntryNotFound(f"A file with this name doesn't exist: {operation.path}")
            if not doomed:
                raise EntryNotFound(f"A folder with this name doesn't exist: {operation.path}")
            for path in doomed:
                del files[path]
    clashes = directories(files) & files.keys()
    if clashes:
        raise BadRequest(f"{min(clashes)} would be both a file and a directory")
    return files
