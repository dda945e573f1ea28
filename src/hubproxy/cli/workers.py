"""`hubproxy serve --workers N`: N server processes on one listening socket and one data dir.

The supervisor (the process `serve` started in) binds the socket, takes the data-dir lock,
prepares the data dir once (schema upgrades, crash leftovers removed, staging emptied: work
no worker may do while another is starting or filling) and forks the workers. Each worker
inherits the socket — the kernel hands each new connection to one of them — and the lock's
open file, which is how its lifespan knows it belongs to this server (`datadir.ServerProcess`);
a second server is still refused.

Workers share everything else through the data dir: the SQLite metadata database (WAL, one
writer at a time, busy timeouts), the audit log, the chunk store, and the fill leases in the
database that make one process own each upstream fill (`cache/leases.py`).

SIGTERM or SIGINT to the supervisor is passed to every worker, which stops taking
connections and finishes the requests it has (uvicorn's graceful shutdown); the supervisor
exits when the last one did. A worker that dies otherwise is started again.

Metrics are the server's, not a worker's: each worker keeps its values in files of its own in
the data dir's `metrics/` (emptied at start), and a scrape of any worker sums them
(`hubproxy.metrics.share_across_workers`).
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from hubproxy import metrics
from hubproxy.datadir import DataDirLock, ServerProcess
from hubproxy.settings import Settings

logger = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0


async def prepare_data_dir(settings: Settings) -> None:
    """What a single server does at start and workers must not do at once: bring both
    databases to this release's schema, remove crash leftovers."""
    from hubproxy.auth.audit import open_audit_database
    from hubproxy.cache.storage import open_storage
    from hubproxy.db import database_for

    database = database_for(settings)
    await database.open()
    await database.aclose()
    if settings.database_url is None:  # else the audit log is in that database
        open_audit_database(settings.audit_path).close()

    storage = open_storage(settings)
    try:
        removed = await storage.remove_incomplete()
        if removed:
            logger.info("removed %d incomplete objects left by an earlier crash", removed)
    finally:
        await storage.aclose()
    if settings.local_cache_dir is not None:
        from hubproxy.cache.storage.local_tier import retire_worker_directories

        retire_worker_directories(settings.local_cache_dir, settings.worker_count)
    staging = settings.staging_path
    staging.mkdir(parents=True, exist_ok=True)
    for leftover in staging.rglob("*"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


def run_workers(
    settings: Settings,
    sock: socket.socket,
    serve_one: Callable[[ServerProcess], int],
) -> int:
    """Fork `settings.workers` processes running `serve_one`; the exit status once all ended."""
    lock = DataDirLock(settings.data_dir)
    lock.acquire()
    try:
        asyncio.run(prepare_data_dir(settings))
        metrics.prepare_worker_directory(settings.worker_metrics_path)
        return _supervise(settings.worker_count, lock, serve_one, settings.worker_metrics_path)
    finally:
        sock.close()
        lock.release()


def _supervise(
    count: int,
    lock: DataDirLock,
    serve_one: Callable[[ServerProcess], int],
    metrics_directory: Path,
) -> int:
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False
    status = 0

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                metrics.share_across_workers(metrics_directory)
                code = serve_one(ServerProcess(index, count, lock))
            except BaseException:
                logger.exception("worker %d crashed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = index

    def stop(signal_number: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {
        signal_number: signal.signal(signal_number, stop)
        for signal_number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        for index in range(count):
            start(index)
        logger.info("%d workers started", count)
        while children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            index_or_none = children.pop(pid, None)
            if index_or_none is None:
                continue
            metrics.forget_worker(metrics_directory, pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if stopping:
                continue
            if code == 3:  # STARTUP_FAILURE_EXIT_CODE: it never served; neither will another
                logger.error("worker %d failed to start: stopping", index_or_none)
                status = code
                stop(signal.SIGTERM, None)
                continue
            logger.error("worker %d exited (%d): starting it again", index_or_none, code)
            time.sleep(RESTART_DELAY_SECONDS)
            if not stopping:
                start(index_or_none)
    finally:
        for signal_number, handler in previous.items():
            signal.signal(signal_number, handler)
    return status
