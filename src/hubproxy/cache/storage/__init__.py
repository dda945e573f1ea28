"""Chunk storage: the backend Protocol, the backends, and the wrapper the cache uses.

Backends are chosen by name (`settings.storage`) from `BACKENDS`.
"""

from collections.abc import Callable

from hubproxy.cache.storage.base import (
    FileSegment,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectWriter,
    StorageBackend,
    StorageError,
    StorageFull,
    from_os_error,
)
from hubproxy.cache.storage.local import LocalBackend
from hubproxy.cache.storage.local_tier import LocalTier
from hubproxy.cache.storage.memory import MemoryBackend
from hubproxy.cache.storage.wrapper import Storage
from hubproxy.settings import Settings

BACKENDS: dict[str, Callable[[Settings], StorageBackend]] = {
    "local": lambda settings: LocalBackend(settings.storage_path),
    "memory": lambda settings: MemoryBackend(),
    "s3": lambda settings: _s3_backend(settings),
}


def _s3_backend(settings: Settings) -> StorageBackend:
    # Imported on use: aiobotocore costs ~0.2 s at start, which every CLI call would pay.
    from hubproxy.cache.storage.s3 import S3Backend

    return S3Backend(
        settings.s3_bucket or "",
        prefix=settings.s3_prefix,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        path_style=settings.s3_path_style,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
    )


def open_storage(
    settings: Settings, *, worker_index: int | None = None, worker_count: int = 1
) -> Storage:
    """The wrapped backend that `settings.storage` names.

    A server process (`worker_index` of `worker_count`) puts its local tier in front of it
    when `local_cache_dir` is set: a directory and a share of `local_cache_max_bytes` of its
    own, so no two processes ever write one copy. Commands (`worker_index` None) go to the
    backend directly: a scan or a verification must not fill the server's local tier.
    """
    backend = BACKENDS[settings.storage](settings)
    if settings.local_cache_dir is not None and worker_index is not None:
        backend = LocalTier(
            backend,
            settings.local_cache_dir / f"worker-{worker_index}",
            max(1, settings.local_cache_max_bytes // worker_count),
        )
    return Storage(backend)


__all__ = [
    "BACKENDS",
    "FileSegment",
    "InvalidKey",
    "LocalBackend",
    "LocalTier",
    "MemoryBackend",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectWriter",
    "Storage",
    "StorageBackend",
    "StorageError",
    "StorageFull",
    "from_os_error",
    "open_storage",
]
