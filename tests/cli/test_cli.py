"""The command line explains itself: version, help with defaults and an example for every
command, shared options anywhere on the line, refusals of data dirs that hold no hub, and
errors that name their command."""

import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubproxy import version
from hubproxy.cli.examples import EXAMPLES
from hubproxy.cli.main import build_command
from hubproxy.settings import SETTING_FIELDS
from tests.support.cli import run_cli
from tests.support.proxy import free_port


def hubproxy(*arguments: str) -> tuple[int, str, str]:
    """Run the real command tree in this process: (exit code, stdout, stderr)."""
    completed = run_cli(*arguments)
    return completed.returncode, completed.stdout, completed.stderr


def environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("HUBPROXY_")}


def leaf_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    children = getattr(command, "commands", {})
    if not children:
        yield path
    for name, child in children.items():
        yield from leaf_paths(child, (*path, name))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir with its first admin."""
    directory = tmp_path / "data"
    code, _out, err = hubproxy("admin", "--data-dir", str(directory), "user", "create", "root",
                               "--admin")  # fmt: skip
    assert code == 0, err
    return directory


def test_version_is_the_installed_distributions() -> None:
    shown = subprocess.run([sys.executable, "-m", "hubproxy", "--version"], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert shown.stdout == f"hubproxy {version()}\n"


def test_every_command_shows_an_example_of_itself() -> None:
    paths = [" ".join(path) for path in leaf_paths(build_command())]
    assert sorted(paths) == sorted(EXAMPLES)  # no command without one, no stale example
    for path in paths:
        code, out, _err = hubproxy(*path.split(), "--help")
        assert code == 0
        assert f"Example:\n    hubproxy {path}" in out, out


def test_serve_help_has_every_setting_with_its_default() -> None:
    code, out, _err = hubproxy("serve", "--help")
    assert code == 0
    flat = re.sub(r"-\s+", "-", " ".join(out.split()))  # undo wrapping, also after hyphens
    for declared in SETTING_FIELDS:
        if declared.info.secret:
            assert declared.option not in flat  # secrets never on the command line
            assert declared.environment_variable in flat  # but named where they go
        else:
            assert declared.option in flat, declared.name
            assert declared.environment_variable in flat, declared.name
    # Shown, not eaten by markup: real defaults and descriptions of computed ones.
    for shown in ("[default: 127.0.0.1]", "[default: 16MiB]", "[default: 1m]",
                  "[default: (unlimited)]", "[default: (<data-dir>/storage)]",
                  "[default: (off)]"):  # fmt: skip
        assert shown in flat, shown


def test_serve_defaults_never_outrank_the_environment(tmp_path: Path) -> None:
    """Only options given on the command line override HUBPROXY_* variables."""
    refused = subprocess.run(
        [sys.executable, "-m", "hubproxy", "serve", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
        env={**environment(), "HUBPROXY_LOG_FORMAT": "yaml"},
    )  # fmt: skip
    assert refused.returncode == 2
    assert "log_format: unknown format 'yaml'" in refused.stderr
    given = subprocess.run(
        [sys.executable, "-m", "hubproxy", "serve", "--chunk-size", "1KiB", "--port", "1"],
        capture_output=True, text=True, timeout=60, env=environment(), cwd=tmp_path,
    )  # fmt: skip
    assert given.returncode == 2
    assert "chunk_size: must be at least 64KiB" in given.stderr


@pytest.mark.parametrize(
    "arguments",
    [
        ("--data-dir", "{d}", "admin", "user", "list", "--json"),
        ("admin", "--data-dir", "{d}", "user", "list", "--json"),
        ("admin", "user", "--data-dir", "{d}", "list", "--json"),
        ("admin", "user", "list", "--json", "--data-dir", "{d}"),
        ("--data-dir", "/nonexistent/typo", "admin", "user", "list", "--data-dir", "{d}", "--json"),
    ],
)
def test_the_data_dir_is_accepted_anywhere_on_the_line(
    data_dir: Path, arguments: tuple[str, ...]
) -> None:
    code, out, err = hubproxy(*(argument.format(d=data_dir) for argument in arguments))
    assert code == 0, err
    assert [user["name"] for user in json.loads(out)] == ["root"]


def test_cache_commands_take_the_data_dir_before_or_after_too(data_dir: Path) -> None:
    before = hubproxy("cache", "--data-dir", str(data_dir), "ls", "--json")
    after = hubproxy("cache", "ls", "--json", "--data-dir", str(data_dir))
    assert before == after
    assert before[0] == 0
    assert json.loads(before[1]) == []


@pytest.mark.parametrize(
    "arguments",
    [
        ("admin", "user", "list"),
        ("admin", "user", "create", "alice"),  # only the first *admin* may make a data dir
        ("admin", "token", "list"),
        ("admin", "project", "create", "acme"),
        ("admin", "policy", "show"),
        ("admin", "audit"),
        ("admin", "prune-audit", "--before", "30d"),
        ("admin", "backup", "--to", "{t}/backup"),
        ("cache", "ls"),
        ("cache", "pin", "acme/model"),
        ("cache", "verify"),
        ("cache", "gc"),
        ("mirror", "export", "acme/model", "--to", "{t}/bundle"),
    ],
)
def test_a_data_dir_without_hubproxy_data_is_refused(
    tmp_path: Path, arguments: tuple[str, ...]
) -> None:
    typo = tmp_path / "typo"
    line = [argument.format(t=tmp_path) for argument in arguments]
    code, out, err = hubproxy(*line, "--data-dir", str(typo))
    assert code == 2
    assert out == ""
    assert err.startswith(f"hubproxy {arguments[0]}: no hubproxy data in {typo} (a typo?")
    assert not typo.exists()  # nothing was created


def test_the_first_admin_makes_a_new_data_dir(tmp_path: Path) -> None:
    fresh = tmp_path / "new"
    code, out, err = hubproxy(
        "admin", "user", "create", "root", "--admin", "--data-dir", str(fresh)
    )
    assert (code, out) == (0, "created user root (admin)\n"), err
    assert (fresh / "hubproxy.sqlite3").is_file()


def test_pinning_a_repo_the_cache_never_saw_exits_3(data_dir: Path) -> None:
    code, out, err = hubproxy("cache", "pin", "acme/never-seen@main", "--data-dir", str(data_dir))
    assert (code, out) == (3, "")
    assert err.startswith("hubproxy cache: acme/never-seen@main is not in this cache")


def test_preload_without_a_server_is_one_clear_line(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    failed = subprocess.run(
        [sys.executable, "-m", "hubproxy", "mirror", "preload", "acme/model", "--endpoint",
         endpoint],
        capture_output=True, text=True, timeout=60, env=environment(),
    )  # fmt: skip
    assert failed.returncode == 1
    assert failed.stdout == ""
    [line] = failed.stderr.splitlines()
    assert line.startswith(f"hubproxy mirror: cannot reach hubproxy at {endpoint}: ")
    assert "connection refused" in line


def test_progress_is_drawn_on_a_terminal_and_never_on_a_pipe(data_dir: Path) -> None:
    """`cache verify` on a terminal shows a bar on stderr; piped, stdout is only the records."""
    piped = subprocess.run(
        [sys.executable, "-m", "hubproxy", "cache", "verify", "--json", "--data-dir",
         str(data_dir)],
        capture_output=True, text=True, timeout=60, env=environment(),
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["checked"] == 0
    assert piped.stderr == ""

    terminal, attached = pty.openpty()
    shown = subprocess.run(
        [sys.executable, "-m", "hubproxy", "cache", "verify", "--json", "--data-dir",
         str(data_dir)],
        stdout=subprocess.PIPE, stderr=attached, timeout=60,
        env={**environment(), "TERM": "xterm", "COLUMNS": "100"},
    )  # fmt: skip
    os.close(attached)
    drawn = b""
    while select.select([terminal], [], [], 0.5)[0]:
        try:
            piece = os.read(terminal, 65536)
        except OSError:
            break
        if not piece:
            break
        drawn += piece
    os.close(terminal)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["checked"] == 0
    assert b"verifying cached files" in drawn
