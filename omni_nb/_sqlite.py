"""What the two SQLite files (the results ledger and the rate-budget store) share.

Example:
    >>> when_unlocked(lambda: 42, timeout_s=1.0)
    42
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["when_unlocked"]

T = TypeVar("T")


def when_unlocked(step: Callable[[], T], timeout_s: float) -> T:
    """Run ``step``, again while another process holds the database, for up to ``timeout_s``.

    Switching a new file to WAL answers "database is locked" at once, without waiting on the
    busy timeout, when a second process opens the same new file at the same moment (two
    kernels started together).
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
