"""The one text progress renderer: terminals (the CLI, terminal IPython) and headless notebook
runs (stdlib only). The widget renderer (:mod:`.live`) has the same interface and colour rule.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from ..rows import Row
from .style import outcome, paint_ansi, tone_of
from .tally import Budget, Tally, Throttle, Ticker, line_for

__all__ = ["LINE_INTERVAL", "TextProgress", "is_terminal"]

#: Seconds between two lines where the line cannot be redrawn in place (not a terminal).
LINE_INTERVAL = 60.0


class TextProgress:
    """``progress=`` callback drawing ``[#####-----] 120/300 ...`` on one line.

    Redraws at most every ``interval`` seconds (and always for the last item), so a 100k
    batch does not flood a notebook's output. With ``tick`` (seconds) and a ``budget`` it
    also redraws on its own while sending waits (the countdown changes, no result arrives).

    On a terminal the line is redrawn in place (a carriage return). A stream that is not one
    (a log, a pipe, a headless notebook's captured output) gets whole lines instead, at most
    one every ``LINE_INTERVAL`` seconds and the last: a few lines for a long batch, never
    one per redraw (``carriage_return=`` forces either way).
    ``colour``: ANSI colours by :mod:`.style`'s rule (default: when ``stream`` is a terminal
    and ``NO_COLOR`` is not set). Interface shared with the widget renderer: :meth:`start`,
    :meth:`update` (also the call), :meth:`tick`, :meth:`finish`.

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
        total: int = 0,
        *,
        stream: TextIO | None = None,
        width: int = 24,
        interval: float = 0.2,
        budget: Budget | None = None,
        carriage_return: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick: float | None = None,
        colour: bool | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        if carriage_return is None:
            carriage_return = is_terminal(self._stream)
        self._cr = carriage_return
        # A line that cannot be redrawn in place stays in the output: few of them.
        self._interval = interval if carriage_return else max(interval, LINE_INTERVAL)
        self._clock = clock
        self._every = tick
        if colour is None:
            colour = is_terminal(self._stream) and "NO_COLOR" not in os.environ
        self._colour = colour
        self._lock = threading.Lock()
        self._ticker: Ticker | None = None
        self.start(total, budget)

    def start(self, total: int, budget: Budget | None = None) -> None:
        """Begin (again) for a batch of ``total`` items; ``budget`` says when sending waits."""
        self.stop_ticking()
        self.tally = Tally(total, clock=self._clock)
        self._budget = budget
        self._throttle = Throttle(self._interval, clock=self._clock)
        self._ended = False
        if self._every is not None and budget is not None:
            self._ticker = Ticker(self._every, self.tick)

    def update(self, done: int, total: int, row: Row) -> None:
        """Count one result; redraw when the throttle allows (always for the last)."""
        self.tally.total = total
        self.tally.add(done, row)
        if self._throttle.due(final=done == total):
            with self._lock:
                self.draw(final=done == total)

    __call__ = update

    def tick(self) -> None:
        """Redraw now (the ticker's call: a wait's countdown and the ETA change); where
        lines cannot be redrawn in place, only when the throttle allows a new line."""
        if not self._cr and not self._throttle.due():
            return
        with self._lock:
            self.draw()

    def finish(self, status: str | None = None) -> None:
        """Stop ticking and end the line (``status``: how the batch ended, if not ``done``
        as the counts say; a stopped batch's line is drawn final here)."""
        self.stop_ticking()
        stopped = status not in (None, "done")
        with self._lock:
            # Interrupted or stopped early: end the line honestly (again, in the stopped
            # colour, when the last result was drawn before the batch failed).
            if not self._ended or stopped:
                self.draw(final=True, stopped=stopped)

    def stop_ticking(self) -> None:
        """Stop the ticker, if one runs."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def draw(self, final: bool = False, *, stopped: bool = False) -> None:
        """Write the current line."""
        t = self.tally
        filled = int(self._width * t.settled / t.total) if t.total else self._width
        held = not final and self._budget is not None and self._budget.held() is not None
        bar = "#" * filled
        paint = None
        if self._colour:
            bar = paint_ansi(outcome(t.counts, done=t.done, total=t.total, final=final,
                                     held=held, stopped=stopped), bar)
            paint = _ansi_count
        bar += "-" * (self._width - filled)
        text = f"[{bar}] {line_for(t, None if final else self._budget, paint)}"
        if self._cr:
            self._stream.write("\r" + text + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
        self._ended = final


def _ansi_count(status: str, text: str) -> str:
    return paint_ansi(tone_of(status), text)


def is_terminal(stream: object) -> bool:
    """True when ``stream`` is a terminal (where a line can be redrawn in place).

    Example:
        >>> import io
        >>> is_terminal(io.StringIO()), is_terminal(object())
        (False, False)
    """
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # a stream without a file (or a closed one)
        return False
