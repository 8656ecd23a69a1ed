"""The rate budget with company, for real: processes on one key released at one instant and a
caller joining a running batch, over sockets against the sandbox, judged by what the server
let through (its own arrival times, ``Sandbox.busiest_window``).

The server is the issue's: a strict trailing window counted on arrival with a grace at its
edge of an eighth of the window (it accepts a request whose window frees within the grace),
20 ms latency. A busy
machine only delays arrivals, which never packs them tighter, so the bound is asserted as it
is: at most the limit in any trailing window. The sizes are small (each test well under 20 s
on a busy 2-core machine); the figures at full size are in ``benchmarks/bench_company.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from omni_nb import OmniClient, RateLimit, create_drafts, sandbox
from omni_nb.batch.background import BatchRun

from ..redis_server import RedisServer

#: One process's batch: it imports everything, says "ready", reads the wall-clock instant it
#: is to start at from stdin, sleeps until then, drafts its documents and prints its rows'
#: statuses as JSON.
CHILD = textwrap.dedent("""
    import json, sys, time
    import omni_nb, pandas, httpx
    from omni_nb import RateLimit, create_drafts
    base_url, docs, requests, per = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - time.time()))
    table = create_drafts(docs, base_url=base_url, rate_limit=RateLimit(int(requests),
                          float(per)), concurrency=8, progress=False)
    print(json.dumps(list(table["status"])), flush=True)
""")


def documents(n: int, part: int = 0) -> list[str]:
    """n eligible documents (every tenth sandbox document is not), distinct for each part."""
    ids = [i for i in range(1, 1000) if i % 10][part * n:(part + 1) * n]
    return [f"doc-{i:04d}" for i in ids]


def run_together(sb: sandbox.Sandbox, store: Path, parts: int, each: int,
                 limit: tuple[int, float],
                 meanwhile: Callable[[float], None] | None = None,
                 budget: str | None = None) -> list[str]:
    """``parts`` processes on the sandbox's key, released at one wall-clock instant once all
    have imported everything; every row's status, all processes together. ``meanwhile``
    runs in a thread from the release on, given the wall-clock instant of the release.
    ``budget`` (a Redis address) replaces the store file ``store`` (its directory still
    holds the ledger)."""
    env = {**os.environ, "OMNI_API_TOKEN": sb.token, "OMNI_NB_BUDGET": budget or str(store),
           "OMNI_NB_LEDGER": str(store.with_name("ledger.sqlite3")),
           "XDG_DATA_HOME": str(store.with_name("data"))}  # a fallback store of the test's
    procs = [subprocess.Popen(
        [sys.executable, "-c", CHILD, sb.base_url, ",".join(documents(each, i)),
         str(limit[0]), str(limit[1])],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) for i in range(parts)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        # A moment ahead, so every child is asleep on the same instant before it comes.
        start_at = f"{time.time() + 0.3}\n"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(start_at)
            proc.stdin.flush()
        helper = None
        if meanwhile is not None:
            helper = threading.Thread(target=meanwhile, args=(float(start_at),))
            helper.start()
        statuses: list[str] = []
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0
            statuses += json.loads(out.strip().splitlines()[-1])
        if helper is not None:
            helper.join()
        return statuses
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def refused(sb: sandbox.Sandbox) -> int:
    sb.wait_idle(5.0)
    return sum(r.status == 429 for r in sb.requests())


@pytest.mark.parametrize(("parts", "each", "store"),
                         [(2, 30, "sqlite"), (3, 20, "sqlite"), (3, 20, "redis")])
def test_processes_released_together_keep_every_window_within_the_limit(
    tmp_path: Path, request: pytest.FixtureRequest, parts: int, each: int, store: str,
) -> None:
    """2 x 30 and 3 x 20 documents at 10 per 1 s, concurrency 8, all processes started at
    one instant on one key and one budget store (a file, or a real Redis): no trailing
    second of the server's accepted arrivals holds more than 10, no 429, every row ok."""
    budget = request.getfixturevalue("redis_address") if store == "redis" else None
    with sandbox.serve(documents=999, rate_limit=(10, 1.0), grace=0.125, latency=0.02,
                       retry_after=None) as sb:
        statuses = run_together(sb, tmp_path / "budget.sqlite3", parts, each, (10, 1.0),
                                budget=budget)
        assert Counter(statuses) == {"ok": parts * each}
        assert refused(sb) == 0
        assert sb.busiest_window(1.0) <= 10


