"""The `storage` fixture: one `Storage` per backend; every conformance test runs on each.

Adding a backend means adding one entry to `BACKENDS`. Teardown fails if a test left objects
behind, so every test proves it cleans up through the Protocol alone.
"""

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hubproxy.cache.storage import (
    LocalBackend,
    LocalTier,
    MemoryBackend,
    Storage,
    StorageBackend,
)
from hubproxy.cache.storage.s3 import S3Backend
from tests.conftest import S3Service

_prefixes = itertools.count()


def s3_backend(service: S3Service, prefix: str) -> S3Backend:
    return S3Backend(
        service.bucket,
        prefix=prefix,
        endpoint_url=service.endpoint_url,
        region="us-east-1",
        path_style=True,
        access_key_id=service.access_key_id,
        secret_access_key=service.secret_access_key,
        part_size=5 * 1024 * 1024,
    )


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], StorageBackend]] = {
    "memory": lambda tmp_path, request: MemoryBackend(),
    "local": lambda tmp_path, request: LocalBackend(tmp_path / "objects"),
    # Each test gets its own prefix in the shared bucket.
    "s3": lambda tmp_path, request: s3_backend(
        request.getfixturevalue("s3_service"), f"conformance-{next(_prefixes)}"
    ),
    # S3 behind a replica's local tier: the same contract.
    "s3-local-tier": lambda tmp_path, request: LocalTier(
        s3_backend(request.getfixturevalue("s3_service"), f"conformance-{next(_prefixes)}"),
        tmp_path / "local-tier",
        64 * 1024 * 1024,
    ),
}


@pytest.fixture(params=sorted(BACKENDS))
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    wrapped = Storage(BACKENDS[request.param](tmp_path, request))
    yield wrapped
    left = [key async for key in wrapped.list("")]
    await wrapped.aclose()
    assert left == [], f"test left objects behind: {left}"
