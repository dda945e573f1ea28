"""`hubproxy mirror preload | export | import`: carry models to sites without internet.

`preload` fills a hubproxy's cache ahead of need, through its own API: a running server's, or
one started in-process on a data dir.

Every file of the repo at the revision (filtered by --include / --exclude globs) is downloaded
through the server, which caches it with the usual single-flight fill and verification; the
bytes are discarded here. Already cached files come back at disk speed, so a preload is
idempotent and resumes where an interrupted one stopped. The exit code says whether every
selected file is now complete (0) or not (1).

`export` and `import` work on data dirs directly (see `cache/bundles.py` for the format).
"""

import contextlib
import fnmatch
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from hubproxy.cache.bundles import BundleError, BundleReport, IncompleteExport
from hubproxy.cache.management import CacheManager
from hubproxy.cache.storage import Storage
from hubproxy.cli.bundling import export_bundle, import_bundle
from hubproxy.cli.cache import parse_target, run_on_data_dir
from hubproxy.cli.common import (
    command_group,
    describe_http_error,
    failure,
    location,
    settings_here,
)
from hubproxy.cli.output import progress_bar
from hubproxy.constants import PLURAL_BY_REPO_TYPE, REPO_TYPES, URL_PREFIX_BY_REPO_TYPE
from hubproxy.datadir import DataDirInUse, check_data_dir_free
from hubproxy.db import Database, database_for
from hubproxy.naming import RepoRef
from hubproxy.settings import Settings

app = command_group("Preload repos into a hubproxy cache; carry them to offline sites.")
fail = failure("mirror", default_code=2)
console = Console(stderr=True)
PIECE = 1024 * 1024

Include = Annotated[
    list[str] | None,
    typer.Option("--include", help="Only paths matching this glob (repeatable)."),
]
Exclude = Annotated[
    list[str] | None,
    typer.Option("--exclude", help="Skip paths matching this glob (repeatable)."),
]


@dataclass
class FileResult:
    repo: str
    path: str
    size: int
    received: int
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.received == self.size


def _selected(path: str, include: list[str], exclude: list[str]) -> bool:
    if include and not any(fnmatch.fnmatch(path, pattern) for pattern in include):
        return False
    return not any(fnmatch.fnmatch(path, pattern) for pattern in exclude)


def _list_files(
    client: httpx.Client, repo_type: str, repo_id: str, revision: str
) -> tuple[str, list[dict[str, Any]]]:
    plural = PLURAL_BY_REPO_TYPE[repo_type]  # type: ignore[index]
    info = client.get(f"/api/{plural}/{repo_id}/revision/{quote(revision, safe='')}")
    if info.status_code != 200:
        raise fail(
            f"{repo_id}@{revision}: {info.status_code} {info.headers.get('x-error-message', '')}"
        )
    commit = info.json()["sha"]
    url: str | None = f"/api/{plural}/{repo_id}/tree/{commit}?recursive=true&expand=false"
    entries: list[dict[str, Any]] = []
    directories = [""]
    while url:
        page = client.get(url)
        if page.status_code != 200:
            raise fail(f"{repo_id}: listing failed with {page.status_code}")
        entries.extend(entry for entry in page.json() if entry.get("type") == "file")
        directories += [entry["path"] for entry in page.json() if entry.get("type") == "directory"]
        url = page.links.get("next", {}).get("url")
    # Per-directory listings too: HfFileSystem (datasets, vLLM) lists one level at a time, and
    # an offline instance can only answer what was asked while online.
    for directory in directories:
        suffix = f"/{quote(directory, safe='')}" if directory else ""
        listing: str | None = (
            f"/api/{plural}/{repo_id}/tree/{commit}{suffix}?recursive=false&expand=false"
        )
        while listing:
            page = client.get(listing)
            if page.status_code != 200:
                raise fail(
                    f"{repo_id}: listing of {directory or '/'} failed with {page.status_code}"
                )
            listing = page.links.get("next", {}).get("url")
    return commit, entries


def _download(
    client: httpx.Client,
    progress: Progress,
    total: TaskID,
    repo_type: str,
    repo_id: str,
    commit: str,
    entry: dict[str, Any],
) -> FileResult:
    prefix = URL_PREFIX_BY_REPO_TYPE[repo_type]  # type: ignore[index]
    url = f"/{prefix}{repo_id}/resolve/{commit}/{quote(entry['path'])}"
    result = FileResult(repo_id, entry["path"], int(entry["size"]), 0)
    task = progress.add_task(entry["path"], total=result.size)
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                result.error = (
                    f"{response.status_code} {response.headers.get('x-error-message', '')}"
                )
                return result
            for piece in response.iter_bytes(PIECE):
                result.received += len(piece)
                progress.update(task, advance=len(piece))
                progress.update(total, advance=len(piece))
    except httpx.HTTPError as error:
        result.error = f"{type(error).__name__}: {error}"
    finally:
        progress.remove_task(task)
    return result


