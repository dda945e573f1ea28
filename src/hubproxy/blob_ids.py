"""Blob ids: the one place a content address is built, parsed and checked.

A blob is a file's content, named by a hash of it: `sha256:<64 hex>` for LFS files (the
sha256 of the content) and `gitsha1:<40 hex>` for regular files (the git blob sha1, the
`oid` of the tree entry). The same text names the blob in the database, in bundles and in
`stores.ContentStore`; `cache/layout.py` derives the storage keys from it. SQL that builds the
text from table columns uses `blob_id_sql`, so both forms stay one.
"""

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol

from hubproxy.constants import GIT_SHA1_PATTERN, SHA256_PATTERN

HashAlgorithm = Literal["sha256", "gitsha1"]


class ContentHasher(Protocol):
    """What `BlobId.hasher` returns: fed the content, its digest names the blob."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class BlobId:
    """A content address: the algorithm and the lowercase hex digest."""

    algorithm: HashAlgorithm
    digest: str

    def __post_init__(self) -> None:
        pattern = SHA256_PATTERN if self.algorithm == "sha256" else GIT_SHA1_PATTERN
        if not pattern.match(self.digest):
            raise ValueError(f"invalid {self.algorithm} digest {self.digest!r}")

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.digest}"

    @classmethod
    def parse(cls, text: str) -> "BlobId":
        """Inverse of `str(blob_id)`; raises ValueError on anything else."""
        algorithm, _, digest = text.partition(":")
        if algorithm == "sha256":
            return cls("sha256", digest)
        if algorithm == "gitsha1":
            return cls("gitsha1", digest)
        raise ValueError(f"invalid blob id {text!r}")

    @classmethod
    def of_file(cls, sha256: str | None, git_oid: str | None) -> "BlobId":
        """The content of a file entry: its LFS sha256 if it has one, else its git blob sha1."""
        if sha256 is not None:
            return cls("sha256", sha256)
        if git_oid is None:
            raise ValueError("a file entry needs a sha256 or a git oid")
        return cls("gitsha1", git_oid)

    def hasher(self, size: int) -> ContentHasher:
        """A hasher that, fed the `size` bytes of the content, gives `digest` back."""
        if self.algorithm == "sha256":
            return hashlib.sha256()
        hasher = hashlib.sha1(usedforsecurity=False)
        hasher.update(b"blob %d\0" % size)  # git hashes the object header with the content
        return hasher


def blob_id_sql(sha256_column: str, git_oid_column: str) -> str:
    """The SQL expression of `BlobId.of_file(sha256, git_oid)` over two columns."""
    return (
        f"CASE WHEN {sha256_column} IS NOT NULL THEN 'sha256:' || {sha256_column}"
        f" ELSE 'gitsha1:' || {git_oid_column} END"
    )
