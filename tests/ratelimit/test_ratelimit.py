"""The rate budget on an injected clock (no sleeping): the sliding-log maths, simulated
processes sharing one budget against a server that counts on arrival, what 429s teach, and
the store's refusals and fallbacks."""

from __future__ import annotations

import contextvars
import heapq
import math
import multiprocessing
import random
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from omni_nb import RateLimit
from omni_nb.ratelimit import BudgetStore, BudgetStoreWarning, Limiter, open_store, shared_limiter
from omni_nb.ratelimit import log as budget_log
from omni_nb.ratelimit.store import StoreError, key_of

from ..redis_server import StoreFactory


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def max_in_window(times: list[float], per: float) -> int:
    """Most events in any half-open window (t - per, t]."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - per + 1e-9:  # float rounding at the exact boundary
            j += 1
        best = max(best, i - j + 1)
    return best


# -- RateLimit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "per", "field_name"),
    [(0, 60, "requests"), (-1, 60, "requests"), (True, 60, "requests"), (1.5, 60, "requests"),
     (10, 0, "per"), (10, -1, "per"), (10, math.nan, "per"), (10, math.inf, "per"),
     (10, 86_401, "per"), (10, True, "per"), (10**7, 60, "requests")],
)
def test_rate_limit_refuses_bad_values_naming_the_field(
    requests: object, per: object, field_name: str
) -> None:
    """Not positive, bool, NaN/inf, or a window over a day: one error naming the field."""
    with pytest.raises((TypeError, ValueError), match=f"RateLimit.{field_name}"):
        RateLimit(requests, per)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("60/60", RateLimit(60, 60.0)), ("500/60", RateLimit(500, 60.0)), ("off", None),
     ("10", RateLimit(10, 60.0))],
)
def test_parse(text: str, expected: RateLimit | None) -> None:
    """N/SECONDS and off parse; N alone means per minute."""
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("bad", ["x/60", "0/60", "10/0", "10/-1", "10/inf", "10/100000"])
def test_parse_rejects_nonsense(bad: str) -> None:
    """Zero, negative, infinite, over a day or non-numeric limits are refused."""
    with pytest.raises(ValueError, match="N/SECONDS"):
        RateLimit.parse(bad)


# -- one process -----------------------------------------------------------------------------


def test_burst_then_waits_a_full_window_plus_the_allowance() -> None:
    """N calls go at once; call N+1 waits until the first has left the window by J."""
    clock = FakeClock()
    lim = Limiter(RateLimit(3, 10.0), clock=clock, margin=0.5)
    times = []
    for _ in range(7):
        lim.acquire(clock.sleep)
        times.append(clock.now - 1_000.0)
    assert times == pytest.approx([0, 0, 0, 10.5, 10.5, 10.5, 21.0])


def test_steady_state_reaches_the_limit() -> None:
    """Under constant demand the limiter sends N per window, not fewer (allowance aside)."""
    clock = FakeClock()
    lim = Limiter(RateLimit(60, 60.0), clock=clock, margin=0.0)
    for _ in range(600):
        lim.acquire(clock.sleep)
    assert clock.now - 1_000.0 == pytest.approx(540.0)


def test_allowance_comes_from_round_trips_with_a_floor() -> None:
    """J is twice the 10th percentile of round trips (the network part), at least 50 ms:
    slow applications (long round trips) do not widen it, slow networks do."""
    lim = Limiter(RateLimit(60, 60.0), clock=FakeClock())
    assert lim.allowance() == pytest.approx(0.05)
    for i in range(64):
        lim.observe(0.05 + 0.75 * i / 63)  # Omni: 0.05-0.8 s, mostly the application
    assert 0.1 <= lim.allowance() <= 0.25


def test_next_send_in_takes_no_slot_and_effective_limit_is_configured() -> None:
    """next_send_in() reports without claiming; effective_limit is the configured limit
    until a tighter one is learned."""
    clock = FakeClock()
    lim = Limiter(RateLimit(2, 10.0), clock=clock, margin=0.0)
    assert lim.next_send_in() == 0.0
    lim.acquire(clock.sleep)
    assert lim.next_send_in() == 0.0
    lim.acquire(clock.sleep)
    assert lim.next_send_in() == pytest.approx(10.0)
    assert lim.next_send_in() == pytest.approx(10.0)  # still: nothing was reserved
    assert lim.effective_limit == RateLimit(2, 10.0)


def test_unlimited_limiter_only_pauses() -> None:
    """rate_limit=None: no window, but a pause still holds callers."""
    clock = FakeClock()
    lim = Limiter(None, clock=clock)
    assert [lim.acquire(clock.sleep) for _ in range(1000)] == [0.0] * 1000
    lim.pause_for(5.0)
    assert lim.acquire(clock.sleep) == pytest.approx(5.0)
    assert lim.effective_limit is None


def test_threads_share_one_budget() -> None:
    """Many threads claiming at once still send N per window at most."""
    clock = FakeClock()
    lim = Limiter(RateLimit(5, 1.0), clock=clock, margin=0.0)
    sends: list[float] = []
    guard = threading.Lock()

    def take() -> None:
        for _ in range(50):
            while lim.next_send_in() > 0 or lim._take() > 0:
                with guard:
                    clock.now += 0.01
            with guard:
                sends.append(clock.now)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sends) == 400
    assert max_in_window(sends, 1.0) <= 5


def test_shared_limiter_is_per_root_and_token() -> None:
    """Same root and token share; another token or root gets its own budget."""
    a = shared_limiter("https://a.omniapp.co/api", "t1", RateLimit())
    assert shared_limiter("https://a.omniapp.co/api", "t1", RateLimit()) is a
    assert shared_limiter("https://a.omniapp.co/api", "t2", RateLimit()) is not a
    assert shared_limiter("https://b.omniapp.co/api", "t1", RateLimit()) is not a
    assert a.shared  # the tests' OMNI_NB_BUDGET points at a temporary store


# -- simulated processes against a server that counts on arrival ------------------------------


@dataclass
class Sim:
    """Workers in several "processes" (each its own Limiter, all on one store or one budget)
    sending to a server that counts arrivals in a trailing window, refusing beyond it (refused
    requests not counted, as the sandbox does). Delays: send-to-arrival ``up``, application
    ``app``, answer ``down``; every worker runs in its own context, as tasks do."""

    limiters: list[Limiter]
    server: tuple[int, float]
    clock: FakeClock
    rng: random.Random
    up: tuple[float, float] = (0.0, 0.0)
    app: tuple[float, float] = (0.0, 0.0)
    arrivals: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)

    def run(self, per_process: int, workers: int) -> float:
        events: list[tuple[float, int, str, int]] = []
        todo = [per_process] * len(self.limiters)
        ctxs = [contextvars.copy_context() for _ in range(len(self.limiters) * workers)]
        sent_at: dict[int, float] = {}
        seq = 0
        for w in range(len(ctxs)):
            heapq.heappush(events, (self.clock.now + self.rng.uniform(0, 0.01), seq, "try", w))
            seq += 1
        accepted: list[float] = []
        n, per = self.server
        while events:
            when, _, kind, w = heapq.heappop(events)
            self.clock.now = max(self.clock.now, when)
            p = w // workers
            lim, ctx = self.limiters[p], ctxs[w]
            if kind == "try":
                if todo[p] == 0:
                    continue
                wait = ctx.run(lim._take)
                if wait > 0:
                    heapq.heappush(events, (self.clock.now + wait, seq, "try", w))
                else:
                    todo[p] -= 1
                    sent_at[w] = self.clock.now
                    arrive = self.clock.now + self.rng.uniform(*self.up)
                    heapq.heappush(events, (arrive, seq, "arrive", w))
            elif kind == "arrive":
                self.arrivals.append(when)
                ok = sum(1 for a in accepted if a > when - per) < n
                (accepted if ok else self.refused).append(when)
                back = when + self.rng.uniform(*self.app) + self.rng.uniform(0, 0.005)
                heapq.heappush(events, (back, seq, "ok" if ok else "429", w))
            else:
                ctx.run(lim.observe, self.clock.now - sent_at[w], 200 if kind == "ok" else 429)
                if kind == "429":
                    ctx.run(lim.rejected, None)
                    todo[p] += 1  # the item is retried
                heapq.heappush(events, (self.clock.now, seq, "try", w))
            seq += 1
        self.accepted = accepted
        return self.clock.now


def _store_limiters(make_store: StoreFactory, clock: FakeClock, k: int,
                    limit: RateLimit | None, margin: float | None = None) -> list[Limiter]:
    """k "processes": each its own Limiter and its own connection to one store (a SQLite
    file or a real Redis)."""
    return [Limiter(limit, clock=clock, margin=margin, store=make_store(), key="k")
            for _ in range(k)]


@pytest.mark.parametrize("seed", range(6))
def test_no_trailing_window_exceeds_the_limit_across_processes(make_store: StoreFactory,
                                                               seed: int) -> None:
    """2-4 processes on one store, 8 workers each, delays within the allowance: no window of
    arrivals at the server over the limit, no 429, and the batch near the least time."""
    rng = random.Random(seed)
    clock = FakeClock()
    n, per = rng.choice([(20, 2.0), (10, 5.0), (60, 60.0)])
    lims = _store_limiters(make_store, clock, rng.randint(2, 4), RateLimit(n, per), margin=0.05)
    sim = Sim(lims, (n, per), clock, rng, up=(0.0, 0.04), app=(0.0, 0.3))
    start = clock.now
    took = sim.run(per_process=2 * n // len(lims) + 3, workers=8) - start
    assert sim.refused == []
    assert max_in_window(sim.arrivals, per) <= n
    total = len(sim.accepted)
    least = ((total - 1) // n) * per
    assert took <= least * 1.05 + 1.0


def test_near_miss_429s_widen_the_allowance_then_it_shrinks(make_store: StoreFactory) -> None:
    """Network delays spread wider than the allowance: the first near-miss 429s widen it
    (no limit is learned from them), later windows are clean, and clean windows shrink it."""
    clock = FakeClock()
    lims = _store_limiters(make_store, clock, 2, RateLimit(10, 2.0), margin=0.01)
    sim = Sim(lims, (10, 2.0), clock, random.Random(1), up=(0.0, 0.15))
    sim.run(per_process=60, workers=6)
    assert sim.refused, "a 0.15 s spread against a 10 ms allowance should draw near misses"
    assert lims[0].learned_limit is None  # noise, not a tighter server
    widened = lims[0].allowance()
    assert widened >= 0.05  # from 0.01, after decaying over the clean windows since
    late = [t for t in sim.refused if t > sim.arrivals[-1] - 10.0]
    assert late == []  # the last five windows were clean
    clock.now += 60.0
    assert lims[0].allowance() < widened / 4


@pytest.mark.parametrize("configured", [RateLimit(), None])
def test_learned_limit_converges_then_expires(make_store: StoreFactory,
                                              configured: RateLimit | None) -> None:
    """A server at 10/5 s behind a client that believes 60/60 (or has no limit): one block is
    probed, trials in the next windows narrow the learned window to within a few allowances
    of 5 s (never below it), it is shared by both processes, the only later 429s are a few
    refused trials, and after its clean windows the learned limit expires."""
    clock = FakeClock()
    lims = _store_limiters(make_store, clock, 2, configured, margin=0.05)
    sim = Sim(lims, (10, 5.0), clock, random.Random(2), up=(0.0, 0.02), app=(0.0, 0.2))
    start = clock.now
    took = sim.run(per_process=30, workers=8) - start
    learned = lims[1].learned_limit
    assert learned is not None
    assert learned.requests == 10
    assert 5.0 <= learned.per <= 5.0 + 4 * 0.05  # the probes alone left it up to 8% over
    assert lims[0].effective_limit == learned == lims[1].effective_limit
    later = [t - start for t in sim.refused if t - start > 5.0]
    assert len(later) <= 4  # refused trials only: one at a time, at most a few windows
    assert all(t < 25.0 for t in later)  # the bracket was narrow before the last window
    assert max_in_window(sim.accepted, 5.0) <= 10
    assert took <= 25.0 * 1.06  # the least time is 25 s
    clock.now += budget_log.LEARNED_WINDOWS * learned.per + 1
    assert lims[0].learned_limit is None
    assert lims[0].effective_limit == configured


@pytest.mark.parametrize("window", [4.3, 5.0, 5.9])
def test_trials_halve_the_bracket_and_stop_near_the_allowance(window: float) -> None:
    """After a probe left the server's window in (4, 6]: each trial at the bracket's middle
    is accepted (upper end lowered, give or take J) or refused (lower end raised); within a
    few trials the learned window is at most 4 J over the server's and never under it."""
    allow = 0.05
    b = budget_log.Budget(learned=(10, 6.0, math.inf), floor=4.0)
    trials = 0
    while (mid := budget_log.trial_per(b, sent := 100.0 * (trials + 1), allow)) is not None:
        trials += 1  # one trial a window: each a window after the last
        b.sends, b.trial_at, b.trial_per = [(sent, budget_log.TRIAL)], sent, mid
        if mid >= window:  # accepted: no jitter here, so the bracket must still hold W
            budget_log.on_accepted(b, sent, budget_log.TRIAL, sent + 0.1, allow)
        else:
            assert budget_log.on_refused(b, sent, sent + 0.1, [], allow) == "probe"
        assert b.floor < window <= b.learned[1]  # type: ignore[index]
    assert trials <= 6
    assert window <= b.learned[1] <= window + 4 * allow  # type: ignore[index]


