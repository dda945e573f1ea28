"""The `hubproxy` command line run in the test process: the real command tree (`build_command`),
its real option parsing, output and exit codes, without an interpreter start per command.

A subprocess per command cost about a second of CPU each, and the suite runs hundreds of admin
commands; `tests/packaging` and the tests that need a separate process still start real ones.
"""

import contextlib
import io
import os
import subprocess
from unittest import mock

from hubproxy.cli.main import build_command
from tests.support.databases import command_environment

# What a user's shell might set that must not change what a test's command line means.
_AMBIENT = ("HUBPROXY_", "HF_TOKEN", "HF_ENDPOINT")


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`hubproxy ARGUMENTS...`: exit code, stdout and stderr as a process would give them."""
    out, err = io.StringIO(), io.StringIO()
    ambient = [
        key
        for key in os.environ
        if key.startswith(_AMBIENT) and not key.startswith("HUBPROXY_TEST_")
    ]
    with (
        mock.patch.dict(os.environ),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        for key in ambient:
            del os.environ[key]
        os.environ.update(command_environment(arguments))
        try:
            build_command().main(list(arguments), prog_name="hubproxy")
        except SystemExit as exit_:  # standalone mode always ends in one
            code = exit_.code
        else:  # pragma: no cover - click exits in standalone mode
            code = 0
    status = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["hubproxy", *arguments], status, out.getvalue(),
                                       err.getvalue())  # fmt: skip