@contextlib.contextmanager
def embedded_server(settings: Settings) -> Iterator[str]:
    """Run hubproxy on the data dir in this process, on a free loopback port; yield its URL.

    Preloading "directly on the data dir" goes through the same server code as always (same
    chunk store, single-flight fills and verification), just without a separate process.
    """
    import uvicorn

    from hubproxy.app import create_app

    try:
        check_data_dir_free(settings.data_dir)
    except DataDirInUse as error:
        raise fail(f"{error}: preload through it with --endpoint instead") from None
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="embedded-hubproxy", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise fail(f"hubproxy could not start on {settings.data_dir}")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


async def _pin(manager: CacheManager, commits: list[tuple[RepoRef, str]]) -> None:
    for ref, commit in commits:
        await manager.pin(ref, commit)


def _plan(
    client: httpx.Client,
    wanted: list[str],
    repo_type: str,
    include: list[str],
    exclude: list[str],
) -> tuple[list[tuple[str, str, dict[str, Any]]], list[tuple[RepoRef, str]]]:
    """(repo, commit, entry) of every selected file, and each (repo, commit) preloaded."""
    plan: list[tuple[str, str, dict[str, Any]]] = []
    commits: list[tuple[RepoRef, str]] = []
    for target in wanted:
        ref, revision = parse_target(target, repo_type)
        commit, entries = _list_files(client, repo_type, ref.repo_id, revision or "main")
        selected = [entry for entry in entries if _selected(entry["path"], include, exclude)]
        plan += [(ref.repo_id, commit, entry) for entry in selected]
        commits.append((ref, commit))
        console.print(
            f"{ref.repo_id}@{revision or 'main'} = {commit}: "
            f"{len(selected)} of {len(entries)} files"
        )
    return plan, commits


def _download_all(
    client: httpx.Client, plan: list[tuple[str, str, dict[str, Any]]], repo_type: str, workers: int
) -> list[FileResult]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        total = progress.add_task("total", total=sum(int(entry["size"]) for _, _, entry in plan))
        with ThreadPoolExecutor(max(1, workers)) as pool:
            futures = [
                pool.submit(_download, client, progress, total, repo_type, repo_id, commit, entry)
                for repo_id, commit, entry in plan
            ]
            return [future.result() for future in futures]


@app.command()
def preload(
    context: typer.Context,
    targets: Annotated[
        list[str] | None, typer.Argument(help="REPO or REPO@REVISION, several allowed.")
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="The running hubproxy to fill (or HF_ENDPOINT); with --data-dir and no"
            " endpoint, a server run in this process on that data dir.",
            show_default="http://127.0.0.1:8000",
            envvar="HF_ENDPOINT",
        ),
    ] = None,
    repo_type: Annotated[
        str, typer.Option("--repo-type", help="model, dataset or space.")
    ] = "model",
    include: Include = None,
    exclude: Exclude = None,
    list_file: Annotated[
        Path | None, typer.Option("--list", help="File with one REPO or REPO@REVISION per line.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Files downloaded at once.")] = 4,
    token: Annotated[
        str | None, typer.Option(help="Token for hubproxy (or HF_TOKEN).", envvar="HF_TOKEN")
    ] = None,
    pin: Annotated[
        bool, typer.Option("--pin", help="Pin each preloaded commit: never evicted.")
    ] = False,
) -> None:
    """Download REPO[@REV]s through hubproxy so that its cache holds every selected file.

    With --endpoint (or HF_ENDPOINT), through that running server. With --data-dir and no
    endpoint, directly on the data dir (a server is started in this process for the run).
    --pin records pins in the data dir, so it needs the data dir (the server's, when both are
    given).
    """
    if repo_type not in REPO_TYPES:
        raise fail(f"unknown repo type {repo_type!r}")
    wanted = list(targets or [])
    if list_file is not None:
        lines = list_file.read_text().splitlines()
        wanted += [
            line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
        ]
    if not wanted:
        raise fail("name at least one repo (or --list FILE)")
    data_dir = location(context).data_dir
    # The data dir is used when named (a server is run on it here), and for pins.
    settings = settings_here(context) if data_dir is not None or pin else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with contextlib.ExitStack() as stack:
        if endpoint is None:
            endpoint = (
                stack.enter_context(embedded_server(settings))
                if data_dir is not None and settings is not None
                else "http://127.0.0.1:8000"
            )
        client = stack.enter_context(
            httpx.Client(
                base_url=endpoint.rstrip("/"), headers=headers, timeout=httpx.Timeout(60, read=300)
            )
        )
        try:
            plan, commits = _plan(client, wanted, repo_type, include or [], exclude or [])
        except httpx.HTTPError as error:
            raise fail(
                f"cannot reach hubproxy at {endpoint}: {describe_http_error(error)} (start"
                " `hubproxy serve`, or name a server with --endpoint or HF_ENDPOINT, or a data"
                " dir with --data-dir)",
                1,
            ) from None
        if pin and settings is not None:
            # Pinned before the download: eviction cannot take files of a preload under way.
            pins = commits
            run_on_data_dir(
                context,
                lambda _settings, database, storage: _pin(CacheManager(database, storage), pins),
            )
            console.print(f"pinned {len(commits)} commit(s)")
        results = _download_all(client, plan, repo_type, workers)
    complete = [result for result in results if result.complete]
    for result in results:
        if not result.complete:
            reason = result.error or f"{result.received} of {result.size} bytes"
            console.print(f"[red]incomplete[/red] {result.repo}/{result.path}: {reason}")
    size = sum(result.size for result in complete)
    typer.echo(f"{len(complete)} of {len(results)} files complete ({size} bytes)")
    if len(complete) != len(results):
        raise typer.Exit(1)