def test_a_trial_goes_alone_at_the_middle_and_opens_the_window() -> None:
    """With a learned 10 per 6 s and the window known to be over 4 s, the first send of a
    full window goes 5 s after its oldest send as a trial; the others wait (re-asking
    soon); once it is accepted they go at the new upper end plus J, not at 6 s plus J."""
    b = budget_log.Budget(sends=[(0.0, budget_log.SENT)] * 10, learned=(10, 6.0, math.inf),
                          floor=4.0)
    limits = budget_log.limits_in_force(b, None, 1.0)
    assert budget_log.earliest(b, 1.0, limits, 0.05) == pytest.approx(5.0)
    assert budget_log.claim(b, 5.0, limits, 0.05) == (0.0, budget_log.TRIAL)
    assert budget_log.trial_pending(b, 5.0)
    assert budget_log.claim(b, 5.0, limits, 0.05)[0] == pytest.approx(1.05)  # upper end + J
    budget_log.on_accepted(b, 5.0, budget_log.TRIAL, 5.01, 0.05)
    assert b.learned == (10, 5.05, math.inf)
    limits = budget_log.limits_in_force(b, None, 5.01)
    assert budget_log.earliest(b, 5.01, limits, 0.05) == pytest.approx(5.1)  # was 6.05
    assert budget_log.claim(b, 5.1, limits, 0.05) == (0.0, budget_log.SENT)


