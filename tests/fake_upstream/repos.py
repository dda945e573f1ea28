"""In-memory repos and controls of the fake hub; thread-safe (tests mutate while it serves)."""

import contextlib
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

LFS_SUFFIXES = (".safetensors", ".bin", ".parquet", ".gguf", ".pt")
BLOCK = 1 << 20


class GeneratedFile:
    """Deterministic content of any size, generated on demand in 1 MiB blocks.

    Block i is one random 1 MiB block (drawn from `seed`) stamped with i in its first 8
    bytes: distinct blocks, cheap enough (a copy) to serve gigabytes at memory speed.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self._base = np.random.Generator(np.random.PCG64(seed)).bytes(BLOCK)
        self._sha256: str | None = None

    def _block(self, index: int) -> bytes:
        length = min(BLOCK, self.size - index * BLOCK)
        return (index.to_bytes(8, "little") + self._base[8:])[:length]

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if start >= end:
            return b""
        parts = []
        for index in range(start // BLOCK, (end - 1) // BLOCK + 1):
            block = self._block(index)
            block_start = index * BLOCK
            parts.append(block[max(start, block_start) - block_start : end - block_start])
        return b"".join(parts)

    def sha256(self) -> str:
        if self._sha256 is None:
            hasher = hashlib.sha256()
            for index in range(-(-self.size // BLOCK)):
                hasher.update(self._block(index))
            self._sha256 = hasher.hexdigest()
        return self._sha256


Content = bytes | GeneratedFile


def content_size(content: Content) -> int:
    return len(content) if isinstance(content, bytes) else content.size


def read_content(content: Content, start: int, end: int) -> bytes:
    return content[start:end] if isinstance(content, bytes) else content.read(start, end)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    path: str
    content: Content
    size: int
    oid: str  # git blob sha1 (of the content, or of the LFS pointer)
    sha256: str | None  # LFS files only
    pointer_size: int | None

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None

    def entry(self, commit: "Commit | None" = None, *, expand: bool = False) -> dict[str, object]:
        entry: dict[str, object] = {
            "type": "file",
            "oid": self.oid,
            "size": self.size,
            "path": self.path,
        }
        if self.sha256 is not None:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
            entry["xetHash"] = hashlib.sha256(b"xet" + self.sha256.encode()).hexdigest()
        if expand and commit is not None:
            entry["lastCommit"] = {"id": commit.sha, "title": commit.message, "date": commit.date}
            entry["securityFileStatus"] = {
                "status": "safe",
                "avScan": None,
                "pickleImportScan": None,
            }
        return entry


@dataclass(frozen=True)
class Commit:
    sha: str
    parent: "Commit | None"
    message: str
    date: str
    files: dict[str, StoredFile]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    gated: bool
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[int, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.commits:
            return self.commits[revision]
        if revision.startswith("refs/pr/") and revision[8:].isdigit():
            sha = self.pull_requests.get(int(revision[8:]))
        else:
            sha = self.branches.get(revision) or self.tags.get(revision)
        return None if sha is None else self.commits[sha]


@dataclass
class RequestRecord:
    """One request, recorded when it arrives and updated as the response goes out."""

    method: str
    origin: str  # "hub" | "cdn"
    path: str
    query: str
    range_header: str | None
    authorization: str | None
    status: int
    body_bytes: int


class FakeHub:
    """The state of the fake hub: repos, tokens, fault controls and request statistics."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.secret = b"fake-cdn-signing-key"
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.repos: dict[tuple[str, str], Repo] = {}
            # (repo type, old id case-folded) -> new id: renamed repos, which huggingface.co
            # answers with a redirect to the new name.
            self.moved: dict[tuple[str, str], str] = {}
            self.blobs: dict[str, StoredFile] = {}  # sha256 -> file, for the CDN
            self.tokens: set[str] = {"hf_upstream_secret"}
            self.gated_grants: set[str] = {"hf_upstream_secret"}
            self.lfs_threshold = 10 * 1024
            self.tree_page_size = 1000
            self.commits_page_size = 50
            self.cdn_url_ttl = 3600.0
            self.cdn_bytes_per_second_per_connection: int | None = None
            self.latency_seconds = 0.0
            self.down = False
            self.down_mode = "503"
            self._cuts: list[int] = []
            self._corruptions = 0
            self._counter = 0
            self._records: list[RequestRecord] = []
            # Time the CDN takes before it answers a GET (a far or busy CDN).
            self.cdn_latency_seconds = 0.0
            self.cdn_gets_in_flight = 0
            self.most_cdn_gets_in_flight = 0

    # Repos ------------------------------------------------------------------------

    def find(self, repo_type: str, repo_id: str) -> Repo | None:
        """The repo named `repo_id` in any letter case, as huggingface.co matches ids."""
        with self.lock:
            repo = self.repos.get((repo_type, repo_id))
            if repo is not None:
                return repo
            folded = repo_id.lower()
            for (kind, stored_id), candidate in self.repos.items():
                if kind == repo_type and stored_id.lower() == folded:
                    return candidate
            return None

    def moved_to(self, repo_type: str, repo_id: str) -> str | None:
        """The new id of a renamed repo, if `repo_id` is an old name (any letter case)."""
        with self.lock:
            return self.moved.get((repo_type, repo_id.lower()))

    def rename_repo(self, old_id: str, new_id: str, *, repo_type: str = "model") -> None:
        """Move a repo to `new_id`; requests for `old_id` are redirected there from now on."""
        with self.lock:
            repo = self.repos.pop((repo_type, old_id))
            repo.repo_id = new_id
            self.repos[(repo_type, new_id)] = repo
            self.moved[(repo_type, old_id.lower())] = new_id

    def add_redirect(self, old_id: str, new_id: str, *, repo_type: str = "model") -> None:
        """Answer `old_id` with a redirect to the (existing) `new_id`, as after a rename."""
        with self.lock:
            self.moved[(repo_type, old_id.lower())] = new_id

    def _stored(self, path: str, content: Content) -> StoredFile:
        size = content_size(content)
        if size >= self.lfs_threshold or path.endswith(LFS_SUFFIXES):
            sha256 = (
                content.sha256()
                if isinstance(content, GeneratedFile)
                else hashlib.sha256(content).hexdigest()
            )
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
            stored = StoredFile(path, content, size, git_blob_sha1(pointer), sha256, len(pointer))
            self.blobs[sha256] = stored
            return stored
        assert isinstance(content, bytes)
        return StoredFile(path, content, size, git_blob_sha1(content), None, None)

    def _new_commit(
        self, parent: Commit | None, files: dict[str, StoredFile], message: str
    ) -> Commit:
        self._counter += 1
        seed = f"{parent.sha if parent else ''}|{sorted((p, f.oid) for p, f in files.items())}|{message}|{self._counter}|{time.time()}"
        sha = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        return Commit(sha, parent, message, date, files)

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, Content],
        *,
        repo_type: str = "model",
        gated: bool = False,
        private: bool = False,
        message: str = "initial commit",
    ) -> str:
        with self.lock:
            repo = Repo(repo_type, repo_id, gated, private)
            commit = self._new_commit(
                None, {p: self._stored(p, c) for p, c in files.items()}, message
            )
            repo.commits[commit.sha] = commit
            repo.branches["main"] = commit.sha
            self.repos[(repo_type, repo_id)] = repo
            return commit.sha

    def commit(
        self,
        repo_id: str,
        files: Mapping[str, Content] | None = None,
        deletions: tuple[str, ...] = (),
        *,
        repo_type: str = "model",
        branch: str = "main",
        message: str = "update",
    ) -> str:
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            parent = repo.commits[repo.branches[branch]]
            merged = {p: f for p, f in parent.files.items() if p not in deletions}
            merged.update({p: self._stored(p, c) for p, c in (files or {}).items()})
            commit = self._new_commit(parent, merged, message)
            repo.commits[commit.sha] = commit
            repo.branches[branch] = commit.sha
            return commit.sha

    def announce(
        self,
        repo_id: str,
        path: str,
        content: bytes,
        *,
        sha256: str | None = None,
        git_oid: str | None = None,
        repo_type: str = "model",
    ) -> str:
        """Commit `path` announced with `sha256` (an LFS file) or `git_oid` (a regular file)
        whatever `content` hashes to, and serve `content` for it: an upstream that names the
        hash of a file it does not have."""
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            parent = repo.commits[repo.branches["main"]]
            if sha256 is not None:
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(content)}\n".encode()
                stored = StoredFile(
                    path, content, len(content), git_blob_sha1(pointer), sha256, len(pointer)
                )
                self.blobs[sha256] = stored
            else:
                assert git_oid is not None
                stored = StoredFile(path, content, len(content), git_oid, None, None)
            commit = self._new_commit(parent, {**parent.files, path: stored}, "announce")
            repo.commits[commit.sha] = commit
            repo.branches["main"] = commit.sha
            return commit.sha

    def create_tag(
        self, repo_id: str, tag: str, revision: str = "main", *, repo_type: str = "model"
    ) -> None:
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            target = repo.resolve(revision)
            assert target is not None
            repo.tags[tag] = target.sha

    def create_branch(
        self, repo_id: str, branch: str, revision: str = "main", *, repo_type: str = "model"
    ) -> None:
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            target = repo.resolve(revision)
            assert target is not None
            repo.branches[branch] = target.sha

    def add_pull_request(
        self, repo_id: str, number: int, files: Mapping[str, Content], *, repo_type: str = "model"
    ) -> str:
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            parent = repo.commits[repo.branches["main"]]
            merged = dict(parent.files)
            merged.update({p: self._stored(p, c) for p, c in files.items()})
            commit = self._new_commit(parent, merged, f"PR {number}")
            repo.commits[commit.sha] = commit
            repo.pull_requests[number] = commit.sha
            return commit.sha

    # Signed CDN URLs --------------------------------------------------------------

    def sign(self, sha256: str, expires: int) -> str:
        return hmac.new(self.secret, f"{sha256}:{expires}".encode(), hashlib.sha256).hexdigest()

    def signature_valid(self, sha256: str, expires: str, signature: str) -> bool:
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(self.sign(sha256, int(expires)), signature)

    # Faults -----------------------------------------------------------------------

    def cut_next_bodies(self, count: int, after_bytes: int) -> None:
        """The next `count` file bodies stop after `after_bytes` bytes with a broken connection."""
        with self.lock:
            self._cuts.extend([after_bytes] * count)

    def take_cut(self) -> int | None:
        with self.lock:
            return self._cuts.pop(0) if self._cuts else None

    def corrupt_next_files(self, count: int) -> None:
        """The next `count` file bodies that carry the middle byte of their file get it flipped
        (headers, sizes and hashes stay as announced: a storage fault upstream)."""
        with self.lock:
            self._corruptions += count

    def take_corruption(self, start: int, end: int, size: int) -> int | None:
        """The file offset to flip in a body of `[start, end)`, if one is due."""
        middle = size // 2
        with self.lock:
            if self._corruptions and start <= middle < end:
                self._corruptions -= 1
                return middle
            return None

    # Statistics -------------------------------------------------------------------

    def record(self, record: RequestRecord) -> None:
        with self.lock:
            self._records.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._records)

    def reset_stats(self) -> None:
        with self.lock:
            self._records = []
            self.most_cdn_gets_in_flight = self.cdn_gets_in_flight

    @contextlib.contextmanager
    def cdn_get(self) -> Iterator[None]:
        """A CDN GET is in flight (from its arrival to its last byte) while the block runs;
        `most_cdn_gets_in_flight` is the high-water mark since `reset_stats`."""
        with self.lock:
            self.cdn_gets_in_flight += 1
            self.most_cdn_gets_in_flight = max(
                self.most_cdn_gets_in_flight, self.cdn_gets_in_flight
            )
        try:
            yield
        finally:
            with self.lock:
                self.cdn_gets_in_flight -= 1

    def body_bytes(self, origin: str | None = None, path_contains: str | None = None) -> int:
        return sum(r.body_bytes for r in self._select(None, origin, path_contains))

    def count(
        self, method: str | None = None, origin: str | None = None, path_contains: str | None = None
    ) -> int:
        return len(self._select(method, origin, path_contains))

    def _select(
        self, method: str | None, origin: str | None, path_contains: str | None
    ) -> list[RequestRecord]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and (origin is None or r.origin == origin)
            and (path_contains is None or path_contains in r.path)
        ]

    def file_bytes_served(self) -> int:
        """Body bytes of file downloads (resolve-cache and CDN), the cost a cache must avoid."""
        return sum(
            r.body_bytes
            for r in self.requests
            if r.method == "GET" and (r.origin == "cdn" or "/resolve" in r.path)
        )
