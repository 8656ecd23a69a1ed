"""The Redis budget store for real: the minimal ACL the docs name is enough (and a user
missing a command is told), processes whose clocks disagree by seconds share one window
through Redis's time, and nothing about Redis happens for a user who never sets
``OMNI_NB_BUDGET``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from omni_nb import RateLimit, create_drafts, sandbox
from omni_nb.budget_url import RedisAddress
from omni_nb.errors import ConfigError
from omni_nb.ratelimit import BudgetStoreWarning, Limiter
from omni_nb.ratelimit.redis_store import RedisBudgetStore

from ..redis_server import RedisServer, missing
from .test_company import documents

#: The minimal ACL of docs/team-budget.md, for the keys under PREFIX.
MINIMAL = [
    "resetkeys", "~PREFIX*", "resetchannels", "-@all", "+select", "+get", "+set", "+type",
    "+watch", "+multi", "+exec", "+time", "+hgetall", "+hget", "+hset",
    "+hdel", "+zrange", "+zrangebyscore", "+zadd", "+zrem", "+zremrangebyscore", "+expire",
    "+scan", "+del"]


def _user(server: RedisServer, prefix: str, without: str | None = None) -> tuple[str, str]:
    """A user with the minimal ACL for ``prefix`` (less the rule ``without``): its name and
    password."""
    name, password = f"omni{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    rules = [rule.replace("PREFIX", prefix) for rule in MINIMAL if rule != without]
    server.add_user(name, password, rules)
    return name, password


def test_the_minimal_acl_runs_a_batch_a_snapshot_and_a_clear(
        redis_server: RedisServer, redis_prefix: str, make_sandbox: Callable[..., sandbox.Sandbox],
        monkeypatch: pytest.MonkeyPatch, fresh_stores: Callable[[], None]) -> None:
    """A user with exactly the documented ACL: a batch's claims, stamps and lease go through
    it with no warning, its snapshot shows the key's sends and lease, and clear drops it."""
    name, password = _user(redis_server, redis_prefix)
    address = redis_server.address(prefix=redis_prefix, user=name, password=password)
    monkeypatch.setenv("OMNI_NB_BUDGET", address)
    sb = make_sandbox()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BudgetStoreWarning)
        table = create_drafts(documents(12), base_url=sb.base_url, token=sb.token,
                              rate_limit=RateLimit(600, 60.0), ledger="off", progress=False)
    assert Counter(table["status"]) == {"ok": 12}
    store = RedisBudgetStore(RedisAddress.parse(address))
    try:
        [state] = store.snapshot()
        assert state.sends == 12
        assert [lease.limit for lease in state.leases] == [RateLimit(600, 60.0)]
        assert store.clear() == 1
        assert store.snapshot() == []
    finally:
        store.close()


def test_a_user_missing_a_command_is_told_at_the_start_or_at_its_first_step(
        redis_server: RedisServer, redis_prefix: str) -> None:
    """Without +time (read when the store opens): a ConfigError naming the command and the
    ACL's docs. Without +zadd (needed by the first write only): the store opens, and the
    first step is refused with a warning naming the command; the process keeps to its
    share, never writing half a step."""
    name, password = _user(redis_server, redis_prefix, without="+time")
    with pytest.raises(ConfigError, match=r"no permissions to run the 'time' command.*ACL"):
        RedisBudgetStore(RedisAddress.parse(redis_server.address(
            prefix=redis_prefix, user=name, password=password)))
    name, password = _user(redis_server, redis_prefix, without="+zadd")
    address = redis_server.address(prefix=redis_prefix, user=name, password=password)
    lim = Limiter(RateLimit(5, 10.0), store=RedisBudgetStore(RedisAddress.parse(address)),
                  key="k")
    with pytest.warns(BudgetStoreWarning, match="no permissions to run the 'zadd' command"):
        lim.acquire()
    assert not lim.shared
    raw = redis.Redis(port=redis_server.port)
    assert raw.exists(f"{redis_prefix}{{k}}", f"{redis_prefix}{{k}}:sends") == 0
    raw.close()


#: One "machine"'s process: its clock off by OFFSET seconds (patched before omni_nb is
#: imported), it says "ready", sleeps until the instant read from stdin (on the true clock),
#: drafts its documents through the Redis budget, and prints its statuses and the store's
#: measured skew.
CLOCK_CHILD = textwrap.dedent("""
    import json, sys, time
    offset = float(sys.argv[1])
    true_time = time.time
    time.time = lambda: true_time() + offset
    import omni_nb
    from omni_nb import RateLimit, create_drafts
    from omni_nb.config import budget_path
    from omni_nb.ratelimit import open_store
    base_url, token, docs = sys.argv[2], sys.argv[3], sys.argv[4].split(",")
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - true_time()))
    table = create_drafts(docs, base_url=base_url, token=token, rate_limit=RateLimit(8, 1.0),
                          concurrency=4, ledger="off", progress=False)
    print(json.dumps({"statuses": list(table["status"]),
                      "skew": open_store(budget_path()).skew()}), flush=True)
""")