@app.command("export")
def export_command(
    context: typer.Context,
    targets: Annotated[list[str], typer.Argument(help="REPO or REPO@REVISION, several allowed.")],
    to: Annotated[Path, typer.Option("--to", help="Bundle directory to write.")],
    repo_type: Annotated[
        str, typer.Option("--repo-type", help="model, dataset or space.")
    ] = "model",
    include: Include = None,
    exclude: Exclude = None,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Export even if selected files are not cached; the manifest lists them.",
        ),
    ] = False,
    since: Annotated[
        Path | None, typer.Option(help="Earlier manifest.json: write only what is new.")
    ] = None,
) -> None:
    """Write repos into a bundle directory for an offline site: cached repos at a revision
    (files, listings, refs), hosted repos whole (every branch, tag and commit).

    Every selected file of a cached repo must be completely cached: otherwise nothing is
    written, the missing files are listed and the exit code is 1 (unless --allow-partial).
    """
    parsed = [parse_target(target, repo_type) for target in targets]
    wanted = [(ref, rev or "main") for ref, rev in parsed]

    def selected(path: str) -> bool:
        return _selected(path, include or [], exclude or [])

    async def action(settings: Settings, database: Database, storage: Storage) -> BundleReport:
        with progress_bar() as progress:
            return await export_bundle(
                settings, database, storage, wanted, to, since,
                selected=selected, allow_partial=allow_partial, progress=progress,
            )  # fmt: skip

    try:
        report = run_on_data_dir(context, action)
    except IncompleteExport as error:
        raise fail(str(error), 1) from None
    except BundleError as error:
        raise fail(str(error)) from None
    files = f"{report.blobs_written} files ({report.bytes_written} bytes)"
    typer.echo(
        f"exported {', '.join(report.repos)}: {files}, {report.blobs_skipped} already in the"
        f" earlier bundle, {report.documents} documents{_xet_summary(report)}"
    )
    for repo, paths in report.partial.items():
        typer.echo(f"partial: {repo} lacks {len(paths)} selected files (listed in the manifest)")


def _xet_summary(report: BundleReport) -> str:
    if not report.xet_files:
        return ""
    return (
        f", {report.xet_files} Xet files in {report.xorbs_written} new xorbs"
        f" ({report.xorb_bytes_written} bytes)"
    )


@app.command("import")
def import_command(
    context: typer.Context,
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `mirror export`.")],
) -> None:
    """Verify a bundle completely, then import it; a faulty bundle imports nothing."""

    async def action(
        settings: Settings, database: Database, storage: Storage
    ) -> tuple[BundleReport, list[str]]:
        with progress_bar() as progress:
            return await import_bundle(settings, database, storage, bundle, progress)

    settings = settings_here(context)
    # Importing is how an offline site starts: a fresh data dir gets its database here.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database_for(settings).open_and_close_sync()
    try:
        report, notes = run_on_data_dir(context, action)
    except BundleError as error:
        raise fail(f"bundle refused: {error}") from None
    for note in notes:
        typer.echo(note)
    for repo, paths in report.partial.items():
        shown = ", ".join(paths[:5]) + (", ..." if len(paths) > 5 else "")
        typer.echo(f"partial bundle: {repo} lacks {len(paths)} files, not served here: {shown}")
    files = f"{report.blobs_written} files ({report.bytes_written} bytes)"
    typer.echo(
        f"imported {', '.join(report.repos)}: {files}, {report.blobs_skipped} already cached,"
        f" {report.documents} documents{_xet_summary(report)}"
    )
