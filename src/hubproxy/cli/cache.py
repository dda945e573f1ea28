"""`hubproxy cache ls|pin|unpin|evict|gc|verify`: manage a cache on its data dir.

Runs without a server (or beside one). Storage settings come from the same environment and
config file as `hubproxy serve`. Tables for people, `--json` for scripts.
"""

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from hubproxy.cache.management import CacheManager, GcReport, ReleaseReport
from hubproxy.cache.storage import Storage, open_storage
from hubproxy.cas.collection import XetGcReport, collect
from hubproxy.cli.common import command_group, existing_settings, failure
from hubproxy.cli.output import emit as _emit
from hubproxy.cli.output import progress_bar, table, when
from hubproxy.constants import REPO_TYPES, RepoType
from hubproxy.datadir import DataDirInUse, DataDirLock
from hubproxy.db import Database, database_for
from hubproxy.errors import BadRequest
from hubproxy.hub.repos import needed_blobs
from hubproxy.naming import RepoRef, repo_ref, revision
from hubproxy.settings import Settings, SettingsError, parse_seconds

app = command_group("Inspect and manage the cache in a data dir.")
Result = TypeVar("Result")
# Files stored this recently may belong to a commit still being written: `gc` leaves them.
HELD_GRACE = "1h"
# hf_xet answers its own dedup questions from the shards of its uploads for three weeks, so
# it may name a xorb that long after sending it (`cas/collection.py`).
XET_GRACE = "21d"

Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RepoType_ = Annotated[str, typer.Option("--repo-type", help="model, dataset or space.")]
Target = Annotated[str, typer.Argument(help="REPO or REPO@REVISION, e.g. acme/llama@main.")]


fail = failure("cache", default_code=2)


def run_on_data_dir(
    context: typer.Context, action: Callable[[Settings, Database, Storage], Awaitable[Result]]
) -> Result:
    """Open the data dir's database and storage (settings as for `serve`), run `action`."""
    settings = existing_settings(context)

    async def main() -> Result:
        database = database_for(settings)
        await database.open()
        storage = open_storage(settings)
        try:
            return await action(settings, database, storage)
        finally:
            await storage.aclose()
            await database.aclose()

    return asyncio.run(main())


def _run(context: typer.Context, action: Callable[[CacheManager], Awaitable[Result]]) -> Result:
    return run_on_data_dir(
        context, lambda settings, database, storage: action(CacheManager(database, storage))
    )


def parse_target(text: str, repo_type: str) -> tuple[RepoRef, str | None]:
    """`REPO[@REVISION]` of `repo_type`; invalid input exits 2."""
    if repo_type not in REPO_TYPES:
        raise fail(f"unknown repo type {repo_type!r} (model, dataset, space)", 2)
    name, _, rev = text.partition("@")
    try:
        typed: RepoType = repo_type
        return repo_ref(typed, name), revision(rev) if rev else None
    except BadRequest as error:
        raise fail(error.message, 2) from None


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


@app.command("ls")
def list_command(context: typer.Context, as_json: Json = False) -> None:
    """Cached repos: revisions, files, cached bytes, last access, pins."""
    usages = _run(context, lambda manager: manager.list_repos())
    rows = [("REPO", "TYPE", "REVISIONS", "FILES", "CACHED", "LAST ACCESS", "PINNED")]
    for usage in usages:
        last = when(usage.last_access)
        pins = ",".join(pin or "*" for pin in usage.pins) or "-"
        revisions = ",".join(sorted(usage.revisions)) or "-"
        rows.append(
            (
                usage.repo_id,
                usage.repo_type,
                revisions,
                str(usage.files),
                _size(usage.cached_bytes),
                last,
                pins,
            )
        )
    _emit(as_json, [dataclasses.asdict(usage) for usage in usages], table(rows))


@app.command()
def pin(context: typer.Context, target: Target, repo_type: RepoType_ = "model") -> None:
    """Never evict this repo (at this revision, or every revision)."""
    ref, rev = parse_target(target, repo_type)
    if not _run(context, lambda manager: manager.pin(ref, rev, known_only=True)):
        raise fail(f"{target} is not in this cache (preload it first: hubproxy mirror preload)", 3)
    typer.echo(f"pinned {ref.repo_id}{'@' + rev if rev else ''}")


