"""The pure maths of one key's budget: where the next send may go, what a 429 teaches.

One :class:`Budget` per key (API root, token) holds the key's send log in wall-clock
seconds, the shared pause, the learned allowance and the learned limit. The same functions
run on the in-process budget and, inside one SQLite transaction, on the budget every process
of the user shares (:mod:`.store`), so both behave the same, and tests drive them on an
injected clock with simulated processes.

The model. Omni's firewall counts a request when it *arrives*: at most N arrivals in any
trailing window W. A request sent at ``s`` arrives at ``s + d`` with ``d`` the network delay.
If every send is at least ``W + J`` after the send N places before it, and ``J`` bounds how
much the delay varies between two requests, no trailing window of arrivals holds more than
N. The application's time after arrival does not matter; only the spread of ``d`` does.
``J`` (the allowance) is estimated by the limiter from round trips, and widened here by
near-miss 429s (a refusal just as our oldest send leaves the window is timing noise: the
allowance doubles); the widening shrinks by 10% for each clean window after two.

A 429 when our log shows clearly fewer than N in the window means the server's limit is
tighter than the one we hold. The key then *probes*: one send at a time, at geometrically
growing times after the oldest send the server still counted; the first one accepted tells
when the server accepts again, and (accepted count, that delay) becomes a learned limit,
applied with the configured one (so it only ever lowers), for :data:`LEARNED_WINDOWS`
windows, after which it expires and the configured limit is probed again. The probes leave
the server's window ``W`` bracketed, in send times give or take the allowance: a send
accepted ``x`` after the oldest one counted says ``W <= x + J``, a refused one ``W > x - J``.
The learned window is the bracket's upper end. Later windows narrow the bracket without
costing time: each opens with one *trial* send at the bracket's middle while the others wait
for the upper end plus the allowance; an accepted trial lowers the upper end (the others go
at once), a refused one raises the lower end (one 429, and the window opens where it would
have). The bracket halves each window until it is about ``3 J`` wide: the learned window
then spaces sends by at most ``W + 4 J`` (``W + 2 J`` at best), where the 4% steps of the
probes alone could leave ``1.04 W``. Refused sends do
not count against our budget (the sandbox, like most rate rules, counts only what it
accepts). When a server counts them too, probing still converges, because probes thin out
geometrically until the window drains (never denser than about N in a window past 3.4
windows, :func:`_growth`); and a 429 under a learned limit that only the refused sends can
explain (fewer than N accepted in the window, N or more with the refused) marks the key as
counting them: from then on they count against the learned limit.

Callers and leases. Every explicit limit a live caller of the key set is a *lease* in
:attr:`Budget.leases` (requests, per, expires, holder): every claim, by any caller, must fit
all of them, with the claimer's own non-explicit limit (``RateLimit()`` paces its own caller,
counted over the key's sends) and the learned limit. A lease expires one of its windows after
its caller last claimed or asked, so a caller that stopped holds nobody for long.

Stamps. A claim adds a *pending* entry (kind | :data:`PENDING`, at its deadline). Until the
client says the request's headers were written (:func:`stamp`), it counts as a send *now*
(at most at its deadline): it may go at any moment, so no later claim counts on it being old.
The stamp turns it into a send at the moment it was written; the server counts from there.

Buckets. The store keeps sends as counts per :data:`BUCKET_S` time bucket, each at the
bucket's latest time: spacing read from it errs late (safe) by at most one bucket.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .limits import RateLimit

__all__ = [
    "BUCKET_S",
    "LEARNED_WINDOWS",
    "PENDING",
    "PROBE_GROWTH",
    "REFUSED",
    "SENT",
    "TRIAL",
    "Budget",
    "Lease",
    "Probe",
    "allowance",
    "bucket_of",
    "claim",
    "earliest",
    "earliest_after",
    "horizon",
    "limits_in_force",
    "on_accepted",
    "on_refused",
    "prune",
    "settle",
    "stamp",
    "unstamp",
]

# Kinds of log entries: counted, refused (not counted), a probe of a block, a trial of a
# learned window (counted unless refused, like a probe).
SENT, REFUSED, PROBE, TRIAL = 0, 1, 2, 3
PENDING = 8  # a flag on a claim not yet written to the wire: its time is its deadline
BUCKET_S = 0.001  # the store counts sends per 1 ms bucket
LEARNED_WINDOWS = 20  # clean windows before a learned limit expires
PROBE_GROWTH = 1.04  # each probe waits 4% longer than the last: the learned window is <= 1.04x
REFINE_TOLERANCE = 0.01  # trials stop when the bracket is within 1% of the window or 3 J
TRIAL_POLL_S = 0.02  # while a trial is out, the others re-ask this often (it may open the window)
FLOOR_S = 0.05  # the least allowance: scheduling on a busy machine shifts a send that much
REFERENCE_WINDOW = 60.0  # Omni's documented window: what counts as "recent" with no limit
NEAR_MISS = 0.10  # a refusal within 10% of the window (plus the allowance) of the edge is noise
MAX_WIDEN = 0.25  # the allowance never grows past a quarter of the window
MAX_KEPT = 1_000_000  # every send within the horizon is kept: a block is counted on them all
DECAY = 0.9  # the widening loses 10% for each clean window after two

Lesson = Literal["noise", "tighter", "probe", "counted", "blind", "unknown"]
#: An explicit limit of a live caller: (requests, per, expires at, holder).
Lease = tuple[int, float, float, str]


def bucket_of(at: float) -> int:
    """The store's time bucket of ``at``.

    Example:
        >>> bucket_of(1.0), bucket_of(1.0009), bucket_of(1.001)
        (1000, 1000, 1001)
    """
    return math.floor(at / BUCKET_S + 1e-9)


@dataclass(slots=True)
class Probe:
    """A block being probed: the server refused while our log was clearly under the limit."""

    start: float  # send time of the first refused request
    count: int  # sends the server let through in the window before blocking
    first: float  # the oldest of them: the server accepts again when it leaves its window
    ceiling: float  # the window the learned one cannot exceed
    next_at: float  # when the next probe may go
    lower: float  # the server's window is longer than this (refused at first + lower)


@dataclass(slots=True)
class Budget:
    """One key's shared state: sends (time, kind), pause, allowance widening, learned limit."""

    sends: list[tuple[float, int]] = field(default_factory=list)
    paused_until: float = -math.inf
    widen: float = 0.0
    widened_at: float = -math.inf
    learned: tuple[int, float, float] | None = None  # (requests, per, expires at)
    probe: Probe | None = None
    floor: float = 0.0  # the server's window is longer than this (learned per is the ceiling)
    trial_at: float = -math.inf  # the send time of the last trial (one a window)
    trial_per: float = 0.0  # the window the trial in flight tries (0: none in flight)
    counts_refused: bool = False  # the server counts the requests it refuses (see on_refused)
    leases: dict[str, Lease] = field(default_factory=dict)  # lease id -> its limit
    base: float = 0.0  # the key's base allowance from round trips (0: none seen yet)
    #: process label -> (last seen, writing sends in batches until): who uses the key.
    procs: dict[str, tuple[float, float]] = field(default_factory=dict)

    def scalars(self) -> dict[str, Any]:
        """Everything but the sends, as JSON-able values (the store's ``keys.state``)."""
        probe = self.probe
        return {
            "paused_until": self.paused_until, "widen": self.widen,
            "widened_at": self.widened_at,
            "learned": list(self.learned) if self.learned else None,
            "probe": None if probe is None else [probe.start, probe.count, probe.first,
                                                 probe.ceiling, probe.next_at, probe.lower],
            "trial": [self.floor, self.trial_at, self.trial_per],
            "counts_refused": self.counts_refused, "base": self.base,
            "procs": {label: list(seen) for label, seen in self.procs.items()},
        }

    @classmethod
    def from_scalars(cls, data: dict[str, Any], sends: list[tuple[float, int]]) -> Budget:
        """The inverse of :meth:`scalars` (raises KeyError/TypeError/ValueError on junk)."""
        learned, probe = data["learned"], data["probe"]
        # A store written before trials existed has none: start without a bracket.
        floor, trial_at, trial_per = data.get("trial", [0.0, -math.inf, 0.0])
        return cls(
            sends=sends, paused_until=float(data["paused_until"]), widen=float(data["widen"]),
            widened_at=float(data["widened_at"]),
            learned=None if learned is None else (int(learned[0]), float(learned[1]),
                                                  float(learned[2])),
            probe=None if probe is None else Probe(
                float(probe[0]), int(probe[1]), float(probe[2]), float(probe[3]),
                float(probe[4]), float(probe[5])),
            floor=float(floor), trial_at=float(trial_at), trial_per=float(trial_per),
            counts_refused=bool(data.get("counts_refused", False)),
            base=float(data.get("base", 0.0)),
            procs={str(label): (float(seen[0]), float(seen[1]))
                   for label, seen in data.get("procs", {}).items()},
        )


