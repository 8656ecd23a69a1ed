"""A text progress bar for terminals and headless notebook runs (stdlib only).

Shared by the command line and the magic; the widget draws its own bar from the same
:class:`~omni_nb.progress.tally.Tally`.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..rows import Row
from .tally import Budget, Tally, Throttle, line_for

__all__ = ["TextProgress"]


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
        budget: Budget | None = None,
        carriage_return: bool = True,
    ) -> None:
        self.tally = Tally(total)
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._budget = budget
        self._cr = carriage_return
        self._throttle = Throttle(interval)

    def __call__(self, done: int, total: int, row: Row) -> None:
        self.tally.total = total
        self.tally.add(done, row)
        if self._throttle.due(final=done == total):
            self.draw(final=done == total)

    def draw(self, final: bool = False) -> None:
        """Write the current line."""
        t = self.tally
        filled = int(self._width * t.settled / t.total) if t.total else self._width
        bar = "#" * filled + "-" * (self._width - filled)
        text = f"[{bar}] {line_for(t, None if final else self._budget)}"
        if self._cr:
            self._stream.write("\r" + text + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
