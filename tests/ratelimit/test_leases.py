"""Every live caller's explicit limit holds, for every caller of the key in every process,
from the moment its requests are written (on an injected clock, no sleeping), with either
store (a SQLite file, a real Redis: ``make_store``)."""

from __future__ import annotations

import contextvars
import random
from dataclasses import dataclass, field

import pytest

from omni_nb import RateLimit
from omni_nb.ratelimit import Caller, Limiter
from omni_nb.ratelimit.claims import FLUSH_S
from omni_nb.ratelimit.store import Store

from ..redis_server import StoreFactory
from .test_ratelimit import FakeClock, max_in_window


def _procs(make_store: StoreFactory, clock: FakeClock, k: int) -> list[Limiter]:
    """k "processes": each its own Limiter on its own connection to one store."""
    return [Limiter(None, clock=clock, margin=0.0, store=make_store(), key="k")
            for _ in range(k)]


def _send(caller: Caller, clock: FakeClock) -> float:
    """Acquire (sleeping on the fake clock), stamp at once; the send time."""
    caller.acquire(clock.sleep)
    caller.sent()
    return clock.now


def test_every_explicit_limit_holds_together(make_store: StoreFactory) -> None:
    """A caller at 5 per 2 s and one at 60 per 60 s in two processes: each send fits both,
    whoever makes it."""
    clock = FakeClock()
    a, b = _procs(make_store, clock, 2)
    fast, slow = a.caller(RateLimit(5, 2.0)), b.caller(RateLimit(60, 60.0 + 1))
    sends = [_send(fast if i % 2 else slow, clock) for i in range(80)]
    assert max_in_window(sends, 2.0) <= 5
    assert max_in_window(sends, 61.0) <= 60
    assert sends[-1] - sends[0] >= 61.0  # the 61st send waited for the longer window


@pytest.mark.parametrize("loose", [None, RateLimit()])
def test_none_and_the_default_never_loosen_an_explicit_limit(
        make_store: StoreFactory, loose: RateLimit | None) -> None:
    """A caller on None (login's check, a one-off call) or RateLimit() joining a running
    5-per-2-s caller, in this process and in another: it waits its turn in the 5 per 2 s."""
    clock = FakeClock()
    a, b = _procs(make_store, clock, 2)
    strict = a.caller(RateLimit(5, 2.0))
    sends = [_send(strict, clock) for _ in range(5)]
    for joiner in (a.caller(loose), b.caller(loose)):
        assert joiner.next_send_in() == pytest.approx(2.0)
        assert joiner.holding() == "another caller's 5 per 2 s"
        sends.append(_send(joiner, clock))
        sends += [_send(strict, clock) for _ in range(4)]  # the window is full again
    assert max_in_window(sends, 2.0) <= 5


def test_the_default_limit_paces_only_its_own_caller(make_store: StoreFactory) -> None:
    """RateLimit() is not explicit: its caller keeps to 60 a minute over the key's sends, a
    caller on 100 per 60 s is not held back by it."""
    clock = FakeClock()
    a, b = _procs(make_store, clock, 2)
    default, wide = a.caller(RateLimit()), b.caller(RateLimit(100, 60.0))
    for _ in range(60):
        _send(default, clock)
    assert default.next_send_in() > 59
    assert wide.next_send_in() == 0.0
    for _ in range(40):
        _send(wide, clock)
    assert wide.next_send_in() > 59


def test_a_lease_expires_one_window_after_its_caller_stops(make_store: StoreFactory) -> None:
    """A killed process's lease holds the key for at most its window after its last claim."""
    clock = FakeClock()
    a, b = _procs(make_store, clock, 2)
    strict = a.caller(RateLimit(1, 10.0))
    _send(strict, clock)
    a.flush()  # its timer wrote the stamp (a batch interval after it)
    del strict, a  # "killed": its lease stays in the store
    clock.now += 5.0
    other = b.caller(None)
    assert other.next_send_in() == pytest.approx(5.0)  # its one send still fills the window
    clock.now += 5.0 + 1e-6
    assert other.next_send_in() == 0.0  # and its lease is gone: None sends freely
    for _ in range(3):
        assert other.acquire(clock.sleep) == 0.0


def test_a_closed_callers_lease_runs_out_one_window_after_its_last_claim(
        make_store: StoreFactory) -> None:
    """A closed client's limit still holds while its sends are in the window (a caller
    left alone must count them), is no longer renewed, and holds nobody after."""
    clock = FakeClock()
    a, b = _procs(make_store, clock, 2)
    strict, other = a.caller(RateLimit(2, 30.0)), b.caller(None)
    _send(strict, clock)
    _send(other, clock)
    assert other.next_send_in() > 29
    strict.close()
    clock.now += 10.0
    assert other.next_send_in() > 19  # its send is still in the window
    clock.now += 20.5
    assert other.next_send_in() == 0.0


