"""Keep the C allocator from hoarding memory under streaming load.

A proxy allocates and frees megabyte-sized buffers all day, from the event loop and from the
I/O threads. glibc's defaults then grow one heap arena per thread and raise the mmap threshold
after each large free, so freed buffers stay in fragmented heaps and RSS creeps far above
what is in use. A fixed 1 MiB mmap threshold returns every large buffer to the system at once,
and two arenas bound the per-thread heaps. Other C libraries are left alone.
"""

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator(mmap_threshold: int = 0, arena_max: int = 2) -> bool:
    """Apply the settings above if the process runs on glibc; returns whether it did."""
    library_name = ctypes.util.find_library("c")
    if library_name is None:
        return False
    try:
        library = ctypes.CDLL(library_name)
        mallopt = library.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_ARENA_MAX, arena_max))
    if mmap_threshold:
        applied = applied and bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold))
    logger.debug("allocator tuned: %s", applied)
    return applied
