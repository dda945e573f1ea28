"""What every `hubproxy` command shares: where its data is, and one way to fail.

`--data-dir` and `--config` (and, under `admin`, `--endpoint` and `--token`) are accepted at
every level of the command line, before or after the subcommand, with the same meaning:
`hubproxy --data-dir D cache ls`, `hubproxy cache --data-dir D ls` and `hubproxy cache ls
--data-dir D` are one command. `add_shared_options` attaches them to the whole command tree
once it is built; each occurrence records its value in the click context's `meta`, which every
nested context shares, and the innermost explicit one wins. A command reads them with
`location()`.

Every command except `serve` (and the first `admin user create --admin`, and imports that
create a site) refuses a data dir that holds no hubproxy data (`existing_settings`): a typo in
`--data-dir` must not silently start a new, empty hub.
"""

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from typer.core import TyperGroup

from hubproxy.settings import SETTING_FIELDS, Settings, SettingsError, load_settings

_META_KEY = "hubproxy.location"
DEFAULT_DATA_DIR = str(next(item.default for item in SETTING_FIELDS if item.name == "data_dir"))
# Command-tree objects (typer builds them on its own click); typed loosely on purpose.
Command = Any


@dataclass(frozen=True, slots=True)
class Location:
    """The shared options as given (None: not given; settings then decide)."""

    data_dir: Path | None = None
    config: Path | None = None
    database_url: str | None = None
    endpoint: str | None = None
    token: str | None = None


def _remember(context: typer.Context, parameter: typer.CallbackParam, value: Any) -> None:
    if value is None or parameter.name is None:
        return
    found: dict[str, Any] = context.meta.setdefault(_META_KEY, {})
    source = context.get_parameter_source(parameter.name)
    if source is not None and source.name == "DEFAULT":
        return  # shown in --help; the settings' own default (or the environment) applies
    if source is not None and source.name == "ENVIRONMENT" and parameter.name in found:
        return  # an option given explicitly at another level wins over the environment
    found[parameter.name] = Path(value) if parameter.name in ("data_dir", "config") else value


def _data_options(
    data_dir: Annotated[
        str,
        typer.Option(
            help="Data dir (or HUBPROXY_DATA_DIR).",
            metavar="DIR",
            expose_value=False,
            callback=_remember,
        ),
    ] = DEFAULT_DATA_DIR,
    config: Annotated[
        str | None,
        typer.Option(
            help="YAML config file (or HUBPROXY_CONFIG).",
            metavar="FILE",
            expose_value=False,
            callback=_remember,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Shared PostgreSQL metadata database (or HUBPROXY_DATABASE_URL).",
            metavar="URL",
            expose_value=False,
            callback=_remember,
        ),
    ] = None,
) -> None:
    """Declares the shared data options (read off by `_declared_options`)."""


def _server_options(
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="Work through this running hubproxy instead of the data dir.",
            metavar="URL",
            expose_value=False,
            callback=_remember,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Token for --endpoint (or HF_TOKEN).",
            metavar="TOKEN",
            envvar="HF_TOKEN",
            show_envvar=False,
            expose_value=False,
            callback=_remember,
        ),
    ] = None,
) -> None:
    """Declares the shared server options (read off by `_declared_options`)."""


def _declared_options(declaration: Any) -> list[Any]:
    """The options typer builds from `declaration`'s signature: built by typer itself, so they
    fit whatever click typer runs on."""
    holder = typer.Typer()
    holder.command()(declaration)
    holder.command("unused")(lambda: None)  # two commands: typer then builds a group
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return list(group.commands[declaration.__name__.replace("_", "-")].params)


def _walk(command: Command) -> Iterator[Command]:
    yield command
    for child in getattr(command, "commands", {}).values():
        yield from _walk(child)


def add_shared_options(root: Command, server_groups: tuple[str, ...] = ("admin",)) -> None:
    """Attach the shared options to every command of the tree under `root`; the server options
    only to the groups named in `server_groups` and their commands. A command that declares an
    option of the same name itself keeps its own."""
    data_options = _declared_options(_data_options)
    server_options = _declared_options(_server_options)
    server_commands = {
        id(command)
        for name in server_groups
        if name in root.commands
        for command in _walk(root.commands[name])
    }
    for command in _walk(root):
        wanted = data_options + (server_options if id(command) in server_commands else [])
        declared = {parameter.name for parameter in command.params}
        command.params += [copy.copy(option) for option in wanted if option.name not in declared]


def location(context: typer.Context) -> Location:
    """The shared options of the command being run."""
    return Location(**context.meta.get(_META_KEY, {}))


def command_group(help_text: str) -> typer.Typer:
    """A group of commands, formatted the same everywhere: plain help text (no markup that
    would eat `[...]`), help when called without a command."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


def failure(group: str | None, default_code: int = 1) -> Callable[..., typer.Exit]:
    """`fail(message, code)` for the commands of `group`: prints `hubproxy <group>: message`
    on stderr and returns the exit to raise (`raise fail(...)`)."""
    prefix = f"hubproxy {group}" if group else "hubproxy"

    def fail(message: str, code: int = default_code) -> typer.Exit:
        typer.echo(f"{prefix}: {message}", err=True)
        return typer.Exit(code)

    return fail


def settings_here(context: typer.Context, **options: Any) -> Settings:
    """Settings as `serve` loads them (config file, environment, `--data-dir`), plus
    `options`; a configuration error exits 2."""
    given = location(context)
    try:
        return load_settings(
            {"data_dir": given.data_dir, "database_url": given.database_url, **options},
            config_file=given.config,
        )
    except SettingsError as error:
        raise _fail_here(context, f"configuration error: {error}", 2) from None


def _fail_here(context: typer.Context, message: str, code: int) -> typer.Exit:
    group = context.command_path.split()[1:2]
    return failure(group[0] if group else None)(message, code)


def require_hubproxy_data(context: typer.Context, settings: Settings) -> Settings:
    """`settings` if its data dir holds hubproxy data; else exit 2 (invalid input), saying
    what to do."""
    # A shared database (`database_url`) is checked by connecting to it; a replica's data dir
    # holds only its scratch.
    if settings.database_url is None and not settings.database_path.is_file():
        raise _fail_here(
            context,
            f"no hubproxy data in {settings.data_dir} (a typo? A new data dir is made by"
            " `hubproxy serve --data-dir DIR` or `hubproxy admin --data-dir DIR user create"
            " NAME --admin`)",
            2,
        )
    return settings


def existing_settings(context: typer.Context, **options: Any) -> Settings:
    """`settings_here()` of a data dir that holds hubproxy data (see `require_hubproxy_data`)."""
    return require_hubproxy_data(context, settings_here(context, **options))


def describe_http_error(error: httpx.HTTPError) -> str:
    """A one-line cause of a failed call to a hubproxy server (refused, timed out, ...)."""
    if isinstance(error, httpx.ConnectError):
        cause = str(error) or "cannot connect"
        return "connection refused" if "refused" in cause.lower() else cause
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    return f"{type(error).__name__}: {error}"
