"""Files uploaded through Xet in export/import bundles (`cli/bundling.py`).

Such a file lives only in its xorbs, so a bundle carries the xorbs as uploaded, beside the
whole blobs of other files:

    xorbs/<xorb hash>        a xorb (chunk headers and compressed chunks), named by its hash

and a manifest section that says how the files reconstruct and which repo each was uploaded to:

    "xet": {"xorbs": [{"hash", "size"}],
            "files": [{"hash", "size", "sha256", "terms": [[xorb, first chunk, end chunk,
                                                             bytes], ...]}],
            "repos": [{"repo_type", "repo_id", "sha256", "file"}]}

On import each xorb is parsed and must hash to its name before it is stored, then each file
must be what the stored xorbs make (its terms, its hash, the sha256 of its bytes): only then,
after the hosted repos were created, are the files registered for their repos. A stored xorb
serves nobody until a file names it, so a bundle refused later leaves nothing readable (`cache
gc` deletes such xorbs after its grace). An incremental bundle omits the xorbs an earlier one
carried; the importing site must hold them already.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from hubproxy.cache.layout import xorb_key
from hubproxy.cas.index import XetFile
from hubproxy.cas.segments import Term
from hubproxy.cas.store import XetStore
from hubproxy.errors import InvalidShard, InvalidXorb, PayloadTooLarge
from hubproxy.naming import RepoRef, repo_ref
from hubproxy.progress import NO_PROGRESS, Progress
from hubproxy.xet.hashing import HEX_PATTERN

XORBS_DIR = "xorbs"
PIECE = 4 * 1024 * 1024


class XetBundleError(Exception):
    """The Xet part of a bundle cannot be written or imported; the message says why."""


@dataclass
class XetTransfer:
    """What an export wrote or an import stored."""

    files: int = 0
    xorbs: int = 0
    xorb_bytes: int = 0
    xorbs_skipped: int = 0
    written: list[Path] = field(default_factory=list)

    def discard(self) -> None:
        """Remove the xorb files an export wrote (the rest of it failed)."""
        for path in self.written:
            path.unlink(missing_ok=True)


@dataclass
class XetImport:
    """A parsed Xet section: the files by hash and the (repo, sha256, file hash) links."""

    files: dict[str, XetFile] = field(default_factory=dict)
    links: list[tuple[RepoRef, str, str]] = field(default_factory=list)
    xorbs: dict[str, int] = field(default_factory=dict)

    def provides(self, ref: RepoRef, sha256: str, size: int) -> bool:
        """Whether the section brings the file of `ref` with this content."""
        return any(
            linked == ref and digest == sha256 and self.files[name].size == size
            for linked, digest, name in self.links
        )


def _hex(value: object, what: str) -> str:
    text = str(value)
    if not HEX_PATTERN.match(text):
        raise XetBundleError(f"bad {what} {text[:80]!r} in the Xet section")
    return text


def _file_item(file: XetFile) -> dict[str, Any]:
    terms = [[term.xorb_hash, term.first_chunk, term.end_chunk, term.size] for term in file.terms]
    return {"hash": file.hash, "size": file.size, "sha256": file.sha256, "terms": terms}


async def _write_xorb(store: XetStore, name: str, target: Path, progress: Progress) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".partial")
    written = 0
    with open(temporary, "wb") as output:  # noqa: ASYNC230 - sequential local writes
        async for piece in store.storage.read(xorb_key(name)):
            await asyncio.to_thread(output.write, piece)
            written += len(piece)
            progress.advance(len(piece))
    os.replace(temporary, target)
    return written


async def export_xet(
    store: XetStore,
    links: Sequence[tuple[RepoRef, XetFile]],
    directory: Path,
    already: Collection[str] = (),
    progress: Progress = NO_PROGRESS,
) -> tuple[dict[str, Any], XetTransfer]:
    """Write the xorbs of the files in `links` (those in `already`, an earlier bundle's, are
    left out) into `directory`; the manifest section and what was written."""
    files = {file.hash: file for _, file in links}
    names = sorted({term.xorb_hash for file in files.values() for term in file.terms})
    sizes = {name: (await store.storage.stat(xorb_key(name))).size for name in names}
    transfer = XetTransfer(files=len(files))
    progress.begin("writing xorbs", sum(sizes[name] for name in names if name not in already))
    for name in names:
        if name in already:
            transfer.xorbs_skipped += 1
            continue
        target = directory / XORBS_DIR / name
        transfer.xorb_bytes += await _write_xorb(store, name, target, progress)
        transfer.written.append(target)
        transfer.xorbs += 1
    repos = [
        {"repo_type": ref.repo_type, "repo_id": ref.repo_id, "sha256": file.sha256}
        | {"file": file.hash}
        for ref, file in links
    ]
    section = {
        "xorbs": [{"hash": name, "size": sizes[name]} for name in names],
        "files": [_file_item(file) for file in files.values()],
        "repos": repos,
    }
    return section, transfer


def read_section(section: Mapping[str, Any] | None) -> XetImport:
    """Check the shape of a Xet section (None: the bundle has none); ids are not yet proven."""
    plan = XetImport()
    if section is None:
        return plan
    try:
        for item in section["xorbs"]:
            size = item["size"]
            if not isinstance(size, int) or size <= 0:
                raise XetBundleError(f"bad size of xorb {item['hash']!r}")
            plan.xorbs[_hex(item["hash"], "xorb hash")] = size
        for item in section["files"]:
            terms = tuple(
                Term(_hex(xorb, "xorb hash"), int(first), int(end), int(size))
                for xorb, first, end, size in item["terms"]
            )
            if not terms or any(term.xorb_hash not in plan.xorbs for term in terms):
                raise XetBundleError(f"file {item['hash']!r} names xorbs the section does not")
            name = _hex(item["hash"], "file hash")
            plan.files[name] = XetFile(
                name, int(item["size"]), _hex(item["sha256"], "sha256"), terms
            )
        for item in section["repos"]:
            ref = repo_ref(item["repo_type"], str(item["repo_id"]))
            name = _hex(item["file"], "file hash")
            if name not in plan.files or plan.files[name].sha256 != item["sha256"]:
                raise XetBundleError(f"{ref.repo_id}: file {name} is not in the Xet section")
            plan.links.append((ref, plan.files[name].sha256, name))
    except (KeyError, TypeError, ValueError) as error:
        raise XetBundleError(f"malformed Xet section: {error!r}") from None
    return plan


async def _pieces(source: BinaryIO) -> AsyncIterator[bytes]:
    while piece := await asyncio.to_thread(source.read, PIECE):
        yield piece


async def store_xet(
    store: XetStore, plan: XetImport, directory: Path, progress: Progress = NO_PROGRESS
) -> XetTransfer:
    """Verify and store the bundle's xorbs, then check every file against them; nothing is
    registered yet (`register_xet`, once the repos exist). `XetBundleError` says what is
    wrong."""
    transfer = XetTransfer(files=len(plan.files))
    missing: list[str] = []
    progress.begin("verifying xorbs", sum(plan.xorbs.values()))
    for name, size in plan.xorbs.items():
        path = directory / XORBS_DIR / name
        if not path.exists():
            if not await store.has_xorb(name):
                missing.append(name)
            transfer.xorbs_skipped += 1
            continue
        if path.stat().st_size != size:
            raise XetBundleError(f"xorb {name} is truncated in the bundle: nothing was imported")
        try:
            with open(path, "rb") as source:  # noqa: ASYNC230 - one local file, read in pieces
                stored = await store.put_xorb(name, _pieces(source))
        except (InvalidXorb, PayloadTooLarge) as error:
            raise XetBundleError(
                f"xorb {name} is corrupt in the bundle ({error}): nothing was imported"
            ) from None
        if stored:
            transfer.xorbs += 1
            transfer.xorb_bytes += size
        else:
            transfer.xorbs_skipped += 1
        progress.advance(size)
    if missing:
        raise XetBundleError(
            f"{len(missing)} xorbs are neither in this bundle nor stored here (import the"
            f" earlier bundle first): {', '.join(missing[:3])}"
        )
    for file in plan.files.values():
        try:
            await store.check_file(file)
        except InvalidShard as error:
            raise XetBundleError(f"{error}: nothing was imported") from None
    return transfer


async def register_xet(store: XetStore, plan: XetImport) -> None:
    """Register the checked files for the repos they were uploaded to (which exist now)."""
    for ref, _sha256, name in plan.links:
        await store.index.register(plan.files[name], ref)
