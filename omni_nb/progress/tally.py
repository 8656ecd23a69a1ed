"""What every progress display counts: done/total, per-status counts, the rate (stdlib only).

Example:
    >>> t = Tally(total=2, clock=lambda: 10.0)
    >>> t.line()
    '0/2'
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import NamedTuple, Protocol

from ..rows import STATUSES, Row

__all__ = ["Budget", "Hold", "Paint", "Snapshot", "Tally", "Throttle", "Ticker", "line_for"]

#: Colours one status count of a line: ``paint(status, "ok 110")`` -> the text to show.
Paint = Callable[[str, str], str]


class Hold(NamedTuple):
    """Why sending is held back right now, and for how long.

    Example:
        >>> Hold("the rate budget", 41.2).text()
        'waiting for the rate budget: next send in 42 s'
        >>> Hold("the rate budget", 3.0, "another caller's 5 per 2 s").text()
        "waiting for the rate budget (held by another caller's 5 per 2 s): next send in 3 s"
    """

    reason: str  # "the rate budget", or "a 429 pause"
    seconds: float
    by: str | None = None  # what holds the key: "another caller's 5 per 2 s", ...

    def text(self) -> str:
        """The words a display shows."""
        held = f" (held by {self.by})" if self.by else ""
        return f"waiting for {self.reason}{held}: next send in {math.ceil(self.seconds)} s"


class Budget(Protocol):
    """What a display asks of the rate budget (the batch builds one from its keys' limiters)."""

    def held(self) -> Hold | None:
        """Why and how long sending is held back now, or None when it is not."""
        ...

    def per_second(self) -> float | None:
        """Requests per second the budget allows (all keys), or None when unlimited."""
        ...


class Snapshot(NamedTuple):
    """A tally at one instant: every part of a display (the bar, its line, the rows under
    it) is drawn from one snapshot, so they never disagree.

    Example:
        >>> s = Snapshot(done=1, total=2, counts={"ok": 1}, rate=0.5, rows=())
        >>> s.settled, s.line()
        (1, '1/2 0.5/s ok 1')
    """

    done: int
    total: int
    counts: dict[str, int]
    rate: float
    #: The newest rows (as many as the tally keeps; none unless asked), oldest first.
    rows: tuple[Row, ...]

    @property
    def settled(self) -> int:
        """Results that are final, not ``cancelled``: how far a bar may fill."""
        return self.done - self.counts.get("cancelled", 0)

    def eta(self, per_second: float | None, hold: Hold | None = None) -> float | None:
        """Seconds until the batch is done, from the budget (see :meth:`Tally.eta`).

        Example:
            >>> Snapshot(0, 120, {}, 0.0, ()).eta(1.0)
            120.0
        """
        remaining = self.total - self.done
        if not per_second or remaining <= 0:
            return None
        return remaining / per_second + (hold.seconds if hold else 0.0)

    def line(self, hold: Hold | float | None = None, eta: float | None = None,
             paint: Paint | None = None) -> str:
        """``120/300 12.3/s ok 110, not_found 10``, then why sending waits and the ETA (see
        :meth:`Tally.line`).

        Example:
            >>> Snapshot(0, 2, {}, 0.0, ()).line(Hold("a 429 pause", 3.2), eta=75)
            '0/2 · waiting for a 429 pause: next send in 4 s · ETA 1 min 15 s'
        """
        say = paint or (lambda _status, text: text)
        if isinstance(hold, int | float):  # a bare countdown: a pause after a 429
            hold = Hold("a 429 pause", float(hold)) if hold > 0 else None
        parts = [f"{self.settled}/{self.total}"]
        if self.done:
            parts.append(f"{self.rate:.1f}/s")
        counts = ", ".join(say(s, f"{s} {self.counts[s]}") for s in STATUSES
                           if self.counts.get(s))
        if counts:
            parts.append(counts)
        text = " ".join(parts)
        if hold is not None and hold.seconds > 0:
            text += f" · {hold.text()}"
        if eta is not None:
            text += f" · ETA {_duration(eta)}"
        return text


class Tally:
    """Counts per status and the rate, updated from the batch's callback.

    The rate is over the last ``window`` seconds, not since the start: a batch that waited a
    minute for its budget shows what it does now. ``keep``: how many of the newest rows to
    keep for a display that shows them (none by default).

    Example:
        >>> t = Tally(total=2, clock=lambda: 10.0)
        >>> t.add(1, Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r"))
        >>> t.counts["ok"]
        1
    """

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic,
                 window: float = 10.0, keep: int = 0) -> None:
        self.total = total
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.window = window
        self._clock = clock
        self._start = clock()
        self._recent: deque[float] = deque()
        self._newest: deque[Row] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, done: int, row: Row) -> None:
        """Record one result."""
        with self._lock:
            self.done = done
            self.counts[row.status] += 1
            self._recent.append(self._clock())
            self._newest.append(row)

    def snapshot(self) -> Snapshot:
        """The counts, the rate and the newest rows at one instant (one lock).

        Example:
            >>> t = Tally(total=3, clock=lambda: 0.0, keep=1)
            >>> t.add(1, Row("a", None, "x", "ok", 200, "", 1, 0.1, 0, "r", "r"))
            >>> t.add(2, Row("b", None, "x", "ok", 200, "", 1, 0.1, 0, "r", "r"))
            >>> s = t.snapshot()
            >>> s.done, [r.document_id for r in s.rows]
            (2, ['b'])
        """
        with self._lock:
            return Snapshot(self.done, self.total, dict(self.counts), self._rate(),
                            tuple(self._newest))

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
        """Results per second over the last ``window`` seconds (or since the start, if less).

        Example:
            >>> now = [0.0]
            >>> t = Tally(total=9, clock=lambda: now[0], window=10.0)
            >>> row = Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r")
            >>> for i in range(5):
            ...     now[0] = float(i); t.add(i + 1, row)
            >>> now[0] = 5.0; t.rate()
            1.0
            >>> now[0] = 30.0; t.rate()  # nothing in the last 10 s
            0.0
        """
        with self._lock:
            return self._rate()

    def _rate(self) -> float:
        # Under the lock: the results of the last window over the window's length.
        now = self._clock()
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        span = min(self.window, now - self._start)
        return len(self._recent) / span if span > 0 else 0.0

    def eta(self, per_second: float | None, hold: Hold | None = None) -> float | None:
        """Seconds until the batch is done, from the budget: what remains over the rate it
        allows (plus a hold now); None when unlimited or nothing remains.

        Example:
            >>> t = Tally(total=120)
            >>> t.eta(1.0)
            120.0
        """
        return self.snapshot().eta(per_second, hold)

    def line(self, hold: Hold | float | None = None, eta: float | None = None,
             paint: Paint | None = None) -> str:
        """``120/300 12.3/s ok 110, not_found 10``, then why sending waits and the ETA.

        ``paint(status, "ok 110")`` may colour each count (a display's medium: HTML, ANSI);
        the rest of the line is digits and fixed words.

        Example:
            >>> t = Tally(total=2, clock=lambda: 10.0)
            >>> t.line(Hold("a 429 pause", 3.2), eta=75)
            '0/2 · waiting for a 429 pause: next send in 4 s · ETA 1 min 15 s'
            >>> t.add(1, Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r"))
            >>> t.line(paint=lambda status, text: f"[{text}]")
            '1/2 0.0/s [ok 1]'
        """
        return self.snapshot().line(hold, eta, paint)


