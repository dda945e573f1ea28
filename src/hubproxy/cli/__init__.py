"""The `hubproxy` command: `serve` now; `admin`, `mirror` and `cache` join it as they land."""

from hubproxy.cli.main import app, main

__all__ = ["app", "main"]
