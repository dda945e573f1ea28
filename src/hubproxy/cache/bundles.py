"""Export and import bundles: carry cached repos to a site without internet.

A bundle is a plain directory:

    manifest.json           what the bundle holds (see `export`), its format and versions
    documents/<sha256>      upstream JSON documents (repo info, tree listings...) as cached
    blobs/<algorithm>/<hex> whole file contents, named by their hash

Import verifies every blob and document against its hash before anything becomes visible; a
bundle with one bad byte is refused whole. Importing the same bundle twice changes nothing.
An incremental bundle (`since`) omits blobs and documents an earlier manifest already listed;
importing it needs the earlier bundle imported first, and says so otherwise.
"""

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubproxy import __version__
from hubproxy.blob_ids import BlobId
from hubproxy.cache.layout import LAYOUT_VERSION, chunk_count, chunk_key
from hubproxy.cache.metadata import MISSING, CacheMetadata, FileRecord
from hubproxy.cache.revisions import DEFAULT_BRANCH_KEY
from hubproxy.cache.storage import Storage
from hubproxy.constants import COMMIT_SHA_PATTERN
from hubproxy.naming import RepoRef, path_in_repo, repo_ref, revision
from hubproxy.progress import NO_PROGRESS, Progress

BUNDLE_FORMAT = 1
PIECE = 4 * 1024 * 1024


class BundleError(Exception):
    """The bundle cannot be written or imported; the message says why, precisely."""


@dataclass
class BundleReport:
    repos: list[str] = field(default_factory=list)
    blobs_written: int = 0
    blobs_skipped: int = 0
    bytes_written: int = 0
    documents: int = 0
    # Repo@commit -> paths of selected files the bundle lacks (a partial export).
    partial: dict[str, list[str]] = field(default_factory=dict)
    # Hosted files uploaded through Xet, carried as xorbs (`cas/bundles.py`).
    xet_files: int = 0
    xorbs_written: int = 0
    xorb_bytes_written: int = 0


class IncompleteExport(BundleError):
    """Selected files are not (completely) cached: an export would be partial."""

    def __init__(self, missing: Mapping[str, Sequence[str]]) -> None:
        self.missing = {repo: list(paths) for repo, paths in missing.items()}
        count = sum(len(paths) for paths in self.missing.values())
        lines = [f"{repo}: {path}" for repo, paths in self.missing.items() for path in paths[:20]]
        more = count - len(lines)
        super().__init__(
            f"{count} selected files are not completely cached (preload them first, or export"
            " with --allow-partial; the manifest then records them as missing):\n  "
            + "\n  ".join(lines)
            + (f"\n  ... and {more} more" if more > 0 else "")
        )


def _listed_files(documents: Mapping[str, bytes]) -> set[str] | None:
    """Paths of the files that the cached tree listings of a commit name (None: no listing
    cached, so the commit's file list is unknown)."""
    listings = [body for key, body in documents.items() if key.startswith("tree:")]
    if not listings:
        return None
    files: set[str] = set()
    for body in listings:
        document = json.loads(body)
        if isinstance(document, list):
            files.update(
                item["path"]
                for item in document
                if isinstance(item, dict) and item.get("type") == "file"
            )
    return files


@dataclass(frozen=True, slots=True)
class _Plan:
    """One repo of an export: its commit, the entries to write, the selected files lacking."""

    ref: RepoRef
    wanted: str
    commit: str
    entries: list[tuple[str, FileRecord]]
    missing: list[str]


