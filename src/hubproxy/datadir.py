"""One server per data dir: an exclusive lock on `<data_dir>/hubproxy.lock`.

A server of several worker processes (`serve --workers`) holds it once, in its supervisor; the
workers inherit the locked open file (`ServerProcess`) and check it is theirs.

Two servers on one data dir would empty each other's staging area at start and keep
diverging in-memory state over one database. The lock is an advisory `flock`, released by the
kernel when the process dies, so a crash never leaves a stale lock. CLI commands that are
safe beside a server (`cache`, `admin`, `mirror export`) do not take it.
"""

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class DataDirInUse(Exception):
    """Another hubproxy server holds the data dir."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "hubproxy.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise `DataDirInUse` naming the holder's pid."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirInUse(
                f"data dir {self.data_dir} is in use by another hubproxy server (pid {holder})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def confirm(self) -> None:
        """Check that this (inherited) lock is held by our open file, else `DataDirInUse`."""
        handle = self._handle
        if handle is None:
            raise DataDirInUse(f"data dir {self.data_dir}: this process holds no lock")
        try:
            # Our own open file description holds it: taking it again succeeds at once.
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUse(f"data dir {self.data_dir} is in use by another server") from None

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            handle.close()


def check_data_dir_free(data_dir: Path) -> None:
    """Raise `DataDirInUse` if a server holds `data_dir` (for a clear error before start)."""
    lock = DataDirLock(data_dir)
    lock.acquire()
    lock.release()


@dataclass(frozen=True)
class ServerProcess:
    """A worker process of a server (`serve --workers`): number `index` of `count`, running
    under the data-dir `lock` its supervisor holds."""

    index: int
    count: int
    lock: DataDirLock
