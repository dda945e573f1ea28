"""A private hub with webhooks that may call 127.0.0.1, and a receiver to call.

The hub is `tests/hub/conftest.py`'s (same projects, users and tokens) in a server of this
package's own: the tests here restart it and change memberships. `Receiver`
(`tests/support/webhooks.py`) is the local HTTP server they deliver to.
"""

from collections.abc import Iterator

import pytest

from tests.conftest import TEST_CHUNK_SIZE
from tests.fake_upstream import FakeHubServer
from tests.hub.conftest import HUB_ENVIRONMENT, Hub, populate_hub
from tests.support.proxy import ProxyProcess, free_port
from tests.support.webhooks import WAIT_SECONDS, Received, Receiver


@pytest.fixture(scope="session")
def webhook_hub(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    data_dir = tmp_path_factory.mktemp("webhook-hub") / "data"
    tokens = populate_hub(data_dir)
    process = ProxyProcess(
        data_dir,
        fake_hub_server.url,
        extra_args=("--chunk-size", TEST_CHUNK_SIZE),
        environment=HUB_ENVIRONMENT,
    )
    with process:
        yield Hub(process, data_dir, tokens)
    assert "Traceback" not in process.log(), process.log()


__all__ = ["WAIT_SECONDS", "Received", "Receiver", "free_port"]
