"""The rate budget against servers that count on arrival (the sandbox, as Omni's firewall):
each figure is the batch's time as a ratio of the least time the server's limit allows
(the last request can go no earlier than ((n - 1) // N) windows after the first), measured
in this run, and the 429 answers the server gave.

    python benchmarks/bench_ratelimit.py            # every case (about 5 minutes)
    python benchmarks/bench_ratelimit.py --only tighter
    python benchmarks/bench_ratelimit.py --quick    # every case on tiny sizes: the code paths (CI)

The sandbox answers 429 + ``X-Omni-Waf-Action: block`` without Retry-After, counting only the
requests it accepts (one case tells it to count refused ones too). Every case uses a fresh
budget store in a temporary directory. ``--quick`` runs every case with a few items against
half-second windows: the figures print, but only a full run's mean anything, and a quick run
checks no row (a short window on a busy machine may leave one rate limited).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import machine

from omni_nb import RateLimit, create_drafts, sandbox


def least(n: int, requests: int, per: float) -> float:
    return ((n - 1) // requests) * per


def report(name: str, took: float, n: int, limit: tuple[int, float], refused: int,
           target: str) -> None:
    low = least(n, *limit)
    print(f"{name}: {n} items, server {limit[0]}/{limit[1]:g}s: {took:.2f} s vs least "
          f"{low:.2f} s -> ratio {took / low:.3f} ({target}), 429 answers: {refused}",
          flush=True)


def docs(n: int, part: int = 0) -> list[str]:
    """n eligible documents (every tenth sandbox document is not), distinct for each part."""
    ids = [i for i in range(1, 1000) if i % 10][part * n:(part + 1) * n]
    return [f"doc-{i:04d}" for i in ids]


def refused_of(sb: sandbox.Sandbox) -> int:
    return sum(r.status == 429 for r in sb.requests())


def bench_single(name: str, n: int, limit: tuple[int, float], latency: float, jitter: float,
                 client_limit: RateLimit | None, target: str,
                 count_refused: bool = False, check: bool = True) -> float:
    with sandbox.serve(documents=999, rate_limit=limit, latency=latency, latency_jitter=jitter,
                       retry_after=None, count_refused=count_refused) as sb:
        start = time.perf_counter()
        table = create_drafts(docs(n), base_url=sb.base_url, token=sb.token,
                              rate_limit=client_limit, concurrency=16, ledger="off")
        took = time.perf_counter() - start
        assert not check or (table["status"] == "ok").all(), table.summary()
        report(name, took, n, limit, refused_of(sb), target)
    return took


CHILD = textwrap.dedent("""
    import sys, omni_nb
    from omni_nb import RateLimit
    t = omni_nb.create_drafts(sys.argv[2].split(","), base_url=sys.argv[1],
                              rate_limit=RateLimit(int(sys.argv[3]), float(sys.argv[4])),
                              concurrency=8, ledger="off")
    assert sys.argv[5] == "quick" or (t["status"] == "ok").all(), t.summary()
