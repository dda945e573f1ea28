"""`hubproxy admin migrate` and `hubproxy admin migrate-to` (see `hubproxy/db/transfer.py`).

    hubproxy admin --data-dir DIR migrate                      (the data dir's, or database_url's)
    hubproxy admin --data-dir DIR migrate-to postgresql://...  (copy SQLite into PostgreSQL)

`migrate` applies the schema steps the metadata database lacks, as `serve` does at start, and
refuses one written by a newer release. `migrate-to` copies the data dir's SQLite database into
PostgreSQL, and the audit log (`audit.sqlite3`) into its `audit` table, and verifies every table;
run again, it resumes. Chunks are not copied: local
storage stays where it is (point replicas at S3 storage holding the same chunks).
"""

from typing import Annotated

import typer

from hubproxy.cli.admin_support import Json, admin_context, admin_settings, database_name, fail
from hubproxy.cli.output import emit
from hubproxy.db import DatabaseError, database_for
from hubproxy.db.postgres import redacted


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
    as_json: Json = False,
) -> None:
    """Copy the data dir's SQLite metadata database and audit log into PostgreSQL, verified
    table by table; an interrupted copy is resumed by running the command again."""
    from hubproxy.db.transfer import transfer

    if admin_context(context).endpoint is not None:
        raise fail("migrate-to works on the data dir only (drop --endpoint)", 2)
    if not url.startswith(("postgresql://", "postgres://")):
        raise fail("the target must be a postgresql:// URL", 2)
    settings = admin_settings(context)
    try:
        report = transfer(settings.database_path, url, audit_file=settings.audit_path)
    except DatabaseError as error:
        raise fail(str(error)) from None
    total = sum(report.rows.values())
    copied = sum(report.copied.values())
    emit(
        as_json,
        {
            "target": redacted(url),
            "schema_version": report.schema_version,
            "rows": report.rows,
            "copied": report.copied,
            "verified": report.verified,
        },
        [
            f"copied {copied} of {total} rows ({len(report.rows)} tables) to {redacted(url)},"
            f" schema version {report.schema_version}; every table verified",
            "set database_url to it on every replica",
        ],
    )


def register(app: typer.Typer) -> None:
    """Add `migrate` and `migrate-to` to the `hubproxy admin` app."""
    app.command("migrate")(migrate_command)
    app.command("migrate-to")(migrate_to_command)