def limits_in_force(b: Budget, configured: RateLimit | None, now: float) -> list[RateLimit]:
    """Every live lease's limit, the caller's own (``configured``) and the learned one
    (expired leases and an expired learned limit are dropped).

    Example:
        >>> b = Budget(leases={"a": (5, 2.0, 10.0, "x"), "b": (9, 9.0, 1.0, "y")})
        >>> limits_in_force(b, RateLimit(), 5.0)
        [RateLimit(requests=5, per=2.0), RateLimit(requests=60, per=60.0)]
    """
    if b.learned is not None and b.learned[2] <= now:
        b.learned = None
        b.floor, b.trial_at, b.trial_per = 0.0, -math.inf, 0.0
        b.counts_refused = False
    for lease_id in [i for i, lease in b.leases.items() if lease[2] <= now]:
        del b.leases[lease_id]
    out: list[RateLimit] = []
    for requests, per, _, _ in b.leases.values():
        if RateLimit(requests, per) not in out:
            out.append(RateLimit(requests, per))
    if configured is not None and configured not in out:
        out.append(configured)
    if b.learned is not None:
        out.append(RateLimit(b.learned[0], b.learned[1]))
    return out


def window_of(limits: list[RateLimit]) -> float:
    """The tightest window in force (Omni's minute when there is none)."""
    return min((lim.per for lim in limits), default=REFERENCE_WINDOW)


