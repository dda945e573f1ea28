"""The Dockerfile, checked without a container engine: its instructions, and its exact command
line and healthcheck run against a real server."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.proxy import free_port

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


def instructions() -> dict[str, list[str]]:
    """Instruction -> arguments of the final stage (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final_stage = text.split("\nFROM ")[-1]
    found: dict[str, list[str]] = {}
    for line in ("FROM " + final_stage).splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, rest = line.strip().partition(" ")
            found.setdefault(name, []).append(rest.strip())
    return found


def test_final_stage_is_slim_non_root_with_a_data_volume() -> None:
    found = instructions()
    assert found["FROM"][0].startswith("python:3.11-slim")
    user = found["USER"][-1].split(":")[0]
    assert user.isdigit()
    assert int(user) != 0
    assert json.loads(found["VOLUME"][0]) == ["/data"]
    assert json.loads(found["ENTRYPOINT"][0]) == ["hubproxy"]


def test_command_and_healthcheck_work_as_written(tmp_path: Path) -> None:
    found = instructions()
    command = json.loads(found["CMD"][0])
    port = str(free_port())
    arguments = [
        {"/data": str(tmp_path / "data"), "0.0.0.0": "127.0.0.1", "8000": port}.get(arg, arg)
        for arg in command
    ]
    assert "--data-dir" in arguments
    health = re.search(r"CMD (\[.*\])", found["HEALTHCHECK"][0])
    assert health is not None
    probe = [part.replace("8000", port) for part in json.loads(health.group(1))]
    assert probe[0] == "python"
    assert "/health/live" in probe[-1]
    server = subprocess.Popen(
        [sys.executable, "-m", "hubproxy", *arguments],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the container command did not start a server"
            time.sleep(0.05)
        assert subprocess.run([sys.executable, *probe[1:]], timeout=10).returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=15)
    # Unhealthy when nothing listens.
    assert subprocess.run([sys.executable, *probe[1:]], timeout=10).returncode != 0
