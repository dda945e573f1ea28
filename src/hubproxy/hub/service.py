"""`HostedRepoWriter`: the write side of hosted repos — repos, commits, branches, tags, LFS uploads.

Authorization has happened before any method here runs. Every change is atomic: content is
stored and verified first, then one database transaction makes the commit (or ref) visible,
so a crash or a refused request leaves the repo exactly as it was. Commits to one repo are
serialized in this process (one server per data dir), and the branch still moves by
compare-and-swap.

Every change of a branch or tag (commits, squashes, merges, creating and deleting refs,
promotions of aliases) first passes `_guard`: the repo's protection rules and aliases
(`hub.registry`) go to the caller's `ref_rules.RefGuard`, which `auth.protections` implements.
"""

import asyncio
import base64
import binascii
import hashlib
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

from hubproxy.blob_ids import BlobId
from hubproxy.constants import COMMIT_SHA_PATTERN
from hubproxy.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HubError,
    PreconditionFailed,
    RevisionNotFound,
    UploadRejected,
)
from hubproxy.hub import upload_modes
from hubproxy.hub.announcements import Announcer
from hubproxy.hub.cards import MAX_CARD_BYTES, card_metadata, space_card, strings, validate_card
from hubproxy.hub.commits import (
    AddFile,
    AddLfsFile,
    CommitHeader,
    Operation,
    apply_operations,
    read_operations,
)
from hubproxy.hub.discussions import (
    CLOSED,
    COMMENT,
    COMMIT,
    DRAFT,
    MERGED,
    HubDiscussions,
    comment_data,
    insert_discussion,
    insert_event,
    mark_merged,
    move_pull_request_head,
)
from hubproxy.hub.events import NO_LISTENERS, EventPublisher, RefUpdate
from hubproxy.hub.gitobjects import Signature, commit_id, git_blob_oid
from hubproxy.hub.likes import HubLikes
from hubproxy.hub.pull_requests import CONFLICT_MESSAGE, merge
from hubproxy.hub.registry import (
    HubRegistry,
    Promotion,
    forget_alias,
    load_aliases,
    load_rules,
    record_promotion,
)
from hubproxy.hub.repos import (
    BRANCH,
    DEFAULT_BRANCH,
    PULL_REQUEST_REF,
    TAG,
    CommitRecord,
    HubFile,
    HubRepos,
    RepoRecord,
    tree_ids_of,
)
from hubproxy.hub.upload_links import UploadLinks
from hubproxy.metrics import HUB_COMMITS, HUB_UPLOADED_BYTES
from hubproxy.naming import RepoRef, canonical_name, revision
from hubproxy.ref_rules import Change, ProtectionRule, RefChange, RefGuard, Via
from hubproxy.signing import Signer
from hubproxy.stores import ContentStore, ContentUpload

INITIAL_COMMIT_TITLE = "initial commit"
# What huggingface.co answers (412) to a commit whose `parentCommit` is no longer the head;
# older and newer clients' tests match on either sentence.
PARENT_MOVED = (
    "A commit has happened since. The branch was updated since you opened this page."
    " Please refresh and try again."
)
# What a new repo starts with: the usual large-file patterns tracked by Git LFS.
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gguf", "*.gz", "*.h5",
    "*.joblib", "*.lfs.*", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx",
    "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar",
    "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm",
    "*.xz", "*.zip", "*.zst", "*tfevents*",
)  # fmt: skip
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS
)
WRITE_BUFFER = 4 * 1024 * 1024
# How far a commit's card is followed through `base_model` to refuse cycles.
MAX_LINEAGE_DEPTH = 16
CARD_PATH = "README.md"
# A `.gitattributes` or `.gitignore` larger than this is not read for preupload rules.
MAX_RULES_FILE = 1024 * 1024


def _sample(item: dict[str, Any]) -> bytes:
    """The base64 `sample` (first 512 bytes) of a preupload file; b'' when absent or invalid."""
    sample = item.get("sample")
    if not isinstance(sample, str):
        return b""
    try:
        return base64.b64decode(sample[:1024], validate=True)
    except binascii.Error:
        return b""


def _lfs_blob(sha256: str) -> str:
    """The blob id of an LFS object's content."""
    return str(BlobId("sha256", sha256))


