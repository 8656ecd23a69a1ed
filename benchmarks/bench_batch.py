"""Speed and memory of the batch runner, each as a ratio against a baseline measured in the
same run.

    python benchmarks/bench_batch.py            # all four
    python benchmarks/bench_batch.py --quick    # all four on tiny sizes: the code paths (CI)

1. throughput: create_drafts (16 concurrent, no limit, ledger on) vs a bare
   httpx.AsyncClient + asyncio.gather loop over the same sandbox. Target: >= 0.90.
2. rate limit: a batch of N under R per W seconds vs the least time the limit allows, and the
   429s the sandbox answered. Target: <= 1.05 and 0.
3. memory: peak RSS of a 100,000-item batch (no limit, sandbox in another process, a budget
   store and a ledger of its own) vs the same process before the batch, after its imports:
   what the batch adds. Target (issue 18): at most 120 MB.
4. ledger load: omni_nb.results() of 100,000 rows vs pandas.read_sql_query of the same table.
   Target: < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

import omni_nb
from omni_nb import RateLimit, create_drafts, sandbox
from omni_nb.ledger import open_ledger, results
from omni_nb.rows import Row


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


async def bare(base_url: str, token: str, docs: list[str], concurrency: int) -> float:
    """The baseline: the least code that sends the same requests."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def one(doc: str) -> None:
            async with sem:
                r = await client.post(f"{base_url}/v1/documents/{doc}/draft", json={})
                r.raise_for_status()
                r.json()["identifier"]

        start = time.perf_counter()
        await asyncio.gather(*(one(d) for d in docs))
        return time.perf_counter() - start


def bench_throughput(n: int, rounds: int) -> None:
    docs = [f"doc-{i:04d}" for i in range(1, n + 1) if i % 10]  # eligible ones only
    with sandbox.serve(documents=n, rate_limit=None) as sb, tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "bench.sqlite3"
        ours, base = [], []
        for _ in range(rounds):
            base.append(len(docs) / asyncio.run(bare(sb.base_url, sb.token, docs, 16)))
            start = time.perf_counter()
            table = create_drafts(docs, base_url=sb.base_url, token=sb.token, rate_limit=None,
                                  concurrency=16, ledger=ledger)
            ours.append(len(docs) / (time.perf_counter() - start))
            assert (table["status"] == "ok").all()
    o, b = statistics.median(ours), statistics.median(base)
    print(f"throughput: create_drafts {o:,.0f} req/s, bare httpx {b:,.0f} req/s "
          f"-> ratio {o / b:.2f} (target >= 0.90; {len(docs)} items x {rounds} rounds, "
          "16 concurrent, ledger on)")


def bench_rate_limit(n: int, requests: int, per: float) -> None:
    docs = [f"doc-{i:04d}" for i in range(1, n + 1)]
    with sandbox.serve(documents=n, rate_limit=(requests, per), latency=0.01) as sb:
        start = time.perf_counter()
        create_drafts(docs, base_url=sb.base_url, token=sb.token,
                      rate_limit=RateLimit(requests, per), concurrency=16, ledger="off")
        took = time.perf_counter() - start
        refused = sum(r.status == 429 for r in sb.requests())
    least = ((n - 1) // requests) * per  # the last request can go no earlier than this
    print(f"rate limit: {n} items at {requests}/{per:g}s took {took:.2f} s, least possible "
          f"{least:.2f} s -> ratio {took / least:.3f} (target <= 1.05), 429 answers: {refused}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Issue 18's target: the peak RSS a 100,000-item batch adds, in MB.
MEMORY_TARGET_MB = 120


def bench_memory(n: int) -> None:
    port = free_port()
    token = "omni_osk_sandbox_bench"
    # `python -c` imports from its working directory first: run both children where the
    # omni_nb this script imported lives, so they measure that code whatever the cwd.
    here = Path(omni_nb.__file__).resolve().parents[1]
    server = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from omni_nb import sandbox
            with sandbox.serve(port={port}, documents={n}, rate_limit=None, token={token!r}):
                time.sleep(3600)
        """)], cwd=here,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        child = textwrap.dedent(f"""
            import resource, time, tempfile, os
            import omni_nb, pandas, httpx
            from omni_nb import create_drafts
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            docs = [f"doc-{{i:04d}}" for i in range(1, {n} + 1)]
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                # A budget store of its own: the figure never depends on what the user's
                # default store holds (or on another omni_nb version's store there).
                os.environ["OMNI_NB_BUDGET"] = os.path.join(tmp, "budget.sqlite3")
                t = create_drafts(docs, base_url="http://127.0.0.1:{port}/api", token={token!r},
                                  rate_limit=None, concurrency=16,
                                  ledger=os.path.join(tmp, "l.sqlite3"))
            took = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(before, after, len(t), took, omni_nb.__file__)
        """)
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                             check=True, timeout=1800, cwd=here)
        before_kb, after_kb, rows, took, where = out.stdout.split()
        assert Path(where).resolve() == Path(omni_nb.__file__).resolve(), where
        peak = int(after_kb) / 1024
        base = int(before_kb) / 1024
        print(f"memory: {int(rows):,} items in {float(took):.0f} s, peak RSS {peak:.0f} MB vs "
              f"{base:.0f} MB after imports (ratio {peak / base:.2f}) -> the batch adds "
              f"{peak - base:.0f} MB (target <= {MEMORY_TARGET_MB} MB)")
    finally:
        server.terminate()
        server.wait()


def bench_ledger_load(n: int) -> None:
    import sqlite3

    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "load.sqlite3"
        led = open_ledger(path)
        now = time.time_ns() // 1000
        led.record(
            Row(f"doc-{i:06d}", None if i % 3 else "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                f"{i:08x}", "ok" if i % 7 else "not_found", 200 if i % 7 else 404,
                "" if i % 7 else "Document with identifier x not found", 1, 0.05, now + i,
                "https://acme.omniapp.co/api", f"run-{i // 1000}")
            for i in range(n)
        )
        timings, base = [], []
        for _ in range(3):
            start = time.perf_counter()
            df = results(ledger=path)
            timings.append(time.perf_counter() - start)
            start = time.perf_counter()
            with sqlite3.connect(path) as conn:
                raw = pd.read_sql_query("SELECT * FROM calls", conn)
            base.append(time.perf_counter() - start)
        assert len(df) == len(raw) == n
    t, b = min(timings), min(base)
    print(f"ledger load: results() of {n:,} rows {t:.3f} s, pandas.read_sql_query {b:.3f} s "
          f"-> ratio {t / b:.2f} (target < 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one round: every code path in seconds (CI); the "
                             "figures print but mean little")
    parser.add_argument("--only", choices=["throughput", "rate", "memory", "ledger"])
    args = parser.parse_args()
    q = args.quick
    print(f"machine: {machine()}  (peak RSS is ru_maxrss)")
    if args.only in (None, "throughput"):
        bench_throughput(100 if q else 5000, 1 if q else 3)
    if args.only in (None, "rate"):
        bench_rate_limit(25 if q else 100, 10 if q else 20, 0.5 if q else 5.0)
    if args.only in (None, "memory"):
        bench_memory(300 if q else 100_000)
    if args.only in (None, "ledger"):
        bench_ledger_load(2_000 if q else 100_000)


if __name__ == "__main__":
    main()
