"""The `storage` fixture: one `Storage` per backend; every conformance test runs on each.

Adding a backend means adding one entry to `BACKENDS`. Teardown fails if a test left objects
behind, so every test proves it cleans up through the Protocol alone.
"""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hubproxy.cache.storage import LocalBackend, MemoryBackend, Storage, StorageBackend

BACKENDS: dict[str, Callable[[Path], StorageBackend]] = {
    "memory": lambda tmp_path: MemoryBackend(),
    "local": lambda tmp_path: LocalBackend(tmp_path / "objects"),
}


@pytest.fixture(params=sorted(BACKENDS))
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    wrapped = Storage(BACKENDS[request.param](tmp_path))
    yield wrapped
    left = [key async for key in wrapped.list("")]
    await wrapped.aclose()
    assert left == [], f"test left objects behind: {left}"