class Bundles:
    """Export from / import into one cache (its metadata and storage)."""

    def __init__(self, metadata: CacheMetadata, storage: Storage, chunk_size: int) -> None:
        self.metadata = metadata
        self.storage = storage
        self.chunk_size = chunk_size

    # Export --------------------------------------------------------------------------

    async def export(
        self,
        targets: Sequence[tuple[RepoRef, str]],
        directory: Path,
        since: Path | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        extra_blobs: Mapping[str, int] | None = None,
        selected: Callable[[str], bool] = lambda path: True,
        allow_partial: bool = False,
        progress: Progress = NO_PROGRESS,
    ) -> BundleReport:
        """Write the repos at the given revisions (branch, tag or commit) into `directory`.

        Every `selected` file of each repo (by the commit's cached tree listings) must be
        completely cached, else `IncompleteExport` lists what is missing and nothing is
        written; with `allow_partial` the bundle leaves those out and its manifest names them
        (`missing`), so that an offline site learns at import, not at read time.
        `extra` adds manifest sections written by others (hosted repos) and `extra_blobs`
        (blob id → size) the stored blobs those sections need."""
        # What an earlier bundle carried: blobs by id, documents by (key, hash).
        already: set[str] = set()
        if since is not None:
            previous = json.loads(await asyncio.to_thread(since.read_text))
            already = {item["id"] for item in previous.get("blobs", [])} | {
                f"{item['key']} {item['sha256']}" for item in previous.get("documents", [])
            }
        report = BundleReport()
        manifest: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "hubproxy_version": __version__,
            "layout_version": LAYOUT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "repos": [],
            "documents": [],
            "blobs": [],
            **(extra or {}),
        }
        blobs: dict[str, int] = dict(extra_blobs or {})
        plans = [await self._plan(ref, wanted, selected) for ref, wanted in targets]
        missing = {f"{plan.ref.repo_id}@{plan.commit}": plan.missing for plan in plans}
        missing = {repo: paths for repo, paths in missing.items() if paths}
        if missing and not allow_partial:
            raise IncompleteExport(missing)
        report.partial = missing
        (directory / "documents").mkdir(parents=True, exist_ok=True)
        for plan in plans:
            ref, wanted, commit, entries = plan.ref, plan.wanted, plan.commit, plan.entries
            revisions = {wanted: commit} if wanted != commit else {}
            default = await self.metadata.get_revision(ref, DEFAULT_BRANCH_KEY)
            if (default is not None and default.commit == commit) or wanted == "main":
                # Clients ask for the default branch without naming it (`/api/models/{repo}`).
                revisions[DEFAULT_BRANCH_KEY] = commit
            manifest["repos"].append(
                {
                    "repo_type": ref.repo_type,
                    "repo_id": ref.repo_id,
                    "revisions": revisions,
                    "commit": commit,
                    "entries": [
                        {"path": path, "present": False}
                        if record is MISSING
                        else {
                            "path": path,
                            "present": True,
                            "size": record.size,
                            "git_oid": record.git_oid,
                            "sha256": record.sha256,
                        }
                        for path, record in entries
                    ],
                    "missing": plan.missing,
                }
            )
            report.repos.append(f"{ref.repo_id}@{commit}")
            for key, body in (await self.metadata.documents_of(ref, commit)).items():
                digest = hashlib.sha256(body).hexdigest()
                manifest["documents"].append({"key": key, "sha256": digest})
                if f"{key} {digest}" not in already:
                    (directory / "documents" / digest).write_bytes(body)
                    report.documents += 1
            for _path, record in entries:
                if record is not MISSING:
                    blobs[str(record.blob)] = record.size
        progress.begin("writing files", sum(blobs.values()))
        for blob_text, size in sorted(blobs.items()):
            manifest["blobs"].append({"id": blob_text, "size": size})
            if blob_text in already:
                report.blobs_skipped += 1
                progress.advance(size)
                continue
            await self._export_blob(BlobId.parse(blob_text), size, directory, progress)
            report.blobs_written += 1
            report.bytes_written += size
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
        return report

    async def _plan(self, ref: RepoRef, wanted: str, selected: Callable[[str], bool]) -> _Plan:
        """What an export of `ref@wanted` writes, and which selected files it would lack."""
        commit = await self._commit_of(ref, wanted)
        recorded = await self.metadata.entries_at(ref, commit)
        if not recorded:
            raise BundleError(
                f"{ref.repo_id}@{wanted}: nothing cached at {commit} (preload it first)"
            )
        listed = _listed_files(await self.metadata.documents_of(ref, commit))
        if listed is None:
            raise BundleError(
                f"{ref.repo_id}@{wanted}: the file list of {commit} is not cached, so the"
                " bundle could not be known to be complete (preload it first)"
            )
        present = {path: record for path, record in recorded if record is not MISSING}
        missing = [
            path
            for path in sorted(listed | set(present))
            if selected(path)
            and (path not in present or not await self._cached_whole(present[path]))
        ]
        entries = [
            (path, record)
            for path, record in recorded
            if record is MISSING or (selected(path) and path not in missing)
        ]
        return _Plan(ref, wanted, commit, entries, missing)

    async def _cached_whole(self, record: FileRecord) -> bool:
        stored = await self.metadata.get_blob(str(record.blob))
        # Content only the private hub stored is not upstream's: never exported as cached.
        return (
            stored is not None
            and stored.from_upstream
            and len(stored.chunks) == chunk_count(record.size, stored.chunk_size)
        )

    async def _commit_of(self, ref: RepoRef, wanted: str) -> str:
        if COMMIT_SHA_PATTERN.match(wanted):
            return wanted
        record = await self.metadata.get_revision(ref, wanted)
        if record is None:
            raise BundleError(
                f"{ref.repo_id}@{wanted}: revision not in the cache (preload it first)"
            )
        return record.commit

    async def _export_blob(
        self, blob: BlobId, size: int, directory: Path, progress: Progress
    ) -> None:
        record = await self.metadata.get_blob(str(blob))
        chunks = chunk_count(size, record.chunk_size) if record else 0
        if record is None or len(record.chunks) != chunks:
            raise BundleError(f"{blob}: not completely cached (preload it first)")
        target = directory / "blobs" / blob.algorithm / blob.digest
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".partial")
        with open(temporary, "wb") as output:  # noqa: ASYNC230 - sequential local writes
            for index in range(chunks):
                async for piece in self.storage.read(chunk_key(blob, index)):
                    await asyncio.to_thread(output.write, piece)
                    progress.advance(len(piece))
        os.replace(temporary, target)

    # Import --------------------------------------------------------------------------

    async def import_bundle(
        self, directory: Path, hold: Collection[str] = (), progress: Progress = NO_PROGRESS
    ) -> BundleReport:
        """Verify everything in `directory`, then make it visible; refuse it whole on any fault.

        Blobs named in `hold` (hosted repos' files) are marked never to be evicted. The report
        names the files a partial bundle left out (`partial`)."""
        manifest = self.read_manifest(directory)
        documents = await self._verified_documents(directory, manifest)
        total = sum(int(item["size"]) for item in manifest["blobs"])
        progress.begin("verifying the bundle", total)
        missing_blobs = await self._verify_blobs(directory, manifest, progress)
        if missing_blobs:
            raise BundleError(
                f"{len(missing_blobs)} files are neither in this bundle nor in the cache "
                f"(import the earlier bundle first): {', '.join(missing_blobs[:3])}"
            )
        report = BundleReport()
        progress.begin("importing files", total)
        for item in manifest["blobs"]:
            blob = BlobId.parse(item["id"])
            path = directory / "blobs" / blob.algorithm / blob.digest
            if await self._complete(blob, item["size"]):
                report.blobs_skipped += 1
                progress.advance(item["size"])
            else:
                held = item["id"] in hold
                await self._import_blob(blob, item["size"], path, progress, held=held)
                report.blobs_written += 1
                report.bytes_written += item["size"]
            if item["id"] in hold:
                await self.metadata.hold(item["id"])
        for key, body in documents.items():
            await self.metadata.put_document(key, body)
            report.documents += 1
        for repo in manifest["repos"]:
            ref = repo_ref(repo["repo_type"], repo["repo_id"])
            for item in repo["entries"]:
                entry_path = path_in_repo(item["path"])
                record = (
                    FileRecord(item["size"], item["git_oid"], item["sha256"])
                    if item["present"]
                    else MISSING
                )
                await self.metadata.put_entry(ref, repo["commit"], entry_path, record)
            for name, commit in repo["revisions"].items():
                if not COMMIT_SHA_PATTERN.match(commit):
                    raise BundleError(f"bad commit {commit!r} for {ref.repo_id}@{name}")
                key = DEFAULT_BRANCH_KEY if name == DEFAULT_BRANCH_KEY else revision(name)
                await self.metadata.put_revision(ref, key, commit)
            report.repos.append(f"{ref.repo_id}@{repo['commit']}")
            if repo["missing"]:
                report.partial[f"{ref.repo_id}@{repo['commit']}"] = list(repo["missing"])
        return report

    def read_manifest(self, directory: Path) -> dict[str, Any]:
        """The bundle's manifest, if its format and layout are ones this version reads."""
        try:
            manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
        except (OSError, ValueError) as error:
            raise BundleError(f"no readable manifest.json in {directory}: {error}") from None
        if manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"bundle format {manifest.get('format')!r} is not supported")
        if manifest.get("layout_version") != LAYOUT_VERSION:
            raise BundleError(
                f"bundle layout version {manifest.get('layout_version')!r} is not supported"
            )
        for repo in manifest.get("repos", []):
            if not COMMIT_SHA_PATTERN.match(str(repo.get("commit", ""))):
                raise BundleError(f"bad commit in manifest for {repo.get('repo_id')!r}")
            # Bundles written before partial exports existed name no missing files.
            missing = repo.setdefault("missing", [])
            if not isinstance(missing, list) or not all(isinstance(p, str) for p in missing):
                raise BundleError(f"bad list of missing files for {repo.get('repo_id')!r}")
        return manifest

    async def _verified_documents(
        self, directory: Path, manifest: dict[str, Any]
    ) -> dict[str, bytes]:
        # A document may only describe a repo at a commit the manifest declares.
        allowed = tuple(
            f"{repo_ref(repo['repo_type'], repo['repo_id'])}@{repo['commit']}"
            for repo in manifest["repos"]
        )
        documents: dict[str, bytes] = {}
        for item in manifest["documents"]:
            _kind, _, subject = str(item["key"]).partition(":")
            if not subject.startswith(allowed):
                raise BundleError(f"document {item['key']!r} describes no repo of the bundle")
            path = directory / "documents" / item["sha256"]
            if not path.exists():
                existing = await self.metadata.get_document(item["key"])
                if existing is None or hashlib.sha256(existing).hexdigest() != item["sha256"]:
                    raise BundleError(
                        f"document {item['key']} is neither in this bundle nor in the cache"
                        " (import the earlier bundle first)"
                    )
                continue
            body = path.read_bytes()
            if hashlib.sha256(body).hexdigest() != item["sha256"]:
                raise BundleError(f"document {item['key']} is corrupt (hash mismatch)")
            documents[item["key"]] = body
        return documents

    async def _verify_blobs(
        self, directory: Path, manifest: dict[str, Any], progress: Progress
    ) -> list[str]:
        """Hash every blob file of the bundle; return those absent from bundle and cache alike."""
        missing: list[str] = []
        for item in manifest["blobs"]:
            blob = BlobId.parse(item["id"])
            path = directory / "blobs" / blob.algorithm / blob.digest
            if not path.exists():
                if not await self._complete(blob, item["size"]):
                    missing.append(item["id"])
                continue
            hasher = blob.hasher(item["size"])
            total = 0
            with open(path, "rb") as source:  # noqa: ASYNC230 - sequential local reads
                while piece := await asyncio.to_thread(source.read, PIECE):
                    await asyncio.to_thread(hasher.update, piece)
                    total += len(piece)
                    progress.advance(len(piece))
            if total != item["size"] or hasher.hexdigest() != blob.digest:
                raise BundleError(
                    f"{item['id']} is corrupt or truncated in the bundle: nothing was imported"
                )
        return missing

    async def _complete(self, blob: BlobId, size: int) -> bool:
        record = await self.metadata.get_blob(str(blob))
        return (
            record is not None
            and record.verified
            and len(record.chunks) == chunk_count(size, record.chunk_size)
        )

    async def _import_blob(
        self, blob: BlobId, size: int, path: Path, progress: Progress, *, held: bool
    ) -> None:
        # A hosted repo's file is the private hub's content, not a cached upstream file.
        await self.metadata.create_blob(str(blob), size, self.chunk_size, from_upstream=not held)
        if held:
            await self.metadata.set_from_upstream(str(blob), False)
        record = await self.metadata.get_blob(str(blob))
        assert record is not None
        chunk_size = record.chunk_size
        with open(path, "rb") as source:  # noqa: ASYNC230 - chunk-sized reads of a local file
            for index in range(chunk_count(size, chunk_size)):
                data = await asyncio.to_thread(source.read, chunk_size)
                info = await self.storage.put_bytes(chunk_key(blob, index), data)
                await self.metadata.add_chunk(str(blob), index, info.size)
                progress.advance(len(data))
        await self.metadata.mark_verified(str(blob))