def test_a_server_that_counts_refusals_is_recognised_and_its_refusals_counted() -> None:
    """Learned 3 per 5 s; in the window before a 429 only 2 of our sends were accepted but 2
    more were refused: the server counts what it refuses. From then on refused sends count
    against the learned limit (not against the configured one), and a 429 in a window they
    filled is explained ("counted"), not a new tighter limit."""
    S, R = budget_log.SENT, budget_log.REFUSED
    b = budget_log.Budget(sends=[(0.0, S), (1.0, R), (1.5, R), (2.0, S), (3.0, S)],
                          learned=(3, 5.0, math.inf), floor=4.97)  # no trials due
    limits = budget_log.limits_in_force(b, RateLimit(60, 60.0), 3.1)
    assert budget_log.earliest(b, 3.1, limits, 0.0) == pytest.approx(5.0)  # 0.0 leaves
    assert budget_log.on_refused(b, 3.0, 3.1, limits, 0.0) == "counted"
    assert b.counts_refused
    assert b.floor == 0.0  # the bracket's lower end is unknown again
    b.floor = 4.97
    assert budget_log.earliest(b, 3.1, limits, 0.0) == pytest.approx(6.5)  # 1.5 + 5
    b.sends.append((5.0, S))
    assert budget_log.on_refused(b, 5.0, 5.1, limits, 0.0) == "counted"  # 1, 1.5, 2, 3
    assert b.probe is None
    assert budget_log.Budget.from_scalars(b.scalars(), b.sends).counts_refused


