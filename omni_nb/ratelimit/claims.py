"""A claim (one slot a caller took) and what this process has not yet written to the store.

:class:`Claim` follows one slot from its claim to its stamp (the request's headers written)
or its drop (never sent); the current thread or task's last claim is :data:`LAST_CLAIM`.
:class:`Outbox` holds the sends this process made that the store does not have yet: those
claimed in memory while no limit was in force (written in batches), and any made while the
store could not be used; and this process's claims of the horizon, which seed a store made
anew.
"""

from __future__ import annotations

import contextvars
import math
import os
import socket
import statistics
import threading
import warnings
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import log
from .limits import RateLimit
from .link import LinkState, StoreLink
from .store import BudgetStoreWarning, Entry, StoreError, deltas

if TYPE_CHECKING:
    from .limiter import Caller, Limiter

__all__ = ["FLUSH_S", "LAST_CLAIM", "PAIR", "Claim", "Outbox", "Pair", "RoundTrips", "describe",
           "hand_out", "held_by", "holder_label", "share_of", "warn_share"]

FLUSH_S = 0.1  # sends claimed with no limit in force reach the store at most this late


@dataclass(slots=True, eq=False)
class Claim:
    """One slot a caller took: when, its deadline, its kind, its stamp once written."""

    owner: Limiter
    caller: Caller
    claimed: float
    deadline: float
    kind: int
    batched: bool  # made in memory (no limit in force), written with the next batch
    at: float | None = None  # when its headers were written (None: still pending)

    def entry(self) -> Entry:
        """The log entry this claim is now.

        Example:
            >>> Claim(None, None, 1.0, 31.0, log.SENT, False).entry()  # type: ignore[arg-type]
            (31.0, 8)
        """
        if self.at is None:
            return self.deadline, self.kind | log.PENDING
        return self.at, self.kind


@dataclass(slots=True, eq=False)
class Pair:
    """A paired block: two slots at once, the second kept for the next ask."""

    owner: Limiter
    armed: bool = True
    spare: Claim | None = None


#: The slot the current thread or task last claimed, for its stamp and its answer.
LAST_CLAIM: contextvars.ContextVar[Claim | None] = contextvars.ContextVar(
    "omni_nb_ratelimit_claim", default=None)
#: The paired block the current thread or task is in.
PAIR: contextvars.ContextVar[Pair | None] = contextvars.ContextVar(
    "omni_nb_ratelimit_pair", default=None)


def hand_out(claim: Claim, pair: Pair | None) -> None:
    """Make ``claim`` the current thread or task's last (:data:`LAST_CLAIM`), or, the
    second slot of a paired block, keep it for the next ask.

    Example:
        >>> c = Claim(None, None, 1.0, 31.0, log.SENT, False)  # type: ignore[arg-type]
        >>> hand_out(c, None); LAST_CLAIM.get() is c
        True
    """
    if pair is not None and pair.armed:
        pair.armed = False
        LAST_CLAIM.set(claim)
    elif pair is not None:
        pair.spare = claim
    else:
        LAST_CLAIM.set(claim)


def holder_label() -> str:
    """Who holds a lease, in words without any secret.

    Example:
        >>> holder_label().startswith("pid ")
        True
    """
    return f"pid {os.getpid()} on {socket.gethostname()}"


def describe(lim: RateLimit) -> str:
    """A limit in the progress line's words.

    Example:
        >>> describe(RateLimit(5, 2.0))
        '5 per 2 s'
    """
    return f"{lim.requests} per {lim.per:g} s"


