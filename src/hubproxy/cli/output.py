"""Output shared by the CLI commands: aligned tables for people, JSON for scripts."""

import json
import time
from collections.abc import Sequence
from typing import Any

import typer


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
