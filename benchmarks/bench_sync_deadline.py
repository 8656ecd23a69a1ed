"""The sync client's deadline transport against httpx's own, measured in the same run.

    python benchmarks/bench_sync_deadline.py             # 7 rounds of 300 calls
    python benchmarks/bench_sync_deadline.py --rounds 3

OmniClient.create_draft_outcome, one call after the other, against omni_nb.sandbox.serve() (no rate
limit on either side), once with the default transport (DeadlineTransport: every read asks
the attempt's deadline) and once with ``transport=httpx.HTTPTransport()`` (what the client
used before). Medians over alternating rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from omni_nb import OmniClient, sandbox


def calls(sb: sandbox.Sandbox, docs: list[str], transport: httpx.BaseTransport | None) -> float:
    with OmniClient(sb.base_url, sb.token, rate_limit=None, transport=transport) as client:
        client.create_draft_outcome(docs[0])  # connect outside the timing
        started = time.perf_counter()
        for doc in docs:
            client.create_draft_outcome(doc)  # some documents answer 400: not eligible
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--quick", action="store_true",
                        help="the same paths on tiny sizes, once (CI checks it still runs)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls = 1, 5
    figures: dict[str, list[float]] = {"httpx": [], "deadline": []}
    with sandbox.serve(documents=args.calls, rate_limit=None) as sb:
        docs = [f"doc-{i:04d}" for i in range(1, args.calls + 1)]
        calls(sb, docs, None)  # every later call meets a draft that exists: same answers
        for r in range(args.rounds):
            order = ["httpx", "deadline"] if r % 2 == 0 else ["deadline", "httpx"]
            for name in order:
                transport = httpx.HTTPTransport() if name == "httpx" else None
                figures[name].append(calls(sb, docs, transport))
    for name, xs in figures.items():
        print(f"{name:8s} median {statistics.median(xs) * 1000:7.1f} ms for {args.calls} calls"
              "   rounds: " + ", ".join(f"{x * 1000:.0f}" for x in xs))
    ratio = statistics.median(figures["deadline"]) / statistics.median(figures["httpx"])
    print(f"deadline / httpx: {ratio:.2f}")


if __name__ == "__main__":
    main()