def test_machines_whose_clocks_disagree_share_one_window_through_redis(
        redis_address: str, tmp_path: Path) -> None:
    """Two processes whose clocks are 3 s behind and 3 s ahead, one key at 8 per 1 s through
    one Redis, released together against a server at 8 per 1 s: each measured its offset
    from Redis's time (about minus its own), every row ok, no 429, and no trailing second of
    the server's arrivals over 8. (On their own clocks the two logs would sit 6 s apart, and
    each process would see the other's sends as long gone.)"""
    offsets = (-3.0, 3.0)
    with sandbox.serve(documents=999, rate_limit=(8, 1.0), grace=0.125, latency=0.02,
                       retry_after=None) as sb:
        env = {**os.environ, "OMNI_NB_BUDGET": redis_address,
               "XDG_DATA_HOME": str(tmp_path / "data")}
        procs = [subprocess.Popen(
            [sys.executable, "-c", CLOCK_CHILD, str(offset), sb.base_url, sb.token,
             ",".join(documents(16, i))],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for i, offset in enumerate(offsets)]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
            start_at = f"{time.time() + 0.3}\n"  # every child asleep on one instant
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(start_at)
                proc.stdin.flush()
            results = [json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1])
                       for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert [proc.returncode for proc in procs] == [0, 0]
        for offset, result in zip(offsets, results, strict=True):
            assert result["skew"] == pytest.approx(-offset, abs=0.25)
            assert Counter(result["statuses"]) == {"ok": 16}
        sb.wait_idle(5.0)
        assert sum(r.status == 429 for r in sb.requests()) == 0
        assert sb.busiest_window(1.0) <= 8


def test_without_the_setting_redis_is_never_imported(tmp_path: Path) -> None:
    """No OMNI_NB_BUDGET: a batch, a client and the budget report run on this machine's
    store, and redis-py is never imported."""
    code = textwrap.dedent("""
        import sys
        import omni_nb
        from omni_nb import OmniClient, create_drafts, rate_budget, sandbox
        with sandbox.serve(rate_limit=None) as sb:
            table = create_drafts(["doc-0001", "doc-0002"], base_url=sb.base_url,
                                  token=sb.token, progress=False)
            with OmniClient(sb.base_url, sb.token) as client:
                client.create_draft("doc-0003")
            str(rate_budget())
        print(sorted(set(table["status"])), [m for m in sys.modules
                                             if m == "redis" or m.startswith("redis.")])
    """)
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("OMNI_")}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip().splitlines()[-1] == "['ok'] []"
    assert (tmp_path / "data" / "omni-nb" / "budget.sqlite3").exists()  # the machine's store


def test_the_redis_tests_skip_saying_why_where_they_cannot_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No redis-server on PATH: the reason names the apt-get package; redis-py missing: the
    reason names the extra."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert missing() == "redis-server is not installed: apt-get install redis-server"
    (tmp_path / "redis-server").write_text("#!/bin/sh\n")
    (tmp_path / "redis-server").chmod(0o755)
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis now fails
    assert missing() == "redis-py is not installed: pip install 'omni_nb[redis]'"


def test_a_claim_whose_transaction_is_tried_again_is_handed_out_once(
        redis_address: str, clock: Callable[[], float]) -> None:
    """Another process writes the key between a claim's read and its EXEC: the step runs
    again, and only the attempt that held is this process's claim. A store made anew (Redis
    lost its data) is seeded with that one send, not with the attempt that was thrown away."""
    address = RedisAddress.parse(redis_address)
    store, other = RedisBudgetStore(address), RedisBudgetStore(address)
    lim = Limiter(None, clock=clock, margin=0.0, store=store, key="k")
    caller = lim.caller(RateLimit(5, 10.0))
    update, attempts = store.update, []

    def meddled(key: str, change: Callable[..., object], **kw: object) -> object:
        def first_time_meddle(b: object) -> object:
            attempts.append(1)
            if len(attempts) == 1:  # on another connection, inside this step's WATCH
                other.update(key, lambda o: o.sends.append((clock() - 1.0, 0)))
            return change(b)
        return update(key, first_time_meddle, **kw)  # type: ignore[arg-type]

    store.update = meddled  # type: ignore[method-assign]
    assert caller.take() == 0.0
    caller.sent()
    store.update = update  # type: ignore[method-assign]
    assert len(attempts) == 2
    server = redis.Redis.from_url(address.url)
    lost = list(server.scan_iter(match=f"{address.prefix}*"))
    server.delete(*lost)  # Redis lost everything of ours (a restart, say)
    with pytest.warns(BudgetStoreWarning, match="lost its data"):
        caller.next_send_in()
    seeded = RedisBudgetStore(address).update("k", lambda b: sorted(b.sends))
    assert seeded == [(clock(), 0)]  # this process's one send: no claim of the lost attempt


def test_a_redis_setting_without_redis_py_is_one_config_error_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch, fresh_stores: Callable[[], None],
        make_sandbox: Callable[..., sandbox.Sandbox]) -> None:
    """With redis-py missing, asking for a Redis store is one ConfigError line that names
    the extra, raised before anything is sent; the address's password does not show."""
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis raises ImportError
    monkeypatch.setenv("OMNI_NB_BUDGET", "redis://team:s3cret@127.0.0.1:6379/0")
    sb = make_sandbox()
    with pytest.raises(ConfigError) as caught:
        create_drafts(documents(2), base_url=sb.base_url, token=sb.token, ledger="off",
                      progress=False)
    text = str(caught.value)
    assert "pip install 'omni_nb[redis]'" in text
    assert "\n" not in text
    assert "s3cret" not in text
    sb.wait_idle(2.0)
    assert sb.requests() == []