def allowance(b: Budget, base: float, now: float, limits: list[RateLimit]) -> float:
    """``J``: the estimated delay spread plus the learned widening, decayed by clean windows.

    Example:
        >>> b, limits = Budget(widen=0.4, widened_at=0.0), [RateLimit(10, 5)]
        >>> round(allowance(b, 0.05, 1.0, limits), 3), round(allowance(b, 0.05, 20.0, limits), 3)
        (0.45, 0.374)
    """
    window = window_of(limits)
    clean = max(0.0, (now - b.widened_at) / window - 2.0)
    widen = b.widen * DECAY ** clean if b.widen else 0.0
    return min(base + widen, max(base, MAX_WIDEN * window))


def earliest(b: Budget, now: float, limits: list[RateLimit], allow: float) -> float:
    """The first time at or after ``now`` the key may send (no reservation is made).

    Example:
        >>> b = Budget(sends=[(0.0, SENT), (0.1, SENT), (0.2, REFUSED)])
        >>> earliest(b, 1.0, [RateLimit(2, 10)], 0.5)
        10.5
    """
    t = max(now, b.paused_until)
    for lim in limits:
        learned = b.learned is not None and (lim.requests, lim.per) == b.learned[:2]
        # Refusals count against the learned limit only: the configured one is a belief
        # about the server, the learned one what it was seen to do.
        counted = _counted(b, learned=learned, now=now)
        if len(counted) >= lim.requests:
            oldest = counted[-lim.requests]
            trial = None
            if learned:
                trial = trial_per(b, max(now, oldest + _middle(b)), allow)
            # The trial goes at the bracket's middle, the others at its upper end + J.
            t = max(t, oldest + (lim.per + allow if trial is None else trial))
    if b.probe is not None:
        t = max(t, b.probe.next_at)
    return t


def earliest_after(b: Budget, now: float, limits: list[RateLimit], allow: float,
                   ahead: int) -> float:
    """When the key may send once ``ahead`` more sends have taken the slots before
    (each at its earliest); the budget is not changed.

    Example:
        >>> earliest_after(Budget(), 0.0, [RateLimit(2, 10)], 0.5, ahead=2)
        10.5
    """
    if ahead <= 0:
        return earliest(b, now, limits, allow)
    trial = dataclasses.replace(b, sends=list(b.sends))  # earliest() reads, never writes
    t = now
    for _ in range(ahead):
        t = earliest(trial, t, limits, allow)
        trial.sends.append((t, SENT))
    return earliest(trial, t, limits, allow)


def trial_pending(b: Budget, now: float) -> bool:
    """True while a trial's answer is awaited (one that never came stops counting after a
    window: its process may have died)."""
    return b.learned is not None and b.trial_per > 0 and now - b.trial_at < b.learned[1]


def _middle(b: Budget) -> float:
    return (b.floor + b.learned[1]) / 2 if b.learned is not None else 0.0