def test_a_store_locked_mid_batch_keeps_both_processes_within_the_limit(tmp_path: Path) -> None:
    """2 x 30 documents at 10 per 1 s; 1.5 s in, a third process takes the budget store's
    write lock (``BEGIN EXCLUSIVE``) for 2 s: the processes go on, each on its share, so no
    trailing second of accepted arrivals holds more than 10, no 429, every row ok."""
    store = tmp_path / "budget.sqlite3"

    def hold_lock(released_at: float) -> None:
        time.sleep(max(0.0, released_at + 1.5 - time.time()))
        conn = sqlite3.connect(store, timeout=10.0, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(2.0)
            conn.execute("COMMIT")
        finally:
            conn.close()

    with sandbox.serve(documents=999, rate_limit=(10, 1.0), grace=0.125, latency=0.02,
                       retry_after=None) as sb:
        statuses = run_together(sb, store, 2, 30, (10, 1.0), meanwhile=hold_lock)
        assert Counter(statuses) == {"ok": 60}
        assert refused(sb) == 0
        assert sb.busiest_window(1.0) <= 10


@pytest.mark.parametrize("fault", ["paused", "restarted"])
def test_a_redis_lost_mid_batch_keeps_both_processes_within_the_limit(
        tmp_path: Path, own_redis: RedisServer, fault: str) -> None:
    """2 x 30 documents at 10 per 1 s through a Redis; 1.5 s in, Redis stops answering
    (SIGSTOP) for 2 s, or is stopped and started again empty 1 s later: the processes go
    on, each on its share while it is away, and share again when it is back (the gap's
    sends written back, or the new Redis seeded): no trailing second of accepted arrivals
    over 10, no 429, every row ok."""

    def lose(released_at: float) -> None:
        time.sleep(max(0.0, released_at + 1.5 - time.time()))
        if fault == "paused":
            own_redis.pause()
            time.sleep(2.0)
            own_redis.resume()
        else:
            own_redis.stop()
            time.sleep(1.0)
            own_redis.start()

    with sandbox.serve(documents=999, rate_limit=(10, 1.0), grace=0.125, latency=0.02,
                       retry_after=None) as sb:
        statuses = run_together(sb, tmp_path / "budget.sqlite3", 2, 30, (10, 1.0),
                                meanwhile=lose, budget=own_redis.address(prefix="c:"))
        assert Counter(statuses) == {"ok": 60}
        assert refused(sb) == 0
        assert sb.busiest_window(1.0) <= 10
    # Back on Redis: the key's log there holds sends (after a restart, the seeds and the
    # sends since; after a pause, every send of the run that is still kept).
    raw = redis.Redis(port=own_redis.port, decode_responses=True)
    try:
        [log_key] = list(raw.scan_iter(match="c:{*}:sends"))
        counts = [int(str(member).split(":")[2]) for member in raw.zrange(log_key, 0, -1)]
        assert sum(counts) > 0
    finally:
        raw.close()


def background_batch(sb: sandbox.Sandbox, n: int, limit: RateLimit) -> BatchRun:
    """A background batch of ``n`` documents, once it has drafted a dozen."""
    run = create_drafts(documents(n), base_url=sb.base_url, token=sb.token, rate_limit=limit,
                        concurrency=8, ledger="off", background=True, progress=False)
    deadline = time.monotonic() + 30
    while len(run.table) < 12 and not run.done:
        assert time.monotonic() < deadline, "the batch never got going"
        time.sleep(0.05)
    return run


@pytest.mark.parametrize("limit", [RateLimit(50, 1.0), None], ids=["looser", "none"])
def test_a_caller_joining_a_running_batch_does_not_loosen_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: RateLimit | None,
) -> None:
    """A background batch at 10 per 1 s on a 10 per 1 s server; once it has drafted a dozen
    documents, the same process makes one call on the key at a looser explicit limit (50
    per 1 s: both apply) or with ``rate_limit=None`` (what ``login()`` and quick one-off
    calls do): no 429, every row ok, no trailing second over the limit."""
    monkeypatch.setenv("OMNI_NB_BUDGET", str(tmp_path / "budget.sqlite3"))
    with sandbox.serve(documents=999, rate_limit=(10, 1.0), grace=0.125, latency=0.02,
                       retry_after=None) as sb:
        run = background_batch(sb, 40, RateLimit(10, 1.0))
        with OmniClient(sb.base_url, sb.token, rate_limit=limit) as client:
            client.create_draft(documents(1, part=100)[0])
        table = run.wait(timeout=60)
        assert table is not None
        assert Counter(table["status"]) == {"ok": 40}
        assert refused(sb) == 0
        assert sb.busiest_window(1.0) <= 10