def share_of(limits: list[RateLimit], procs: dict[str, tuple[float, float]], now: float
             ) -> list[RateLimit]:
    """Each limit divided by the processes seen in its last two windows, rounded down, at
    least 1: what one process may send while it cannot use the store. Two windows, not one:
    a process waiting for its next slot sleeps up to a window without a step, unseen.

    Example:
        >>> share_of([RateLimit(20, 2.0)], {"a": (9.5, 0.0), "b": (9.0, 0.0)}, 10.0)
        [RateLimit(requests=10, per=2.0)]
    """
    out = []
    for lim in limits:
        seen = sum(1 for at, _ in procs.values() if at > now - 2 * lim.per)
        out.append(RateLimit(max(1, lim.requests // max(1, seen)), lim.per))
    return out


def warn_share(link: StoreLink, share: list[RateLimit]) -> None:
    """Say once per outage that this process now sends on its ``share``."""
    if not link.should_warn():
        return
    words = ", ".join(describe(lim) for lim in share) or "no limit in force"
    warnings.warn(f"budget store {link.path} {link.reason}; this process sends at most its "
                  f"share, {words}, until it can use it again", BudgetStoreWarning,
                  stacklevel=7)


def held_by(b: log.Budget, now: float, limits: list[RateLimit], allow: float, lease_id: str,
            own: RateLimit | None) -> str | None:
    """What holds a caller (its lease ``lease_id``, its limit ``own``) back now, in words;
    None when nothing does.

    Example:
        >>> b = log.Budget(sends=[(0.0, log.SENT)], leases={"x": (1, 5.0, 9.0, "pid 1")})
        >>> held_by(b, 1.0, [RateLimit(1, 5.0)], 0.0, "me", None)
        "another caller's 1 per 5 s"
        >>> held_by(b, 1.0, [RateLimit(1, 5.0)], 0.0, "x", RateLimit(1, 5.0))
        'its own limit of 1 per 5 s'
    """
    if b.paused_until > now:
        return "a 429 pause"
    if b.probe is not None and b.probe.next_at > now:
        return "a probe of the server's limit"
    when = {one: log.earliest(b, now, [one], allow) for one in limits}
    binding = max(when, key=lambda one: when[one], default=None)
    if binding is None or when[binding] <= now:
        return None
    if b.learned is not None and (binding.requests, binding.per) == b.learned[:2]:
        return f"a learned limit of {describe(binding)}"
    others = {(n, per) for i, (n, per, _, _) in b.leases.items() if i != lease_id}
    if (binding.requests, binding.per) in others and binding != own:
        return f"another caller's {describe(binding)}"
    return f"its own limit of {describe(binding)}"


class RoundTrips:
    """The base allowance ``J`` from round trips: twice their 10th percentile (the network
    part; the application's time does not count), at least :data:`~.log.FLOOR_S`, or a fixed
    ``margin``; before any round trip, the key's (from the store).

    Example:
        >>> trips = RoundTrips(None)
        >>> trips.base(0.0, 0.0, 60.0), trips.base(0.2, 0.0, 60.0)
        (0.05, 0.2)
        >>> for rtt in (0.05, 0.06, 0.3): trips.add(rtt)
        >>> round(trips.base(0.0, 1000.0, 60.0), 3)
        0.088
    """

    def __init__(self, margin: float | None) -> None:
        self.margin = margin
        self.rtts: deque[float] = deque(maxlen=64)
        self.burst_at = self.last_claim = -math.inf  # first claim after an idle window

    def add(self, round_trip_s: float) -> None:
        """One more round trip (send to answer headers)."""
        self.rtts.append(round_trip_s)

    def claimed(self, now: float, window: float) -> None:
        """A claim at ``now``: the first after an idle ``window`` starts a burst."""
        if now - self.last_claim > window:
            self.burst_at = now
        self.last_claim = now

    def shared(self) -> float | None:
        """What this process tells the key its allowance is (None: nothing to tell)."""
        if self.margin is not None or not self.rtts:
            return None
        low = statistics.quantiles(self.rtts, n=10)[0] if len(self.rtts) > 1 else self.rtts[0]
        return max(log.FLOOR_S, 2.0 * low)

    def base(self, key_base: float, now: float, window: float) -> float:
        """``J`` at ``now`` for the tightest ``window`` in force."""
        if self.margin is not None:
            return self.margin
        base = self.shared()
        if base is None:
            return key_base or log.FLOOR_S
        # A burst's first window goes over fresh connections (TCP and TLS set-up before the
        # request is written), the next over warm ones: spacing the second window from the
        # first, allow the longest round trip seen (set-up included) once.
        if now < self.burst_at + 2.0 * window:
            base = max(base, max(self.rtts))
        return base


class Outbox:
    """Sends the store does not have yet (+n added, -n stamped or dropped), and this
    process's claims of the horizon. Its owner's lock guards it.

    Example:
        >>> box = Outbox()
        >>> box.add((1.0, log.SENT)); box.delta
        Counter({(1.0, 0): 1})
    """

    def __init__(self) -> None:
        self.delta: Counter[Entry] = Counter()
        self.flushed_at = -math.inf
        self.batching = False  # claimed in memory since the last batch was written
        self.announced = -math.inf  # the store knows this process may batch until then
        self.mine: deque[Claim] = deque()
        self._timer: threading.Timer | None = None

    def add(self, entry: Entry, n: int = 1) -> None:
        """Count ``n`` more (or fewer) of ``entry`` to write."""
        self.delta[entry] += n
        if not self.delta[entry]:
            del self.delta[entry]  # a claim stamped before it was written: nothing to write

    def record(self, before: list[Entry], after: list[Entry]) -> None:
        """What a change made to this process's log while the store was down."""
        self.delta.update(deltas(before, after))

    def batched(self, claim: Claim, flush: Callable[[], None], timed: bool) -> None:
        """A claim made in memory: written with the next batch, by ``flush`` on a timer
        (when ``timed``) if no claim comes first."""
        self.add(claim.entry())
        self.mine.append(claim)
        self.batching = True
        self.arm(flush, timed)

    def arm(self, flush: Callable[[], None], timed: bool) -> None:
        """Have ``flush`` called :data:`FLUSH_S` from now (when ``timed``: a real clock), so
        an idle process still writes what it holds."""
        if timed and self._timer is None:
            self._timer = threading.Timer(FLUSH_S, self._fire, (flush,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, flush: Callable[[], None]) -> None:
        self._timer = None
        flush()

    def restamped(self, claim: Claim, old: Entry) -> None:
        """A batched claim was stamped (or dropped: ``claim.at`` still None)."""
        self.add(old, -1)
        if claim.at is not None:
            self.add(claim.entry())

    def due(self, now: float) -> bool:
        """True when a batch is waiting and the last one went :data:`FLUSH_S` ago."""
        return (bool(self.delta) or self.batching) and now - self.flushed_at >= FLUSH_S

    def written(self) -> None:
        """The batch reached the store."""
        self.delta, self.batching = Counter(), False

    def forget(self, before: float) -> None:
        """Forget own claims made before ``before`` (out of every window)."""
        while self.mine and self.mine[0].claimed < before:
            self.mine.popleft()

    def seed(self, since: float) -> None:
        """A store made anew: write this process's claims since ``since`` instead."""
        self.delta = Counter(c.entry() for c in self.mine if c.claimed > since)

    def ready(self, link: StoreLink, now: float, keep: float) -> LinkState:
        """Whether the store can be tried now; a store made anew gets this process's sends
        of the last ``keep`` seconds (and, in the step, its live leases), with one warning."""
        state = link.ready(now)
        if state is LinkState.FRESH:
            self.seed(now - keep)
            warnings.warn(f"budget store {link.path} {link.store.lost}; it is made anew "
                          "with this process's sends of the window", BudgetStoreWarning,
                          stacklevel=7)
        return state

    def flush(self, link: StoreLink, key: str, now: float, keep: float,
              touch: Callable[[log.Budget, bool], None], again: bool = True
              ) -> log.Budget | None:
        """Write the batch, forget sends older than ``keep`` seconds, and read the key's view
        back (``touch`` marks it: this process's leases and presence); None when the store
        cannot be used now (``link`` says why)."""
        self.flushed_at = now
        self.forget(now - keep)
        state = self.ready(link, now, keep)
        if state is LinkState.DOWN:
            return None

        def refresh(view: log.Budget) -> log.Budget:
            touch(view, state is LinkState.FRESH)
            return view

        try:
            view = link.store.update(key, refresh, delta=self.delta, sends=False,
                                     forget_before=now - keep)
        except StoreError as exc:
            link.failed(exc, now)
            if again and link.gone:  # deleted or replaced: made anew, in this same flush
                return self.flush(link, key, now, keep, touch, again=False)
            return None
        link.worked(now)
        self.written()
        return view

    def announce(self, b: log.Budget, label: str, now: float) -> None:
        """Say in the key's state that this process (``label``) uses the key, and until when
        it may have sends not yet written (a caller taking a lease waits until then)."""
        until = now + 2 * FLUSH_S if self.batching else -math.inf
        self.announced = until
        b.procs = {name: seen for name, seen in b.procs.items()
                   if seen[0] > now - 2 * log.REFERENCE_WINDOW}
        b.procs[label] = (now, until)

    def drop(self, claim: Claim) -> None:
        """A claim that never left: no longer one of this process's sends."""
        if claim in self.mine:
            self.mine.remove(claim)