def trial_per(b: Budget, now: float, allow: float) -> float | None:
    """The window a trial sent at ``now`` would try (the bracket's middle), or None: no
    learned limit, the bracket is narrow enough, a probe is under way, or this window had
    its trial.

    Example:
        >>> trial_per(Budget(learned=(10, 6.0, 1e9), floor=5.0), 0.0, 0.05)
        5.5
    """
    if b.learned is None or b.probe is not None:
        return None
    hi = b.learned[1]
    if now - b.trial_at < max(b.floor, hi / 2):
        return None  # one trial a window (a trial goes at least ``floor`` after the last)
    if hi - b.floor <= max(REFINE_TOLERANCE * hi, 3 * allow):
        return None
    return _middle(b)


def claim(b: Budget, now: float, limits: list[RateLimit], allow: float,
          deadline: float | None = None) -> tuple[float, int]:
    """Take a send slot at ``now`` if the key may send: (0, kind), else (seconds to wait, -1).
    With a ``deadline`` the slot is a pending entry (see :func:`stamp`), else a send at now.

    Example:
        >>> b = Budget()
        >>> [claim(b, 0.0, [RateLimit(2, 10)], 0.0) for _ in range(3)]
        [(0.0, 0), (0.0, 0), (10.0, -1)]
    """
    t = earliest(b, now, limits, allow)
    if t > now:
        return t - now, -1
    kind, p = SENT, b.probe
    trial = trial_per(b, now, allow)
    if trial is not None and _window_full(b, now, trial, allow):
        kind, b.trial_at, b.trial_per = TRIAL, now, trial
    elif p is not None and p.count > 0:  # one probe at a time, each later than the last
        kind = PROBE
        g = _growth(p.count)
        p.next_at = p.first + max(p.lower * g, (now - p.first) * g)
        p.next_at = min(p.next_at, max(now, p.first + p.ceiling) + p.ceiling * 0.15)
    elif p is not None:
        kind = PROBE  # blind: any send after the pause may end it
    b.sends.append((now, kind) if deadline is None else (max(deadline, now), kind | PENDING))
    return 0.0, kind


def stamp(b: Budget, claimed: float, deadline: float, kind: int, at: float) -> None:
    """The pending claim made at ``claimed`` (due by ``deadline``) was written at ``at``.

    Example:
        >>> b = Budget()
        >>> claim(b, 1.0, [], 0.0, deadline=31.0)
        (0.0, 0)
        >>> stamp(b, 1.0, 31.0, SENT, 1.2); b.sends
        [(1.2, 0)]
    """
    unstamp(b, deadline, kind)
    b.sends.append((at, kind))
    if kind == TRIAL and b.trial_at == claimed:
        b.trial_at = at


def settle(b: Budget, claimed: float, deadline: float, kind: int, at: float | None) -> None:
    """:func:`stamp` the pending claim at ``at``, or :func:`unstamp` it (None: it never left).

    Example:
        >>> b = Budget(sends=[(31.0, SENT | PENDING)])
        >>> settle(b, 1.0, 31.0, SENT, None); b.sends
        []
    """
    if at is None:
        unstamp(b, deadline, kind)
    else:
        stamp(b, claimed, deadline, kind, at)


def unstamp(b: Budget, deadline: float, kind: int) -> None:
    """Drop the pending claim due by ``deadline`` (it never left, or it is being stamped).

    Example:
        >>> b = Budget(sends=[(31.0, SENT | PENDING)])
        >>> unstamp(b, 31.0, SENT); b.sends
        []
    """
    entry = (deadline, kind | PENDING)
    for i in range(len(b.sends) - 1, -1, -1):
        if b.sends[i] == entry or (b.sends[i][1] == entry[1]
                                   and bucket_of(b.sends[i][0]) == bucket_of(deadline)):
            del b.sends[i]
            return


def pending_binds(b: Budget, now: float, limits: list[RateLimit]) -> bool:
    """True when a pending claim is what holds the next send: its stamp, when it comes,
    may let the next one go sooner (the waiters re-ask soon).

    Example:
        >>> pending_binds(Budget(sends=[(31.0, SENT | PENDING)]), 1.0, [RateLimit(1, 10)])
        True
    """
    entries = _entries(b, now=now) if limits else []
    return any(len(entries) >= lim.requests and entries[-lim.requests][1] for lim in limits)


def _window_full(b: Budget, now: float, trial: float, allow: float) -> bool:
    """True when a send at ``now`` goes only because the learned window was taken as
    ``trial``: the learned limit's Nth last send is within the learned window."""
    assert b.learned is not None
    n, per = b.learned[0], b.learned[1]
    counted = _counted(b, learned=True)
    return len(counted) >= n and counted[-n] + per + allow > now >= counted[-n] + trial


