"""The Limiter: one key's budget, in this process or shared through the budget store; and
its callers, one per client or batch.

A caller asks to send; the limiter claims a slot at *now* when the key's log allows it, else
says how long to wait, and the caller sleeps and asks again. Nothing is reserved ahead, so a
process killed while waiting holds nothing. Threads and any number of event loops share one
limiter: it has no loop-bound primitive. The maths lives in :mod:`.log`.

The rule (see docs/rate-budget.md). Every *explicit* limit a live caller of the key set (any
limit but None and ``RateLimit()``) is a lease every claim must fit, in this process and,
through the store, in every other; a caller on None or ``RateLimit()`` holds back nobody but
itself and never loosens an explicit limit. A lease is renewed by its caller's claims and
polls and expires one window after they stop (:meth:`Caller.close` ends it at once).

Steps. While any limit, pause or probe is in force for a claim, the claim is one atomic step
on the store (at most the limit's rate). Otherwise the claim is made in memory and written to
the store in a batch at most :data:`FLUSH_S` later (on the next claim, or by a timer; at close
and at exit), and each batch refreshes the view of the key (leases, pause, learned limit), so a
new lease elsewhere is seen within about that time; a caller taking a lease waits until every
process writing in batches has written what it sent.

Stamps. A claim is pending until the client says its request headers were written
(:meth:`Caller.sent`, from httpx's ``trace`` extension): later claims are spaced from that
moment, not from the claim (see :mod:`.log`). An answer with no stamp stamps it at the claim.

Store faults (:mod:`.link`): a failed step makes this process send at most its *share* (each
limit in force divided by the processes seen in its last two windows), with one
:class:`BudgetStoreWarning`, and the store is tried again every quarter second.

No maintained library fits: ``aiolimiter`` is a leaky bucket (a 2N burst) and async only;
``limits``/``pyrate-limiter`` share neither a budget across threads, loops and processes
with a common pause, nor learn from 429s.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import threading
import time
import uuid
import warnings
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from . import log
from .claims import (
    FLUSH_S,
    LAST_CLAIM,
    PAIR,
    Claim,
    Outbox,
    Pair,
    RoundTrips,
    hand_out,
    held_by,
    holder_label,
    share_of,
    warn_share,
)
from .limits import RateLimit
from .link import LinkState, StoreLink
from .store import BudgetStoreWarning, Store, StoreError

__all__ = ["BudgetStoreWarning", "Caller", "Limiter"]

FLOOR_S = log.FLOOR_S
POLL_S = 0.25  # a waiter re-reads the shared store at least this often
PENDING_POLL_S = 0.05  # while an unstamped claim holds the next send, waiters re-ask this often
DEFAULT_TIMEOUT_S = 30.0  # a claim's request is written within this, or it is counted then
T = TypeVar("T")
Step = Callable[[log.Budget, float, list[RateLimit], float], T]
_LIVE: weakref.WeakSet[Limiter] = weakref.WeakSet()


class Limiter:
    """A key's sliding-log budget; pass a fake ``clock`` to test it without sleeping.

    ``limit`` is the limit of the limiter's own anonymous caller (its public send-side
    methods, whose claims are sends at once); clients take a :meth:`caller` each. ``margin``
    fixes the base allowance (seconds added to each window) instead of estimating it from
    round trips. ``store`` and ``key`` share the budget with every process using the same
    store file. With an injected clock no timer runs: batched sends are written on the next
    step after :data:`~omni_nb.ratelimit.claims.FLUSH_S`.

    Example:
        >>> t = [0.0]
        >>> lim = Limiter(RateLimit(2, 10.0), clock=lambda: t[0], margin=0.0)
        >>> lim.acquire(lambda s: None), lim.acquire(lambda s: None), lim.next_send_in()
        (0.0, 0.0, 10.0)
    """

    def __init__(
        self, limit: RateLimit | None, *, clock: Callable[[], float] | None = None,
        margin: float | None = None, store: Store | None = None, key: str = "",
    ) -> None:
        self._link = None if store is None else StoreLink(store)
        # The store's time (a team's Redis: its TIME; a machine's file: the wall clock), so
        # every process of the key reads one clock whatever this machine's says.
        self._clock = clock or (time.time if self._link is None else self._link.clock)
        self._mono = clock or time.monotonic
        self._timed = clock is None  # a real clock: a timer flushes an idle process
        self._key = key
        self._budget = log.Budget()  # the per-process budget (and the store's last view)
        self._viewed_at = -math.inf
        self._trips = RoundTrips(margin)
        self._lock = threading.RLock()  # re-entrant: a claim is handed out in its step's hold
        self._outbox = Outbox()
        self._callers: weakref.WeakSet[Caller] = weakref.WeakSet()
        self._gaps: deque[float] = deque(maxlen=4096)
        # Who uses the key: a lease's holder, in words; and this limiter among them.
        self._holder = holder_label()
        self._label = f"{self._holder} #{uuid.uuid4().hex[:6]}"
        # The limiter's own methods claim as before callers existed: a claim is a send.
        self._anon = Caller(self, limit, pending=False)
        self._callers.add(self._anon)
        _LIVE.add(self)

    # -- callers and views ----------------------------------------------------------------

    def caller(self, limit: RateLimit | None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Caller:
        """A caller of this key with its own ``limit`` (one per client and per batch); a
        claim's request is counted at ``timeout`` after it at the latest.

        Example:
            >>> lim = Limiter(None)
            >>> lim.caller(RateLimit(5, 2.0)).explicit, lim.caller(RateLimit()).explicit
            (True, False)
        """
        made = Caller(self, limit, timeout=timeout)
        with self._lock:  # read under the lock when a store made anew is seeded
            self._callers.add(made)
        return made

    @property
    def limit(self) -> RateLimit | None:
        """The anonymous caller's limit (the one the limiter's own methods send under)."""
        return self._anon.limit

    @limit.setter
    def limit(self, value: RateLimit | None) -> None:
        self._anon.limit = value

    def use(self, limit: RateLimit | None) -> None:
        """Set the anonymous caller's limit (clients have callers of their own).

        Example:
            >>> lim = Limiter(None)
            >>> lim.use(RateLimit(5, 1.0)); lim.limit
            RateLimit(requests=5, per=1.0)
        """
        self._anon.limit = limit

    @property
    def shared(self) -> bool:
        """True while the budget is shared through the store (False: this process only, or
        the store is down and this process sends on its share)."""
        return self._link is not None and self._link.up

    def stamp_gaps(self) -> list[float]:
        """Seconds from each recent claim to its stamp (the request's headers written).

        Example:
            >>> Limiter(None).stamp_gaps()
            []
        """
        with self._lock:
            return list(self._gaps)

    def allowance(self) -> float:
        """``J``, the seconds added to each window: the delay spread estimated from round
        trips (twice the 10th percentile, at least :data:`FLOOR_S`; the key's, from the
        store, before this process saw one) plus what 429s taught."""
        with self._lock:
            now, b = self._clock(), self._budget
            return log.allowance(b, self._base(b), now, log.limits_in_force(b, self.limit, now))

    def _base(self, b: log.Budget) -> float:
        now = self._clock()
        return self._trips.base(b.base, now, log.window_of(log.limits_in_force(b, self.limit,
                                                                                now)))

    def _batchable(self, caller: Caller, now: float) -> bool:
        """No limit, pause or probe is in force for this caller (by the last view)."""
        b = self._budget
        return (caller.limit is None and b.paused_until <= now and b.probe is None
                and not (b.learned and b.learned[2] > now)
                and not any(lease[2] > now for lease in b.leases.values()))

    # -- one atomic step on the budget ------------------------------------------------------

    def _run(self, step: Step[T], caller: Caller) -> T:
        """``step(budget, now, limits, allowance)`` under the lock, in the store's transaction
        when it can be used, else on this process's budget with its share of every limit."""
        # A transaction may run ``step`` more than once: what must happen once, the caller
        # does after it, in the same hold of the (re-entrant) lock.
        with self._lock:
            if self._link is not None:
                done = self._on_store(step, caller)
                if done is not None:
                    return done[0]
            b, now = self._budget, self._clock()
            self._touch(b, now, caller)
            limits = log.limits_in_force(b, caller.limit, now)
            allow = log.allowance(b, self._base(b), now, limits)
            log.prune(b, now, log.horizon(limits, allow, b), log.MAX_KEPT)
            if self._link is None:
                return step(b, now, limits, allow)
            before = list(b.sends)
            since = self._link.counted_from(b.procs, self._label, now)
            result = step(b, now, share_of(limits, b.procs, now if since is None else since),
                          allow)
            self._outbox.record(before, b.sends)  # written when the store is back
            return result

    def _on_store(self, step: Step[T], caller: Caller, again: bool = True) -> tuple[T] | None:
        link = self._link
        assert link is not None
        now = self._clock()
        state = self._outbox.ready(link, now, self._keep(now))
        if state is LinkState.DOWN:
            self._warn_share(caller, now)
            return None

        def apply(b: log.Budget) -> tuple[T]:
            at = self._clock()
            self._touch(b, at, caller, seed=state is LinkState.FRESH)
            limits = log.limits_in_force(b, caller.limit, at)
            allow = log.allowance(b, self._base(b), at, limits)
            log.prune(b, at, log.horizon(limits, allow, b), log.MAX_KEPT)
            if (since := link.counted_from(b.procs, self._label, at)) is not None:
                limits = share_of(limits, b.procs, since)  # others may be on their share
            out = (step(b, at, limits, allow),)
            self._budget, self._viewed_at = b, at
            return out

        try:
            done = link.store.update(self._key, apply, delta=self._outbox.delta)
        except StoreError as exc:
            link.failed(exc, now)
            if again and link.gone:  # deleted or replaced: made anew, in this same step
                return self._on_store(step, caller, again=False)
            self._warn_share(caller, now)
            return None
        self._outbox.written()
        link.worked(now)
        return done

    def _keep(self, now: float) -> float:
        b = self._budget
        return log.horizon(log.limits_in_force(b, None, now), 1.0, b)

    def _touch(self, b: log.Budget, now: float, caller: Caller | None, seed: bool = False
               ) -> None:
        """Renew the caller's lease (every live one after a store was made anew), say this
        process uses the key (and whether it writes in batches), share the allowance."""
        renew = [c for c in self._callers if c.lease_until > now] if seed else []
        if (caller is not None and caller.explicit and not caller.closed
                and caller.lease_until > -math.inf):  # it claimed: a peek alone holds nobody
            renew.append(caller)
        for c in renew:
            assert c.limit is not None
            c.lease_until = now + c.limit.per
            b.leases[c.lease_id] = (c.limit.requests, c.limit.per, c.lease_until, self._holder)
        if seed:  # the processes the old store knew: one not heard since may still send
            b.procs = {**self._budget.procs, **b.procs}
        if self._link is not None:
            self._outbox.announce(b, self._label, now)
        if (base := self._trips.shared()) is not None:
            b.base = base

    def _warn_share(self, caller: Caller, now: float) -> None:
        assert self._link is not None
        b = self._budget
        since = self._link.counted_from(b.procs, self._label, now)
        warn_share(self._link, share_of(log.limits_in_force(b, caller.limit, now), b.procs,
                                        now if since is None else since))

    # -- batched writes ---------------------------------------------------------------------

    def flush(self) -> None:
        """Write the sends claimed in memory to the store now (and refresh the key's view).

        Example:
            >>> Limiter(None).flush()
        """
        with self._lock:
            self._flush(self._clock())

    def _flush(self, now: float) -> None:
        box, keep, link = self._outbox, self._keep(now), self._link
        if link is None:
            box.flushed_at = now
            log.prune(self._budget, now, keep, log.MAX_KEPT)
            return
        view = box.flush(link, self._key, now, keep,
                         lambda b, seed: self._touch(b, now, None, seed=seed))
        if view is None:
            self._warn_share(self._anon, now)
        else:
            # A batched write reads no log: keep the one the last step read (with this
            # process's stamps since), on which the share is counted should the store fail.
            view.sends = self._budget.sends
            self._budget, self._viewed_at = view, now

    def _may_batch(self, caller: Caller, now: float) -> bool:
        """Before a claim (under the lock): write the batch once due, read the key's view
        again once it is :data:`FLUSH_S` old; True when ``caller`` may claim in memory."""
        box = self._outbox
        stale = now - (box.flushed_at if self._link is None else self._viewed_at) >= FLUSH_S
        if (box.due(now) or stale) and self._batchable(caller, now):
            self._flush(now)  # (a claim by step writes the batch with it)
        return self._batchable(caller, now)

    def _batched(self, claim: Claim) -> None:
        """Record a claim made in memory (under the lock)."""
        if self._link is None:
            self._budget.sends.append(claim.entry())
            return
        self._outbox.batched(claim, self.flush, self._timed)
        if claim.claimed + FLUSH_S > self._outbox.announced:
            # The store does not know yet that this process writes in batches: say so now,
            # so a caller taking a lease elsewhere waits for this batch (see _touch).
            self._flush(claim.claimed)

    # -- stamps ----------------------------------------------------------------------------

    def _change(self, claim: Claim, edit: Callable[[log.Budget], object]) -> None:
        """Apply ``edit`` to the key's log where ``claim`` lives: this process's budget
        (noting it for the store when the store is down), or the store."""
        if self._link is None or not self._link.up:
            with self._lock:
                before = list(self._budget.sends) if self._link is not None else []
                edit(self._budget)
                if self._link is not None:
                    self._outbox.record(before, self._budget.sends)
            return
        self._run(lambda b, _now, _limits, _allow: edit(b), claim.caller)

    def _settle(self, claim: Claim, at: float | None) -> None:
        """Stamp ``claim`` at ``at``, or drop it (None). A send the store has is changed with
        the next step or batch (at most :data:`FLUSH_S` later: until then it counts as sent
        now, which errs late), a probe or a trial at once (its answer is matched on its
        stamp); without the store, this process's budget is."""
        old, link = claim.entry(), self._link
        claim.at, claim.caller.hint_until = at, -math.inf  # its wait may be shorter now
        with self._lock:
            if at is not None:
                self._gaps.append(at - claim.claimed)
            if link is not None and (claim.batched or (link.up and claim.kind == log.SENT)):
                self._outbox.restamped(claim, old)
                self._outbox.arm(self.flush, self._timed)
                # This process's view too: should the store fail at the next step, the share
                # is counted on it (unstamped, a send would count as made now till its deadline).
                if not claim.batched:  # (a batched claim is in the outbox only)
                    log.settle(self._budget, claim.claimed, claim.deadline, claim.kind, at)
                return
        self._change(claim, lambda b: log.settle(b, claim.claimed, claim.deadline, claim.kind,
                                                 at))

    def _drop(self, claim: Claim) -> None:
        with self._lock:
            self._outbox.drop(claim)
        self._settle(claim, None)

    def _answered(self) -> Claim | None:
        """The last claim, stamped at its claim time if no stamp came (a transport without
        the trace extension)."""
        claim = LAST_CLAIM.get()
        if claim is None or claim.owner is not self:
            return None
        if claim.at is None:
            self._settle(claim, claim.claimed)
        return claim

    # -- the anonymous caller (the limiter's own send-side methods) ---------------------------

    def _take(self, caller: Caller | None = None) -> float:
        """Claim a slot now for ``caller`` (the anonymous one), or the seconds to wait."""
        return (caller or self._anon).take()

    @property
    def effective_limit(self) -> RateLimit | None:
        """See :attr:`Caller.effective_limit` (the anonymous caller's)."""
        return self._anon.effective_limit

    @property
    def learned_limit(self) -> RateLimit | None:
        """The limit learned from 429s, while it holds (None otherwise)."""
        return self._anon.learned_limit

    @property
    def paused_until(self) -> float:
        """The monotonic time before which nobody sends after a 429 (-inf when never paused)."""
        return self._anon.paused_until

    def next_send_in(self, ahead: int = 0) -> float:
        """Seconds until the anonymous caller could send (see :meth:`Caller.next_send_in`).

        Example:
            >>> t = [0.0]
            >>> lim = Limiter(RateLimit(2, 10.0), clock=lambda: t[0], margin=0.0)
            >>> lim.next_send_in(), lim.next_send_in(ahead=1), lim.next_send_in(ahead=2)
            (0.0, 0.0, 10.0)
        """
        return self._anon.next_send_in(ahead)

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until the anonymous caller may send; returns the seconds waited.

        Example:
            >>> Limiter(None).acquire()
            0.0
        """
        return self._anon.acquire(sleep)

    async def aacquire(
        self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> float:
        """Wait (without blocking the event loop) until the anonymous caller may send.

        Example:
            >>> import asyncio
            >>> asyncio.run(Limiter(None).aacquire())
            0.0
        """
        return await self._anon.aacquire(sleep)

    def observe(self, round_trip_s: float, status: int | None = None) -> None:
        """See :meth:`Caller.observe`."""
        self._anon.observe(round_trip_s, status)

    def rejected(self, retry_after: float | None = None) -> str:
        """See :meth:`Caller.rejected`."""
        return self._anon.rejected(retry_after)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller of the key (every process sharing the store) for ``seconds``."""
        self._anon.pause_for(seconds)

    def sent(self, at: float | None = None) -> None:
        """See :meth:`Caller.sent` (the last claim of this thread or task, any caller's)."""
        self._anon.sent(at)

    def unsent(self) -> None:
        """See :meth:`Caller.unsent`."""
        self._anon.unsent()

    def paired(self) -> contextlib.AbstractContextManager[None]:
        """See :meth:`Caller.paired`."""
        return self._anon.paired()

    def holding(self) -> str | None:
        """See :meth:`Caller.holding`."""
        return self._anon.holding()

    def close(self) -> None:
        """Stop renewing the anonymous caller's lease and write what is batched."""
        self._anon.close()


class Caller:
    """One caller of a key (a client, a batch) with its own limit: the send-side methods the
    clients use. An explicit limit (anything but None and ``RateLimit()``) is a lease every
    caller of the key obeys while this one is alive; None or ``RateLimit()`` hold back only
    this caller. Made by :meth:`Limiter.caller`; it owns its claims from claim to stamp.

    Example:
        >>> t = [0.0]
        >>> lim = Limiter(None, clock=lambda: t[0], margin=0.0)
        >>> strict, loose = lim.caller(RateLimit(1, 10.0)), lim.caller(None)
        >>> strict.acquire(lambda s: None), loose.next_send_in(), loose.holding()
        (0.0, 10.0, "another caller's 1 per 10 s")
        >>> strict.close(); loose.next_send_in()  # its send is in the window: the lease too
        10.0
        >>> t[0] = 10.0; loose.next_send_in()
        0.0
    """

    def __init__(self, limiter: Limiter, limit: RateLimit | None, *,
                 timeout: float = DEFAULT_TIMEOUT_S, pending: bool = True) -> None:
        self._limiter = limiter
        self.limit = limit
        self.timeout = timeout
        self.pending = pending  # claims wait for their stamp (False: a claim is a send)
        self.lease_id = uuid.uuid4().hex[:12]
        self.lease_until = -math.inf  # when this caller's lease expires unless renewed
        self.closed = False
        self.hint_until = self.hint_at = -math.inf  # a waiter's cached answer (store only)

    @property
    def limiter(self) -> Limiter:
        """The key's limiter this caller claims from."""
        return self._limiter

    @property
    def explicit(self) -> bool:
        """True when this caller's limit holds every caller of the key (a lease)."""
        return self.limit is not None and self.limit != RateLimit()

    @property
    def shared(self) -> bool:
        """True while the key's budget is shared through the store."""
        return self._limiter.shared

    def _view(self) -> tuple[log.Budget, float, list[RateLimit]]:
        lim = self._limiter
        now = lim._clock()
        return lim._budget, now, log.limits_in_force(lim._budget, self.limit, now)

    @property
    def effective_limit(self) -> RateLimit | None:
        """The limit in force for this caller: the learned one while it holds, else the
        tightest of every live lease and its own limit, by the key's last view; None when
        there is none.

        Example:
            >>> Limiter(None).caller(RateLimit(5, 2.0)).effective_limit
            RateLimit(requests=5, per=2.0)
        """
        with self._limiter._lock:
            b, _, limits = self._view()  # an expired learned limit is dropped here
            learned = b.learned
        if learned is not None:
            return RateLimit(learned[0], learned[1])
        return min(limits, key=lambda lim: lim.requests / lim.per, default=None)

    @property
    def learned_limit(self) -> RateLimit | None:
        """The limit learned from 429s, while it holds (None otherwise)."""
        with self._limiter._lock:
            b, now, _ = self._view()
            learned = b.learned
            if learned is None or learned[2] <= now:
                return None
        return RateLimit(learned[0], learned[1])

    @property
    def paused_until(self) -> float:
        """The monotonic time before which nobody sends after a 429 (-inf when never paused)."""
        lim = self._limiter
        with lim._lock:
            b = lim._budget
            until = max(b.paused_until, b.probe.next_at if b.probe else -math.inf)
            if until == -math.inf:
                return until
            return lim._mono() + (until - lim._clock())

    def allowance(self) -> float:
        """See :meth:`Limiter.allowance`."""
        return self._limiter.allowance()

    def next_send_in(self, ahead: int = 0) -> float:
        """Seconds until this caller could send (0 if now), after ``ahead`` callers already
        waiting take the slots before it; no slot is taken (the caller's lease is renewed).

        Example:
            >>> t = [0.0]
            >>> c = Limiter(None, clock=lambda: t[0], margin=0.0).caller(RateLimit(1, 5.0))
            >>> c.next_send_in(), c.next_send_in(ahead=1)
            (0.0, 5.0)
        """
        lim = self._limiter
        with lim._lock:
            if lim._may_batch(self, lim._clock()):
                return 0.0

        def peek(b: log.Budget, now: float, limits: list[RateLimit], allow: float) -> float:
            return log.earliest_after(b, now, limits, allow, ahead) - now

        return max(0.0, lim._run(peek, self))

    # -- claims -------------------------------------------------------------------------------

    def take(self) -> float:
        """Claim a slot now (0.0), or say how many seconds to wait before asking again; the
        claim is this thread's or task's last (for its stamp and its answer).

        Example:
            >>> Limiter(None).caller(None).take()
            0.0
        """
        lim = self._limiter
        if self.explicit and (self.closed or self.lease_until == -math.inf):
            self.closed, self.lease_until = False, lim._clock()  # its claims hold the key
        pair = PAIR.get()
        if pair is not None and pair.owner is lim and pair.spare is not None:
            LAST_CLAIM.set(pair.spare)  # the second slot of a pair: already claimed
            pair.spare = None
            return 0.0
        two = pair if pair is not None and pair.owner is lim and pair.armed else None
        now = lim._clock()
        with lim._lock:
            if lim._may_batch(self, now):
                for _ in range(2 if two else 1):
                    claim = Claim(lim, self, now, now + self.timeout, log.SENT, batched=True,
                                  at=None if self.pending else now)
                    lim._batched(claim)
                    hand_out(claim, two)
                return 0.0
        poll = min(POLL_S, self.limit.per / 2 if self.limit else POLL_S)
        if lim._link is not None and self.hint_until > now and now - self.hint_at < poll:
            return min(self.hint_until - now, self.hint_at + poll - now)
        made: list[tuple[Claim, Pair | None, float]] = []

        def step(b: log.Budget, at: float, limits: list[RateLimit], allow: float) -> float:
            made.clear()  # a transaction tried again: only the attempt that held counts
            return self._claim(b, at, limits, allow, two, made)

        with lim._lock:  # (re-entrant) handed out in the same hold as the step, once
            wait = lim._run(step, self)
            for claim, paired, window in made:  # the claims the store now has
                if lim._link is not None:
                    lim._outbox.mine.append(claim)
                lim._trips.claimed(claim.claimed, window)
                hand_out(claim, paired)
        return wait

    def _claim(self, b: log.Budget, now: float, limits: list[RateLimit], allow: float,
               pair: Pair | None, made: list[tuple[Claim, Pair | None, float]]) -> float:
        """The claim step (in the store's transaction, or on this process's budget): the
        slots taken go to ``made``, handed out once the step is done (a Redis transaction
        may run it again)."""
        lim = self._limiter
        hold = max((until for label, (_, until) in b.procs.items() if label != lim._label),
                   default=-math.inf) if b.leases else -math.inf
        wait = hold - now  # other processes' sends not written yet: wait for their batch
        if pair is not None and any(limit.requests < 2 for limit in limits):
            pair.armed, pair = False, None  # one a window never fits two at once: one each
        if wait <= 0 and pair is not None:
            wait = log.earliest_after(b, now, limits, allow, 1) - now  # both slots fit
        if wait <= 0:
            for _ in range(2 if pair is not None else 1):
                wait, kind = log.claim(b, now, limits, allow,
                                       deadline=now + self.timeout if self.pending else None)
                if kind < 0:
                    break
                made.append((Claim(lim, self, now, now + self.timeout, kind, batched=False,
                                   at=None if self.pending else now), pair,
                             log.window_of(limits)))
        soon = math.inf
        if log.trial_pending(b, now):
            soon = log.TRIAL_POLL_S  # its answer may open the window: ask soon
        if log.pending_binds(b, now, limits):
            soon = min(soon, PENDING_POLL_S)  # its stamp may let the next one go sooner
        self.hint_until = min(max(now, hold, log.earliest(b, now, limits, allow)), now + soon)
        self.hint_at = now
        return max(0.0, min(wait, soon))

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until this caller may send; returns the seconds waited.

        Example:
            >>> Limiter(None).caller(None).acquire()
            0.0
        """
        waited = 0.0
        while True:
            delay = self.take()
            if delay <= 0:
                return waited
            sleep(delay)
            waited += delay

    async def aacquire(
        self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> float:
        """Wait (without blocking the event loop) until this caller may send.

        Example:
            >>> asyncio.run(Limiter(None).caller(None).aacquire())
            0.0
        """
        waited = 0.0
        while True:
            delay = self.take()
            if delay <= 0:
                return waited
            await sleep(delay)
            waited += delay

    @contextlib.contextmanager
    def _pairing(self) -> Iterator[None]:
        pair = Pair(self._limiter)
        token = PAIR.set(pair)
        try:
            yield
        finally:
            PAIR.reset(token)
            if pair.spare is not None:
                self._limiter._drop(pair.spare)

    def paired(self) -> contextlib.AbstractContextManager[None]:
        """Inside the block the first acquire claims two slots at once (only when both fit
        every limit) and the next acquire in the same thread or task uses the second at once;
        a second slot not used when the block ends is given back.

        Example:
            >>> t = [0.0]
            >>> c = Limiter(None, clock=lambda: t[0], margin=0.0).caller(RateLimit(2, 5.0))
            >>> with c.paired():
            ...     first, second = c.acquire(lambda s: None), c.next_send_in()
            ...     third = c.acquire(lambda s: None)
            >>> first, second, third, c.next_send_in()
            (0.0, 5.0, 0.0, 5.0)
        """
        return self._pairing()

    # -- stamps and answers -------------------------------------------------------------------

    def _last(self) -> Claim | None:
        claim = LAST_CLAIM.get()
        return claim if claim is not None and claim.owner is self._limiter else None

    def sent(self, at: float | None = None) -> None:
        """The slot this thread or task claimed last was written to the wire at wall-clock
        ``at`` (``time.time()``; None: now): later claims are spaced from it. Called from the
        httpx ``trace`` callback when the request headers are written.

        Example:
            >>> t = [100.0]
            >>> c = Limiter(None, clock=lambda: t[0], margin=0.0).caller(RateLimit(1, 5.0))
            >>> _ = c.acquire(lambda s: None); t[0] = 101.5; c.sent()
            >>> c.next_send_in()
            5.0
        """
        claim = self._last()
        if claim is not None and claim.at is None:
            lim = self._limiter
            if at is not None and lim._timed and lim._link is not None:
                at += lim._link.store.skew()  # a time.time() reading, in the store's clock
            lim._settle(claim, lim._clock() if at is None else at)

    def unsent(self) -> None:
        """The slot this thread or task claimed last never left (no connection, the headers
        were never written): it is given back.

        Example:
            >>> c = Limiter(None).caller(RateLimit(1, 60.0))
            >>> _ = c.acquire(lambda s: None); c.unsent(); c.next_send_in()
            0.0
        """
        claim = self._last()
        if claim is not None and claim.at is None:
            LAST_CLAIM.set(None)
            self._limiter._drop(claim)

    def observe(self, round_trip_s: float, status: int | None = None) -> None:
        """Record an answer: its round trip (send to answer headers) estimates the delay
        spread; a ``status`` other than 429 to a probe ends a block (see :meth:`rejected`)."""
        lim = self._limiter
        if round_trip_s >= 0:
            with lim._lock:
                lim._trips.add(round_trip_s)
        claim = lim._answered()
        if status == 429 or claim is None or claim.kind not in (log.PROBE, log.TRIAL):
            return
        sent_at, kind = claim.at or claim.claimed, claim.kind
        lim._run(lambda b, now, _limits, allow: log.on_accepted(b, sent_at, kind, now, allow),
                 self)
        self.hint_until = -math.inf

    def rejected(self, retry_after: float | None = None) -> str:
        """Learn from a 429 to this caller's last send: "noise" (a near miss at the window's
        edge: the allowance widens), "tighter" (the server's limit is below ours: probing
        starts), "probe" (a probe was refused), "blind" (nothing of ours was in the window:
        the caller's backoff should pace the retry), "counted" or "unknown" (no send of ours
        on record). Every caller of the key, in every process sharing the store, follows it.
        """
        claim = self._limiter._answered()
        if claim is None:
            return "unknown"
        sent_at = claim.at or claim.claimed
        lesson = self._limiter._run(lambda b, now, limits, allow: log.on_refused(
            b, sent_at, now, limits, allow, retry_after), self)
        self.hint_until = -math.inf
        return lesson

    def pause_for(self, seconds: float) -> None:
        """Hold every caller of the key (every process sharing the store) for ``seconds``."""

        def step(b: log.Budget, now: float, _limits: list[RateLimit], _allow: float) -> None:
            b.paused_until = max(b.paused_until, now + seconds)

        self._limiter._run(step, self)
        with self._limiter._lock:
            for c in self._limiter._callers:
                c.hint_until = -math.inf

    def holding(self) -> str | None:
        """What holds this caller back now, in words for the progress line ("another caller's
        5 per 2 s", "a learned limit of 18 per 2 s", "a 429 pause"), by the key's last view;
        None when nothing does.

        Example:
            >>> Limiter(None).caller(RateLimit(5, 2.0)).holding() is None
            True
        """
        lim = self._limiter
        with lim._lock:
            b, now, limits = self._view()
            allow = log.allowance(b, lim._base(b), now, limits)
            return held_by(b, now, limits, allow, self.lease_id, self.limit)

    def close(self) -> None:
        """Stop renewing this caller's lease (a closed client, a finished batch): it runs out
        one window after the caller's last claim, and write what this process batched.

        Example:
            >>> Limiter(None).caller(RateLimit(5, 2.0)).close()
        """
        lim = self._limiter
        # No more renewals; the lease itself runs out one window after the caller's last
        # claim (its sends are still in that window: a caller left alone must count them).
        self.closed = True
        with lim._lock:
            if lim._outbox.delta or lim._outbox.batching:
                lim._flush(lim._clock())


@atexit.register
def _flush_all() -> None:
    for limiter in list(_LIVE):
        if limiter._outbox.delta:
            with warnings.catch_warnings(), contextlib.suppress(Exception):
                warnings.simplefilter("ignore")  # at exit nobody is left to read it
                limiter.flush()
