"""Xet hashes, bit-exact with xet-core (`merklehash/`, `metadata_shard/chunk_verification.rs`).

A hash is 32 bytes. Its *string form* (URLs, JSON, the Merkle text below) reads the bytes as four
little-endian u64 words and prints each as 16 hex digits, so it is not the plain hex of the
bytes. Every function here takes and returns raw 32-byte hashes unless its name says `hex`.

- chunk hash: blake3 keyed with `DATA_KEY` over the chunk's bytes;
- Merkle root (the xorb hash) over `(chunk hash, length)` leaves. The tree is not binary:
  each pass groups nodes left to right, a group ending after node i (2 <= i < 9, counted from
  the group's start) whose hash's last word is divisible by 4, else after 9 nodes; when 2 or
  fewer are left they form the last group. A parent hashes, keyed with `INTERNAL_NODE_KEY`, the
  lines `"{string form} : {length}\\n"` of its children; its length is their sum;
- file hash: blake3 keyed with 32 zero bytes over the Merkle root of all the file's chunks;
- term verification hash: blake3 keyed with `VERIFICATION_KEY` over the concatenated raw
  chunk hashes of the term's chunks.

An empty sequence of chunks has the all-zero hash as Merkle root and as file hash.
"""

import re
from collections.abc import Iterable, Sequence

import blake3

HASH_BYTES = 32
ZERO_HASH = bytes(HASH_BYTES)
# xet-core's constants (random.org values, fixed forever by the format).
DATA_KEY = bytes(
    [
        102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
        157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41,
    ]
)  # fmt: skip
INTERNAL_NODE_KEY = bytes(
    [
        1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
        93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63,
    ]
)  # fmt: skip
VERIFICATION_KEY = bytes(
    [
        127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243,
        164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195,
    ]
)  # fmt: skip
# The Merkle grouping rule: groups of 2 to 9 nodes, cut where hash % 4 == 0.
BRANCHING_FACTOR = 4
MAX_GROUP = 2 * BRANCHING_FACTOR + 1
HEX_PATTERN = re.compile(r"^[0-9a-f]{64}$")

Leaf = tuple[bytes, int]


def to_hex(digest: bytes) -> str:
    """The Xet string form of a 32-byte hash."""
    if len(digest) != HASH_BYTES:
        raise ValueError(f"a Xet hash has {HASH_BYTES} bytes, not {len(digest)}")
    return "".join(digest[start : start + 8][::-1].hex() for start in range(0, HASH_BYTES, 8))


def from_hex(text: str) -> bytes:
    """The raw bytes of a Xet string form; ValueError unless 64 lowercase hex digits."""
    if not HEX_PATTERN.match(text):
        raise ValueError(f"not a Xet hash: {text[:80]!r}")
    return b"".join(bytes.fromhex(text[start : start + 16])[::-1] for start in range(0, 64, 16))


def chunk_hash(data: bytes | bytearray | memoryview) -> bytes:
    """The hash of one chunk's (uncompressed) bytes."""
    return blake3.blake3(data, key=DATA_KEY).digest()


def _last_word(digest: bytes) -> int:
    return int.from_bytes(digest[24:32], "little")


def _group_end(nodes: Sequence[Leaf], start: int) -> int:
    """Where the group starting at `start` ends (exclusive)."""
    remaining = len(nodes) - start
    if remaining <= 2:
        return len(nodes)
    end = min(MAX_GROUP, remaining)
    for offset in range(2, end):
        if _last_word(nodes[start + offset][0]) % BRANCHING_FACTOR == 0:
            return start + offset + 1
    return start + end


def _parent(group: Sequence[Leaf]) -> Leaf:
    text = "".join(f"{to_hex(digest)} : {length}\n" for digest, length in group)
    digest = blake3.blake3(text.encode(), key=INTERNAL_NODE_KEY).digest()
    return digest, sum(length for _, length in group)


def merkle_root(leaves: Iterable[Leaf]) -> bytes:
    """The aggregated hash of `(chunk hash, chunk length)` leaves: a xorb's hash."""
    nodes = list(leaves)
    if not nodes:
        return ZERO_HASH
    while len(nodes) > 1:
        parents: list[Leaf] = []
        start = 0
        while start < len(nodes):
            end = _group_end(nodes, start)
            parents.append(_parent(nodes[start:end]))
            start = end
        nodes = parents
    return nodes[0][0]


def file_hash(leaves: Iterable[Leaf]) -> bytes:
    """The Xet file hash of a file made of these chunks, in order."""
    nodes = list(leaves)
    if not nodes:
        return ZERO_HASH
    return blake3.blake3(merkle_root(nodes), key=ZERO_HASH).digest()


def verification_hash(chunk_hashes: Iterable[bytes]) -> bytes:
    """The hash a shard's verification entry must carry for a term made of these chunks."""
    hasher = blake3.blake3(key=VERIFICATION_KEY)
    for digest in chunk_hashes:
        hasher.update(digest)
    return hasher.digest()
