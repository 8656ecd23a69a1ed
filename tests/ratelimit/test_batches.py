"""Sends claimed with no limit in force are written in batches (no transaction per send), a
caller taking a lease waits for them, and a block is counted on every send of its window (on
a SQLite file and on a real Redis)."""

from __future__ import annotations

import contextvars
import math
from typing import Any, cast

import pytest

from omni_nb import RateLimit
from omni_nb.ratelimit import Limiter
from omni_nb.ratelimit.claims import FLUSH_S
from omni_nb.ratelimit.store import Store

from ..redis_server import StoreFactory
from .test_ratelimit import FakeClock


class CountingStore:
    """One store connection that counts its transactions (all else passes through)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.steps = 0

    def update(self, *args: Any, **kwargs: Any) -> Any:
        self.steps += 1
        return self.store.update(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_unlimited_claims_cost_one_transaction_per_batch(make_store: StoreFactory) -> None:
    """1,000 claims over 2 s of a caller on None: at most ceil(2 / 0.1) + 1 transactions, and
    every send is in the store at most a batch interval after it was claimed."""
    clock = FakeClock()
    store = CountingStore(make_store())
    lim = Limiter(None, clock=clock, store=cast(Store, store), key="k")
    reader = make_store()
    caller = lim.caller(None)
    start, late = clock.now, 0.0
    for i in range(1000):
        clock.now = start + i * 0.002
        assert caller.take() == 0.0
        caller.sent()
        written = reader.update("k", lambda b: len(b.sends))
        # Sends claimed more than one interval ago are all in the store.
        late = max(late, i + 1 - written)
    assert store.steps <= math.ceil((clock.now - start) / FLUSH_S) + 1
    assert late <= FLUSH_S / 0.002 + 1
    caller.close()  # the last batch is written at close
    assert reader.update("k", lambda b: len(b.sends)) == 1000


def test_a_caller_taking_a_lease_waits_for_the_batches_of_others(
        make_store: StoreFactory) -> None:
    """Process A sends on None in batches; process B's first claim under a lease waits until
    A has written what it sent, then counts it (3 of A's sends fill B's 3 per 10 s)."""
    clock = FakeClock()
    a = Limiter(None, clock=clock, store=make_store(), key="k")
    b = Limiter(None, clock=clock, store=make_store(), key="k")
    loose, strict = a.caller(None), b.caller(RateLimit(3, 10.0))
    for _ in range(3):
        assert loose.take() == 0.0
        loose.sent()
    wait = strict.take()
    assert 0 < wait <= 2 * FLUSH_S + 1e-9  # A may have sends not yet written
    clock.now += FLUSH_S
    a.flush()  # A's timer
    clock.now += wait
    assert strict.take() == pytest.approx(10.0 - FLUSH_S - wait, abs=0.06)


def test_a_block_is_counted_on_every_send_of_its_window(make_store: StoreFactory) -> None:
    """A caller on None sends 500 in a minute, the 501st is refused: the limit it learns is
    about 500 a minute, not a cap on what the log keeps (it was 64)."""
    clock = FakeClock()
    lim = Limiter(None, clock=clock, margin=0.05, store=make_store(), key="k")
    caller = lim.caller(None)
    for _ in range(500):
        clock.now += 0.1
        ctx = contextvars.copy_context()
        ctx.run(caller.acquire, clock.sleep)
        ctx.run(caller.sent)
        ctx.run(caller.observe, 0.05, 200)
    clock.now += 0.1
    ctx = contextvars.copy_context()
    ctx.run(caller.acquire, clock.sleep)
    ctx.run(caller.sent)
    assert ctx.run(caller.rejected, None) == "tighter"
    accepted = False
    for _ in range(100):  # probes, one at a time, until one is accepted
        ctx = contextvars.copy_context()
        ctx.run(caller.acquire, clock.sleep)
        ctx.run(caller.sent)
        if clock.now - 1_000.0 > 60.1:
            ctx.run(caller.observe, 0.05, 200)
            accepted = True
            break
        ctx.run(caller.rejected, None)
    assert accepted
    learned = caller.learned_limit
    assert learned is not None
    assert 480 <= learned.requests <= 500
    assert 59.5 <= learned.per <= 60.0 * 1.1