def test_a_block_longer_than_any_window_is_not_probed_as_one() -> None:
    """Refused probes are the limiter's experiments only while the block could still be a
    rate window: past the longest window allowed for, a refusal is "blind" (the client's
    backoff and its retry budget apply), so a server that refuses everything ends calls."""
    b = budget_log.Budget(sends=[(5.0, budget_log.PROBE), (11.0, budget_log.PROBE)])
    b.probe = budget_log.Probe(start=0.0, count=5, first=0.0, ceiling=10.0, next_at=5.0,
                               lower=1.0)
    assert budget_log.on_refused(b, 5.0, 5.1, [], 0.05) == "probe"
    assert budget_log.on_refused(b, 11.0, 11.1, [], 0.05) == "blind"


def test_probes_thin_out_for_small_limits() -> None:
    """Probes step 4%, but a server that let few through is probed more sparsely, so one
    that counts refused requests is not kept blocked by the probes alone."""
    assert budget_log._growth(60) == budget_log._growth(10) == pytest.approx(1.04)
    assert budget_log._growth(1) == pytest.approx(2 ** 0.5)


def test_a_store_written_before_trials_still_reads() -> None:
    """Budget scalars without the trial fields (an older omni_nb's store) load, with no
    bracket; the new ones round-trip."""
    b = budget_log.Budget(learned=(10, 6.0, 99.0), floor=4.0, trial_at=3.0, trial_per=5.0)
    assert budget_log.Budget.from_scalars(b.scalars(), []) == b
    old = {k: v for k, v in b.scalars().items() if k != "trial"}
    assert budget_log.Budget.from_scalars(old, []).floor == 0.0


