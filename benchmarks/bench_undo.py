"""What an undo can tell, measured against the sandbox: how tight the bound on Omni's clock
gets from answers' Date headers, and the gap between a discard's listing and its DELETE.

    python benchmarks/bench_undo.py            # both parts
    python benchmarks/bench_undo.py --quick    # tiny sizes, once (CI checks it still runs)

Clock: a run of N creates (sandbox latency 10-30 ms) at a few paces; each answer bounds the
offset between the clocks to [Date - answered, Date + 1 - sent]; the run's bound is their
intersection. Printed: its width (seconds) after N answers, median over seeds.

Gap: ``discard_drafts(run_id=...)`` of 15 drafts at ``RateLimit(10, 10)``; for each document,
the time from its listing's answer to its DELETE's arrival at the sandbox (median, max).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import omni_nb
from omni_nb import OmniClient, RateLimit, sandbox


def clock_width(answers: int, pace_s: float, seed: int) -> float:
    """The width of the bound after ``answers`` creates, one every ``pace_s`` seconds."""
    with sandbox.serve(documents=answers + 20, rate_limit=None, latency=0.01,
                       latency_jitter=0.02, seed=seed) as sb, \
            OmniClient(sb.base_url, sb.token, rate_limit=None) as client:
        for n in range(1, answers + 1):
            client.create_draft_outcome(f"doc-{n:04d}")
            time.sleep(pace_s)
        bound = client.server_clock.bound()
        return float("nan") if bound is None else bound.width


def gap(docs: int) -> list[float]:
    """Listing-to-DELETE gaps of an undo of ``docs`` drafts at RateLimit(10, 10)."""
    ids = [f"doc-{n:04d}" for n in range(1, docs + 2) if n % 10][:docs]
    with sandbox.serve(documents=docs + 5, rate_limit=None) as sb, TemporaryDirectory() as d:
        kw = {"base_url": sb.base_url, "token": sb.token, "progress": False,
              "ledger": str(Path(d) / "l.sqlite3")}
        # The run goes on a key of its own: the undo's key starts with its RateLimit(10, 10).
        made = omni_nb.create_drafts(ids, rate_limit=None, **{**kw, "token": sb.add_token()})
        sb.clear_requests()
        omni_nb.discard_drafts(run_id=made["run_id"].iloc[0], rate_limit=RateLimit(10, 10.0),
                               **kw)
        listed = {r.document_id: r.answered_at for r in reversed(sb.requests())
                  if r.method == "GET"}
        sent = {r.document_id: r.received_at for r in sb.requests() if r.method == "DELETE"}
        return sorted(sent[doc] - listed[doc] for doc in sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the same paths on tiny sizes, once (CI checks it still runs)")
    args = parser.parse_args()
    seeds = range(1) if args.quick else range(3)
    sizes = (1, 3) if args.quick else (1, 5, 20)
    paces = (0.0,) if args.quick else (0.0, 0.1, 0.5)
    print("clock bound width (s), median over seeds")
    print("answers " + " ".join(f"pace {p:>4}s" for p in paces))
    for n in sizes:
        widths = [statistics.median(clock_width(n, p, s) for s in seeds) for p in paces]
        print(f"{n:>7} " + " ".join(f"{w:>10.3f}" for w in widths))
    gaps = gap(3 if args.quick else 15)
    print(f"listing-to-DELETE gap at RateLimit(10, 10), {len(gaps)} documents: "
          f"median {statistics.median(gaps):.3f} s, max {max(gaps):.3f} s")


if __name__ == "__main__":
    main()
