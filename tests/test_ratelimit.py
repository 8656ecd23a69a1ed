"""The trailing-window limiter, on an injected clock (no sleeping), through its public
seams: reserve(), acquire()/aacquire() with an injected sleep, pause_for(), paused_until."""

from __future__ import annotations

import heapq
import random
import threading
from collections.abc import Coroutine, Generator
from typing import Any

import pytest

from omni_nb import RateLimit
from omni_nb.ratelimit import Limiter, shared_limiter

from .conftest import FakeClock


class _Nap:
    """What a simulated caller awaits: the driver sees it and wakes the caller later."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __await__(self) -> Generator[_Nap, None, None]:
        yield self


async def _nap(seconds: float) -> None:
    await _Nap(seconds)


def max_in_window(times: list[float], per: float) -> int:
    """Most sends in any half-open window [t, t + per)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - per + 1e-9:  # float rounding at the exact boundary
            j += 1
        best = max(best, i - j + 1)
    return best


def test_burst_then_waits_a_full_window() -> None:
    """N calls go at once, call N+1 waits until the first leaves the window."""
    clock = FakeClock(0.0)
    lim = Limiter(RateLimit(3, 10.0), clock=clock, margin=0.0)
    slots = [lim.reserve()[0] for _ in range(7)]
    assert slots == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


@pytest.mark.parametrize("seed", range(20))
def test_no_trailing_window_ever_exceeds_the_limit(seed: int) -> None:
    """Simulated concurrent aacquire() callers never put > N sends in any window."""
    rng = random.Random(seed)
    clock = FakeClock(0.0)
    limit = RateLimit(rng.randint(1, 20), rng.choice([1.0, 5.0, 60.0]))
    lim = Limiter(limit, clock=clock, margin=0.0)
    # (time, seq, kind, pause seconds or None, waiting caller or None)
    events: list[tuple[float, int, str, float, Coroutine[Any, Any, float] | None]] = []
    seq = 0
    t = 0.0
    arrivals = 0
    for _ in range(300):
        t += rng.expovariate(limit.requests / limit.per * 2)
        seq += 1
        kind = "pause" if rng.random() < 0.05 else "arrive"
        arrivals += kind == "arrive"
        heapq.heappush(events, (t, seq, kind, rng.uniform(0, limit.per), None))
    sends: list[float] = []
    while events:
        when, _, kind, seconds, caller = heapq.heappop(events)
        clock.now = when
        if kind == "pause":
            lim.pause_for(seconds)
            continue
        if caller is None:  # an arrival: a new caller of aacquire()
            caller = lim.aacquire(_nap)
        try:
            nap = caller.send(None)  # run the caller until it sends or naps
        except StopIteration:
            sends.append(when)
        else:
            seq += 1
            heapq.heappush(events, (when + nap.seconds, seq, "wake", 0.0, caller))
    assert len(sends) == arrivals  # every arrival eventually sent
    assert max_in_window(sends, limit.per) <= limit.requests


def test_steady_state_reaches_the_limit() -> None:
    """Under constant demand the limiter sends N per window, not fewer (margin aside)."""
    clock = FakeClock(0.0)
    lim = Limiter(RateLimit(60, 60.0), clock=clock, margin=0.0)
    for _ in range(600):
        lim.acquire(clock.sleep)
    # 600 calls at 60/min: the last goes at 9 full windows.
    assert clock.now == pytest.approx(540.0)


def test_pause_holds_every_caller_and_releases_reserved_slots() -> None:
    """A 429 pause holds a caller waiting for its slot until the pause ends."""
    clock = FakeClock(0.0)
    lim = Limiter(RateLimit(2, 10.0), clock=clock, margin=0.0)
    assert [lim.acquire(clock.sleep), lim.acquire(clock.sleep)] == [0.0, 0.0]
    naps: list[float] = []

    def sleep_then_429(seconds: float) -> None:
        if not naps:
            lim.pause_for(30.0)  # a 429 arrives while this caller waits for its t=10 slot
        naps.append(seconds)
        clock.sleep(seconds)

    assert lim.acquire(sleep_then_429) == pytest.approx(30.0)
    assert naps == pytest.approx([10.0, 20.0])  # woke at its old slot, then waited the pause
    assert clock.now == pytest.approx(30.0)
    assert lim.paused_until == pytest.approx(30.0)
    assert lim.reserve()[0] >= 30.0


def test_unlimited_limiter_only_pauses() -> None:
    """rate_limit=None: no window, but a 429 pause still holds callers."""
    clock = FakeClock(0.0)
    lim = Limiter(None, clock=clock)
    assert [lim.acquire(clock.sleep) for _ in range(1000)] == [0.0] * 1000
    lim.pause_for(5.0)
    assert lim.acquire(clock.sleep) == pytest.approx(5.0)


def test_threads_share_one_budget() -> None:
    """Many threads reserving at once still get slots N apart by a full window."""
    clock = FakeClock(0.0)
    lim = Limiter(RateLimit(5, 1.0), clock=clock, margin=0.0)
    slots: list[float] = []
    guard = threading.Lock()

    def take() -> None:
        for _ in range(50):
            s, _ = lim.reserve()
            with guard:
                slots.append(s)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slots) == 400
    assert max_in_window(slots, 1.0) <= 5


def test_shared_limiter_is_per_root_and_token() -> None:
    """Same root and token share; another token or root gets its own budget."""
    a = shared_limiter("https://a.omniapp.co/api", "t1", RateLimit())
    assert shared_limiter("https://a.omniapp.co/api", "t1", RateLimit()) is a
    assert shared_limiter("https://a.omniapp.co/api", "t2", RateLimit()) is not a
    assert shared_limiter("https://b.omniapp.co/api", "t1", RateLimit()) is not a


@pytest.mark.parametrize(
    ("text", "expected"),
    [("60/60", RateLimit(60, 60.0)), ("500/60", RateLimit(500, 60.0)), ("off", None),
     ("10", RateLimit(10, 60.0))],
)
def test_parse(text: str, expected: RateLimit | None) -> None:
    """N/SECONDS and off parse; N alone means per minute."""
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("bad", ["x/60", "0/60", "10/0", "10/-1", "10/inf"])
def test_parse_rejects_nonsense(bad: str) -> None:
    """Zero, negative, infinite or non-numeric limits are refused."""
    with pytest.raises(ValueError, match="N/SECONDS"):
        RateLimit.parse(bad)
