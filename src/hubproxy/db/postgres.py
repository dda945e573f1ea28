"""`PostgresDatabase`: the metadata store on a shared PostgreSQL server (psycopg 3).

The stores are written against the one synchronous shape `fn(connection)` (see
`db/database.py`); this module keeps that shape, so no call site knows which engine runs it.
`PostgresConnection` offers the part of `sqlite3.Connection` the stores use: `execute` and
`executemany` with `?` placeholders, rows readable by column name and by position, `rowcount`.
The SQL itself is portable (the dialect both engines accept: `INSERT ... ON CONFLICT`, quoted
`"user"`); only placeholders are rewritten here, and errors are raised as the `sqlite3`
exception classes the stores already catch (a unique violation is `sqlite3.IntegrityError`).

Transactions are SERIALIZABLE: what SQLite's single writer gave for free (a read-then-write in
one `run` sees no concurrent change) holds across replicas too. A transaction PostgreSQL aborts
as a serialization failure or deadlock is rolled back and run again, so `fn` must not have
effects outside the connection. A lost connection is reopened on the next call; the call that
found it lost fails with `DatabaseUnavailable` (503).
"""

import contextlib
import functools
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast

from hubproxy.db.database import Database
from hubproxy.db.migrations import DatabaseError
from hubproxy.errors import DatabaseUnavailable

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)
Result = TypeVar("Result")
# Attempts of one transaction that PostgreSQL keeps aborting as a serialization conflict.
SERIALIZATION_ATTEMPTS = 30
# Database threads (and connections) per process: replicas times workers times this stays far
# below PostgreSQL's default max_connections (100) for a few replicas.
CONNECTIONS = 4


class Row(tuple[Any, ...]):
    """A result row readable like `sqlite3.Row`: `row["name"]`, `row[0]`, `keys()`, `dict(row)`."""

    __slots__ = ()
    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=64)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_names": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: "psycopg.Cursor[Any]") -> Callable[[Sequence[Any]], Row]:
    names = tuple(column.name for column in cursor.description or ())
    return _row_class(names)


@functools.lru_cache(maxsize=2048)
def placeholders(sql: str) -> str:
    """`sql` with SQLite's `?` placeholders as psycopg's `%s` (and a literal `%` doubled);
    string literals and quoted identifiers are left alone."""
    out: list[str] = []
    quote: str | None = None
    for character in sql:
        if quote is not None:
            if character == quote:
                quote = None
        elif character in "'\"":
            quote = character
        elif character == "?":
            out.append("%s")
            continue
        if character == "%":
            out.append("%%")
            continue
        out.append(character)
    return "".join(out)


def retryable(error: BaseException) -> bool:
    """A serialization failure or deadlock: PostgreSQL aborted the transaction, and running it
    again may succeed."""
    return getattr(error, "sqlstate", None) in ("40001", "40P01")


def _translate_error(error: Exception) -> Exception:
    """The `sqlite3` exception the stores catch for a psycopg error."""
    import psycopg

    if retryable(error):
        return error  # the transaction is run again
    if isinstance(error, psycopg.IntegrityError):
        return sqlite3.IntegrityError(str(error))
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return DatabaseUnavailable()
    return error


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    """Raise psycopg's errors as the ones the stores catch (`_translate_error`)."""
    try:
        yield
    except Exception as error:
        translated = _translate_error(error)
        if translated is error:
            raise
        raise translated from error


class Cursor:
    """A psycopg cursor seen as a `sqlite3.Cursor`: iteration, fetchone, fetchall, rowcount."""

    def __init__(self, cursor: "psycopg.Cursor[Row]") -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class PostgresConnection:
    """The subset of `sqlite3.Connection` the stores use, over one psycopg connection."""

    def __init__(self, connection: "psycopg.Connection[Row]") -> None:
        self.raw = connection

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        cursor = self.raw.cursor()
        with _translated_errors():
            if parameters:
                cursor.execute(placeholders(sql), tuple(parameters))
            else:
                cursor.execute(sql.replace("%", "%%") if "%" in sql else sql)
        return Cursor(cursor)

    def server_time(self) -> float:
        """The database server's clock, in seconds since the epoch: the one clock every
        replica sees alike (`cache/leases.py`)."""
        row = self.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()
        assert row is not None
        return float(row[0])

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        cursor = self.raw.cursor()
        batch = [tuple(row) for row in rows]
        with _translated_errors():
            if batch:
                cursor.executemany(placeholders(sql), batch)
        return Cursor(cursor)


