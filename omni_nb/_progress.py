"""A text progress bar for terminals and headless notebook runs (stdlib only).

Shared by the command line and the magic; the widget draws its own bar from the same
:class:`Tally`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from .ledger import STATUSES, Row

__all__ = ["Tally", "TextProgress"]


class Tally:
    """Counts per status and the rate, updated from the batch's callback.

    Example:
        >>> t = Tally(total=2, clock=lambda: 10.0)
        >>> t.line()
        '0/2'
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
            parts = [f"{self.done}/{self.total}"]
            if self.done:
                parts.append(f"{self.rate():.1f}/s")
            counts = ", ".join(f"{s} {self.counts[s]}" for s in STATUSES if self.counts[s])
        if counts:
            parts.append(counts)
        text = " ".join(parts)
        if waiting is not None and waiting > 0:
            text += f" (rate limited: resuming in {int(waiting) + 1} s)"
        return text


class TextProgress:
    """``progress=`` callback drawing ``[#####-----] 120/300 ...`` on one line.

    Redraws at most every ``interval`` seconds (and always for the last item), so a 100k
    batch does not flood a notebook's output.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = TextProgress(1, stream=out)
        >>> bar(1, 1, Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "https://a/api", "r"))
        >>> "1/1" in out.getvalue()
        True
    """

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO | None = None,
        width: int = 24,
        interval: float = 0.2,
        waiting: Callable[[], float | None] | None = None,
        carriage_return: bool = True,
    ) -> None:
        self.tally = Tally(total)
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._interval = interval
        self._waiting = waiting
        self._cr = carriage_return
        self._last_draw = 0.0

    def __call__(self, done: int, total: int, row: Row) -> None:
        self.tally.total = total
        self.tally.add(done, row)
        now = time.monotonic()
        if done == total or now - self._last_draw >= self._interval:
            self._last_draw = now
            self.draw(final=done == total)

    def draw(self, final: bool = False) -> None:
        """Write the current line."""
        t = self.tally
        filled = int(self._width * t.done / t.total) if t.total else self._width
        bar = "#" * filled + "-" * (self._width - filled)
        waiting = self._waiting() if self._waiting else None
        text = f"[{bar}] {t.line(waiting)}"
        if self._cr:
            self._stream.write("\r" + text + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
