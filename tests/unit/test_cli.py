"""`hubproxy serve` refuses bad configuration with a clear message and exit code 2."""

import os
import subprocess
import sys
from pathlib import Path


def run_serve(
    *arguments: str, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("HUBPROXY_")}
    return subprocess.run(
        [sys.executable, "-m", "hubproxy", "serve", *arguments],
        capture_output=True, text=True, timeout=60, env={**clean, **(environment or {})},
    )  # fmt: skip


def test_unknown_config_key_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "hubproxy.yaml"
    config.write_text("port: 9000\nuplink: http://example.invalid\n")
    result = run_serve("--config", str(config))
    assert result.returncode == 2
    assert "unknown settings uplink" in result.stderr


def test_unknown_environment_variable_is_an_error() -> None:
    result = run_serve(environment={"HUBPROXY_UPSTREAM_TOKN": "x"})
    assert result.returncode == 2
    assert "HUBPROXY_UPSTREAM_TOKN" in result.stderr


def test_bad_value_names_the_setting(tmp_path: Path) -> None:
    result = run_serve("--chunk-size", "tiny", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "chunk_size" in result.stderr


def test_help_lists_the_documented_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hubproxy", "serve", "--help"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    )  # fmt: skip
    assert result.returncode == 0
    for option in (
        "--host",
        "--port",
        "--data-dir",
        "--upstream",
        "--offline",
        "--config",
        "--cache-max-bytes",
        "--revision-ttl",
    ):
        assert option in result.stdout
