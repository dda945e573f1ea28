"""`hubproxy serve`: run the server with settings from options, environment and config file."""

from pathlib import Path
from typing import Annotated, Any

import typer

from hubproxy.cli.admin import app as admin_app
from hubproxy.cli.admin_backup import refuse_newer_data_dir
from hubproxy.cli.cache import app as cache_app
from hubproxy.cli.mirror import app as mirror_app
from hubproxy.datadir import DataDirInUse, check_data_dir_free
from hubproxy.settings import SettingsError, load_settings

app = typer.Typer(
    name="hubproxy",
    help="A self-hosted Hugging Face Hub: caching proxy, private hub, governance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """hubproxy: point HF_ENDPOINT at it and every Hugging Face client goes through it."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8000].")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Database, staging and local chunks [./hubproxy-data].")
    ] = None,
    upstream: Annotated[
        str | None, typer.Option(help="Upstream hub URL [https://huggingface.co].")
    ] = None,
    offline: Annotated[
        bool | None, typer.Option("--offline/--online", help="Never contact upstream.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML config file (or HUBPROXY_CONFIG).")
    ] = None,
    storage: Annotated[str | None, typer.Option(help="Chunk storage: local, s3 or memory.")] = None,
    storage_dir: Annotated[
        Path | None, typer.Option(help="Directory of local storage [<data-dir>/storage].")
    ] = None,
    s3_bucket: Annotated[str | None, typer.Option(help="Bucket of s3 storage.")] = None,
    s3_prefix: Annotated[str | None, typer.Option(help="Key prefix in the bucket.")] = None,
    s3_endpoint_url: Annotated[
        str | None, typer.Option(help="S3 API endpoint (S3-compatible stores).")
    ] = None,
    s3_region: Annotated[str | None, typer.Option(help="Region of the bucket.")] = None,
    s3_path_style: Annotated[
        bool | None, typer.Option("--s3-path-style/--s3-virtual-hosted", help="Addressing style.")
    ] = None,
    s3_redirect: Annotated[
        bool | None,
        typer.Option(
            "--s3-redirect/--no-s3-redirect", help="302 cached files to presigned S3 URLs."
        ),
    ] = None,
    chunk_size: Annotated[str | None, typer.Option(help="Chunk size, e.g. 16MiB.")] = None,
    revision_ttl: Annotated[
        str | None, typer.Option(help="Seconds a branch/tag mapping is trusted [60].")
    ] = None,
    cache_max_bytes: Annotated[
        str | None, typer.Option(help="LRU-evict beyond this size, e.g. 500GiB.")
    ] = None,
    read_ahead_chunks: Annotated[
        int | None, typer.Option(help="Chunks fetched ahead of a ranged read [1].")
    ] = None,
    upload_lfs_threshold: Annotated[
        str | None,
        typer.Option(help="Hosted repos: upload files this large through Git LFS [10MiB]."),
    ] = None,
    parallel_chunk_fetches: Annotated[
        int | None, typer.Option(help="Chunks of one file fetched at once [4].")
    ] = None,
    upstream_concurrency: Annotated[
        int | None, typer.Option(help="Upstream requests in flight [32].")
    ] = None,
    upstream_timeout: Annotated[
        str | None, typer.Option(help="Upstream connect/read timeout in seconds [30].")
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="URL clients reach hubproxy at, if behind a proxy.")
    ] = None,
    require_auth: Annotated[
        bool | None,
        typer.Option("--require-auth/--allow-anonymous", help="Refuse anonymous requests."),
    ] = None,
    audit_stdout: Annotated[
        bool | None,
        typer.Option("--audit-stdout/--no-audit-stdout", help="Audit records as JSON on stdout."),
    ] = None,
    audit_queue_size: Annotated[
        int | None, typer.Option(help="Audit records buffered before requests wait [10000].")
    ] = None,
    audit_retention: Annotated[
        str | None, typer.Option(help="Delete audit records older than this, e.g. 90d.")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json.")] = None,
) -> None:
    """Run the hubproxy server.

    Secrets come from the environment or the config file, never the command line:
    HUBPROXY_UPSTREAM_TOKEN, HUBPROXY_S3_ACCESS_KEY_ID, HUBPROXY_S3_SECRET_ACCESS_KEY.
    """
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "upstream": upstream,
        "offline": offline,
        "storage": storage,
        "storage_dir": storage_dir,
        "s3_bucket": s3_bucket,
        "s3_prefix": s3_prefix,
        "s3_endpoint_url": s3_endpoint_url,
        "s3_region": s3_region,
        "s3_path_style": s3_path_style,
        "s3_redirect": s3_redirect,
        "chunk_size": chunk_size,
        "revision_ttl": revision_ttl,
        "cache_max_bytes": cache_max_bytes,
        "read_ahead_chunks": read_ahead_chunks,
        "upload_lfs_threshold": upload_lfs_threshold,
        "parallel_chunk_fetches": parallel_chunk_fetches,
        "upstream_concurrency": upstream_concurrency,
        "upstream_timeout": upstream_timeout,
        "public_url": public_url,
        "require_auth": require_auth,
        "audit_stdout": audit_stdout,
        "audit_queue_size": audit_queue_size,
        "audit_retention": audit_retention,
        "log_level": log_level,
        "log_format": log_format,
    }
    try:
        settings = load_settings(options, config_file=config)
    except SettingsError as error:
        typer.echo(f"hubproxy: configuration error: {error}", err=True)
        raise typer.Exit(2) from None

    try:
        check_data_dir_free(settings.data_dir)
    except DataDirInUse as error:
        typer.echo(f"hubproxy: {error}", err=True)
        raise typer.Exit(1) from None
    refuse_newer_data_dir(settings)

    import uvicorn

    from hubproxy.app import create_app
    from hubproxy.cli.serving import CannotListen, listen, run_on_socket
    from hubproxy.logs import configure_logging
    from hubproxy.memory import tune_allocator

    # Bound before the app starts, so a busy port fails here, in one line, not after "ready".
    try:
        sock = listen(settings.host, settings.port)
    except CannotListen as error:
        typer.echo(f"hubproxy: {error}", err=True)
        raise typer.Exit(1) from None

    tune_allocator()

    configure_logging(settings.log_level, settings.log_format)
    server_config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # hubproxy writes its own access records (hubproxy.access)
        log_config=None,
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    status = run_on_socket(server_config, sock, settings)
    if status:
        raise typer.Exit(status)


app.add_typer(admin_app, name="admin")
app.add_typer(cache_app, name="cache")
app.add_typer(mirror_app, name="mirror")


def main() -> None:
    app()
