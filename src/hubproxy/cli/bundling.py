"""Bundles that carry both kinds of repo: cached (proxied) ones and hosted ones.

The cache writes and verifies the blobs and its own records (`cache/bundles.py`); the private
hub writes and verifies its repos' history (`hub/bundles.py`). This module decides which repo
is which (by the projects of the data dir) and runs both halves so that, on import, everything
is verified before anything becomes visible. Hosted files uploaded through Xet travel as their
xorbs (`cas/bundles.py`), not as whole blobs.
"""

import asyncio
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hubproxy.auth.accounts import create_project, list_projects
from hubproxy.auth.protections import OPERATOR, decide
from hubproxy.cache.bundles import BundleError, BundleReport, Bundles
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.storage import Storage
from hubproxy.cas.bundles import (
    XetBundleError,
    export_xet,
    read_section,
    register_xet,
    store_xet,
)
from hubproxy.cas.index import XetFile
from hubproxy.cas.store import XetStore
from hubproxy.db import Database
from hubproxy.errors import HubError
from hubproxy.hub.bundles import HostedBundleError, export_section, import_section, verify_section
from hubproxy.hub.repos import HubRepos
from hubproxy.naming import RepoRef
from hubproxy.progress import Progress
from hubproxy.ref_rules import ProtectionRule, RefChange
from hubproxy.settings import Settings

SHA256_BLOB = "sha256:"


async def _projects(database: Database) -> dict[str, str]:
    """Project name → kind."""
    return await database.run(
        lambda connection: {project.name: project.kind for project in list_projects(connection)}
    )


async def export_bundle(
    settings: Settings,
    database: Database,
    storage: Storage,
    wanted: Sequence[tuple[RepoRef, str]],
    directory: Path,
    since: Path | None,
    *,
    selected: Callable[[str], bool],
    allow_partial: bool,
    progress: Progress,
) -> BundleReport:
    """Cached repos at the given revisions (their `selected` files, see `Bundles.export`), and
    hosted repos whole (every branch, tag and commit)."""
    metadata = CacheMetadata(database)
    await metadata.open()
    kinds = await _projects(database)
    repos = HubRepos(database)
    xet = XetStore(storage, database, settings.staging_path)
    cached: list[tuple[RepoRef, str]] = []
    sections: list[dict[str, Any]] = []
    blobs: dict[str, int] = {}
    xet_files: list[tuple[RepoRef, XetFile]] = []
    for ref, revision in wanted:
        if kinds.get(ref.repo_id.split("/")[0]) != "hosted":
            cached.append((ref, revision))
            continue
        try:
            section, needed = await export_section(repos, ref)
        except HubError as error:
            raise BundleError(f"hosted repo {ref.repo_id}: {error.message}") from None
        sections.append(section)
        for blob, size in needed.items():
            # A file uploaded through Xet is stored only as xorbs: they travel instead.
            file = None
            if blob.startswith(SHA256_BLOB):
                file = await xet.repo_file(ref, blob.removeprefix(SHA256_BLOB))
            if file is not None and file.size == size:
                xet_files.append((ref, file))
            else:
                blobs[blob] = size
    already: set[str] = set()
    if since is not None:
        earlier = json.loads(await asyncio.to_thread(since.read_text)).get("xet") or {}
        already = {str(item["hash"]) for item in earlier.get("xorbs", [])}
    xet_section, transfer = await export_xet(xet, xet_files, directory, already, progress)
    bundles = Bundles(metadata, storage, settings.chunk_size)
    try:
        report = await bundles.export(
            cached,
            directory,
            since,
            extra={"hosted": sections, "xet": xet_section},
            extra_blobs=blobs,
            selected=selected,
            allow_partial=allow_partial,
            progress=progress,
        )
    except BaseException:
        transfer.discard()
        raise
    report.repos += [f"{section['repo_id']} (hosted, whole history)" for section in sections]
    report.xet_files, report.xorbs_written = transfer.files, transfer.xorbs
    report.xorb_bytes_written = transfer.xorb_bytes
    return report


async def import_bundle(
    settings: Settings,
    database: Database,
    storage: Storage,
    directory: Path,
    progress: Progress,
) -> tuple[BundleReport, list[str]]:
    """Verify the whole bundle, then import it. Returns the report and notes for the operator
    (hosted projects created for imported repos)."""
    metadata = CacheMetadata(database)
    await metadata.open()
    bundles = Bundles(metadata, storage, settings.chunk_size)
    manifest = bundles.read_manifest(directory)
    listed = {item["id"]: item["size"] for item in manifest.get("blobs", [])}
    try:
        xet_plan = read_section(manifest.get("xet"))
    except XetBundleError as error:
        raise BundleError(str(error)) from None
    kinds = await _projects(database)
    plans = []
    hold: set[str] = set()
    for section in manifest.get("hosted", []):
        try:
            plan, needed = verify_section(section)
        except HostedBundleError as error:
            raise BundleError(str(error)) from None
        needed = {
            blob: size
            for blob, size in needed.items()
            if not xet_plan.provides(plan.ref, blob.removeprefix(SHA256_BLOB), size)
        }
        if any(listed.get(blob) != size for blob, size in needed.items()):
            raise BundleError(f"hosted repo {plan.ref.repo_id}: files missing from the manifest")
        namespace = plan.ref.repo_id.split("/")[0]
        if kinds.get(namespace, "hosted") != "hosted":
            raise BundleError(
                f"{namespace!r} is a {kinds[namespace]} project here: hosted repo "
                f"{plan.ref.repo_id} cannot be imported into it"
            )
        plans.append(plan)
        hold.update(needed)
    if any(ref not in {plan.ref for plan in plans} for ref, _, _ in xet_plan.links):
        raise BundleError("the Xet section names a repo the bundle does not carry")
    # Stored xorbs serve nobody until a file is registered, after everything was verified.
    xet = XetStore(storage, database, settings.staging_path)
    try:
        transfer = await store_xet(xet, xet_plan, directory, progress)
    except XetBundleError as error:
        raise BundleError(str(error)) from None
    report = await bundles.import_bundle(directory, hold, progress)
    report.xet_files, report.xorbs_written = transfer.files, transfer.xorbs
    report.xorb_bytes_written = transfer.xorb_bytes
    notes: list[str] = []
    repos = HubRepos(database)
    for plan in plans:
        namespace = plan.ref.repo_id.split("/")[0]
        if namespace not in kinds:
            await database.run(
                functools.partial(
                    create_project, name=namespace, kind="hosted", public=not plan.private
                )
            )
            kinds[namespace] = "hosted"
            visibility = "private" if plan.private else "public"
            notes.append(
                f"created hosted project {namespace!r} ({visibility}, no members yet:"
                f" hubproxy admin member add {namespace} USER --role viewer)"
            )
        report.repos.append(await import_section(repos, plan, _ImportGuard(plan.ref.repo_id)))
    await register_xet(xet, xet_plan)
    return report, notes


class _ImportGuard:
    """An import's ref changes, decided as the operator's (`auth.protections.OPERATOR`):
    a refusal fails the import before the repo changes."""

    name = OPERATOR.name

    def __init__(self, repo_id: str) -> None:
        self.repo_id = repo_id

    def check(self, change: RefChange, rules: list[ProtectionRule], *, alias: bool) -> None:
        decision = decide(OPERATOR, change, rules, alias=alias)
        if not decision.allowed:
            assert decision.error is not None
            raise BundleError(f"{self.repo_id}: {decision.error.message}")
