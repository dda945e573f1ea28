"""A real PostgreSQL server for the tests: a throwaway cluster started with the Debian binaries.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the
`postgres` system user (`runuser`). Trust authentication, no fsync, a unix socket in the
cluster's own temp dir and 127.0.0.1 on a free port: starting and stopping costs about a second.
Every test gets a schema of its own (`search_path` in its URL), so tests never see each other's
tables and no database has to be created per test.
"""

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tests.support.proxy import free_port

_schemas = itertools.count(1)


def binaries() -> Path | None:
    """The directory of `initdb` and `pg_ctl` (PATH first, then Debian's versioned dirs)."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _as_owner(command: Sequence[str]) -> list[str]:
    """`command` run as the `postgres` user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


@dataclass
class PostgresServer:
    """One running cluster; `url()` hands out a URL with a fresh schema on each call."""

    directory: Path
    port: int
    bin_dir: Path

    @classmethod
    def start(cls, bin_dir: Path) -> "PostgresServer":
        directory = Path(tempfile.mkdtemp(prefix="hubproxy-postgres-"))
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        data = directory / "data"
        subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale",
                    "C",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        server = cls(directory, free_port(), bin_dir)
        server.resume()
        return server

    def _control(self, *arguments: str) -> None:
        subprocess.run(
            _as_owner(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), *arguments]
            ),
            check=True,
            # Not captured: the server started inherits them, and a pipe would stay open.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def resume(self) -> None:
        """Start (or start again) the server on its port and wait until it accepts."""
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.directory} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._control("-w", "-l", str(self.directory / "log"), "-o", options, "start")

    def halt(self) -> None:
        """Stop the server at once (open connections are cut), keeping its data."""
        self._control("-w", "-m", "immediate", "stop")

    def stop(self) -> None:
        try:
            self.halt()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def base_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self) -> str:
        """A database URL whose tables live in a new, empty schema of their own."""
        import psycopg

        schema = f"test_{os.getpid()}_{next(_schemas)}"
        with psycopg.connect(self.base_url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        return f"{self.base_url}?options={quote(f'-csearch_path={schema}')}"