def _counted(b: Budget, before: float = math.inf, learned: bool = False,
             now: float = math.inf) -> list[float]:
    """The send times the server counts: the accepted ones, and against the learned limit
    (``learned``) the refused ones too when the server was seen to count them. A pending
    claim counts at ``now`` (at most at its deadline): it may be written at any moment."""
    return [at for at, _ in _entries(b, before, learned, now)]


def _entries(b: Budget, before: float = math.inf, learned: bool = False,
             now: float = math.inf) -> list[tuple[float, bool]]:
    """(counted time, pending) of the counted entries, oldest first (see :func:`_counted`)."""
    every = learned and b.counts_refused
    out = []
    for at, kind in b.sends:
        if every or kind != REFUSED:
            pending = kind >= PENDING
            t = min(now, at) if pending else at
            if t < before:
                out.append((t, pending))
    out.sort()
    return out


def _growth(count: int) -> float:
    """How much later each probe goes than the last, for a server that let ``count``
    through: 4% (a fine first estimate of the window), and never so fine that a server
    counting refused requests stays blocked by the probes themselves: at most ``count``
    probes in a trailing window once it is past about 3.4 windows.

    Example:
        >>> round(_growth(1), 3), _growth(10), _growth(60)
        (1.414, 1.04, 1.04)
    """
    return max(PROBE_GROWTH, float(2.0 ** (1.0 / (2 * max(count, 1)))))


def _counts_refusals(b: Budget, sent_at: float) -> bool:
    """A 429 under a learned limit, with fewer accepted sends in the trailing window than
    the limit but enough once the refused ones count: the server counts what it refuses
    (or another tool shares the key). From now on the log counts refused sends too."""
    if b.learned is None:
        return False
    n, per = b.learned[0], b.learned[1]
    inside = [kind for at, kind in b.sends if sent_at - per < at < sent_at]
    if b.counts_refused:
        return len(inside) >= n  # explained: the window was full, refusals included
    accepted = sum(kind != REFUSED for kind in inside)
    if accepted < n <= len(inside):
        b.counts_refused = True
        b.floor = 0.0  # refusals that crowded the window say nothing of its length
        return True
    return False


def _mark(b: Budget, sent_at: float, kind: int) -> None:
    # The store keeps a bucket's latest time: failing the exact send, the one in its bucket.
    for exact in (True, False):
        for i in range(len(b.sends) - 1, -1, -1):
            at, was = b.sends[i]
            if was < PENDING and was != kind and (at == sent_at if exact
                                  else bucket_of(at) == bucket_of(sent_at)):
                b.sends[i] = (at, kind)
                return


def on_refused(
    b: Budget, sent_at: float, now: float, limits: list[RateLimit], allow: float,
    retry_after: float | None = None,
) -> Lesson:
    """Learn from a 429 to the send made at ``sent_at``: noise, a tighter limit, a probe."""
    if b.trial_at == sent_at and b.trial_per > 0:
        # The server's window is longer than the trial's, give or take the allowance.
        _mark(b, sent_at, REFUSED)
        b.floor, b.trial_per = max(b.floor, b.trial_per - allow), 0.0
        return "probe"
    _mark(b, sent_at, REFUSED)
    hint = None if retry_after is None or retry_after < 0 else now + retry_after
    p = b.probe
    if p is not None:
        if p.count < 1:  # blind: the client's backoff (or Retry-After) paces the retries
            p.next_at = max(p.next_at, hint or -math.inf)
            return "blind"
        p.lower = max(p.lower, sent_at - p.first)
        p.next_at = max(p.next_at, p.first + p.lower * _growth(p.count), hint or -math.inf)
        if sent_at - p.first > p.ceiling:
            # Blocked for longer than any window we allow for: not a rate window (a block
            # for other reasons). The client's backoff and its retry budget apply.
            return "blind"
        return "probe"
    if _counts_refusals(b, sent_at):
        return "counted"
    counted = _counted(b, before=sent_at)
    for lim in limits:
        if len(counted) >= lim.requests:
            edge = sent_at - counted[-lim.requests] - lim.per
            if edge <= allow + max(allow, NEAR_MISS * lim.per):
                # Our log was full and its oldest just left: the arrivals were closer
                # together than the sends. Double the allowance (it decays when clean).
                now_allow = allowance(b, 0.0, now, limits)
                b.widen = min(max(2 * max(now_allow, allow), 2 * edge), MAX_WIDEN * lim.per)
                b.widened_at = now
                return "noise"
    window = window_of(limits)
    recent = [at for at in counted if at > sent_at - window]
    first = recent[0] if recent else sent_at
    lower = max(sent_at - first, window / 100)
    if not recent:
        # Nothing of ours was in the window (a storm, or another tool using the key): the
        # refusal says nothing about the limit. The client's backoff paces the retries.
        b.probe = Probe(start=sent_at, count=0, first=sent_at, ceiling=window,
                        next_at=hint if hint is not None else now, lower=0.0)
        return "blind"
    b.probe = Probe(start=sent_at, count=len(recent), first=first, ceiling=window,
                    next_at=hint if hint is not None else first + lower * _growth(len(recent)),
                    lower=lower)
    return "tighter"