def test_explicit_limit_is_the_ceiling() -> None:
    """Learning only lowers: a learned limit applies together with the configured one."""
    b = budget_log.Budget(learned=(50, 1.0, math.inf))
    limits = budget_log.limits_in_force(b, RateLimit(10, 60.0), 0.0)
    for t in range(10):
        assert budget_log.claim(b, float(t) / 100, limits, 0.0)[0] == 0.0
    assert budget_log.claim(b, 0.5, limits, 0.0)[0] > 59  # the configured 10/60 still holds


def test_a_pause_reaches_every_process_and_a_dead_one_holds_nothing(
        make_store: StoreFactory) -> None:
    """One process's pause holds the other; a process that sent a full window and died
    holds the key only until its sends leave the window."""
    clock = FakeClock()
    a, b = _store_limiters(make_store, clock, 2, RateLimit(5, 10.0), margin=0.0)
    a.pause_for(3.0)
    assert b.next_send_in() == pytest.approx(3.0)
    clock.now += 3.0
    for _ in range(5):
        assert a._take() == 0.0
    del a  # "killed": nothing of it remains but its five sends in the store
    assert b.next_send_in() == pytest.approx(10.0)
    clock.now += 10.0
    assert b._take() == 0.0


def test_wall_clock_stepped_back_does_not_hold_the_key_forever() -> None:
    """Sends stamped more than a day ahead (a clock stepped back) are dropped."""
    b = budget_log.Budget(sends=[(200_000.0, 0)] * 5, paused_until=500_000.0)
    budget_log.prune(b, 0.0, 120.0)
    assert b.sends == []
    assert budget_log.earliest(b, 0.0, [RateLimit(5, 10.0)], 0.0) == 0.0


