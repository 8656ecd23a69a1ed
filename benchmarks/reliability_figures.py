"""Run the reliability suites and print the README's "Reliability" figures as a table.

    python benchmarks/reliability_figures.py            # the suites, the README's figures
    python benchmarks/reliability_figures.py --quick    # a few fast tests: the code paths (CI)

The figures are tallied by tests/reliability while its assertions pass (see its conftest):
a failing suite prints no figures and exits non-zero. ``--quick`` runs one fast test of most
kinds (the whole suites run in CI anyway, with the other tests), so CI sees this script still
gets its figures from them; its figures are not the README's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = (
    ("items_under_faults", "items run under faults (batches of 2,000 with 5xx/drops/stalls/429 "
                           "storms, plus servers that stay down)"),
    ("faults_injected", "faults injected (dropped connections, 5xx, 429, stalls past the "
                        "timeout, refused connections)"),
    ("bad_inputs_tried", "bad inputs tried (input x entry point)"),
    ("kills_survived", "SIGKILLs survived mid-batch"),
    ("answered_in_flight_at_kill", "calls answered but in flight at the kills (<= concurrency "
                                   "each, re-sent by resume)"),
    ("rows_lost", "rows lost"),
    ("artefacts_scanned", "artefacts scanned for the token"),
    ("token_leaks", "token leaks"),
)


#: ``--quick``'s selection (``pytest -k``): a few seconds of tests that tally faults, bad
#: inputs and scanned artefacts. If renames leave it matching nothing, pytest exits 5 and the
#: quick run fails, which is the point: it must keep exercising the tally.
QUICK = "(stays_down and closed_port) or reprs_and_pickles or bad_rate_limits or two_threads"


def main() -> int:
    """Run pytest on tests/reliability, then print the figures as a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="a few fast tests of the suites, in seconds (CI)")
    args = parser.parse_args()
    selection = ["-k", QUICK] if args.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "figures.json"
        started = time.monotonic()
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection,
             str(ROOT / "tests" / "reliability")],
            cwd=ROOT, env={**os.environ, "OMNI_NB_RELIABILITY_FIGURES": str(target)},
        )
        elapsed = time.monotonic() - started
        if code != 0 or not target.exists():
            print(f"reliability suites failed (exit {code}); no figures", file=sys.stderr)
            return code or 1
        figures = json.loads(target.read_text())
    print("\n| figure | value |\n|---|---:|")
    for key, label in LABELS:
        print(f"| {label} | {figures.get(key, 0):,} |")
    what = "a quick selection, not the README's figures" if args.quick else "the suites"
    print(f"\n({what}: ran in {elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
