"""The in-process tier itself (`tests/support/inprocess.py`): what the tests moved onto it rely
on — raw paths reach the dispatcher as sent, an escaping exception fails the test the way a
real server's traceback does, clients work from any thread or loop, and stopping runs the
shut-down that writes the audit log."""

from pathlib import Path

import pytest
from tests.conftest import InProcessFactory, in_process
from tests.fake_upstream import FakeHubServer
from tests.governance.conftest import admin_json
from tests.support.accounts import Accounts

from hubproxy.hf_api import health


def test_percent_encoded_paths_reach_the_dispatcher_as_sent(
    in_process_factory: InProcessFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    tokens = (
        Accounts()
        .user("root", admin=True)
        .project("team")
        .user("dev")
        .member("team", "dev", "developer")
        .token("dev", "dev")
        .create(data_dir)
    )
    server = in_process_factory(data_dir=data_dir)
    with server.client(tokens["dev"]) as client:
        assert client.post("/api/repos/create", json={"name": "team/x"}).status_code == 200
        # The dispatcher decodes the raw path itself: an encoded letter is the same name, and
        # an encoding that is not UTF-8 is refused as such (the decoded `path` would have
        # replaced it).
        not_utf8 = client.get("/api/models/team/%ff")
        answer = client.get("/api/models/%74eam/x")
    assert not_utf8.status_code == 400
    assert "percent-encoding is not UTF-8" in not_utf8.text
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == "team/x"


def test_an_escaping_exception_is_a_500_and_a_traceback(
    fake_hub_server: FakeHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(request: object) -> None:
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(health, "ready", broken)
    with in_process(tmp_path / "data", fake_hub_server.url) as server, server.client() as client:
        answer = client.get("/health/ready")
    assert answer.status_code == 500
    assert answer.headers["x-error-message"] == "Internal error"
    # What the fixtures check at teardown, as on the real tier.
    assert "Traceback" in server.log()
    assert "broken on purpose" in server.log()


async def test_async_clients_from_another_loop_and_the_client_address(
    in_process_factory: InProcessFactory,
) -> None:
    server = in_process_factory()
    async with server.async_client() as client:
        answer = await client.get("/api/whoami-v2")
    assert answer.status_code == 401
    server.stop()  # drains the audit queue, as `hubproxy serve` does on SIGTERM
    (record,) = [r for r in admin_json(server.data_dir, "audit") if r["route"] == "whoami"]
    assert record["client"] == "127.0.0.1"