def on_accepted(
    b: Budget, sent_at: float, kind: int, now: float, allow: float = 0.0
) -> RateLimit | None:
    """An answer that was not 429: a probe's ends the block and gives the learned limit; a
    trial's lowers the learned window to the one it tried, give or take the allowance.

    Example:
        >>> b = Budget(learned=(10, 6.0, 1e9), floor=5.0, trial_at=1.0, trial_per=5.5)
        >>> on_accepted(b, 1.0, TRIAL, 1.1, allow=0.05)
        RateLimit(requests=10, per=5.55)
    """
    if kind == TRIAL:
        if b.trial_at != sent_at or b.trial_per <= 0 or b.learned is None:
            return None
        n, per, expires = b.learned
        per = round(min(per, b.trial_per + allow), 6)
        b.learned, b.trial_per = (n, per, expires), 0.0
        return RateLimit(n, per)
    p = b.probe
    if kind != PROBE or p is None or sent_at < p.start:
        return None
    b.probe = None
    if p.count < 1:
        return None  # nothing of ours was in the window: another tool used it up
    # Counted now, when the block's answers are in (at the first 429, sends still in flight
    # may be refused ones): what the server let through up to its last refusal.
    edge = max((at for at, k in b.sends if k == REFUSED and at <= sent_at), default=p.start)
    through = [at for at, k in b.sends if k == SENT and sent_at - p.ceiling < at <= edge]
    if not through:
        return None
    # Accepted this long after the oldest one it let through, give or take the allowance:
    # the server's window is at most that; the last refused probe says it is longer than
    # ``lower`` (less the allowance). Trials narrow the bracket in the next windows.
    per = min(p.ceiling, max(sent_at - through[0] + allow, 1e-3))
    b.learned = (len(through), per, now + LEARNED_WINDOWS * per)
    b.floor, b.trial_at, b.trial_per = max(0.0, min(p.lower - allow, per)), sent_at, 0.0
    return RateLimit(len(through), per)


def most_kept(limits: list[RateLimit]) -> int:
    """How many sends are kept: every one within the horizon (a block is counted on all the
    sends of its window, however many: a 500-a-minute key learns 500, not a cap).

    Example:
        >>> most_kept([RateLimit(5, 1.0)]) == MAX_KEPT
        True
    """
    return MAX_KEPT


def horizon(limits: list[RateLimit], allow: float, b: Budget) -> float:
    """How far back sends still matter."""
    longest = max([lim.per for lim in limits] + [lease[1] for lease in b.leases.values()],
                  default=0.0)
    if b.probe is not None:
        longest = max(longest, b.probe.ceiling)
    return max(longest, REFERENCE_WINDOW) + allow + 1.0


def prune(b: Budget, now: float, keep: float, most: int = 1_000_000) -> None:
    """Drop sends older than ``keep`` seconds or beyond the ``most`` recent, and any "from
    the future" beyond a day (a wall clock stepped back must not hold the key forever).
    While a block is probed, every send since its window began is kept, however many
    probes it took: they are what the learned limit is counted from.

    Example:
        >>> b = Budget(sends=[(0.0, SENT)] * 3 + [(t, REFUSED) for t in range(1, 90)])
        >>> b.probe = Probe(start=0.5, count=3, first=0.0, ceiling=60, next_at=90, lower=1)
        >>> prune(b, 90.0, 100.0, most=64); len(b.sends)
        92
    """
    b.sends = [(at, k) for at, k in b.sends if now - keep < at <= now + 86_400.0]
    b.sends.sort()
    if b.probe is not None:
        most = max(most, sum(1 for at, _ in b.sends if at >= b.probe.first))
    del b.sends[:-most]
    if b.paused_until > now + 86_400.0:
        b.paused_until = now
