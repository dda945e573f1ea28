"""A private hub with webhooks that may call 127.0.0.1, and a receiver to call.

The hub is `tests/hub/conftest.py`'s (same projects, users and tokens) in a server of this
package's own: the tests here restart it and change memberships. `Receiver`
(`tests/support/webhooks.py`) is the local HTTP server they deliver to.
"""

from collections.abc import Iterator

import pytest

from tests.fake_upstream import FakeHubServer
from tests.hub.conftest import Hub, running_hub


@pytest.fixture(scope="session")
def webhook_hub(
    fake_hub_server: FakeHubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("webhook-hub") / "data", fake_hub_server) as hub:
        yield hub