def test_a_peek_holds_nobody(make_store: StoreFactory) -> None:
    """next_send_in() of a caller that never claimed (a progress display's view) takes no
    lease."""
    clock = FakeClock()
    a, b = _procs(make_store, clock, 2)
    assert a.caller(RateLimit(1, 60.0)).next_send_in() == 0.0
    other = b.caller(None)
    for _ in range(3):
        assert other.acquire(clock.sleep) == 0.0


def test_a_late_stamp_spaces_the_next_window_from_the_write(make_store: StoreFactory) -> None:
    """First-send rule: a claim whose request is written 1.5 s later (slow TLS) counts from
    then: the next claim lands a full window after the write, not after the claim."""
    clock = FakeClock()
    (a,) = _procs(make_store, clock, 1)
    c = a.caller(RateLimit(1, 2.0))
    ctx = contextvars.copy_context()
    ctx.run(c.acquire, clock.sleep)
    claimed = clock.now
    clock.now += 1.5
    ctx.run(c.sent)  # written now: 1.5 s after its claim
    written = clock.now
    assert c.acquire(clock.sleep) >= 2.0 - 1e-9
    assert clock.now >= written + 2.0 > claimed + 2.0


def test_an_unstamped_claim_counts_as_now_until_its_deadline(make_store: StoreFactory) -> None:
    """Until its stamp comes, a claim may be written any moment: it holds the window open,
    and past its deadline it counts as written then."""
    clock = FakeClock()
    (a,) = _procs(make_store, clock, 1)
    c = a.caller(RateLimit(1, 2.0), timeout=5.0)
    contextvars.copy_context().run(c.acquire, clock.sleep)  # never stamped
    clock.now += 4.0
    assert c.next_send_in() == pytest.approx(2.0, abs=0.06)  # as if written now
    clock.now += 1.0  # the deadline
    assert c.next_send_in() == pytest.approx(2.0, abs=1e-3)


def test_unsent_gives_the_slot_back(make_store: StoreFactory) -> None:
    """A claim whose request never left (no connection) frees its slot."""
    clock = FakeClock()
    (a,) = _procs(make_store, clock, 1)
    c = a.caller(RateLimit(1, 60.0))
    c.acquire(clock.sleep)
    c.unsent()
    assert c.next_send_in() == 0.0


def test_a_pair_takes_two_slots_only_when_both_fit(make_store: StoreFactory) -> None:
    """Inside paired() the first acquire waits until two slots fit and takes both; the
    second acquire goes at once; an unused second slot is given back."""
    clock = FakeClock()
    (a,) = _procs(make_store, clock, 1)
    c = a.caller(RateLimit(2, 10.0))
    _send(c, clock)
    with c.paired():
        assert c.acquire(clock.sleep) == pytest.approx(10.0)  # one slot was free, not two
        c.sent()
        assert c.acquire(clock.sleep) == 0.0
        c.sent()
    start = clock.now
    with c.paired():
        c.acquire(clock.sleep)
        c.sent()
    assert clock.now - start == pytest.approx(10.0)
    assert c.next_send_in() == 0.0  # the unused spare went back: one slot of two is free
    _send(c, clock)
    assert c.next_send_in() == pytest.approx(10.0)


# -- many simulated processes and callers, a seeded random interleaving ------------------------


