"""The Redis budget store's faults, against a real redis-server: a Redis that cannot be
reached at the start (this machine's store instead, once said), one lost mid-batch (paused,
or restarted empty: the share meanwhile, the gap's sends written back, sharing again), and a
Redis that is another application's (refused, never written). Limiters run on an injected
clock (no sleeping); only the server's own timeouts take real time."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from omni_nb import OmniClient, RateLimit, create_drafts
from omni_nb.budget_url import RedisAddress
from omni_nb.config import default_budget_path
from omni_nb.errors import ConfigError
from omni_nb.ratelimit import BudgetStore, BudgetStoreWarning, Caller, Limiter, open_store
from omni_nb.ratelimit.link import RETRY_S
from omni_nb.ratelimit.redis_store import RedisBudgetStore
from omni_nb.ratelimit.store import Store
from omni_nb.sandbox import Sandbox

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
        f"budget store {address} cannot be reached (Timeout); this process sends at most its "
        "share, 10 per 60 s, until it can use it again"]
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
        f"budget store {shown} cannot be reached (Connection refused); this process sends at "
        "most its share, 10 per 60 s, until it can use it again",
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


# -- at the start ----------------------------------------------------------------------------


def test_an_unreachable_redis_means_this_machines_store_said_once_per_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fresh_stores: Callable[[], None]) -> None:
    """A closed port at the start: each "process" warns once, naming the address without its
    password and the machine's store, and shares the key through that store: one process's
    lease and sends hold the other."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    server = RedisServer()  # never started: its port is closed
    address = RedisAddress.parse(server.address(user="team", password=PASSWORD))
    shown = f"redis://team:***@127.0.0.1:{server.port}/0"
    clock, limiters = FakeClock(), []
    for _ in range(2):
        fresh_stores()  # the next process
        with pytest.warns(BudgetStoreWarning) as caught:
            store = open_store(address)
        assert [str(w.message) for w in caught] == [
            f"budget store {shown} cannot be reached (Connection refused); this process "
            f"shares the key's rate budget through this machine's store "
            f"{default_budget_path()} instead (Redis is tried again at the next start)"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert open_store(address) is store  # said once
        assert isinstance(store, BudgetStore)
        limiters.append(Limiter(None, clock=clock, margin=0.0, store=store, key="k"))
    server.close()
    assert default_budget_path().is_relative_to(tmp_path / "data")
    a, b = limiters
    _send(a.caller(RateLimit(3, 10.0)), clock, 3)
    a.flush()
    assert b.caller(None).next_send_in() == pytest.approx(10.0)  # a's window, through the file
    assert a.shared
    assert b.shared


def _batch(lim: Limiter, clock: FakeClock) -> None:
    """Five sends at 5 per 10 s, written."""
    _send(lim.caller(RateLimit(5, 10.0)), clock, 5)
    lim.flush()


def _raw(address: str) -> redis.Redis:
    return redis.Redis.from_url(RedisAddress.parse(address).url)


FOREIGN = {
    "instance": lambda r, p: r.set(f"{p}instance", "another app's marker"),
    "hash": lambda r, p: r.hset(f"{p}{{k}}", mapping={"app": "queue", "jobs": "3"}),
    "string": lambda r, p: r.set(f"{p}{{k}}", "cached page"),
    "list": lambda r, p: r.rpush(f"{p}{{k}}:sends", "job-1", "job-2"),
}


def _dump(r: redis.Redis, prefix: str) -> dict[bytes, tuple[bytes | str, bytes | None, int]]:
    """Every key under the prefix: its type, its value (DUMP) and its time to live."""
    return {name: (r.type(name), r.dump(name), r.ttl(name))
            for name in sorted(r.scan_iter(match=f"{prefix}*"))}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_a_key_of_ours_holding_another_applications_data_is_refused_untouched(
        redis_address: str, redis_prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, fresh_stores: Callable[[], None], kind: str) -> None:
    """The instance marker, the key's hash or its send log holding another application's
    data: one warning saying so, the process on a budget not shared through that Redis
    (the machine's store for a foreign marker, found at the start; its own share for a
    foreign key, found at the first step), and every key under the prefix byte-identical
    after (type, DUMP, TTL), snapshot and clear included."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    raw = _raw(redis_address)
    FOREIGN[kind](raw, redis_prefix)
    if kind != "instance":
        raw.set(f"{redis_prefix}instance", "omni_nb budget store 0123")  # a Redis of ours
    before = _dump(raw, redis_prefix)
    address = RedisAddress.parse(redis_address)
    clock = FakeClock()
    with pytest.warns(BudgetStoreWarning, match="holds another application's data") as caught:
        _batch(lim := Limiter(None, clock=clock, margin=0.0, store=open_store(address),
                              key="k"), clock)
    assert len(caught) == 1
    if kind == "instance":
        assert "this machine's store" in str(caught[0].message)
        assert lim.shared  # through the file
    else:
        assert "this process sends at most its share" in str(caught[0].message)
        assert not lim.shared
        reader = RedisBudgetStore(address)
        assert reader.snapshot() == []
        assert reader.clear() == 0
        reader.close()
    assert _dump(raw, redis_prefix) == before
    raw.close()


# -- settings to fix: one ConfigError, nothing sent ------------------------------------------


@pytest.fixture
def team_user(redis_server: RedisServer) -> str:
    """A user on the session's server that may do anything, with the password PASSWORD."""
    name = f"team{uuid.uuid4().hex[:6]}"
    redis_server.add_user(name, PASSWORD, ["~*", "&*", "+@all"])
    return name


@pytest.mark.parametrize(("case", "said"), [
    ("password", "Redis refused the user or password"),
    ("user", "Redis refused the user or password"),
    ("database", "Redis has no such database"),
])
@pytest.mark.parametrize("how", ["client", "batch"])
def test_a_refused_password_user_or_database_is_one_config_error_before_anything_is_sent(
        redis_server: RedisServer, team_user: str, make_sandbox: Callable[..., Sandbox],
        monkeypatch: pytest.MonkeyPatch, fresh_stores: Callable[[], None], case: str,
        said: str, how: str) -> None:
    """A wrong password, an unknown user or a database index out of range, in
    ``OMNI_NB_BUDGET``: OmniClient(...) or create_drafts(...) raises one ConfigError line
    naming the address masked and what Redis refused; the sandbox received nothing and the
    password is nowhere in it."""
    wrong = {"password": (team_user, "not-" + PASSWORD, 0),
             "user": ("nobody" + team_user, PASSWORD, 0),
             "database": (team_user, PASSWORD, 99)}[case]
    user, password, db = wrong
    monkeypatch.setenv("OMNI_NB_BUDGET", redis_server.address(user=user, password=password,
                                                              db=db))
    sb = make_sandbox()
    make: Callable[[], object] = (
        (lambda: OmniClient(sb.base_url, sb.token)) if how == "client"
        else lambda: create_drafts(["doc-0001"], base_url=sb.base_url, token=sb.token,
                                   progress=False))
    with pytest.raises(ConfigError) as raised:
        make()
    text = str(raised.value)
    assert text.startswith(f"budget store redis://{user}:***@127.0.0.1:{redis_server.port}/"
                           f"{db}: {said}")
    assert "\n" not in text
    assert password not in text + repr(raised.value)
    sb.wait_idle(2.0)
    assert sb.requests() == []