class Ticker:
    """Calls ``action`` every ``every`` seconds on a daemon thread until :meth:`stop`: a wait
    and its countdown change while no result arrives, so displays redraw on their own.

    Example:
        >>> seen = []
        >>> ticker = Ticker(0.01, lambda: seen.append(1))
        >>> ticker.stop()
    """

    def __init__(self, every: float, action: Callable[[], object]) -> None:
        self._stopped = threading.Event()
        self._action = action
        self._thread = threading.Thread(target=self._run, args=(every,),
                                        name="omni_nb-progress", daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stopped.wait(every):
            try:
                self._action()
            except Exception:  # a display that cannot redraw must not end the batch
                return

    def stop(self) -> None:
        """Stop ticking (waits briefly for a redraw in progress)."""
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def line_for(tally: Tally | Snapshot, budget: Budget | None, paint: Paint | None = None) -> str:
    """The line of a tally (or of one snapshot of it) with what the budget says now: a hold,
    and the ETA it allows.

    Example:
        >>> line_for(Tally(total=2, clock=lambda: 0.0), None)
        '0/2'
    """
    snap = tally.snapshot() if isinstance(tally, Tally) else tally
    if budget is None or snap.done >= snap.total:
        return snap.line(paint=paint)
    hold = budget.held()
    return snap.line(hold, snap.eta(budget.per_second(), hold), paint)


def _duration(seconds: float) -> str:
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


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