@dataclass
class Interleaving:
    """Processes on one store, callers opening and closing with random limits, claims whose
    stamps come late (or never: unsent, or a killed process), a timer flushing batches; the
    store's leases are read after every step."""

    rng: random.Random
    clock: FakeClock
    procs: list[Limiter]
    reader: Store  # one more connection, to read the leases in force
    callers: list[tuple[int, Caller, contextvars.Context]] = field(default_factory=list)
    #: (claim order, written, caller, the limits of the leases in force when it was claimed)
    sends: list[tuple[int, float, Caller, set[RateLimit]]] = field(default_factory=list)
    open_: dict[int, tuple[Caller, float, contextvars.Context, int, set[RateLimit], int]] = (
        field(default_factory=dict))
    leases: list[tuple[float, frozenset[tuple[str, RateLimit]]]] = field(default_factory=list)
    dead: set[int] = field(default_factory=set)
    claims: int = 0

    LIMITS = (None, None, RateLimit(), RateLimit(5, 2.0), RateLimit(3, 1.0),
              RateLimit(8, 4.0))

    def open_caller(self) -> None:
        p = self.rng.choice([i for i in range(len(self.procs)) if i not in self.dead])
        limit = self.rng.choice(self.LIMITS)
        self.callers.append((p, self.procs[p].caller(limit, timeout=3.0),
                             contextvars.copy_context()))

    def step(self) -> None:
        self.clock.now += self.rng.choice([0.0, 0.0, 0.001, 0.01, 0.05, 0.2])
        for p, lim in enumerate(self.procs):  # the flush timer of each live process
            if p not in self.dead and self.clock.now - lim._outbox.flushed_at >= FLUSH_S:
                lim.flush()
        roll = self.rng.random()
        live = [i for i, (p, _, _) in enumerate(self.callers) if p not in self.dead]
        if roll < 0.03 or not live:
            self.open_caller()
        elif roll < 0.05:
            self.callers[self.rng.choice(live)][1].close()
        elif roll < 0.052 and len(self.dead) < len(self.procs) - 1:
            self.kill(self.rng.choice([p for p in range(len(self.procs))
                                       if p not in self.dead]))
        else:
            self.leases.append((self.clock.now, self.read_leases()))  # before the claim
            self.act(self.rng.choice(live))

    def read_leases(self) -> frozenset[tuple[str, RateLimit]]:
        leases = self.reader.update("k", lambda b: dict(b.leases), sends=False)
        return frozenset((i, RateLimit(n, per)) for i, (n, per, expires, _) in leases.items()
                         if expires > self.clock.now)

    def act(self, i: int) -> None:
        p, caller, ctx = self.callers[i]
        if i in self.open_:
            _, claimed, _, _, limits, order = self.open_.pop(i)
            if self.rng.random() < 0.1:
                ctx.run(caller.unsent)
                return
            at = self.rng.uniform(claimed, min(self.clock.now, claimed + caller.timeout))
            ctx.run(caller.sent, at)
            self.sends.append((order, at, caller, limits))
        elif ctx.run(caller.take) <= 0:
            self.claims += 1
            self.open_[i] = (caller, self.clock.now, ctx, p, self.in_force(self.clock.now),
                             self.claims)

    def kill(self, p: int) -> None:
        """Its requests in flight are written some time before their deadline, unstamped.
        Its last batch was written: a process killed between two batches leaves at most one
        batch interval of sends made with no limit in force unknown to the others (a limit
        the design states, docs/rate-budget.md)."""
        self.procs[p].flush()
        self.dead.add(p)
        for i, (caller, claimed, _, q, limits, order) in list(self.open_.items()):
            if q == p:
                del self.open_[i]
                self.sends.append((order, self.rng.uniform(claimed, claimed + caller.timeout),
                                   caller, limits))

    def in_force(self, claimed: float) -> set[RateLimit]:
        """The leases in the store just before a claim at ``claimed`` that every process had
        had the time to see: there without a break for three batch intervals."""
        since = claimed - 3 * FLUSH_S
        seen = [leases for when, leases in self.leases if since <= when <= claimed]
        before = [leases for when, leases in self.leases if when < since]
        if before:
            seen.append(before[-1])
        if not seen:
            return set()
        return {limit for _, limit in frozenset.intersection(*seen)}


# Every seed on SQLite; on Redis (a round trip per step) a sample of them.
@pytest.mark.parametrize(("make_store", "seed"),
                         [("sqlite", seed) for seed in range(150)]
                         + [("redis", seed) for seed in range(0, 150, 15)],
                         indirect=["make_store"])
def test_no_trailing_window_of_writes_exceeds_a_live_lease(make_store: StoreFactory,
                                                            seed: int) -> None:
    """Whatever the interleaving: in any trailing window of *write* times, the sends claimed
    up to the latest claim among them number at most the limit of every lease in force at
    that claim (and of its caller's own limit). Later claims answer to the leases of their
    own time: a lease that ended frees the key."""
    rng = random.Random(seed)
    clock = FakeClock()
    sim = Interleaving(rng, clock, _procs(make_store, clock, rng.randint(1, 3)),
                       make_store())
    for _ in range(rng.randint(1, 3)):
        sim.open_caller()
    for _ in range(600):
        sim.step()
    for order, at, caller, in_force in sim.sends:
        earlier = sorted(w for o, w, _, _ in sim.sends if o <= order)
        for limit in in_force | ({caller.limit} if caller.limit else set()):
            for end in (w for w in earlier if at <= w < at + limit.per):
                inside = [w for w in earlier if end - limit.per < w <= end]
                assert len(inside) <= limit.requests, (seed, limit, at, end)
    assert len(sim.sends) > 20