def _author(name: str) -> Signature:
    return Signature(name, f"{name}@hubproxy", int(time.time()))


def _new_commit(
    files: dict[str, HubFile], parents: Sequence[str], author: str, title: str, message: str
) -> CommitRecord:
    tree = tree_ids_of(files)[""]
    signature = _author(author)
    sha = commit_id(tree, parents, signature, message)
    return CommitRecord(sha, tree, tuple(parents), author, title, message, signature.timestamp)


def ref_name(value: str, kind: str) -> str:
    """A branch or tag name as git accepts it (`git check-ref-format`), and never one that
    could be read as a commit sha."""
    name = value.removeprefix("refs/heads/" if kind == BRANCH else "refs/tags/")
    components = name.split("/")
    if (
        not name
        or name.startswith("refs/")
        or COMMIT_SHA_PATTERN.match(name)
        or name == "@"
        or ".." in name
        or "@{" in name
        or name.endswith((".", "/"))
        or any(character in _REF_FORBIDDEN or ord(character) < 0x21 for character in name)
        or any(not part or part.startswith(".") or part.endswith(".lock") for part in components)
    ):
        raise BadRequest(f"Invalid {kind} name {value!r}")
    return revision(name)


_REF_FORBIDDEN = frozenset("~^:?*[\\\x7f")


def _existing_branch_name(value: str) -> str:
    """The branch a commit goes to. A name no branch can have (a commit sha, `refs/...`)
    names no existing branch: 404 `Invalid rev id`, as on huggingface.co, not a 400."""
    try:
        return ref_name(value, BRANCH)
    except BadRequest:
        raise RevisionNotFound(f"Invalid rev id: {value}") from None