# -- the store -------------------------------------------------------------------------------


def _everything_in(make_store: StoreFactory) -> bytes:
    """Every byte the store holds: the SQLite file's (and its journal's), or every Redis key
    under the test's prefix, its name and its value (DUMP)."""
    if isinstance(make_store.place, Path):
        return b"".join(p.read_bytes() for p in make_store.place.parent.iterdir()
                        if p.name.startswith(make_store.place.name))
    import redis

    client = redis.Redis.from_url(make_store.place.url)
    try:
        names = list(client.scan_iter(match=f"{make_store.place.prefix}*"))
        assert names, "the limiter wrote nothing to Redis"
        return b"".join(name + (client.dump(name) or b"") for name in names)
    finally:
        client.close()


def test_store_holds_no_token(make_store: StoreFactory) -> None:
    """The store is keyed by a digest of (API root, token fingerprint)."""
    token = "omni_osk_secret_value_123"
    import hashlib

    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:16]
    lim = Limiter(RateLimit(), store=make_store(), key=key_of("https://a/api", fingerprint))
    lim.acquire()
    lim.flush()
    data = _everything_in(make_store)
    assert token.encode() not in data
    assert fingerprint.encode() not in data


@pytest.mark.parametrize("kind", ["foreign", "corrupt"])
def test_foreign_or_corrupt_store_is_refused_untouched(tmp_path: Path, kind: str) -> None:
    """Another program's SQLite file, or a file that is not SQLite: refused with a warning,
    never modified, and the limiter keeps a per-process budget."""
    path = tmp_path / "b.sqlite3"
    if kind == "foreign":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (x TEXT)")
            conn.execute("INSERT INTO notes VALUES ('mine')")
        conn.close()
    else:
        path.write_bytes(b"SQLite format 3\x00" + b"\x13" * 2000)
    before = path.read_bytes()
    with pytest.warns(BudgetStoreWarning, match="budget store"):
        store = open_store(path)
    assert store is None
    assert path.read_bytes() == before
    with pytest.raises(StoreError):
        BudgetStore(path)


def test_locked_store_falls_back_instead_of_hanging(tmp_path: Path) -> None:
    """A store held locked by another process: after the short busy timeout, one warning
    naming the store and this process's share, and the batch goes on (not shared now)."""
    path = tmp_path / "b.sqlite3"
    lim = Limiter(RateLimit(5, 1.0), store=BudgetStore(path), key="k")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.warns(BudgetStoreWarning, match="is locked; this process sends at most"):
            assert lim.acquire() == 0.0
        assert not lim.shared
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lim.acquire()  # warned once for this outage
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _open_store_at(path: str, start: float, answers: Any) -> None:
    while time.time() < start:  # every process opens at the same instant
        pass
    try:
        BudgetStore(path).close()
        answers.put(None)
    except StoreError as exc:
        answers.put(str(exc))


def test_processes_creating_the_store_together_all_share_it(tmp_path: Path) -> None:
    """Four processes opening a new store at the same instant (kernels started together):
    every one gets the shared store; none falls back to a budget of its own because the
    first was switching the new file to WAL."""
    ctx = multiprocessing.get_context("fork")
    for run in range(5):
        path = str(tmp_path / f"b{run}.sqlite3")
        answers = ctx.Queue()
        start = time.time() + 0.3
        procs = [ctx.Process(target=_open_store_at, args=(path, start, answers))
                 for _ in range(4)]
        for p in procs:
            p.start()
        got = [answers.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert got == [None] * 4
