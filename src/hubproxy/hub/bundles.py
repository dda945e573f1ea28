"""Hosted repos in export/import bundles: their whole history, refs and LFS objects.

The section a hosted repo writes into `manifest.json` (under `"hosted"`) is plain data:

    {"repo_type", "repo_id", "private",
     "refs": {"branch": {name: sha}, "tag": {name: sha}},
     "commits": [{"sha", "tree", "parents", "author", "title", "message", "created",
                  "files": [{"path", "size", "git_oid", "sha256"}]}],
     "lfs_objects": [{"sha256", "size"}]}

File contents travel as the bundle's blobs (the cache's bundle code writes and verifies them).
On import every id is recomputed before anything becomes visible: each LFS file's pointer id,
each commit's tree and commit sha, every ref's target. A bundle that was edited by hand, or
damaged, is refused whole; the offline site shows the same shas as the connected one.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hubproxy.constants import COMMIT_SHA_PATTERN, SHA256_PATTERN
from hubproxy.hub.gitobjects import Signature, commit_id, git_blob_oid, lfs_pointer
from hubproxy.hub.registry import HubRegistry
from hubproxy.hub.repos import BRANCH, TAG, CommitRecord, HubFile, HubRepos, tree_ids_of
from hubproxy.naming import RepoRef, path_in_repo, repo_ref, revision
from hubproxy.ref_rules import Change, RefChange, RefGuard


class HostedBundleError(Exception):
    """The hosted part of a bundle is inconsistent; the message names what and where."""


@dataclass
class HostedImport:
    """A verified hosted section, ready to be made visible."""

    ref: RepoRef
    private: bool
    commits: list[tuple[CommitRecord, dict[str, HubFile]]]
    refs: dict[str, dict[str, str]]
    lfs_objects: dict[str, int] = field(default_factory=dict)


def _file_item(path: str, file: HubFile) -> dict[str, Any]:
    return {"path": path, "size": file.size, "git_oid": file.git_oid, "sha256": file.sha256}


async def export_section(repos: HubRepos, ref: RepoRef) -> tuple[dict[str, Any], dict[str, int]]:
    """The manifest section of a hosted repo (every commit reachable from its refs), and the
    blobs it needs: blob id → size."""
    record = await repos.repo(ref)
    refs = await repos.refs(ref)
    commits: dict[str, CommitRecord] = {}
    for target in {*refs[BRANCH].values(), *refs[TAG].values()}:
        for commit in await repos.history(ref, target):
            commits[commit.sha] = commit
    blobs: dict[str, int] = {}
    lfs_objects: dict[str, int] = {}
    items = []
    for commit in _parents_first(commits):
        files = await repos.files(ref, commit.sha)
        for file in files.values():
            blobs[file.blob_id] = file.size
            if file.sha256 is not None:
                lfs_objects[file.sha256] = file.size
        items.append(
            {
                "sha": commit.sha,
                "tree": commit.tree,
                "parents": list(commit.parents),
                "author": commit.author,
                "title": commit.title,
                "message": commit.message,
                "created": commit.created,
                "files": [_file_item(path, file) for path, file in files.items()],
            }
        )
    section = {
        "repo_type": ref.repo_type,
        "repo_id": ref.repo_id,
        "private": record.private,
        "refs": refs,
        "commits": items,
        "lfs_objects": [{"sha256": key, "size": size} for key, size in sorted(lfs_objects.items())],
    }
    return section, blobs


def _parents_first(commits: Mapping[str, CommitRecord]) -> list[CommitRecord]:
    """Every commit after its parents (timestamps may tie), so importers can check the order."""
    ordered: list[CommitRecord] = []
    placed: set[str] = set()
    for sha in commits:
        pending = [sha]
        while pending:
            current = commits[pending[-1]]
            missing = [p for p in current.parents if p in commits and p not in placed]
            if current.sha in placed:
                pending.pop()
            elif missing:
                pending.extend(missing)
            else:
                ordered.append(current)
                placed.add(current.sha)
                pending.pop()
    return ordered


def _files_of(item: Mapping[str, Any], where: str) -> dict[str, HubFile]:
    files: dict[str, HubFile] = {}
    for entry in item["files"]:
        path = path_in_repo(str(entry["path"]))
        size, git_oid, sha256 = entry["size"], str(entry["git_oid"]), entry["sha256"]
        if not isinstance(size, int) or size < 0 or not COMMIT_SHA_PATTERN.match(git_oid):
            raise HostedBundleError(f"{where}: bad file entry for {path}")
        if sha256 is not None:
            if not SHA256_PATTERN.match(str(sha256)):
                raise HostedBundleError(f"{where}: bad sha256 for {path}")
            if git_blob_oid(lfs_pointer(sha256, size)) != git_oid:
                raise HostedBundleError(f"{where}: {path} does not match its LFS pointer")
        files[path] = HubFile(size, git_oid, sha256)
    return files


def verify_section(section: Mapping[str, Any]) -> tuple[HostedImport, dict[str, int]]:
    """Check every id of a hosted section; returns it ready to import, and the blobs it needs.

    Regular files' contents are checked against their git ids with the bundle's blobs."""
    try:
        ref = repo_ref(section["repo_type"], str(section["repo_id"]))
        where = f"hosted repo {ref.repo_id}"
        commits: list[tuple[CommitRecord, dict[str, HubFile]]] = []
        known: set[str] = set()
        blobs: dict[str, int] = {}
        for item in section["commits"]:
            files = _files_of(item, where)
            tree = tree_ids_of(files)[""]
            parents = tuple(str(parent) for parent in item["parents"])
            author = Signature(
                str(item["author"]), f"{item['author']}@hubproxy", int(item["created"])
            )
            sha = commit_id(tree, parents, author, str(item["message"]))
            if tree != item["tree"] or sha != item["sha"]:
                raise HostedBundleError(f"{where}: commit {item['sha']} does not match its content")
            if any(parent not in known for parent in parents):
                raise HostedBundleError(f"{where}: commit {sha} comes before its parent")
            known.add(sha)
            record = CommitRecord(
                sha, tree, parents, str(item["author"]), str(item["title"]),
                str(item["message"]), float(item["created"]),
            )  # fmt: skip
            commits.append((record, files))
            blobs.update({file.blob_id: file.size for file in files.values()})
        refs: dict[str, dict[str, str]] = {BRANCH: {}, TAG: {}}
        for kind in (BRANCH, TAG):
            for name, target in section["refs"].get(kind, {}).items():
                if target not in known:
                    raise HostedBundleError(f"{where}: {kind} {name} points outside the bundle")
                refs[kind][revision(str(name))] = str(target)
        if "main" not in refs[BRANCH]:
            raise HostedBundleError(f"{where}: no 'main' branch")
        both = sorted(set(refs[BRANCH]) & set(refs[TAG]))
        if both:
            # Branches and tags are one namespace here: a name must mean one thing.
            raise HostedBundleError(f"{where}: both a branch and a tag named {both[0]!r}")
        lfs_objects = {str(item["sha256"]): int(item["size"]) for item in section["lfs_objects"]}
    except (KeyError, TypeError, ValueError) as error:
        raise HostedBundleError(f"malformed hosted repo section: {error!r}") from None
    plan = HostedImport(ref, bool(section.get("private", True)), commits, refs, lfs_objects)
    return plan, blobs


async def import_section(repos: HubRepos, plan: HostedImport, guard: RefGuard) -> str:
    """Make a verified hosted repo visible: its commits, then its refs as the bundle has them.
    Returns a one-line summary."""
    first, first_files = plan.commits[0]
    created = await repos.get_repo(plan.ref) is None
    if created:
        await repos.create_repo(
            plan.ref, private=plan.private, created_by="import", initial=first, files=first_files
        )
    else:
        await _check_protections(repos, plan, guard)
    await repos.import_history(plan.ref, plan.commits, plan.refs, plan.lfs_objects)
    state = "created" if created else "updated"
    return f"{plan.ref.repo_id} ({state}: {len(plan.commits)} commits)"


async def _check_protections(repos: HubRepos, plan: HostedImport, guard: RefGuard) -> None:
    """An import into an existing repo changes its refs like any other path: every change
    passes `guard` (immutable tags, aliases and `via_pr` branches refuse it) before anything
    is written."""
    registry = HubRegistry(repos.database)
    rules, aliases = await registry.rules(plan.ref), await registry.aliases(plan.ref)
    current = await repos.refs(plan.ref)
    for kind in (BRANCH, TAG):
        wanted = plan.refs.get(kind, {})
        for name in sorted(set(current[kind]) | set(wanted)):
            before, after = current[kind].get(name), wanted.get(name)
            if before == after:
                continue
            change: Change = "create" if before is None else "delete" if after is None else "move"
            alias = kind == BRANCH and name in aliases
            guard.check(RefChange(kind, name, change, "import"), rules, alias=alias)