""")


def bench_processes(k: int, each: int, limit: tuple[int, float], check: bool = True) -> None:
    n = k * each
    with sandbox.serve(documents=999, rate_limit=limit, retry_after=None, latency=0.01) as sb, \
            tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMNI_API_TOKEN": sb.token,
               "OMNI_NB_BUDGET": str(Path(tmp) / "budget.sqlite3")}
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, sb.base_url,
                                   ",".join(docs(each, i)), str(limit[0]),
                                   str(limit[1]), "check" if check else "quick"], env=env)
                 for i in range(k)]
        for p in procs:
            assert p.wait(timeout=600) == 0
        wall = time.perf_counter() - start
        arrivals = sorted(r.received_at for r in sb.requests())
        # The server's span (first to last arrival, plus one round trip's worth): the wall
        # time would add k interpreters importing pandas on a 2-core machine.
        span = arrivals[-1] - arrivals[0]
        report(f"{k} processes, one key (server-side span; wall {wall:.1f} s)", span, n,
               limit, refused_of(sb), "target 0 x 429, <= 1.20")


def bench_threads(k: int, each: int, limit: tuple[int, float]) -> None:
    n = k * each
    with sandbox.serve(documents=999, rate_limit=limit, retry_after=None, latency=0.01) as sb:
        go = threading.Barrier(k)

        def run(i: int) -> None:
            go.wait()
            create_drafts(docs(each, i), base_url=sb.base_url, token=sb.token,
                          rate_limit=RateLimit(*limit), ledger="off")

        threads = [threading.Thread(target=run, args=(i,)) for i in range(k)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report(f"{k} threads at once", time.perf_counter() - start, n, limit, refused_of(sb),
               "target 0 x 429")


async def plain_retrying(base_url: str, token: str, items: list[str]) -> int:
    """The baseline a user would write: 16 at once, retry a 429 after 0.5/1/2 s, then re-run
    the failures until none is left. Returns the rounds it took."""
    headers = {"Authorization": f"Bearer {token}"}
    rounds = 0
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        sem = asyncio.Semaphore(16)

        async def one(doc: str) -> bool:
            async with sem:
                for wait in (0.5, 1.0, 2.0, None):
                    r = await client.post(f"{base_url}/v1/documents/{doc}/draft", json={})
                    if r.status_code != 429:
                        return True
                    if wait is None:
                        return False
                    await asyncio.sleep(wait)
                return False

        left = items
        while left:
            rounds += 1
            done = await asyncio.gather(*(one(d) for d in left))
            left = [d for d, ok in zip(left, done, strict=True) if not ok]
    return rounds


def bench_unlimited_vs_plain(n: int, limit: tuple[int, float], check: bool = True) -> None:
    with sandbox.serve(documents=999, rate_limit=limit, retry_after=None, latency=0.01) as sb:
        start = time.perf_counter()
        rounds = asyncio.run(plain_retrying(sb.base_url, sb.token, docs(n)))
        plain = time.perf_counter() - start
        report(f"plain client, 0.5/1/2 s backoff, {rounds} rounds", plain, n, limit,
               refused_of(sb), "baseline")
    ours = bench_single("rate_limit=None", n, limit, 0.01, 0.0, None,
                        "target: sooner than the plain client", check=check)
    print(f"  rate_limit=None / plain client: {ours / plain:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["omni", "short", "processes", "threads", "tighter",
                                           "unlimited"])
    parser.add_argument("--quick", action="store_true",
                        help="every case with a few items and 0.5-1 s windows, in seconds (CI)")
    args = parser.parse_args()
    q, check = args.quick, not args.quick
    # In-process cases too draw from a budget store of their own (each sandbox is a new API
    # root, so a new key): nothing learned in the user's store before the run counts.
    os.environ["OMNI_NB_BUDGET"] = str(Path(tempfile.mkdtemp()) / "budget.sqlite3")
    print(f"machine: {machine()}", flush=True)
    with sandbox.serve(documents=20, rate_limit=None) as sb:  # warm-up: imports, first loop
        create_drafts(docs(5), base_url=sb.base_url, token=sb.token, ledger="off")

    def run(name: str) -> bool:
        return args.only in (None, name)

    if run("omni"):
        omni = RateLimit(5, 1.0) if q else RateLimit(60, 60.0)
        bench_single("Omni's window, requests 0.05-0.8 s", 8 if q else 150,
                     (omni.requests, omni.per), 0.02 if q else 0.05, 0.1 if q else 0.75, omni,
                     "target <= 1.03, 0 x 429", check=check)
    short = (5, 0.5) if q else (20, 2.0)
    if run("short"):
        bench_single(f"{short[1]:g} s window", 12 if q else 100, short, 0.01, 0.0,
                     RateLimit(*short), "target <= 1.05, 0 x 429", check=check)
    if run("processes"):
        for k in (2,) if q else (2, 3):
            bench_processes(k, 5 if q else 50, short, check=check)
    if run("threads"):
        bench_threads(3 if q else 8, 3 if q else 15, (5, 0.5) if q else (20, 5.0))
    tighter = (3, 0.5) if q else (10, 5.0)
    if run("tighter"):
        bench_single("default RateLimit(60, 60), server tighter", 8 if q else 60, tighter,
                     0.01, 0.0, RateLimit(), "target <= 1.30", check=check)
        bench_single("the same, a server that counts refused requests too", 8 if q else 60,
                     tighter, 0.01, 0.0, RateLimit(), "no target: how the design fares",
                     count_refused=True, check=check)
    if run("unlimited"):
        bench_unlimited_vs_plain(8 if q else 60, tighter, check=check)


if __name__ == "__main__":
    main()