@app.command()
def unpin(context: typer.Context, target: Target, repo_type: RepoType_ = "model") -> None:
    """Remove a pin set with `pin`."""
    ref, rev = parse_target(target, repo_type)
    if not _run(context, lambda manager: manager.unpin(ref, rev)):
        raise fail(f"{target} was not pinned")
    typer.echo(f"unpinned {ref.repo_id}{'@' + rev if rev else ''}")


@app.command()
def evict(
    context: typer.Context,
    target: Target,
    repo_type: RepoType_ = "model",
    as_json: Json = False,
) -> None:
    """Drop the cached bytes of a repo (at a revision); pinned files are kept."""
    ref, rev = parse_target(target, repo_type)
    blobs, removed = _run(context, lambda manager: manager.evict(ref, rev))
    _emit(as_json, {"files": blobs, "bytes": removed}, [f"evicted {blobs} files, {_size(removed)}"])


@app.command()
def gc(
    context: typer.Context,
    as_json: Json = False,
    hosted_grace: Annotated[
        str,
        typer.Option(
            help="How long a stored file may wait for the commit that uses it (60s, 1h).",
            show_default=True,
        ),
    ] = HELD_GRACE,
    xet_grace: Annotated[
        str,
        typer.Option(
            help="How long after it was sent a Xet xorb no file uses is kept (hf_xet may name"
            " it in a later upload for three weeks).",
            show_default=True,
        ),
    ] = XET_GRACE,
) -> None:
    """Delete orphan chunks, crash leftovers and records of chunks storage lost; stop holding
    files no hosted repo needs any more (deleting those no cached file uses either); delete
    the Xet xorbs no needed file uses."""

    try:
        grace = parse_seconds(hosted_grace)
    except SettingsError as error:
        raise fail(f"--hosted-grace: {error}") from None
    try:
        xorb_grace = parse_seconds(xet_grace)
    except SettingsError as error:
        raise fail(f"--xet-grace: {error}") from None

    async def action(
        settings: Settings, database: Database, storage: Storage
    ) -> tuple[ReleaseReport, GcReport, XetGcReport]:
        manager = CacheManager(database, storage)
        needed = await database.run(needed_blobs)
        released = await manager.release_held(needed, grace=grace)
        with progress_bar() as progress:
            report = await manager.gc(progress)
        needed_sha256 = {blob.removeprefix("sha256:") for blob in needed}
        lock = DataDirLock(settings.data_dir)
        try:
            lock.acquire()
        except DataDirInUse:
            # A running server may be between storing a xorb and recording it.
            return (
                released,
                report,
                await collect(database, storage, needed_sha256, xorb_grace, sweep_unrecorded=False),
            )
        try:
            return (
                released,
                report,
                await collect(database, storage, needed_sha256, xorb_grace, sweep_unrecorded=True),
            )
        finally:
            lock.release()

    released, report, xet = run_on_data_dir(context, action)
    _emit(
        as_json,
        {
            **dataclasses.asdict(report),
            "hosted": dataclasses.asdict(released),
            "xet": dataclasses.asdict(xet),
        },
        [
            f"orphan chunks removed: {report.orphan_chunks} ({_size(report.orphan_bytes)})",
            f"incomplete objects removed: {report.incomplete_objects}",
            f"records of missing chunks removed: {report.dangling_records}",
            f"files of deleted hosted repos released: {released.released}, deleted:"
            f" {released.deleted} ({_size(released.deleted_bytes)})",
            f"Xet files no hosted repo needs: {xet.files}; unused xorbs deleted: {xet.xorbs}"
            f" ({_size(xet.xorb_bytes)}), unrecorded xorb objects: {xet.orphan_objects}",
        ],
    )


@app.command()
def verify(context: typer.Context, as_json: Json = False) -> None:
    """Re-hash every complete cached file; corrupt ones are dropped (exit 1 if any)."""
    with progress_bar() as progress:
        report = _run(context, lambda manager: manager.verify(progress))
    lines = [f"checked {report.checked} files ({report.incomplete} partially cached, skipped)"]
    lines += [f"CORRUPT (dropped): {blob}" for blob in report.corrupt]
    _emit(as_json, dataclasses.asdict(report), lines)
    if report.corrupt:
        raise typer.Exit(1)
