"""Unique, unguessable-enough identifiers for requests and audit events, without a syscall.

`secrets.token_hex` reads the OS random source on every call, and every request needs one or
two ids. Ids need uniqueness, not secrecy: a random 32-bit prefix per process and a counter
give 16 hex digits that do not repeat within a process and are very unlikely to meet another
process's.

A forked process (a worker of `serve --workers N`) draws a prefix of its own: inherited from the
supervisor, the workers' ids would repeat one another, and the audit log, whose `event_id` is
unique in the shared database, would keep only the first of each.
"""

import itertools
import os
import secrets

_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def _start_afresh() -> None:
    global _PREFIX, _COUNTER
    _PREFIX = secrets.token_hex(4)
    _COUNTER = itertools.count(1)


os.register_at_fork(after_in_child=_start_afresh)


def new_id() -> str:
    """16 hex digits, unique within this process."""
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFFFFFF:08x}"
