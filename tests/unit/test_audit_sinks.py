"""The audit sinks on their own: batching, backpressure instead of loss, retries, draining."""

import asyncio
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from hubproxy.auth.audit import (
    AuditRecord,
    FanoutSink,
    QueuedSink,
    SqliteAuditSink,
    StdoutJsonSink,
    open_audit_database,
    query_records,
    write_records,
)
from hubproxy.errors import DatabaseUnavailable


class FlakySink:
    """Fails its first `failures` writes, then records batches; can be held shut."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.closed = False

    async def emit(self, records: Sequence[AuditRecord]) -> None:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.batches.append([record.event_id for record in records])

    async def aclose(self) -> None:
        self.closed = True


def records(count: int) -> list[AuditRecord]:
    return [AuditRecord("download", event_id=f"e{number}") for number in range(count)]


def test_a_full_queue_makes_emitters_wait_and_loses_nothing() -> None:
    async def scenario() -> None:
        inner = FlakySink()
        inner.gate.clear()  # the writer is stuck (slow disk)
        sink = QueuedSink(inner, max_queued=4, batch_size=3)
        sink.start()
        # The writer takes one batch (3) and sticks; the queue then holds 4 more.
        await asyncio.wait_for(sink.emit(records(7)), 5)
        await asyncio.sleep(0.05)
        blocked = asyncio.ensure_future(sink.emit([AuditRecord("download", event_id="late")]))
        await asyncio.sleep(0.05)
        assert not blocked.done()  # backpressure, not a drop
        inner.gate.set()
        await asyncio.wait_for(blocked, 5)
        await sink.aclose()
        written = [event for batch in inner.batches for event in batch]
        assert written == [f"e{number}" for number in range(7)] + ["late"]
        assert max(len(batch) for batch in inner.batches) <= 3
        assert inner.closed

    asyncio.run(scenario())


def test_failed_writes_are_retried_until_they_succeed() -> None:
    async def scenario() -> None:
        inner = FlakySink(failures=2)
        sink = QueuedSink(inner, retry_delay=0.01)
        sink.start()
        await sink.emit(records(3))
        await sink.aclose()
        assert [event for batch in inner.batches for event in batch] == ["e0", "e1", "e2"]

    asyncio.run(scenario())


class DownDatabaseSink(FlakySink):
    """Fails its first `failures` writes as a database that is down does."""

    async def emit(self, records: Sequence[AuditRecord]) -> None:
        if self.failures:
            self.failures -= 1
            raise DatabaseUnavailable()
        self.batches.append([record.event_id for record in records])


def test_a_batch_waits_out_a_database_outage_said_once_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> DownDatabaseSink:
        inner = DownDatabaseSink(failures=5)
        sink = QueuedSink(inner, retry_delay=0.001)
        sink.start()
        await sink.emit(records(2))
        await sink.aclose()
        return inner

    with caplog.at_level(logging.INFO, logger="hubproxy.auth.audit"):
        inner = asyncio.run(scenario())
    assert inner.batches == [["e0", "e1"]]
    waits = [record for record in caplog.records if "waits" in record.getMessage()]
    assert len(waits) == 1
    assert waits[0].exc_info is None
    assert any("resumed" in record.getMessage() for record in caplog.records)


def test_sqlite_and_stdout_sinks_through_a_fanout(tmp_path: Path) -> None:
    stream = io.StringIO()

    async def scenario() -> None:
        sqlite_sink = SqliteAuditSink(tmp_path / "audit.sqlite3")
        await sqlite_sink.open()
        sink = QueuedSink(FanoutSink([sqlite_sink, StdoutJsonSink(stream)]))
        sink.start()
        record = AuditRecord(
            "download", actor_kind="user", actor_name="alice", repo_id="acme/m", bytes_sent=5
        )
        await sink.emit([record, AuditRecord("upload", decision="deny", actor_name="bob")])
        await sink.aclose()

    asyncio.run(scenario())
    lines = [json.loads(line)["audit"] for line in stream.getvalue().splitlines()]
    assert [(line["action"], line["decision"]) for line in lines] == [
        ("download", "allow"),
        ("upload", "deny"),
    ]
    connection = open_audit_database(tmp_path / "audit.sqlite3")
    stored = query_records(connection)
    assert [(r.action, r.actor_name, r.bytes_sent) for r in stored] == [
        ("download", "alice", 5),
        ("upload", "bob", 0),
    ]
    assert [r.actor_name for r in query_records(connection, denied=True)] == ["bob"]
    assert [r.action for r in query_records(connection, limit=1)] == ["upload"]
    connection.close()


def test_every_audited_route_uses_a_known_action() -> None:
    """Actions are metric label values: the route table may only use the bounded set."""
    from hubproxy.auth.audit import AUDITED_ACTIONS
    from hubproxy.hf_api.endpoints import ENDPOINTS

    used = {name for endpoint in ENDPOINTS.values() for name in endpoint.audited.values()}
    assert used
    assert used <= set(AUDITED_ACTIONS)


def test_records_are_filtered_by_namespace_without_wildcards(tmp_path: Path) -> None:
    connection = open_audit_database(tmp_path / "audit.sqlite3")
    repos = ["a_b", "a_b/model", "axb/model", "a_bc/model", "other/model", None]
    write_records(connection, [AuditRecord("read", repo_id=repo) for repo in repos])
    found = query_records(connection, namespaces={"a_b"})
    assert [record.repo_id for record in found] == ["a_b", "a_b/model"]
    assert query_records(connection, namespaces=set()) == []
    connection.close()


def test_text_fields_are_bounded_when_a_record_reaches_a_sink(tmp_path: Path) -> None:
    """Records are built unbounded (cheap; most are never emitted) and cut to their bounds by
    whatever accepts them: the queue, the SQLite writer, the JSON lines sink."""
    huge = "u" * 50_000

    def record() -> AuditRecord:
        return AuditRecord("download", user_agent=huge, path=huge, reason="bad \ud800 text")

    async def scenario() -> None:
        inner = FlakySink()
        queued = QueuedSink(inner)
        queued.start()
        handed = record()
        await queued.emit([handed])
        await queued.aclose()
        assert len(handed.user_agent or "") == 512
        assert len(handed.path or "") == 1024
        assert handed.reason == "bad ? text"

    asyncio.run(scenario())
    stream = io.StringIO()
    asyncio.run(StdoutJsonSink(stream).emit([record()]))
    written = json.loads(stream.getvalue())["audit"]
    assert len(written["user_agent"]) == 512
    assert written["user_agent"].endswith("…")
    connection = open_audit_database(tmp_path / "audit.db")
    write_records(connection, [record()])
    (stored,) = query_records(connection)
    assert len(stored.user_agent or "") == 512
    assert len(stored.path or "") == 1024
    connection.close()