class HostedRepoWriter:
    """Changes to hosted repos; each one, once committed, is published to `events`
    (`hub/events.py`)."""

    def __init__(
        self,
        repos: HubRepos,
        content: ContentStore,
        signer: Signer,
        *,
        lfs_threshold: int,
        events: EventPublisher = NO_LISTENERS,
    ) -> None:
        self.repos = repos
        self.announcer = Announcer(repos, events)
        self.discussions = HubDiscussions(repos.database, self.announcer)
        self.likes = HubLikes(repos.database)
        self.registry = HubRegistry(repos.database)
        self.content = content
        self.lfs_threshold = lfs_threshold
        self.upload_links = UploadLinks(repos, signer)
        self._locks: defaultdict[RepoRef, asyncio.Lock] = defaultdict(asyncio.Lock)

    # Repos ----------------------------------------------------------------------------

    async def create_repo(
        self, ref: RepoRef, *, private: bool, creator: str, space_sdk: str | None = None
    ) -> None:
        """A repo whose `main` holds one commit with the default `.gitattributes` (and, for
        a space, a README.md naming its `space_sdk`)."""
        initial_files = {".gitattributes": GITATTRIBUTES.encode()}
        if ref.repo_type == "space" and space_sdk is not None:
            initial_files["README.md"] = space_card(ref.repo_id.split("/")[-1], space_sdk).encode()
        files: dict[str, HubFile] = {}
        for path, content in initial_files.items():
            await self.content.store_bytes(str(BlobId("gitsha1", git_blob_oid(content))), content)
            files[path] = HubFile(len(content), git_blob_oid(content))
        initial = _new_commit(files, [], creator, INITIAL_COMMIT_TITLE, INITIAL_COMMIT_TITLE)
        await self.repos.create_repo(
            ref, private=private, created_by=creator, initial=initial, files=files
        )
        await self.announcer.announce(ref, "create", "repo", actor=creator)

    async def move_repo(self, source: RepoRef, target: RepoRef, *, private: bool) -> None:
        """Rename `source` to `target` with its history, then give it `private`."""
        first, second = sorted((source, target), key=str)
        async with self._locks[first], self._locks[second]:
            await self.repos.move_repo(source, target)
            await self.repos.update_settings(target, private=private)
        await self.announcer.announce(source, "move", "repo", moved_to=target)

    async def delete_repo(self, ref: RepoRef) -> None:
        # The content stays until `hubproxy cache gc`: other repos or the cache may share it.
        async with self._locks[ref]:
            record = await self.repos.get_repo(ref)
            await self.repos.delete_repo(ref)
        await self.announcer.announce(ref, "delete", "repo", record=record)

    async def update_settings(
        self, ref: RepoRef, *, private: bool | None = None, gated: str | None = None
    ) -> RepoRecord:
        """Change the given settings of a hosted repo (visibility, gating)."""
        record = await self.repos.update_settings(ref, private=private, gated=gated)
        changed: dict[str, object] = {}
        if private is not None:
            changed["private"] = record.private
        if gated is not None:
            changed["gated"] = record.gated or False
        await self.announcer.announce(ref, "update", "repo.config", updated_config=changed)
        return record

    # Commits --------------------------------------------------------------------------

    async def preupload(
        self, ref: RepoRef, revision_name: str, files: list[Any], git_ignore: str | None = None
    ) -> dict[str, Any]:
        """How each file should travel (`upload_modes`): `regular` (inside the commit) or
        `lfs`; `shouldIgnore` by the upload's `.gitignore` (`git_ignore`), else the
        revision's; `oid` of the current remote content when it is of the same kind."""
        head = await self.repos.resolve(ref, revision_name)
        current = await self.repos.files(ref, head)
        attributes: list[tuple[str, bool]] = []
        ignores: list[upload_modes.IgnoreRule] = []
        if upload_modes.HF_UPLOAD_MODES:
            attributes = upload_modes.lfs_patterns(await self._text(current, ".gitattributes"))
            if git_ignore is None:
                git_ignore = await self._text(current, ".gitignore")
            ignores = upload_modes.ignore_rules(git_ignore)
        answers = []
        for item in files:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise BadRequest("Each preupload file needs a 'path'")
            path: str = item["path"]
            size = item.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadRequest(f"Preupload file {path!r} needs a 'size'")
            lfs = size >= self.lfs_threshold
            if upload_modes.HF_UPLOAD_MODES and not lfs:
                lfs = upload_modes.tracked_by_lfs(attributes, path) or upload_modes.looks_binary(
                    _sample(item)
                )
            mode = "lfs" if lfs and size > 0 else "regular"
            answer: dict[str, Any] = {
                "path": path,
                "uploadMode": mode,
                "shouldIgnore": upload_modes.ignored(ignores, path),
            }
            existing = current.get(item["path"])
            if existing is not None and (existing.sha256 is not None) == (mode == "lfs"):
                answer["oid"] = existing.sha256 or existing.git_oid
            answers.append(answer)
        return {"files": answers, "commitOid": head}

    async def _text(self, files: dict[str, HubFile], path: str) -> str:
        """A small text file of a commit (`.gitattributes`, `.gitignore`), or ''."""
        file = files.get(path)
        if file is None or file.size > MAX_RULES_FILE:
            return ""
        content = b"".join(
            [piece async for piece in self.content.read(file.blob_id, file.size, 0, file.size)]
        )
        return content.decode("utf-8", errors="replace")

    async def commit(
        self,
        ref: RepoRef,
        revision_name: str,
        body: AsyncIterator[bytes],
        actor: RefGuard,
        *,
        create_pr: bool = False,
    ) -> tuple[CommitRecord, int | None]:
        """Apply an NDJSON commit to a branch, or to pull request `refs/pr/N`; `create_pr`:
        to a new pull request on the branch (from the header's `parentCommit` when given).
        Nothing is visible until all of it is stored. The commit, and its pull request.
        A commit to a branch is subject to its protection rules (`auth.protections`)."""
        try:
            created = await self._commit(ref, revision_name, body, actor, create_pr)
        except HubError:
            HUB_COMMITS.labels("refused").inc()
            raise
        HUB_COMMITS.labels("created").inc()
        await self._announce_commit(ref, revision_name, created, actor.name, create_pr=create_pr)
        return created

    async def _announce_commit(
        self,
        ref: RepoRef,
        revision_name: str,
        created: tuple[CommitRecord, int | None],
        author: str,
        *,
        create_pr: bool,
    ) -> None:
        commit, num = created
        old = commit.parents[0] if commit.parents else None
        if num is None:
            moved = RefUpdate(f"refs/heads/{ref_name(revision_name, BRANCH)}", old, commit.sha)
            await self.announcer.announce(
                ref, "update", "repo.content", actor=author, updated_refs=(moved,)
            )
            return
        moved = RefUpdate(f"refs/pr/{num}", None if create_pr else old, commit.sha)
        discussions = self.discussions
        await discussions.announce(
            ref, num, "update", "repo.content", author, updated_refs=(moved,)
        )
        if create_pr:
            await discussions.announce(ref, num, "create", "discussion", author)

    async def _commit(
        self,
        ref: RepoRef,
        revision_name: str,
        body: AsyncIterator[bytes],
        actor: RefGuard,
        create_pr: bool,
    ) -> tuple[CommitRecord, int | None]:
        author = actor.name
        pull_request = PULL_REQUEST_REF.fullmatch(revision_name)
        if pull_request is not None and create_pr:
            raise BadRequest("A pull request targets a branch, not refs/pr/N")
        branch = revision_name if pull_request else _existing_branch_name(revision_name)
        # Base64 of a file just under the LFS threshold, plus the JSON around it.
        max_line = self.lfs_threshold * 4 // 3 + 64 * 1024
        header, operations = await read_operations(body, max_line, self._store_regular)
        await self._check_card(ref, operations)
        lfs_sizes = await self._lfs_sizes(ref, operations)
        async with self._locks[ref]:
            if pull_request is not None:
                num = int(pull_request.group(1))
                return await self._commit_to_pull_request(
                    ref, num, header, operations, lfs_sizes, author
                ), num
            branches = (await self.repos.refs(ref))[BRANCH]
            head = branches.get(branch)
            if head is None:
                raise RevisionNotFound(f"Branch {branch!r} does not exist")
            if create_pr:
                return await self._open_pull_request(
                    ref, branch, head, header, operations, lfs_sizes, author
                )
            await self._guard(ref, actor, BRANCH, branch, "move", "commit")
            self._check_parent(header, head, branch)
            files = apply_operations(await self.repos.files(ref, head), operations, lfs_sizes)
            commit = _new_commit(files, [head], author, header.summary, header.message)
            await self.repos.add_commit(ref, branch, commit, files, expected_head=head)
            return commit, None

    async def _commit_to_pull_request(
        self,
        ref: RepoRef,
        num: int,
        header: CommitHeader,
        operations: list[Operation],
        lfs_sizes: dict[str, int],
        author: str,
    ) -> CommitRecord:
        found = await self.repos.pull_request_refs(ref)
        if num not in found:
            raise RevisionNotFound(f"Invalid rev id: refs/pr/{num}")
        record = await self.discussions.get(ref, num)
        if record.status in (CLOSED, MERGED):
            raise BadRequest(f"Pull request {num} is {record.status}: it takes no more commits")
        head = found[num]
        self._check_parent(header, head, f"refs/pr/{num}")
        files = apply_operations(await self.repos.files(ref, head), operations, lfs_sizes)
        commit = _new_commit(files, [head], author, header.summary, header.message)

        def move(connection: sqlite3.Connection) -> None:
            move_pull_request_head(connection, ref, num, head, commit.sha, header.summary, author)

        await self.repos.store_commit(ref, commit, files, move)
        return commit

    async def _open_pull_request(
        self,
        ref: RepoRef,
        branch: str,
        head: str,
        header: CommitHeader,
        operations: list[Operation],
        lfs_sizes: dict[str, int],
        author: str,
    ) -> tuple[CommitRecord, int]:
        """`create_commit(create_pr=True)`: a pull request on `branch` holding the commit,
        from the branch head or the header's `parentCommit`; the branch does not move."""
        start = head if header.parent is None else await self.repos.resolve(ref, header.parent)
        files = apply_operations(await self.repos.files(ref, start), operations, lfs_sizes)
        commit = _new_commit(files, [start], author, header.summary, header.message)
        opened: list[int] = []

        def open_pull_request(connection: sqlite3.Connection) -> None:
            num = insert_discussion(
                connection,
                ref,
                title=header.summary,
                description=header.description,
                author=author,
                pull_request=(branch, start, commit.sha),
            )
            insert_event(connection, ref, num, COMMIT, author,
                         {"subject": header.summary, "oid": commit.sha})  # fmt: skip
            opened.append(num)

        await self.repos.store_commit(ref, commit, files, open_pull_request)
        return commit, opened[0]

    async def create_pull_request(
        self, ref: RepoRef, title: str, description: str, author: str
    ) -> int:
        """`create_pull_request`: a draft on the default branch whose `refs/pr/N` starts at
        the branch head (commits to it follow); its number."""
        async with self._locks[ref]:
            head = (await self.repos.refs(ref))[BRANCH].get(DEFAULT_BRANCH)
            if head is None:
                raise RevisionNotFound(f"Branch {DEFAULT_BRANCH!r} does not exist")

            def store(connection: sqlite3.Connection) -> int:
                return insert_discussion(
                    connection,
                    ref,
                    title=title,
                    description=description,
                    author=author,
                    pull_request=(DEFAULT_BRANCH, head, head),
                    status=DRAFT,
                )

            num = await self.repos.database.run(store)
        await self.discussions.announce(ref, num, "create", "discussion", author)
        return num

    async def merge_pull_request(
        self, ref: RepoRef, num: int, actor: RefGuard, comment: str | None
    ) -> str:
        """Merge pull request `num` into its target branch: a commit whose parents are the
        branch head and the pull request's head, written by compare-and-swap on the branch.
        `Conflict` (409) when a file it changes changed differently on the branch since."""
        async with self._locks[ref]:
            record = await self.discussions.pull_request(ref, num)
            if record.status != "open":
                what = "a draft (no commits yet)" if record.status == DRAFT else record.status
                raise BadRequest(f"Pull request {num} is {what}: it cannot be merged")
            base_branch, base_commit, head_commit = record.branches
            target = (await self.repos.refs(ref))[BRANCH].get(base_branch)
            if target is None:
                raise Conflict(f"The target branch {base_branch!r} no longer exists")
            await self._guard(ref, actor, BRANCH, base_branch, "move", "merge")
            author = actor.name
            result = merge(
                await self.repos.files(ref, base_commit),
                await self.repos.files(ref, target),
                await self.repos.files(ref, head_commit),
            )
            if result.conflicts:
                raise Conflict(f"{CONFLICT_MESSAGE}: {', '.join(result.conflicts[:20])}")
            message = f"{record.title}\n\nMerge refs/pr/{num} into {base_branch}"
            commit = _new_commit(result.files, [target, head_commit], author, record.title, message)

            def merged(connection: sqlite3.Connection) -> None:
                if comment is not None:
                    data = comment_data(comment, author, time.time())
                    insert_event(connection, ref, num, COMMENT, author, data)
                mark_merged(connection, ref, num, commit.sha, author)

            await self.repos.add_commit(
                ref, base_branch, commit, result.files, expected_head=target, also=merged
            )
        moved = RefUpdate(f"refs/heads/{base_branch}", target, commit.sha)
        await self.discussions.announce(
            ref, num, "update", "repo.content", author, updated_refs=(moved,)
        )
        await self.discussions.announce(ref, num, "update", "discussion", author)
        return commit.sha

    async def _check_card(self, ref: RepoRef, operations: list[Operation]) -> None:
        """A README.md whose metadata huggingface.co would refuse fails the commit (400)."""
        for operation in operations:
            if not isinstance(operation, AddFile) or operation.path != CARD_PATH:
                continue
            if operation.size > MAX_CARD_BYTES:
                continue
            blob = str(BlobId("gitsha1", operation.git_oid))
            content = b"".join(
                [
                    piece
                    async for piece in self.content.read(blob, operation.size, 0, operation.size)
                ]
            )
            text = content.decode("utf-8", errors="replace")
            check = validate_card(text, ref.repo_type)
            if check.errors:
                raise BadRequest(
                    "Invalid metadata in README.md.\n"
                    + "\n".join(f"- {error}" for error in check.errors)
                )
            if ref.repo_type == "model":
                await self._check_lineage(ref, strings(card_metadata(text).get("base_model")))

    async def _check_lineage(self, ref: RepoRef, bases: list[str]) -> None:
        """A card whose `base_model` leads back to its own repo through hosted repos' cards
        (at `main`) is refused (400): lineage is a graph without cycles."""
        own = canonical_name(ref.repo_id)
        path = [ref.repo_id]
        seen: set[str] = set()

        async def walk(names: list[str], depth: int) -> None:
            for name in names:
                if canonical_name(name) == own:
                    chain = " -> ".join([*path, name])
                    raise BadRequest(f"base_model makes a cycle: {chain}")
                if canonical_name(name) in seen or depth >= MAX_LINEAGE_DEPTH:
                    continue
                seen.add(canonical_name(name))
                path.append(name)
                await walk(await self._base_models(name), depth + 1)
                path.pop()

        await walk(bases, 0)

    async def _base_models(self, repo_id: str) -> list[str]:
        """The `base_model` of a hosted model's card at `main` ([] when there is none)."""
        if repo_id.count("/") != 1:
            return []
        record = await self.repos.find(RepoRef("model", repo_id))
        if record is None:
            return []
        head = (await self.repos.refs(record.ref))[BRANCH].get(DEFAULT_BRANCH)
        card = (await self.repos.files(record.ref, head)).get(CARD_PATH) if head else None
        if card is None or card.size > MAX_CARD_BYTES:
            return []
        content = b"".join(
            [piece async for piece in self.content.read(card.blob_id, card.size, 0, card.size)]
        )
        text = content.decode("utf-8", errors="replace")
        return strings(card_metadata(text).get("base_model"))

    async def _store_regular(self, blob: str, content: bytes) -> None:
        await self.content.store_bytes(blob, content)
        HUB_UPLOADED_BYTES.labels("regular").inc(len(content))

    @staticmethod
    def _check_parent(header: CommitHeader, head: str, branch: str) -> None:
        if header.parent is not None and not head.startswith(header.parent):
            # huggingface.co's words (clients and tests match on them), then the facts.
            raise PreconditionFailed(
                f"{PARENT_MOVED} (branch {branch!r} is at {head}, not at {header.parent})"
            )

    async def super_squash(self, ref: RepoRef, name: str, message: str, actor: RefGuard) -> str:
        """Replace the history of branch `name` (or pull request `refs/pr/N`, which the
        dataset viewer squashes) by one commit holding its files."""
        pull_request = PULL_REQUEST_REF.fullmatch(name)
        if pull_request is not None:
            return await self._super_squash_pull_request(
                ref, int(pull_request.group(1)), message, actor.name
            )
        branch = ref_name(name, BRANCH)
        async with self._locks[ref]:
            head = (await self.repos.refs(ref))[BRANCH].get(branch)
            if head is None:
                raise RevisionNotFound(f"Invalid rev id: {branch}")
            await self._guard(ref, actor, BRANCH, branch, "move", "squash")
            files = await self.repos.files(ref, head)
            title = message.split("\n", 1)[0].strip() or f"Super-squash branch '{branch}'"
            commit = _new_commit(files, [], actor.name, title, message or title)
            await self.repos.add_commit(ref, branch, commit, files, expected_head=head)
        await self._announce_refs(
            ref, RefUpdate(f"refs/heads/{branch}", head, commit.sha), actor.name
        )
        return commit.sha

    async def _announce_refs(self, ref: RepoRef, moved: RefUpdate, actor: str = "") -> None:
        await self.announcer.announce(
            ref, "update", "repo.content", actor=actor, updated_refs=(moved,)
        )

    async def _super_squash_pull_request(
        self, ref: RepoRef, num: int, message: str, author: str
    ) -> str:
        async with self._locks[ref]:
            head = (await self.repos.pull_request_refs(ref)).get(num)
            if head is None:
                raise RevisionNotFound(f"Invalid rev id: refs/pr/{num}")
            files = await self.repos.files(ref, head)
            title = message.split("\n", 1)[0].strip() or f"Super-squash refs/pr/{num}"
            commit = _new_commit(files, [], author, title, message or title)

            def move(connection: sqlite3.Connection) -> None:
                move_pull_request_head(connection, ref, num, head, commit.sha, title, author)

            await self.repos.store_commit(ref, commit, files, move)
            return commit.sha

    async def _lfs_sizes(self, ref: RepoRef, operations: list[Operation]) -> dict[str, int]:
        """The size of every LFS object the commit names: each must have been uploaded to
        this repo (knowing a hash is not enough to read another repo's file)."""
        sizes: dict[str, int] = {}
        for operation in operations:
            if not isinstance(operation, AddLfsFile):
                continue
            size = await self.repos.lfs_object_size(ref, operation.sha256)
            if size is None or not await self.content.holds(_lfs_blob(operation.sha256), size):
                raise UploadRejected(
                    f"LFS object {operation.sha256} of {operation.path} was not uploaded to "
                    f"{ref.repo_id}: upload it first"
                )
            if operation.size is not None and operation.size != size:
                raise UploadRejected(
                    f"LFS object {operation.sha256} has {size} bytes, not {operation.size}"
                )
            sizes[operation.sha256] = size
        return sizes

    # Branches and tags ------------------------------------------------------------------

    # As on huggingface.co, a revision that does not exist (404) is reported before a name
    # that is not valid (400).

    async def create_branch(
        self, ref: RepoRef, name: str, starting_point: str | None, actor: RefGuard
    ) -> None:
        async with self._locks[ref]:
            start = await self.repos.resolve(ref, starting_point or DEFAULT_BRANCH)
            branch = ref_name(name, BRANCH)
            await self._guard(ref, actor, BRANCH, branch, "create", "ref")
            await self.repos.create_ref(ref, BRANCH, branch, start)
        await self._announce_refs(ref, RefUpdate(f"refs/heads/{branch}", None, start), actor.name)

    async def delete_branch(self, ref: RepoRef, name: str, actor: RefGuard) -> None:
        branch = ref_name(name, BRANCH)
        if branch == DEFAULT_BRANCH:
            raise Forbidden(f"Cannot delete refs/heads/{DEFAULT_BRANCH}")
        async with self._locks[ref]:
            old = (await self.repos.refs(ref))[BRANCH].get(branch)
            if old is not None:
                await self._guard(ref, actor, BRANCH, branch, "delete", "ref")
            await self.repos.delete_ref(ref, BRANCH, branch)
        await self._announce_refs(ref, RefUpdate(f"refs/heads/{branch}", old, None), actor.name)

    async def create_tag(self, ref: RepoRef, revision_name: str, tag: str, actor: RefGuard) -> None:
        async with self._locks[ref]:
            target = await self.repos.resolve(ref, revision_name)
            name = ref_name(tag, TAG)
            await self._guard(ref, actor, TAG, name, "create", "ref")
            await self.repos.create_ref(ref, TAG, name, target)
        await self._announce_refs(ref, RefUpdate(f"refs/tags/{name}", None, target), actor.name)

    async def delete_tag(self, ref: RepoRef, tag: str, actor: RefGuard) -> None:
        name = ref_name(tag, TAG)
        async with self._locks[ref]:
            old = (await self.repos.refs(ref))[TAG].get(name)
            if old is not None:
                await self._guard(ref, actor, TAG, name, "delete", "ref")
            await self.repos.delete_ref(ref, TAG, name)
        await self._announce_refs(ref, RefUpdate(f"refs/tags/{name}", old, None), actor.name)

    # Protection and promotion -----------------------------------------------------------

    async def _guard(
        self, ref: RepoRef, actor: RefGuard, kind: str, name: str, change: Change, via: Via
    ) -> None:
        """The one check every ref change of a hosted repo passes (`auth.protections`): a
        refusal is the guard's to raise (`auth.protections`: 403 `RefProtected`, audited)."""

        def load(connection: sqlite3.Connection) -> tuple[list[ProtectionRule], bool]:
            return load_rules(connection, ref), name in load_aliases(connection, ref)

        rules, alias = await self.repos.database.run(load)
        actor.check(RefChange(kind, name, change, via), rules, alias=alias and kind == BRANCH)

    async def promote(
        self,
        ref: RepoRef,
        alias: str,
        target: str,
        actor: RefGuard,
        *,
        expected: str | None,
        check_expected: bool,
        message: str,
    ) -> Promotion:
        """Point alias `alias` (a branch; created by its first promotion) at the commit
        `target` names, atomically: if `check_expected`, only while it is at `expected`
        (None: while it does not exist) — else `Conflict` (409). Recorded in the promotion
        history in the same transaction; subject to the protection rules."""
        name = ref_name(alias, BRANCH)
        async with self._locks[ref]:
            commit = await self.repos.resolve(ref, target)
            refs = await self.repos.refs(ref)
            aliases = await self.registry.aliases(ref)
            if name in refs[TAG]:
                raise Conflict(f"{name!r} is a tag: an alias is a branch of its own name")
            current = refs[BRANCH].get(name)
            if current is not None and name not in aliases:
                raise Conflict(
                    f"Branch {name!r} exists and is not an alias: aliases are branches that"
                    " only promotions move (choose another name)"
                )
            at_expected = (
                current is None
                if expected is None
                else current is not None and current.startswith(expected)
            )
            if check_expected and not at_expected:
                raise Conflict(
                    f"Alias {name!r} is at {current or 'nothing (it does not exist)'},"
                    f" not at {expected or 'nothing'}: promote again from where it is"
                )
            await self._guard(
                ref, actor, BRANCH, name, "create" if current is None else "move", "promotion"
            )
            promotion = Promotion(
                name, current or "", commit, target, actor.name, message, time.time()
            )

            def record(connection: sqlite3.Connection) -> None:
                record_promotion(connection, ref, promotion, new_alias=current is None)

            await self.repos.move_ref(ref, BRANCH, name, commit, current, record)
        await self._announce_refs(ref, RefUpdate(f"refs/heads/{name}", current, commit), actor.name)
        return promotion

    async def remove_alias(self, ref: RepoRef, alias: str, actor: RefGuard) -> None:
        """Delete alias `alias` and its branch (its promotion history stays)."""
        name = ref_name(alias, BRANCH)
        async with self._locks[ref]:
            if name not in await self.registry.aliases(ref):
                raise RevisionNotFound(f"No alias {name!r}")
            old = (await self.repos.refs(ref))[BRANCH].get(name)
            await self._guard(ref, actor, BRANCH, name, "delete", "promotion")
            await self.repos.delete_ref(ref, BRANCH, name)
            await self.repos.database.run(lambda connection: forget_alias(connection, ref, name))
        await self._announce_refs(ref, RefUpdate(f"refs/heads/{name}", old, None), actor.name)

    # LFS uploads ------------------------------------------------------------------------

    async def lfs_upload_needed(self, ref: RepoRef, sha256: str, size: int) -> bool:
        """Whether the client must send the object's bytes to this repo."""
        await self.repos.repo(ref)
        known = await self.repos.lfs_object_size(ref, sha256)
        if known is not None and known != size:
            raise UploadRejected(f"LFS object {sha256} was uploaded with {known} bytes, not {size}")
        return known is None or not await self.content.holds(_lfs_blob(sha256), size)

    async def receive_lfs_object(
        self, ref: RepoRef, sha256: str, size: int, body: AsyncIterator[bytes]
    ) -> None:
        """Stage the uploaded bytes, check length and sha256, then store and link them."""
        await self.repos.repo(ref)
        upload = await self.content.open_upload(_lfs_blob(sha256), size)
        try:
            received, digest = await _receive(body, upload, size)
            if received != size:
                raise UploadRejected(
                    f"Received {received} bytes of LFS object {sha256}, not {size}"
                )
            if digest != sha256:
                raise UploadRejected(f"The uploaded bytes do not match LFS object {sha256}")
            await upload.commit()
        except BaseException:
            await upload.abort()
            raise
        await self.repos.link_lfs_object(ref, sha256, size)
        HUB_UPLOADED_BYTES.labels("lfs").inc(size)

    async def lfs_object_stored(self, ref: RepoRef, sha256: str, size: int) -> None:
        """The verify step: `UploadRejected` unless the object is stored for this repo."""
        if await self.lfs_upload_needed(ref, sha256, size):
            raise UploadRejected(f"LFS object {sha256} was not uploaded")


async def _receive(body: AsyncIterator[bytes], upload: ContentUpload, size: int) -> tuple[int, str]:
    """Pass `body` to `upload` (never more than `size` bytes); returns (length, sha256).
    Hashing and writing of each buffer run side by side in threads."""
    digest = hashlib.sha256()
    received = 0
    pending = bytearray()

    async def flush(data: bytearray) -> None:
        await asyncio.gather(asyncio.to_thread(digest.update, data), upload.write(data))

    async for piece in body:
        received += len(piece)
        if received > size:
            raise UploadRejected(f"More than the announced {size} bytes were sent")
        pending += piece
        if len(pending) >= WRITE_BUFFER:
            await flush(pending)
            pending = bytearray()
    await flush(pending)
    return received, digest.hexdigest()
