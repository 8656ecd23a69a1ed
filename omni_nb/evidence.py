"""Evidence of ownership: when a run's requests could have reached Omni, and how far Omni's
clock is from this machine's, so an undo archives a draft only when the run made it.

Omni's Discard draft takes no draft id and its Create draft answers with a draft someone
else made, so the one thing that says a draft is the run's is time: the listing's
``createdAt`` (Omni's clock) against the moments the run's requests were at Omni's
application (this machine's clock). This module keeps both sides, standard library only:

* :class:`Attempt`: one request's interval, from its send to its answer (or to its deadline
  when no answer came), and whether it could have reached the application at all (a 429
  from the firewall could not).
* :class:`ClockBound`: the offset of Omni's clock from this machine's, bounded by answers'
  ``Date`` headers; :class:`ServerClock` intersects the bounds of every answer it sees.
* :class:`Evidence`: a row's attempts and the clock bound it was recorded with, kept in the
  ledger (:meth:`Evidence.text`); :func:`judge` says whether a ``createdAt`` falls inside
  one of the attempts and, when not, why.

Example:
    >>> ev = Evidence((Attempt(10_000_000, 10_200_000, 200),), ClockBound(-0.5, 0.5))
    >>> judge(10_100_000, ev) is None                 # made while the request was there
    True
    >>> judge(5_000_000, ev).reason
    'made before the run'
"""

from __future__ import annotations

import email.utils
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

__all__ = [
    "ALLOWANCE_S",
    "WIDEN_S",
    "Attempt",
    "ClockBound",
    "Evidence",
    "Judgement",
    "Logged",
    "ServerClock",
    "judge",
    "meet_all",
]

