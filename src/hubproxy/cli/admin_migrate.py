"""`hubproxy admin migrate` and `hubproxy admin migrate-to` (see `hubproxy/db/transfer.py`).

    hubproxy admin --data-dir DIR migrate                      (the data dir's, or database_url's)
    hubproxy admin --data-dir DIR migrate-to postgresql://...  (copy SQLite into PostgreSQL)
    hubproxy admin --data-dir DIR migrate-to postgresql://... --storage s3 --s3-bucket B ...
                                                              (and the local chunks into S3)

`migrate` applies the schema steps the metadata database lacks, as `serve` does at start, and
refuses one written by a newer release. `migrate-to` copies the data dir's SQLite database into
PostgreSQL, and the audit log (`audit.sqlite3`) into its `audit` table, and verifies every
table; with `--storage s3` (and serve's S3 options; credentials from the environment or the
config file, as for serve) it then copies the data dir's local chunks into the bucket, verified
(`cache/storage_transfer.py`). Run again, all of it resumes.
"""

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hubproxy.cli.admin_support import Json, admin_context, admin_settings, database_name, fail
from hubproxy.cli.common import settings_here
from hubproxy.cli.output import emit, progress_bar
from hubproxy.db import DatabaseError, database_for
from hubproxy.db.postgres import redacted
from hubproxy.settings import SETTING_FIELDS, Settings

if TYPE_CHECKING:
    from hubproxy.cache.storage_transfer import StorageTransferReport

_HELP = {declared.name: declared.info.help for declared in SETTING_FIELDS}


def migrate_command(context: typer.Context, as_json: Json = False) -> None:
    """Bring the metadata database (the data dir's, or database_url's) to this release's
    schema; a database from a newer release is refused and left unchanged."""
    if admin_context(context).endpoint is not None:
        raise fail("migrate works on the database only (drop --endpoint)", 2)
    settings = admin_settings(context)
    if settings.database_url is None and not settings.database_path.is_file():
        raise fail(f"no hubproxy data in {settings.data_dir}", 2)
    database = database_for(settings)
    try:
        database.open_and_close_sync()
    except DatabaseError as error:
        raise fail(str(error)) from None
    from hubproxy.db.schema import STEPS

    name = database_name(settings)
    emit(
        as_json,
        {"database": name, "schema_version": len(STEPS)},
        [f"database {name} is at schema version {len(STEPS)}"],
    )


def migrate_to_command(
    context: typer.Context,
    url: Annotated[str, typer.Argument(help="The PostgreSQL database: postgresql://...")],
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            metavar="s3",
            help="Also copy the data dir's local chunks into this storage (s3, as for serve).",
        ),
    ] = None,
    s3_bucket: Annotated[
        str | None, typer.Option("--s3-bucket", metavar="TEXT", help=_HELP["s3_bucket"])
    ] = None,
    s3_prefix: Annotated[
        str | None, typer.Option("--s3-prefix", metavar="TEXT", help=_HELP["s3_prefix"])
    ] = None,
    s3_endpoint_url: Annotated[
        str | None,
        typer.Option("--s3-endpoint-url", metavar="URL", help=_HELP["s3_endpoint_url"]),
    ] = None,
    s3_region: Annotated[
        str | None, typer.Option("--s3-region", metavar="TEXT", help=_HELP["s3_region"])
    ] = None,
    s3_path_style: Annotated[
        bool | None,
        typer.Option("--s3-path-style/--s3-virtual-hosted", help=_HELP["s3_path_style"]),
    ] = None,
    as_json: Json = False,
) -> None:
    """Copy the data dir's SQLite metadata database and audit log into PostgreSQL, verified
    table by table, and with --storage s3 its local chunks into the bucket, verified object by
    object (sizes, S3 ETags, and every verified file's chunks against its hash); an interrupted
    copy is resumed by running the command again."""
    from hubproxy.db.transfer import transfer

    if admin_context(context).endpoint is not None:
        raise fail("migrate-to works on the data dir only (drop --endpoint)", 2)
    if not url.startswith(("postgresql://", "postgres://")):
        raise fail("the target must be a postgresql:// URL", 2)
    if storage not in (None, "s3"):
        raise fail(f"--storage {storage}: chunks can be copied into s3 only", 2)
    given = {
        "s3_bucket": s3_bucket,
        "s3_prefix": s3_prefix,
        "s3_endpoint_url": s3_endpoint_url,
        "s3_region": s3_region,
        "s3_path_style": s3_path_style,
    }
    if storage is None and any(value is not None for value in given.values()):
        raise fail("the --s3-* options need --storage s3", 2)
    settings = admin_settings(context)
    # The target's settings as serve loads them (options, HUBPROXY_* environment, config file):
    # the S3 credentials come from there. Validated before the database copy starts.
    target = (
        None
        if storage is None
        else settings_here(
            context, storage="s3", **{k: v for k, v in given.items() if v is not None}
        )
    )
    try:
        report = transfer(settings.database_path, url, audit_file=settings.audit_path)
    except DatabaseError as error:
        raise fail(str(error)) from None
    total = sum(report.rows.values())
    copied = sum(report.copied.values())
    record: dict[str, Any] = {
        "target": redacted(url),
        "schema_version": report.schema_version,
        "rows": report.rows,
        "copied": report.copied,
        "verified": report.verified,
    }
    lines = [
        f"copied {copied} of {total} rows ({len(report.rows)} tables) to {redacted(url)},"
        f" schema version {report.schema_version}; every table verified"
    ]
    if target is not None:
        chunks = _copy_chunks(settings, target)
        record["storage"] = dataclasses.asdict(chunks)
        bucket = f"s3://{target.s3_bucket}/{target.s3_prefix}".rstrip("/")
        lines.append(
            f"copied {chunks.copied} of {chunks.objects} objects ({chunks.bytes_copied} bytes)"
            f" to {bucket}, {chunks.skipped} already there; every object verified,"
            f" {chunks.blobs_hashed} files hashed to their names"
        )
        if chunks.missing_chunks:
            lines.append(
                f"{chunks.missing_chunks} chunks the database records are not in the data dir:"
                " they are fetched from upstream again when read"
            )
    lines.append(
        "set database_url to it on every replica"
        + ("" if target is None else ", and the same storage settings")
    )
    emit(as_json, record, lines)


def _copy_chunks(settings: Settings, target_settings: Settings) -> "StorageTransferReport":
    """The data dir's local chunk storage copied into the storage of `target_settings`."""
    from hubproxy.cache.storage import LocalBackend, Storage, StorageError, open_storage
    from hubproxy.cache.storage_transfer import StorageTransferError, transfer_storage

    async def run() -> "StorageTransferReport":
        source = Storage(LocalBackend(settings.storage_path))
        target = open_storage(target_settings)
        try:
            with progress_bar() as progress:
                return await transfer_storage(settings.database_path, source, target, progress)
        finally:
            await source.aclose()
            await target.aclose()

    try:
        return asyncio.run(run())
    except (StorageError, StorageTransferError) as error:
        raise fail(f"copying chunks: {error}; run migrate-to again to resume") from None


def register(app: typer.Typer) -> None:
    """Add `migrate` and `migrate-to` to the `hubproxy admin` app."""
    app.command("migrate")(migrate_command)
    app.command("migrate-to")(migrate_to_command)
