"""`hubproxy admin backup` and `hubproxy admin restore` (see `hubproxy/datastore.py`).

    hubproxy admin --data-dir DIR backup --to BACKUP      (while the server runs)
    hubproxy admin restore BACKUP --data-dir NEW          (into a new, empty data dir)

Both are audited with the operating-system user as the actor: the backup in the audit log of
the data dir it copied (after the copy, so a backup never contains its own record), the
restore in the restored audit log.
"""

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hubproxy.auth.audit import AuditRecord, insert_records
from hubproxy.auth.audit_log import run_on_audit_log
from hubproxy.cli.admin_support import (
    Json,
    admin_context,
    admin_settings,
    data_dir_settings,
    fail,
    operator,
)
from hubproxy.cli.output import emit
from hubproxy.datastore import BackupError, BackupReport, backup, check_versions, restore
from hubproxy.db import DatabaseError
from hubproxy.settings import Settings

_EXISTS = 4  # the admin CLI's exit code for "already exists"


def _audit(settings: Settings, record: AuditRecord) -> None:
    record.actor_kind, record.actor_name = "cli", operator()
    record.route = "admin-cli"
    try:
        run_on_audit_log(settings, lambda connection: insert_records(connection, [record]))
    except DatabaseError as error:
        raise fail(str(error)) from None


def _summary(report: BackupReport) -> dict[str, Any]:
    manifest = report.manifest
    return {
        "directory": str(report.directory),
        "hubproxy_version": manifest["hubproxy_version"],
        "metadata_schema_version": manifest["metadata_schema_version"],
        "audit_schema_version": manifest.get("audit_schema_version", 0),
        "storage": manifest["storage"],
        "counts": manifest["counts"],
        "notes": report.notes,
    }


def _lines(verb: str, report: BackupReport) -> list[str]:
    counts = report.manifest["counts"]
    return [
        f"{verb} {report.directory}",
        f"  hosted repos {counts['hub_repos']}, refs {counts['hub_refs']}, "
        f"commits {counts['hub_commits']}",
        f"  users {counts['users']}, tokens {counts['tokens']}, projects {counts['projects']}, "
        f"robots {counts['robots']}",
        f"  held blobs {counts['held_blobs']}: {counts['chunks']} chunks, "
        f"{counts['chunk_bytes']} bytes",
        # Backups written before the Xet CAS have no such counts.
        f"  Xet files {counts.get('xet_files', 0)}: {counts.get('xorbs', 0)} xorbs, "
        f"{counts.get('xorb_bytes', 0)} bytes",
        f"  audit records {counts.get('audit_records', 0)}",
        *(f"note: {note}" for note in report.notes),
    ]


def _refuse_shared_database(settings: Settings) -> None:
    """Backups hold the data dir's SQLite files; a shared PostgreSQL database has its own tools."""
    if settings.database_url is not None:
        raise fail(
            "backup and restore work on a data dir's SQLite database; the PostgreSQL database"
            " of database_url is backed up with pg_dump (and S3 storage by its bucket)",
            2,
        )


def backup_command(
    context: typer.Context,
    to: Annotated[Path, typer.Option("--to", help="Directory to write the backup to.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the backup in a non-empty --to directory.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Back up the data dir while the server runs: the metadata database and audit log
    (SQLite online backup), the hosted repos' blobs and the Xet xorbs. Cached (proxied) files
    are left out: they are fetched from upstream again. With S3 storage the blobs and xorbs
    stay in the bucket."""
    if admin_context(context).endpoint is not None:
        raise fail("backup works on the data dir only (drop --endpoint)", 2)
    settings = data_dir_settings(context)
    _refuse_shared_database(settings)
    try:
        report = backup(settings, to, force=force)
    except BackupError as error:
        code = _EXISTS if "not empty" in str(error) else 1
        raise fail(str(error), code) from None
    counts = report.manifest["counts"]
    _audit(
        settings,
        AuditRecord(
            "backup",
            path=str(to),
            reason=f"{counts['hub_repos']} hosted repos, {counts['chunks']} chunks, "
            f"{counts['xorbs']} xorbs, {counts.get('audit_records', 0)} audit records",
        ),
    )
    emit(as_json, _summary(report), _lines("backed up to", report))


def restore_command(
    context: typer.Context,
    directory: Annotated[Path, typer.Argument(help="A directory written by `admin backup`.")],
    as_json: Json = False,
) -> None:
    """Restore a backup into a new, empty data dir (--data-dir, empty or absent), after
    verifying every file of it."""
    settings = admin_settings(context)
    _refuse_shared_database(settings)
    try:
        report = restore(directory, settings)
    except BackupError as error:
        code = _EXISTS if "not empty" in str(error) else 1
        raise fail(str(error), code) from None
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.manifest["created"]))
    _audit(
        settings,
        AuditRecord(
            "restore",
            path=str(directory),
            reason=f"backup of {created} taken by hubproxy {report.manifest['hubproxy_version']}",
        ),
    )
    emit(as_json, _summary(report), _lines(f"restored into {settings.data_dir} from", report))


def refuse_newer_data_dir(settings: Settings) -> None:
    """Exit with the reason, before anything starts, if a newer hubproxy wrote the data dir
    (`hubproxy serve` calls it: a failing start-up would bury it in a traceback)."""
    try:
        check_versions(settings)
    except DatabaseError as error:
        typer.echo(f"hubproxy: {error}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    """Add `backup` and `restore` to the `hubproxy admin` app."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