#: The clock allowance when no bound was measured (no ``Date`` header, or bounds that do
#: not overlap): Omni's clock is taken to be within 2 s of this machine's either way.
ALLOWANCE_S = 2.0
#: How much each attempt's interval is widened on both sides before a ``createdAt`` is
#: compared with it: Omni cuts ``createdAt`` to the millisecond, and the send stamp and the
#: answer's arrival are read a few milliseconds from the moments they stand for.
WIDEN_S = 0.01


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request of a row: sent at ``sent_us``, answered (or given up at its deadline) at
    ``answered_us`` (microseconds since the epoch, this machine's clock), the answer's
    ``status`` (None: no answer came), and whether it could have reached Omni's application
    (``reached``: False for a 429 from the firewall).

    Example:
        >>> Attempt(1, 2, 429, reached=False).reached
        False
    """

    sent_us: int
    answered_us: int
    status: int | None = None
    reached: bool = True


@dataclass(frozen=True, slots=True)
class ClockBound:
    """Omni's clock minus this machine's, in seconds: between ``lo`` and ``hi``.

    Example:
        >>> b = ClockBound.of_answer("Thu, 01 Jan 1970 00:00:15 GMT", 10.25, 10.5)
        >>> b
        ClockBound(lo=4.5, hi=5.75)
        >>> b.meet(ClockBound(5.5, 9.0))
        ClockBound(lo=5.5, hi=5.75)
        >>> b.meet(ClockBound(7.0, 9.0)) is None
        True
    """

    lo: float
    hi: float

    @classmethod
    def of_answer(cls, date: str | None, sent: float, answered: float) -> ClockBound | None:
        """The bound one answer gives: its ``Date`` (whole seconds, stamped by Omni at some
        moment between ``sent`` and ``answered``, wall-clock seconds here); None without a
        readable ``Date``."""
        if not date:
            return None
        try:
            stamped = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        # Omni's clock read some t in [stamped, stamped + 1) while ours read [sent, answered].
        return cls(stamped - answered, stamped + 1.0 - sent)

    def meet(self, other: ClockBound) -> ClockBound | None:
        """Both bounds at once; None when they do not overlap (a clock stepped meanwhile)."""
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        return ClockBound(lo, hi) if lo <= hi else None

    @property
    def width(self) -> float:
        """How tight the bound is, in seconds."""
        return self.hi - self.lo


class ServerClock:
    """The running intersection of every answer's clock bound (thread-safe).

    Once two bounds fail to overlap (a clock was stepped), :meth:`bound` is None for good:
    evidence then falls back to :data:`ALLOWANCE_S`, and says so.

    Example:
        >>> clock = ServerClock()
        >>> clock.saw("Thu, 01 Jan 1970 00:00:10 GMT", 9.75, 10.0)    # offset 0 to 1.25 s
        >>> clock.saw("Thu, 01 Jan 1970 00:00:11 GMT", 10.5, 10.75)   # offset 0.25 to 1.5 s
        >>> clock.bound(), clock.answers
        (ClockBound(lo=0.25, hi=1.25), 2)
        >>> clock.saw(None, 11.0, 11.1)        # no Date: nothing learned
        >>> clock.answers
        2
    """

    __slots__ = ("_bound", "_lock", "answers", "disagreed")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bound: ClockBound | None = None
        self.answers = 0
        self.disagreed = False

    def saw(self, date: str | None, sent: float, answered: float) -> None:
        """Take one answer's ``Date`` with the wall-clock moments it was sent and answered."""
        bound = ClockBound.of_answer(date, sent, answered)
        if bound is None:
            return
        with self._lock:
            self.answers += 1
            if self.disagreed:
                return
            met = bound if self._bound is None else self._bound.meet(bound)
            self.disagreed = met is None
            self._bound = met

    def bound(self) -> ClockBound | None:
        """The bound so far (None: no ``Date`` seen, or bounds that did not overlap)."""
        with self._lock:
            return self._bound


class Logged(Protocol):
    """One attempt as the client logs it (:class:`omni_nb.client.AttemptInterval`)."""

    @property
    def sent_at(self) -> float: ...
    @property
    def answered_at(self) -> float: ...
    @property
    def status(self) -> int | None: ...
    @property
    def reached_app(self) -> bool: ...
    @property
    def answered(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a row keeps to prove later which draft its call made: its attempts and the
    clock bound measured when it was recorded (None: none measured).

    Example:
        >>> ev = Evidence((Attempt(1, 2, 200),), ClockBound(-0.25, 0.5))
        >>> Evidence.from_text(ev.text()) == ev
        True
        >>> Evidence.from_text(None) is None, Evidence.from_text("garbage") is None
        (True, True)
    """

    attempts: tuple[Attempt, ...]
    clock: ClockBound | None = None

    @classmethod
    def of_log(cls, log: Sequence[Logged]) -> Evidence | None:
        """A call's attempt log as evidence (no clock bound yet); None for an empty log.

        Example:
            >>> from omni_nb.client import AttemptInterval
            >>> Evidence.of_log([AttemptInterval(1.0, 2.0, None, True, False)]).attempts
            (Attempt(sent_us=1000000, answered_us=2000000, status=None, reached=True),)
        """
        if not log:
            return None
        return cls(tuple(Attempt(int(a.sent_at * 1e6), int(a.answered_at * 1e6),
                                 a.status if a.answered else None, a.reached_app)
                         for a in log))

    def text(self) -> str:
        """The evidence as the ledger stores it (compact JSON)."""
        rows = [[a.sent_us, a.answered_us, a.status, int(a.reached)] for a in self.attempts]
        clock = None if self.clock is None else [self.clock.lo, self.clock.hi]
        return json.dumps({"a": rows, "c": clock}, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str | None) -> Evidence | None:
        """The evidence a ledger row holds; None for none (an older omni_nb) or unreadable."""
        if not text:
            return None
        try:
            data = json.loads(text)
            attempts = tuple(Attempt(int(s), int(a), None if st is None else int(st), bool(r))
                             for s, a, st, r in data["a"])
            c = data.get("c")
            clock = None if c is None else ClockBound(float(c[0]), float(c[1]))
        except (ValueError, TypeError, KeyError):
            return None
        return cls(attempts, clock)

    def with_clock(self, clock: ClockBound | None) -> Evidence:
        """The same attempts, judged with ``clock`` (a run's bound, tighter than a row's).

        Example:
            >>> Evidence(()).with_clock(ClockBound(0, 1)).clock
            ClockBound(lo=0, hi=1)
        """
        return Evidence(self.attempts, clock)


def meet_all(bounds: list[ClockBound | None]) -> tuple[ClockBound | None, str]:
    """The intersection of the clock bounds of a run's rows, and what to say about it.

    Example:
        >>> meet_all([ClockBound(0, 2), None, ClockBound(1, 3)])
        (ClockBound(lo=1, hi=2), '')
        >>> meet_all([None])[1]
        'no Date header was measured: a 2 s allowance for the clocks'
        >>> meet_all([ClockBound(0, 1), ClockBound(2, 3)])[1]
        "the answers' Date headers disagree: a 2 s allowance for the clocks"
    """
    known = [b for b in bounds if b is not None]
    if not known:
        return None, f"no Date header was measured: a {ALLOWANCE_S:g} s allowance for the clocks"
    met: ClockBound | None = known[0]
    for bound in known[1:]:
        met = None if met is None else met.meet(bound)
    if met is None:
        return None, (f"the answers' Date headers disagree: a {ALLOWANCE_S:g} s allowance "
                      "for the clocks")
    return met, ""


@dataclass(frozen=True, slots=True)
class Judgement:
    """Why a draft is not the row's: ``reason`` (the words before the colon of a skipped
    row's message) and ``detail``.

    Example:
        >>> Judgement("made after the run", "x").message("d1")
        'made after the run: draft d1 x'
    """

    reason: str
    detail: str

    def message(self, draft_id: str) -> str:
        """The skipped row's message."""
        return f"{self.reason}: draft {draft_id} {self.detail}"


def judge(created_us: int, evidence: Evidence) -> Judgement | None:
    """None when a draft created at ``created_us`` (Omni's clock) was made while one of the
    evidence's attempts could have been at Omni's application; else why not.

    The creation moment in this machine's clock lies between ``created - hi`` and
    ``created + 1 ms - lo`` (the clock bound, or :data:`ALLOWANCE_S` either way when none),
    each attempt widened by :data:`WIDEN_S`.

    Example:
        >>> ev = Evidence((Attempt(0, 100_000, 429, reached=False),
        ...                Attempt(3_000_000, 3_100_000, 200)), ClockBound(0.0, 0.0))
        >>> judge(1_000_000, ev).reason
        'made while the run waited out a 429'
        >>> judge(4_000_000, ev).reason
        'made after the run'
    """
    clock = evidence.clock or ClockBound(-ALLOWANCE_S, ALLOWANCE_S)
    earliest = created_us - int((clock.hi + WIDEN_S) * 1e6)
    latest = created_us + 1_000 - int((clock.lo - WIDEN_S) * 1e6)
    if any(a.reached and a.sent_us <= latest and earliest <= a.answered_us
           for a in evidence.attempts):
        return None
    when = f"was created {_iso(created_us)} by Omni's clock; {_said(evidence)}"
    ordered = sorted(evidence.attempts, key=lambda a: a.sent_us)
    if not ordered or latest < ordered[0].sent_us:
        return Judgement("made before the run", when)
    if earliest > ordered[-1].answered_us:
        return Judgement("made after the run", when)
    before = [a for a in ordered if a.answered_us < earliest][-1:] or ordered[:1]
    status = before[0].status
    if status == 429:
        return Judgement("made while the run waited out a 429", when)
    why = "a lost answer" if status is None else f"a {status}"
    return Judgement(f"made while the run waited to retry after {why}", when)


def _said(evidence: Evidence) -> str:
    spans = ", ".join(f"{_iso(a.sent_us)}-{_iso(a.answered_us)[11:]}"
                      + ("" if a.reached else " (refused by the firewall)")
                      for a in evidence.attempts[:4])
    more = f" and {len(evidence.attempts) - 4} more" if len(evidence.attempts) > 4 else ""
    clock = evidence.clock
    offset = (f"Omni's clock {clock.lo:+.2f} to {clock.hi:+.2f} s from ours" if clock else
              f"no clock measured: {ALLOWANCE_S:g} s allowed either way")
    return f"the run's requests were at Omni {spans}{more} by this machine's clock ({offset})"


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds")
