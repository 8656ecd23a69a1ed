"""Several API keys: the throughput of a batch on K keys against the same batch on one key,
side by side in one run, against a sandbox that limits each key on its own (as Omni does).

    python benchmarks/bench_keys.py            # 3 keys vs 1, 200 items per key, 20 per 2 s
    python benchmarks/bench_keys.py --quick    # 10 items per key, 5 per 0.5 s: the code paths (CI)

Each run gets a fresh sandbox (so no key's budget carries over from the run before) with
``rate_limit=(R, W)`` per key, and the client is told the same limit (``rate_limit`` is per
key). The K-key run sends K times the items of the one-key run, so both last about as long
and the ratio compares steady throughput, not one burst. Target: 3 keys >= 2.8x one key,
no answer 429.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_batch import machine

from omni_nb import RateLimit, create_drafts, sandbox


def run(keys: int, per_key: int, requests: int, per: float, concurrency: int) -> tuple[
        float, int, int]:
    """(requests per second, answers 429, rows not ok) of one batch on ``keys`` keys."""
    n = keys * per_key
    docs = [f"doc-{i:04d}" for i in range(1, 2 * n + 10) if i % 10][:n]  # eligible ones
    with sandbox.serve(documents=2 * n + 10, rate_limit=(requests, per)) as sb:
        pool = [sb.token] + [sb.add_token("editor") for _ in range(keys - 1)]
        start = time.perf_counter()
        table = create_drafts(docs, base_url=sb.base_url, tokens=pool,
                              rate_limit=RateLimit(requests, per), concurrency=concurrency,
                              ledger="off")
        took = time.perf_counter() - start
        limited = sum(1 for r in sb.requests() if r.status == 429)
    return n / took, limited, int((table["status"] != "ok").sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="10 items per key, 5 per 0.5 s unless given: every code path in "
                             "seconds (CI); the figures print but mean little")
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--requests", type=int, help="per key per window (20; quick: 5)")
    parser.add_argument("--per", type=float, help="window seconds (2.0; quick: 0.5)")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    per_key = 10 if args.quick else 200
    if args.requests is None:
        args.requests = 5 if args.quick else 20
    if args.per is None:
        args.per = 0.5 if args.quick else 2.0
    print(machine())
    run(1, 5, args.requests, args.per, 2)  # warm-up: imports and first connections
    one, one_429, one_bad = run(1, per_key, args.requests, args.per, args.concurrency)
    print(f"1 key:  {per_key} items, {one:.1f} req/s, {one_429} answers 429, "
          f"{one_bad} rows not ok")
    many, many_429, many_bad = run(args.keys, per_key, args.requests, args.per,
                                   args.concurrency)
    print(f"{args.keys} keys: {args.keys * per_key} items, {many:.1f} req/s, "
          f"{many_429} answers 429, {many_bad} rows not ok")
    ratio = many / one
    target = 2.8 * args.keys / 3
    verdict = "ok" if ratio >= target and many_429 == 0 else "BELOW TARGET"
    if args.quick:
        verdict = "no verdict (a quick run is too short for the target)"
    print(f"throughput ratio {args.keys} keys / 1 key: {ratio:.2f} (target >= {target:.2f}, "
          f"limit {args.requests} per {args.per:g} s per key): {verdict}")


if __name__ == "__main__":
    main()
