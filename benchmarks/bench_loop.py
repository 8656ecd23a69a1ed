"""The event-loop bridge: anyio's blocking portal (omni_nb._loop) against the hand-written
loop thread it replaced, measured in the same run, rounds alternating.

    python benchmarks/bench_loop.py             # 7 rounds
    python benchmarks/bench_loop.py --rounds 3

1. 200 run_sync calls of a coroutine that returns at once: the bridge's own cost per call.
2. create_drafts of 300 documents against omni_nb.sandbox.serve() (rate_limit=None,
   ledger="off", the sandbox unlimited too): what a user waits for, of which the bridge is a
   small part.

Medians over the rounds, and each round's figures, are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import statistics
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import omni_nb.batch.api as batch_api
from omni_nb import create_drafts, sandbox
from omni_nb._loop import run_sync as portal_run_sync

T = TypeVar("T")


class ThreadBridge:
    """The bridge as it was before the portal: one loop in a daemon thread, crossed with
    asyncio.run_coroutine_threadsafe (kept here as the baseline)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        threading.Thread(target=serve, name="baseline-loop", daemon=True).start()
        ready.wait()

    def run_sync(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        task_box: list[asyncio.Task[T]] = []

        async def wrapper() -> T:
            task = asyncio.ensure_future(make())
            task_box.append(task)
            return await asyncio.shield(task)

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            wrapper(), self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            if task_box:
                self.loop.call_soon_threadsafe(task_box[0].cancel)
            return future.result()


async def trivial() -> int:
    return 1


def calls(run: Callable[[Callable[[], Coroutine[Any, Any, int]]], int], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        run(trivial)
    return time.perf_counter() - started


def batch(run: Callable[..., Any], sb: sandbox.Sandbox, docs: list[str]) -> float:
    # create_drafts crosses into the loop through batch.api.run_sync: swap the bridge there.
    saved = batch_api.run_sync
    batch_api.run_sync = run
    try:
        started = time.perf_counter()
        table = create_drafts(docs, base_url=sb.base_url, token=sb.token, rate_limit=None,
                              ledger="off")
        took = time.perf_counter() - started
    finally:
        batch_api.run_sync = saved
    assert len(table) == len(docs), len(table)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--quick", action="store_true",
                        help="the same paths on tiny sizes, once (CI checks it still runs)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls, args.documents = 1, 5, 5
    baseline = ThreadBridge()
    bridges: dict[str, Callable[..., Any]] = {"thread": baseline.run_sync,
                                              "portal": portal_run_sync}
    figures: dict[tuple[str, str], list[float]] = {}
    # The sandbox answers without its own rate limit (60 a minute by default): no 429 waits.
    with sandbox.serve(documents=args.documents, rate_limit=None) as sb:
        docs = [f"doc-{i:04d}" for i in range(1, args.documents + 1)]
        for run in bridges.values():  # warm both up (first loop, imports, connections)
            calls(run, 5)
            batch(run, sb, docs[:10])
        # Every timed batch then meets drafts that exist already: the same answers for both.
        batch(portal_run_sync, sb, docs)
        for r in range(args.rounds):
            order = list(bridges) if r % 2 == 0 else list(reversed(bridges))
            for name in order:
                figures.setdefault((name, "calls"), []).append(calls(bridges[name], args.calls))
                figures.setdefault((name, "batch"), []).append(batch(bridges[name], sb, docs))
    for what, unit in (("calls", f"{args.calls} run_sync calls"),
                       ("batch", f"create_drafts of {args.documents} documents")):
        print(unit)
        for name in bridges:
            xs = figures[(name, what)]
            print(f"  {name:6s} median {statistics.median(xs) * 1000:8.1f} ms   rounds: "
                  + ", ".join(f"{x * 1000:.1f}" for x in xs))
        ratio = (statistics.median(figures[("portal", what)])
                 / statistics.median(figures[("thread", what)]))
        print(f"  portal / thread: {ratio:.2f}")


if __name__ == "__main__":
    main()
