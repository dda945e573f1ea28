"""What `hubproxy serve` writes to its log: plain lines, and one line when it cannot listen."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeHub

pytestmark = pytest.mark.storage_independent


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_logs_carry_no_terminal_colours(
    proxy_factory: ProxyFactory, upstream: FakeHub, repo_id: str, log_format: str
) -> None:
    upstream.add_repo(repo_id, {"config.json": b"{}"})
    server = proxy_factory("--log-format", log_format)
    assert httpx.get(f"{server.url}/{repo_id}/resolve/main/config.json").status_code == 200
    server.stop()  # start-up, a request and shut-down: every uvicorn message has been logged
    log = server.log()
    assert "Started server process" in log  # uvicorn's records are there, just uncoloured
    assert "\x1b[" not in log
    assert "\\u001b" not in log  # nor escaped inside JSON strings
    assert "color_message" not in log
    if log_format == "json":
        assert all(json.loads(line) for line in log.splitlines() if line.strip())


def test_a_busy_port_fails_in_one_line_before_start_up(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        environment = {key: value for key, value in os.environ.items() if "HUBPROXY_" not in key}
        result = subprocess.run(
            [
                sys.executable, "-m", "hubproxy", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--data-dir", str(tmp_path / "data"),
                "--upstream", "http://127.0.0.1:9",
            ],
            capture_output=True, text=True, timeout=60, env=environment,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"hubproxy: cannot listen on 127.0.0.1:{port}: address already in use\n"
    )
    assert result.stdout == ""
    # The app never started: no database was created in the data dir.
    assert not (tmp_path / "data" / "hubproxy.sqlite3").exists()
