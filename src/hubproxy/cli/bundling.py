"""Bundles that carry both kinds of repo: cached (proxied) ones and hosted ones.

The cache writes and verifies the blobs and its own records (`cache/bundles.py`); the private
hub writes and verifies its repos' history (`hub/bundles.py`). This module decides which repo
is which (by the projects of the data dir) and runs both halves so that, on import, everything
is verified before anything becomes visible.
"""

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hubproxy.auth.accounts import create_project, list_projects
from hubproxy.cache.bundles import BundleError, BundleReport, Bundles
from hubproxy.cache.metadata import CacheMetadata
from hubproxy.cache.storage import Storage
from hubproxy.db import Database
from hubproxy.errors import HubError
from hubproxy.hub.bundles import HostedBundleError, export_section, import_section, verify_section
from hubproxy.hub.repos import HubRepos
from hubproxy.naming import RepoRef
from hubproxy.progress import Progress
from hubproxy.settings import Settings


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
    cached: list[tuple[RepoRef, str]] = []
    sections: list[dict[str, Any]] = []
    blobs: dict[str, int] = {}
    for ref, revision in wanted:
        if kinds.get(ref.repo_id.split("/")[0]) != "hosted":
            cached.append((ref, revision))
            continue
        try:
            section, needed = await export_section(repos, ref)
        except HubError as error:
            raise BundleError(f"hosted repo {ref.repo_id}: {error.message}") from None
        sections.append(section)
        blobs.update(needed)
    bundles = Bundles(metadata, storage, settings.chunk_size)
    report = await bundles.export(
        cached,
        directory,
        since,
        extra={"hosted": sections},
        extra_blobs=blobs,
        selected=selected,
        allow_partial=allow_partial,
        progress=progress,
    )
    report.repos += [f"{section['repo_id']} (hosted, whole history)" for section in sections]
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
    kinds = await _projects(database)
    plans = []
    hold: set[str] = set()
    for section in manifest.get("hosted", []):
        try:
            plan, needed = verify_section(section)
        except HostedBundleError as error:
            raise BundleError(str(error)) from None
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
    report = await bundles.import_bundle(directory, hold, progress)
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
        report.repos.append(await import_section(repos, plan))
    return report, notes
