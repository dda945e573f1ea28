"""The `hubproxy` command: `serve`, with one option per setting, and the `admin`, `cache` and
`mirror` groups; `build_command()` assembles the whole tree."""

import inspect
import socket
from typing import Annotated, Any

import typer

from hubproxy import version
from hubproxy.cli.admin import app as admin_app
from hubproxy.cli.admin_backup import refuse_newer_data_dir
from hubproxy.cli.cache import app as cache_app
from hubproxy.cli.common import add_shared_options, failure, settings_here
from hubproxy.cli.connections import limited_protocol
from hubproxy.cli.examples import attach_examples
from hubproxy.cli.mirror import app as mirror_app
from hubproxy.cli.registry import app as registry_app
from hubproxy.datadir import DataDirInUse, ServerProcess, check_data_dir_free
from hubproxy.settings import SETTING_FIELDS, SettingField, Settings, shown_default

app = typer.Typer(
    name="hubproxy",
    help="A self-hosted Hugging Face Hub: caching proxy, private hub, governance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
fail = failure(None)

_METAVARS = {
    "size": "SIZE", "duration": "DURATION", "int": "INTEGER", "path": "PATH", "text": "TEXT",
}  # fmt: skip
# Given to every command by the command tree (`cli/common.py`), so not a `serve` option here.
_SHARED = ("data_dir",)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"hubproxy {version()}")
        raise typer.Exit()


@app.callback()
def root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            expose_value=False,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """hubproxy: point HF_ENDPOINT at it and every Hugging Face client goes through it."""


def _serve_parameter(declared: SettingField) -> inspect.Parameter:
    """The `serve` option of a setting, from its one declaration (`settings.setting`)."""
    help_text = f"{declared.info.help} (env {declared.environment_variable})"
    option: Any
    if declared.kind == "bool":
        flags = declared.info.flags or f"{declared.option}/--no-{declared.option[2:]}"
        option = Annotated[
            bool | None,
            typer.Option(flags, help=help_text, show_default="on" if declared.default else "off"),
        ]
        default = None
    else:
        # A real default shows as `[default: 16MiB]`; one that is computed or absent as its
        # description, `[default: (unlimited)]`. Defaults are never passed on (see `serve`).
        shown = shown_default(declared)
        default = shown if declared.info.shown_default is None else None
        option = Annotated[
            str | None,
            typer.Option(
                declared.option,
                metavar=_METAVARS[declared.kind],
                help=help_text,
                show_default=True if default is not None else shown or False,
            ),
        ]
    return inspect.Parameter(declared.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=option)  # fmt: skip


def serve(context: typer.Context, **options: Any) -> None:
    """Run the hubproxy server.

    Settings come from these options, HUBPROXY_* environment variables and the --config YAML
    file, in that order of precedence. Secrets come from the environment or the config file,
    never the command line: HUBPROXY_UPSTREAM_TOKEN, HUBPROXY_S3_ACCESS_KEY_ID,
    HUBPROXY_S3_SECRET_ACCESS_KEY.
    """
    # Only what was given: a default must not outrank the environment and the config file.
    given = {
        name: value
        for name, value in options.items()
        if getattr(context.get_parameter_source(name), "name", "") != "DEFAULT"
    }
    settings = settings_here(context, **given)
    try:
        check_data_dir_free(settings.data_dir)
    except DataDirInUse as error:
        raise fail(str(error)) from None
    refuse_newer_data_dir(settings)

    from hubproxy.allocator import tune_allocator
    from hubproxy.cli.serving import CannotListen, listen
    from hubproxy.logs import configure_logging

    # Bound before the app starts, so a busy port fails here, in one line, not after "ready".
    try:
        sock = listen(settings.host, settings.port)
    except CannotListen as error:
        raise fail(str(error)) from None

    tune_allocator()

    configure_logging(settings.log_level, settings.log_format)
    if settings.worker_count > 1:
        from hubproxy.cli.workers import run_workers

        status = run_workers(settings, sock, lambda process: _serve_on(settings, sock, process))
    else:
        status = _serve_on(settings, sock, None)
    if status:
        raise typer.Exit(status)


def _serve_on(settings: Settings, sock: socket.socket, process: ServerProcess | None) -> int:
    """Run one server process (the only one, or a worker) on `sock`; its exit status."""
    import uvicorn

    from hubproxy.app import create_app
    from hubproxy.cli.serving import run_on_socket

    server_config = uvicorn.Config(
        create_app(settings, process),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # hubproxy writes its own access records (hubproxy.access)
        log_config=None,
        http=limited_protocol(settings),
        timeout_keep_alive=max(1, round(settings.idle_timeout)),
        lifespan="on",
        # The default asyncio loop: its `loop.sendfile` is real sendfile(2) (uvloop copies).
        loop="asyncio",
        timeout_graceful_shutdown=10,
    )
    return run_on_socket(server_config, sock, settings)


# Every setting but the secrets is an option of `serve`, generated from its declaration so that
# the options, their help and their defaults can never drift from `Settings`.
serve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=typer.Context),
        *(
            _serve_parameter(declared)
            for declared in SETTING_FIELDS
            if not declared.info.secret and declared.name not in _SHARED
        ),
    ]
)  # fmt: skip
app.command()(serve)
app.add_typer(admin_app, name="admin")
app.add_typer(cache_app, name="cache")
app.add_typer(mirror_app, name="mirror")
app.add_typer(registry_app, name="registry")


def build_command() -> Any:
    """The whole `hubproxy` command tree (a click group built by typer), shared options
    attached."""
    command = typer.main.get_command(app)
    add_shared_options(command, server_groups=("admin", "registry"))
    attach_examples(command)
    return command


def main() -> None:
    build_command()(prog_name="hubproxy")
