"""The `harness` fixture: a fresh blob cache per test (see `harness.py`)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cache.harness import Harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.close()
