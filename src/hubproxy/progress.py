"""Progress of long operator work (verify, gc, bundles), reported without knowing who shows it.

The cache and bundle code call a `Progress`; the CLI passes one that draws a rich progress bar
on a terminal (`cli/output.py`), everything else the silent `NO_PROGRESS`.
"""

from typing import Protocol


class Progress(Protocol):
    def begin(self, description: str, total: int | None, *, unit: str = "bytes") -> None:
        """A new phase of `total` units (None: unknown) starts."""

    def advance(self, amount: int = 1) -> None:
        """`amount` more units of the current phase are done."""


class _Silent:
    def begin(self, description: str, total: int | None, *, unit: str = "bytes") -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


NO_PROGRESS: Progress = _Silent()
