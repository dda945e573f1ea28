"""Unique, unguessable-enough identifiers for requests and audit events, without a syscall.

`secrets.token_hex` reads the OS random source on every call, and every request needs one or
two ids. Ids need uniqueness, not secrecy: a random 32-bit prefix per process and a counter
give 16 hex digits that do not repeat within a process and are very unlikely to meet another
process's.
"""

import itertools
import secrets

_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def new_id() -> str:
    """16 hex digits, unique within this process."""
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFFFFFF:08x}"