def connect(url: str) -> "psycopg.Connection[Row]":
    """A psycopg connection to `url` with the stores' conversions: client-side parameter binding
    (so untyped `?` work as in SQLite), booleans stored as integers, NUMERIC (what `SUM` of
    integers gives) read back as int or float."""
    import psycopg
    from psycopg.adapt import Dumper, Loader

    class IntegerBooleanDumper(Dumper):
        oid = psycopg.adapters.types["int8"].oid

        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

        def quote(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

    class NumberLoader(Loader):
        def load(self, data: Any) -> int | float:
            value = Decimal(bytes(data).decode())
            return int(value) if value == value.to_integral_value() else float(value)

    connection = psycopg.connect(
        url,
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
        row_factory=_row_factory,
        connect_timeout=10,
    )
    connection.adapters.register_dumper(bool, IntegerBooleanDumper)
    connection.adapters.register_loader("numeric", NumberLoader)
    return cast("psycopg.Connection[Row]", connection)


def redacted(url: str) -> str:
    """`url` without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresDatabase(Database):
    """The metadata store on PostgreSQL: a few database threads, each with its own connection.

    SQLite has one writer, so one thread loses nothing there; against a server each call waits
    for a network round trip, and with one connection every request of the process would queue
    behind the slowest transaction. SERIALIZABLE transactions keep concurrent ones as correct as
    SQLite's single writer made them (a conflict is run again), so `CONNECTIONS` threads may run
    at once. Connections open lazily, one per thread, and are replaced when found lost.
    """

    def __init__(self, url: str, *, connections: int = CONNECTIONS, durable: bool = False) -> None:
        """`durable`: every commit waits for its WAL flush even where the server is set
        to `synchronous_commit = off` (the audit log: an acknowledged batch is never
        written again, so it must not vanish in a crash of the server)."""
        super().__init__(None, threads=connections)
        self.url = url
        self.durable = durable
        self._local = threading.local()
        self._opened: list[PostgresConnection] = []
        self._opened_lock = threading.Lock()
        self._migrated = False

    def _connect(self) -> PostgresConnection:
        try:
            raw = connect(self.url)
            if self.durable:
                raw.execute("SET synchronous_commit TO on")
            connection = PostgresConnection(raw)
        except Exception as error:
            raise DatabaseUnavailable() from error
        with self._opened_lock:
            self._opened.append(connection)
        return connection

    def _forget(self, connection: PostgresConnection) -> None:
        connection.raw.close()
        with self._opened_lock:
            if connection in self._opened:
                self._opened.remove(connection)

    def _open(self) -> None:
        from hubproxy.db.postgres_schema import migrate_postgres

        try:
            connection = self._connect()
        except DatabaseUnavailable as error:
            raise DatabaseError(
                f"cannot connect to database {redacted(self.url)}: {error.__cause__}"
            ) from error
        try:
            reached = migrate_postgres(connection, f"database {redacted(self.url)}")
        except BaseException:
            self._forget(connection)
            raise
        if reached:
            logger.info("database migrated to schema version %d", reached[-1])
        self._local.connection = connection
        self._migrated = True

    def _live_connection(self) -> PostgresConnection:
        if not self._migrated:
            raise DatabaseError("database is not open")
        connection: PostgresConnection | None = getattr(self._local, "connection", None)
        if connection is None or connection.raw.closed or connection.raw.broken:
            # This thread's first call, or its connection was lost (a server restart):
            # (re)connect; if that fails the call gets a 503 and the next one tries again.
            if connection is not None:
                self._forget(connection)
            self._local.connection = None
            connection = self._connect()
            self._local.connection = connection
        return connection

    def _in_transaction(
        self, function: Callable[[sqlite3.Connection], Result], begin: str
    ) -> Result:
        import psycopg

        for attempt in range(SERIALIZATION_ATTEMPTS):
            connection = self._begin(begin)
            raw = connection.raw
            try:
                result = function(cast(sqlite3.Connection, connection))
                raw.execute("COMMIT")
                return result
            except BaseException as error:
                if not raw.closed and not raw.broken:
                    with contextlib.suppress(psycopg.Error):
                        raw.execute("ROLLBACK")
                if retryable(error):
                    time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311
                    continue
                if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
                    raise DatabaseUnavailable() from error
                raise
        raise DatabaseUnavailable("The database stayed too busy to commit; retry")

    def _begin(self, begin: str) -> PostgresConnection:
        """The connection, in a transaction opened by `begin`. A connection found dead here (the
        server restarted while it was idle) is replaced at once: nothing ran on it yet."""
        import psycopg

        connection = self._live_connection()
        try:
            connection.raw.execute(begin)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            # Stays closed if reconnecting fails: this thread's next call retries.
            connection.raw.close()
            connection = self._live_connection()
            try:
                connection.raw.execute(begin)
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                raise DatabaseUnavailable() from error
        return connection

    def _transaction(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        return self._in_transaction(function, "BEGIN ISOLATION LEVEL SERIALIZABLE")

    def _read(self, function: Callable[[sqlite3.Connection], Result]) -> Result:
        # One snapshot for the whole read, as SQLite's WAL reader has.
        return self._in_transaction(function, "BEGIN ISOLATION LEVEL REPEATABLE READ")

    def _close(self) -> None:
        # At shutdown, after every call has returned: no thread is using a connection.
        self._migrated = False
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.raw.close()
