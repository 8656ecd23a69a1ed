"""The Redis budget store's faults, against a real redis-server: a Redis that cannot be
reached at the start (this machine's store instead, once said), one lost mid-batch (paused,
or restarted empty: the share meanwhile, the gap's sends written back, sharing again), and a
Redis that is another application's (refused, never written). Limiters run on an injected
clock (no sleeping); only the server's own timeouts take real time."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from omni_nb import RateLimit
from omni_nb.budget_url import RedisAddress
from omni_nb.ratelimit import BudgetStoreWarning, Caller, Limiter
from omni_nb.ratelimit.link import RETRY_S
from omni_nb.ratelimit.redis_store import RedisBudgetStore
from omni_nb.ratelimit.store import Store

from ..redis_server import RedisServer
from .test_ratelimit import FakeClock

PASSWORD = "s3cret-pw"


def _two(store: Callable[[], Store], clock: FakeClock, limit: RateLimit
         ) -> tuple[Limiter, Limiter]:
    """Two "processes" that each made one send (so each sees the other)."""
    a, b = (Limiter(None, clock=clock, margin=0.0, store=store(), key="k") for _ in range(2))
    for lim in (a, b, a):
        caller = lim.caller(limit)
        caller.acquire(clock.sleep)
        caller.sent()
        lim.flush()
    return a, b


def _send(caller: Caller, clock: FakeClock, n: int) -> None:
    for _ in range(n):
        assert caller.acquire(clock.sleep) == 0.0
        caller.sent()


def _sends(address: str) -> int:
    """The key's sends in Redis, read by another connection (a third "process")."""
    reader = RedisBudgetStore(RedisAddress.parse(address))
    try:
        return int(reader.update("k", lambda b: len(b.sends)))
    finally:
        reader.close()


def _opener(address: str) -> Callable[[], Store]:
    return lambda: RedisBudgetStore(RedisAddress.parse(address))


def test_a_paused_redis_means_the_share_then_the_gaps_sends_are_written_back(
        own_redis: RedisServer) -> None:
    """Redis stops answering mid-batch (SIGSTOP): one warning naming it and the share (20
    per 60 s over the 2 processes seen: 10), at most the share sent meanwhile; once it
    answers, the sends of the gap are in Redis and the whole budget is shared again."""
    address, clock = own_redis.address(prefix="p:"), FakeClock()
    a, b = _two(_opener(address), clock, RateLimit(20, 60.0))  # 3 sends in the window
    caller = a.caller(RateLimit(20, 60.0))
    own_redis.pause()
    try:
        with pytest.warns(BudgetStoreWarning) as caught:
            _send(caller, clock, 7)
        assert caller.next_send_in() > 59  # 3 + 7: its share of the window is used
        assert not a.shared
    finally:
        own_redis.resume()
    assert [str(w.message) for w in caught] == [
        f"budget store {address} cannot be used (budget store {address} cannot be reached "
        "(Timeout)); this process sends at most its share, 10 per 60 s, until it can use it "
        "again"]
    clock.now += RETRY_S
    caller.next_send_in()
    assert a.shared
    b.flush()  # the other process writes: it is heard again
    assert caller.next_send_in() == 0.0  # shared again: the whole 20 per 60 s, 10 used
    assert _sends(address) == 10  # the gap's 7 were written back


def test_a_redis_restarted_empty_is_made_anew_with_the_window_sends(
        own_redis: RedisServer) -> None:
    """Redis stopped mid-batch, then started again without its data: one warning for the
    outage (the share meanwhile), then one saying it lost its data; the new Redis holds this
    process's sends of the window (those before the outage and those of the gap). The other
    process, idle through the restart, finds the new Redis at its next step and adds its
    own send (one warning), so the key's count is whole again."""
    address, clock = own_redis.address(prefix="r:"), FakeClock()
    a, b = _two(_opener(address), clock, RateLimit(20, 60.0))  # a sent 2, b 1
    caller = a.caller(RateLimit(20, 60.0))
    own_redis.stop()
    with pytest.warns(BudgetStoreWarning) as down:
        _send(caller, clock, 7)  # 3 + 7: its share
    assert caller.next_send_in() > 59
    assert not a.shared
    own_redis.start()
    clock.now += RETRY_S
    with pytest.warns(BudgetStoreWarning) as back:
        caller.next_send_in()
    assert a.shared
    shown = own_redis.address(prefix="r:")
    assert [str(w.message) for w in [*down, *back]] == [
        f"budget store {shown} cannot be used (budget store {shown} cannot be reached "
        "(Connection refused)); this process sends at most its share, 10 per 60 s, until it "
        "can use it again",
        f"budget store {shown} lost its data (restarted or flushed); it is made anew with "
        "this process's sends of the window"]
    assert _sends(address) == 9  # a's 2 + 7
    with pytest.warns(BudgetStoreWarning, match="lost its data") as other:
        b.caller(None).next_send_in()
    assert len(other) == 1
    assert b.shared
    assert _sends(address) == 10  # and b's 1
    clock.now += RETRY_S
    assert caller.next_send_in() == 0.0  # both heard: the whole 20 per 60 s, 10 used
