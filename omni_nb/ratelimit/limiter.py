"""The Limiter: one key's budget, in this process or shared through the budget store.

A caller asks to send; the limiter claims a slot at *now* when the key's log allows it (one
atomic step, in memory under a lock or in one SQLite transaction), else says how long to
wait, and the caller sleeps and asks again. Nothing is reserved ahead, so the allowance in
force when a request actually goes is the one that spaces it (the first window's slots are
not fixed before any round trip is known), and a process killed while waiting holds
nothing. Threads and any number of event loops share one limiter: it has no loop-bound
primitive. The maths lives in :mod:`.log`.

No maintained library fits: ``aiolimiter`` is a leaky bucket (a 2N burst) and async only;
``limits``/``pyrate-limiter`` share neither a budget across threads, loops and processes
with a common pause, nor learn from 429s.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import statistics
import threading
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from . import log
from .limits import RateLimit
from .store import BudgetStore, StoreError

__all__ = ["BudgetStoreWarning", "Limiter"]

FLOOR_S = 0.05  # scheduling on a busy machine shifts a send by a few tens of milliseconds
POLL_S = 0.25  # a waiter re-reads the shared store at least this often
T = TypeVar("T")

# The slot the current thread or task last claimed, for the answer it gets:
# (limiter id, wall-clock send time, kind).
_claimed: contextvars.ContextVar[tuple[int, float, int] | None] = contextvars.ContextVar(
    "omni_nb_ratelimit_claim", default=None
)


class BudgetStoreWarning(UserWarning):
    """The shared budget store cannot be used: this process keeps its own budget."""


class Limiter:
    """A key's sliding-log budget; pass a fake ``clock`` to test it without sleeping.

    ``limit=None`` spaces nothing until a 429 teaches a limit. ``margin`` fixes the base
    allowance (seconds added to each window) instead of estimating it from round trips.
    ``store`` and ``key`` share the budget with every process using the same store file.

    Example:
        >>> t = [0.0]
        >>> lim = Limiter(RateLimit(2, 10.0), clock=lambda: t[0], margin=0.0)
        >>> lim.acquire(lambda s: None), lim.acquire(lambda s: None), lim.next_send_in()
        (0.0, 0.0, 10.0)
    """

    # interface: implemented by the rate budget. Defined first in the class, so that where a
    # merge keeps these beside the real methods, the real ones (defined later) win.
    def sent(self, at: float | None = None) -> None:
        """The claim this thread or task made last was written to the wire at ``at``
        (``time.time()``; None: now)."""

    def unsent(self) -> None:
        """The claim this thread or task made last never left: drop it."""

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Callable[[], float] | None = None,
        margin: float | None = None,
        store: BudgetStore | None = None,
        key: str = "",
    ) -> None:
        self.limit = limit
        self._clock = clock or time.time
        self._mono = clock or time.monotonic
        self._margin = margin
        self._store, self._key = store, key
        self._budget = log.Budget()  # the per-process budget (and the store's last view)
        self._rtts: deque[float] = deque(maxlen=64)
        self._lock = threading.Lock()
        self._hint, self._hint_at = -math.inf, -math.inf
        self._burst_at = self._last_claim = -math.inf  # first claim after an idle window

    # -- settings and views -------------------------------------------------------------------

    def use(self, limit: RateLimit | None) -> None:
        """Count against ``limit`` from now on (the newest client of a key sets its limit).

        Example:
            >>> lim = Limiter(None)
            >>> lim.use(RateLimit(5, 1.0)); lim.limit
            RateLimit(requests=5, per=1.0)
        """
        with self._lock:
            self.limit = limit
            self._hint = -math.inf

    @property
    def shared(self) -> bool:
        """True while the budget is shared through the store (False: this process only)."""
        return self._store is not None

    @property
    def effective_limit(self) -> RateLimit | None:
        """The limit in force: the learned one while it holds, else the configured one."""
        with self._lock:
            b = self._budget
            learned = b.learned if b.learned and b.learned[2] > self._clock() else None
        return RateLimit(learned[0], learned[1]) if learned else self.limit

    @property
    def learned_limit(self) -> RateLimit | None:
        """The limit learned from 429s, while it holds (None otherwise)."""
        with self._lock:
            learned = self._budget.learned
            if learned is None or learned[2] <= self._clock():
                return None
        return RateLimit(learned[0], learned[1])

    def allowance(self) -> float:
        """``J``, the seconds added to each window: the delay spread estimated from round
        trips (twice the 10th percentile, at least :data:`FLOOR_S`) plus what 429s taught."""
        with self._lock:
            now = self._clock()
            return log.allowance(self._budget, self._base(),
                                 now, log.limits_in_force(self._budget, self.limit, now))

    def _base(self) -> float:
        if self._margin is not None:
            return self._margin
        if not self._rtts:
            return FLOOR_S
        low = statistics.quantiles(self._rtts, n=10)[0] if len(self._rtts) > 1 else self._rtts[0]
        base = max(FLOOR_S, 2.0 * low)
        # A burst's first window goes over fresh connections (TCP and TLS set-up before the
        # request is written), the next over warm ones: spacing the second window from the
        # first, allow the longest round trip seen (set-up included) once.
        if self._clock() < self._burst_at + 2.0 * self._window():
            base = max(base, max(self._rtts))
        return base

    def _window(self) -> float:
        learned = self._budget.learned
        pers = [lim.per for lim in (self.limit,) if lim is not None]
        return min([*pers, *([learned[1]] if learned else [])], default=log.REFERENCE_WINDOW)

    @property
    def paused_until(self) -> float:
        """The monotonic time before which nobody sends after a 429 (-inf when never paused)."""
        with self._lock:
            b = self._budget
            until = max(b.paused_until, b.probe.next_at if b.probe else -math.inf)
            if until == -math.inf:
                return until
            return self._mono() + (until - self._clock())

    def next_send_in(self, ahead: int = 0) -> float:
        """Seconds until this key could send (0 if now), after ``ahead`` callers already
        waiting take the slots before it; no slot is taken.

        Example:
            >>> t = [0.0]
            >>> lim = Limiter(RateLimit(2, 10.0), clock=lambda: t[0], margin=0.0)
            >>> lim.next_send_in(), lim.next_send_in(ahead=1), lim.next_send_in(ahead=2)
            (0.0, 0.0, 10.0)
        """

        def peek(b: log.Budget, now: float, limits: list[RateLimit], allow: float) -> float:
            return log.earliest_after(b, now, limits, allow, ahead) - now

        return max(0.0, self._run(peek))

    # -- one atomic step on the budget ------------------------------------------------------

    def _run(self, step: Callable[[log.Budget, float, list[RateLimit], float], T]) -> T:
        """``step(budget, now, limits, allowance)`` under the lock, in the store's transaction
        when shared (falling back to this process's budget, with a warning, if it fails)."""
        with self._lock:
            base = self._base()

            def apply(b: log.Budget) -> T:
                now = self._clock()
                limits = log.limits_in_force(b, self.limit, now)
                allow = log.allowance(b, base, now, limits)
                log.prune(b, now, log.horizon(limits, allow, b), log.most_kept(limits))
                result = step(b, now, limits, allow)
                self._budget = b
                return result

            if self._store is not None:
                try:
                    return self._store.update(self._key, apply)
                except StoreError as exc:
                    self._store = None
                    warnings.warn(
                        f"{exc}; this process keeps its own rate budget (other processes "
                        "using the same key are not counted)", BudgetStoreWarning, stacklevel=4,
                    )
            return apply(self._budget)

    def _take(self) -> float:
        """Claim a slot now, or the seconds to wait; remembers the claim for the answer."""
        if self._store is not None:
            now = self._clock()
            with self._lock:
                if self._hint > now and now - self._hint_at < POLL_S:
                    return min(self._hint - now, self._hint_at + POLL_S - now)

        def step(b: log.Budget, now: float, limits: list[RateLimit], allow: float) -> float:
            wait, kind = log.claim(b, now, limits, allow)
            pending = log.trial_pending(b, now)  # its answer may open the window: ask soon
            if wait > 0 and pending:
                wait = min(wait, log.TRIAL_POLL_S)
            if kind >= 0:
                _claimed.set((id(self), now, kind))
                if now - self._last_claim > log.window_of(limits):
                    self._burst_at = now
                self._last_claim = now
            self._hint = log.earliest(b, now, limits, allow)
            if pending:
                self._hint = min(self._hint, now + log.TRIAL_POLL_S)
            self._hint_at = now
            return wait

        return self._run(step)

    # -- the client's side ------------------------------------------------------------------

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until this caller may send; returns the seconds waited.

        Example:
            >>> Limiter(None).acquire()
            0.0
        """
        waited = 0.0
        while True:
            delay = self._take()
            if delay <= 0:
                return waited
            sleep(delay)
            waited += delay

    async def aacquire(
        self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> float:
        """Wait (without blocking the event loop) until this caller may send.

        Example:
            >>> import asyncio
            >>> asyncio.run(Limiter(None).aacquire())
            0.0
        """
        waited = 0.0
        while True:
            delay = self._take()
            if delay <= 0:
                return waited
            await sleep(delay)
            waited += delay

    def _my_claim(self) -> tuple[float, int] | None:
        claim = _claimed.get()
        if claim is None or claim[0] != id(self):
            return None
        return claim[1], claim[2]

    def observe(self, round_trip_s: float, status: int | None = None) -> None:
        """Record an answer: its round trip (send to answer headers) estimates the delay
        spread; a ``status`` other than 429 to a probe ends a block (see :meth:`rejected`)."""
        if round_trip_s >= 0:
            with self._lock:
                self._rtts.append(round_trip_s)
        claim = self._my_claim()
        if status == 429 or claim is None or claim[1] not in (log.PROBE, log.TRIAL):
            return
        sent_at, kind = claim
        self._run(lambda b, now, _limits, allow: log.on_accepted(b, sent_at, kind, now, allow))
        with self._lock:
            self._hint = -math.inf

    def rejected(self, retry_after: float | None = None) -> str:
        """Learn from a 429 to this caller's last send: "noise" (a near miss at the window's
        edge: the allowance widens), "tighter" (the server's limit is below ours: probing
        starts), "probe" (a probe was refused), "blind" (nothing of ours was in the window:
        the caller's backoff should pace the retry) or "unknown" (no send of ours on record).
        Every caller of the key, in every process sharing the store, follows what it taught.
        """
        claim = self._my_claim()
        if claim is None:
            return "unknown"
        sent_at = claim[0]
        lesson = self._run(lambda b, now, limits, allow: log.on_refused(
            b, sent_at, now, limits, allow, retry_after))
        with self._lock:
            self._hint = -math.inf
        return lesson

    @contextlib.contextmanager
    def paired(self) -> Iterator[None]:
        """Inside the block, the first acquire claims two slots and the next one takes the
        second (an undo's listing and its DELETE)."""
        # interface: implemented by the rate budget
        yield

    def pause_for(self, seconds: float) -> None:
        """Hold every caller of the key (every process sharing the store) for ``seconds``."""

        def step(b: log.Budget, now: float, _limits: list[RateLimit], _allow: float) -> None:
            b.paused_until = max(b.paused_until, now + seconds)

        self._run(step)
        with self._lock:
            self._hint = -math.inf
