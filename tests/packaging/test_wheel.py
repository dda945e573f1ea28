"""The product as a user installs it: the built wheel, no extras, in a fresh virtual environment.

The test environment has packages the product does not (the `test` and `dev` extras), so a
module imported by `src/hubproxy` but declared only in an extra passes every other test and
crashes a fresh install. Here the wheel is built the way the Dockerfile builds it, installed
alone into a new venv, and then every import, every command's `--help`, `serve` and a remote
admin call (the HTTP client the CLI uses) must work there.
"""

import ast
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hubproxy.cli.main import build_command
from tests.support.proxy import free_port

ROOT = Path(__file__).resolve().parents[2]
# The Dockerfile's build stage runs exactly these (see `test_the_dockerfile_installs_the_wheel`).
BUILD_WHEEL = "pip wheel --no-deps --wheel-dir /wheels ."
INSTALL_WHEEL = "pip install --no-cache-dir --prefix=/install /wheels/hubproxy-*.whl"


@dataclass(frozen=True)
class Installed:
    """A fresh venv with only the wheel (and what it depends on) installed."""

    root: Path

    def tool(self, name: str) -> Path:
        return self.root / "bin" / name

    def run(self, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # Nothing of the test environment leaks in: no PYTHONPATH, no HUBPROXY_* settings.
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HUBPROXY_", "HF_", "PYTHON", "VIRTUAL_ENV"))
        }
        return subprocess.run(
            [*arguments], capture_output=True, text=True, timeout=timeout, env=environment,
            cwd=self.root,
        )  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    wheels = work / "wheels"
    # The Dockerfile's build command, with the local paths of this checkout.
    built = subprocess.run(
        [sys.executable, "-m", *BUILD_WHEEL.replace("/wheels", str(wheels)).split()[:-1],
         str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("hubproxy-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    return Installed(venv)


def _imported_modules() -> set[str]:
    """Top-level modules every file of src/hubproxy imports, function-level imports included."""
    modules: set[str] = set()
    for path in (ROOT / "src" / "hubproxy").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {module for module in modules if module not in sys.stdlib_module_names}


def _command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, child in getattr(command, "commands", {}).items():
        yield from _command_paths(child, (*path, name))


def test_only_the_declared_dependencies_are_installed(installed: Installed) -> None:
    """The fresh venv really lacks the extras, so the tests below can fail."""
    listed = installed.run(str(installed.tool("pip")), "list", "--format", "json")
    names = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "hubproxy" in names
    assert not names & {"pytest", "huggingface-hub", "transformers", "moto", "mypy"}


def test_every_import_of_the_package_is_satisfied(installed: Installed) -> None:
    modules = sorted(_imported_modules())
    assert "httpx" in modules  # the CLI's HTTP client: the import that once was missing
    probe = (
        "import importlib.util, json, sys\n"
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))"
    )
    found = installed.run(str(installed.tool("python")), "-c", probe, *modules)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == []


def test_version_and_the_help_of_every_command(installed: Installed) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = installed.run(str(installed.tool("hubproxy")), "--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"hubproxy {version}\n"
    top = installed.run(str(installed.tool("hubproxy")), "--help")
    assert top.returncode == 0, top.stderr
    assert top.stdout.startswith("Usage: hubproxy"), top.stdout
    paths = list(_command_paths(build_command()))
    assert len(paths) > 30  # every group and command of the tree
    # The rest in one process of the venv (a start per command cost over a minute): the same
    # command tree the console script builds, each help rendered by click's runner.
    helped = installed.run(
        str(installed.tool("python")), "-c", HELP_OF_EVERY_COMMAND, json.dumps(paths)
    )
    assert helped.returncode == 0, helped.stderr
    results = json.loads(helped.stdout)
    assert [tuple(path) for path, _, _ in results] == paths
    for path, exit_code, output in results:
        assert exit_code == 0, (path, output)
        assert output.startswith("Usage: hubproxy"), (path, output)
        assert "Traceback" not in output, (path, output)


# Run by the venv's Python: the help of each command path given (JSON), as [path, code, output].
HELP_OF_EVERY_COMMAND = """
import json, sys
from click.testing import CliRunner
from hubproxy.cli.main import build_command
command, runner, results = build_command(), CliRunner(), []
for path in json.loads(sys.argv[1]):
    result = runner.invoke(command, [*path, "--help"], prog_name="hubproxy")
    failure = "" if result.exception is None or isinstance(result.exception, SystemExit) else (
        "Traceback: " + repr(result.exception))
    results.append([path, result.exit_code, result.output + failure])
print(json.dumps(results))
"""


def test_serve_until_ready_and_a_remote_admin_call(installed: Installed, tmp_path: Path) -> None:
    hubproxy = str(installed.tool("hubproxy"))
    data_dir = tmp_path / "data"
    created = installed.run(hubproxy, "admin", "--data-dir", str(data_dir), "user", "create",
                            "root", "--admin")  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = installed.run(hubproxy, "admin", "token", "create", "root", "--scope", "admin",
                          "--data-dir", str(data_dir))  # fmt: skip
    assert token.returncode == 0, token.stderr
    secret = token.stdout.splitlines()[-1]
    port = free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUBPROXY_", "HF_", "PYTHON", "VIRTUAL_ENV"))
    }
    server = subprocess.Popen(
        [hubproxy, "serve", "--port", str(port), "--data-dir", str(data_dir), "--offline"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the installed server never became ready"
            time.sleep(0.1)
        listed = installed.run(hubproxy, "admin", "--endpoint", f"http://127.0.0.1:{port}",
                               "--token", secret, "user", "list", "--json")  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert [user["name"] for user in json.loads(listed.stdout)] == ["root"]
        # The web UI's templates and stylesheet are in the wheel.
        home = httpx.get(f"http://127.0.0.1:{port}/")
        assert home.status_code == 200
        assert 'href="/-/static/hubproxy.css"' in home.text
        assert httpx.get(f"http://127.0.0.1:{port}/-/static/hubproxy.css").status_code == 200
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)
    # Stopped by our SIGTERM after a graceful shutdown (uvicorn re-raises the signal it caught).
    assert server.returncode in (0, -signal.SIGTERM)
    assert b"Traceback" not in log
    assert b"hubproxy ready" in log


def test_the_dockerfile_installs_the_wheel() -> None:
    """The image is built from the same wheel, installed without extras."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [" ".join(line.split()) for line in text.splitlines() if line.startswith("RUN ")]
    build_stage = " && ".join(runs)
    assert BUILD_WHEEL in build_stage
    assert INSTALL_WHEEL in build_stage
    assert "pip install --no-cache-dir --prefix=/install ." not in build_stage
