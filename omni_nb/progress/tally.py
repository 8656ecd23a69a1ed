"""What every progress display counts: done/total, per-status counts, the rate (stdlib only).

Example:
    >>> t = Tally(total=2, clock=lambda: 10.0)
    >>> t.line()
    '0/2'
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from ..rows import STATUSES, Row

__all__ = ["Tally", "Throttle"]


class Tally:
    """Counts per status and the rate, updated from the batch's callback.

    Example:
        >>> t = Tally(total=2, clock=lambda: 10.0)
        >>> t.add(1, Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r"))
        >>> t.counts["ok"]
        1
    """

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.done = 0
        self.counts: Counter[str] = Counter()
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()

    def add(self, done: int, row: Row) -> None:
        """Record one result."""
        with self._lock:
            self.done = done
            self.counts[row.status] += 1

    @property
    def settled(self) -> int:
        """Results that are final, not ``cancelled``: how far a bar may fill (a stopped batch
        must never show a full bar for work that was not done).

        Example:
            >>> t = Tally(total=2)
            >>> t.add(1, Row("d", None, None, "cancelled", None, "", 0, 0.0, 0, "a", "r"))
            >>> (t.done, t.settled)
            (1, 0)
        """
        with self._lock:
            return self.done - self.counts["cancelled"]

    def rate(self) -> float:
        """Results per second so far."""
        elapsed = self._clock() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, waiting: float | None = None) -> str:
        """``120/300 12.3/s ok 110, not_found 10`` (and a 429 countdown when given).

        Example:
            >>> t = Tally(total=2, clock=lambda: 10.0)
            >>> t.line(waiting=3.2)
            '0/2 (rate limited: resuming in 4 s)'
        """
        with self._lock:
            parts = [f"{self.done - self.counts['cancelled']}/{self.total}"]
            if self.done:
                parts.append(f"{self.rate():.1f}/s")
            counts = ", ".join(f"{s} {self.counts[s]}" for s in STATUSES if self.counts[s])
        if counts:
            parts.append(counts)
        text = " ".join(parts)
        if waiting is not None and waiting > 0:
            text += f" (rate limited: resuming in {int(waiting) + 1} s)"
        return text


class Throttle:
    """Says when a display may redraw: at most every ``interval`` seconds, always at the end.

    A resumed 100k batch calls back 100k times; redrawing each time would flood a notebook's
    output or the browser's widget channel.

    Example:
        >>> now = [0.0]
        >>> th = Throttle(1.0, clock=lambda: now[0])
        >>> th.due(), th.due(), th.due(final=True)
        (True, False, True)
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last = float("-inf")

    def due(self, final: bool = False) -> bool:
        """True when a redraw should happen now (and counts it as done)."""
        now = self._clock()
        if final or now - self._last >= self.interval:
            self._last = now
            return True
        return False
