"""Output shared by the CLI commands: aligned tables for people, JSON for scripts, progress
bars on terminals."""

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from hubproxy.progress import NO_PROGRESS
from hubproxy.progress import Progress as ProgressReporter


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows (the first is the header) as lines with aligned columns."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def emit(as_json: bool, document: Any, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    else:
        for line in lines:
            typer.echo(line)


def when(timestamp: float | None) -> str:
    """A local time for tables, `-` for none."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


class _BarProgress:
    """`hubproxy.progress.Progress` drawn as one rich bar on stderr."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.task: TaskID | None = None

    def begin(self, description: str, total: int | None, *, unit: str = "bytes") -> None:
        if self.task is not None:
            self.bars.remove_task(self.task)
        self.task = self.bars.add_task(description, total=total, unit=unit)

    def advance(self, amount: int = 1) -> None:
        if self.task is not None:
            self.bars.advance(self.task, amount)


@contextlib.contextmanager
def progress_bar() -> Iterator[ProgressReporter]:
    """A progress bar for long work, on stderr and only on a terminal: piped or redirected
    output stays exactly the records the command prints on stdout."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield NO_PROGRESS
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bars:
        yield _BarProgress(bars)
