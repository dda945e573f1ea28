"""The only owner of storage keys. Nothing else in hubproxy builds a key.

Blobs are content-addressed and split in fixed-size chunks; each chunk is one immutable object:

    chunks/
      sha256/                     blobs named by the sha256 of their content (LFS files)
        ab/cd/abcdef…64 hex/
          00000000                chunk 0: bytes [0, chunk_size)
          00000001                chunk 1: bytes [chunk_size, 2 * chunk_size)
          …
      gitsha1/                    blobs named by their git blob sha1 (regular files)
        ab/cd/abcdef…40 hex/
          00000000

With S3 redirect mode on, a verified blob is also composed (server-side, from its chunks) into
one whole object that clients are redirected to:

    blobs/
      sha256/ab/cd/abcdef…64 hex  the whole content
      gitsha1/ab/cd/abcdef…40 hex

Xorbs of the Xet CAS (`hubproxy.cas`), as uploaded (chunk headers and compressed chunks), named
by their Xet hash (string form) and served back as byte ranges:

    xorbs/
      ab/abcdef…64 hex

A blob id (`blob_ids.BlobId`) is `sha256:<hex>` or `gitsha1:<hex>`: the same string is used in
the database. The chunk size of a blob is recorded with it in the database, so the size can change
for new blobs without breaking old ones. `LAYOUT_VERSION` is stored in the database and checked
at start; bump it (with a migration) whenever this tree changes.
"""

from hubproxy.blob_ids import BlobId
from hubproxy.constants import SHA256_PATTERN

LAYOUT_VERSION = 1
CHUNKS_PREFIX = "chunks/"
WHOLE_PREFIX = "blobs/"
XORBS_PREFIX = "xorbs/"


def blob_prefix(blob: BlobId) -> str:
    """The key prefix under which all chunks of `blob` live (ends with '/')."""
    digest = blob.digest
    return f"{CHUNKS_PREFIX}{blob.algorithm}/{digest[:2]}/{digest[2:4]}/{digest}/"


def whole_key(blob: BlobId) -> str:
    """The key of the whole-content object of `blob` (S3 redirect mode only)."""
    digest = blob.digest
    return f"{WHOLE_PREFIX}{blob.algorithm}/{digest[:2]}/{digest[2:4]}/{digest}"


def xorb_key(xorb_hash: str) -> str:
    """The key of a Xet xorb, by the string form of its hash (64 lowercase hex digits)."""
    if not SHA256_PATTERN.match(xorb_hash):
        raise ValueError(f"invalid xorb hash {xorb_hash!r}")
    return f"{XORBS_PREFIX}{xorb_hash[:2]}/{xorb_hash}"


def chunk_key(blob: BlobId, index: int) -> str:
    """The key of chunk `index` of `blob`."""
    if index < 0:
        raise ValueError("chunk index must not be negative")
    return f"{blob_prefix(blob)}{index:08d}"


def chunk_count(size: int, chunk_size: int) -> int:
    """How many chunks a blob of `size` bytes has (an empty blob has none)."""
    return -(-size // chunk_size)


def chunk_bounds(index: int, size: int, chunk_size: int) -> tuple[int, int]:
    """The byte range `[start, end)` of chunk `index` in a blob of `size` bytes."""
    start = index * chunk_size
    return start, min(start + chunk_size, size)
