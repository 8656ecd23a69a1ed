"""The ledger at scale: ``omni_nb.results()`` of a large ledger against
``pandas.read_sql_query`` of the same rows, side by side in one run, and the time of a
``since=`` window.

    python benchmarks/bench_ledger.py                  # 1,000,000 rows, 3 repetitions
    python benchmarks/bench_ledger.py --rows 100000    # a smoke run
    python benchmarks/bench_ledger.py --quick          # 2,000 rows once: the code paths (CI)

Builds a ledger in a temporary directory (one ``executemany`` in one transaction), then
measures each read in a fresh interpreter, so no read inherits another's memory peak or
warm heap: ``results()`` and ``read_sql_query("SELECT <the columns results() reads> FROM
calls")`` alternate, three times each. Time is the call's wall time; memory is the growth of
peak RSS (``ru_maxrss``) over the interpreter after its imports and a warm-up call. Targets:
both medians at most 1.10x pandas', and ``results(since=...)`` of the last 1,000 rows' window
well under a second (it reads through the ``calls_when`` index).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_batch import machine

from omni_nb.ledger import open_ledger
from omni_nb.rows import STORED_FIELDS  # the ledger's columns, the ones results() reads

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
ROOT = "https://acme.omniapp.co/api"
BRANCH = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

#: One measurement, in a fresh interpreter: prints {"s": seconds, "mb": peak RSS growth, "n"}.
CHILD = textwrap.dedent("""
    import json, resource, sqlite3, sys, time
    import pandas as pd
    from omni_nb.ledger import results
    which, path, sql, since = sys.argv[1:5]
    pd.read_sql_query("SELECT 1 AS x", sqlite3.connect(":memory:"))  # warm both paths up
    results(ledger="off")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if which == "pandas":
        with sqlite3.connect(path) as conn:
            frame = pd.read_sql_query(sql, conn)
    else:
        frame = results(ledger=path, since=since or None)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"s": took, "mb": (after - before) / 1024, "n": len(frame)}))
""")


def rows(n: int) -> Iterator[tuple[object, ...]]:
    """A ledger's worth of rows: mostly ok creates, some failures, unsent and discarded
    rows, three keys, runs of 1,000, and every 50th row recorded late (an earlier send time,
    as a retried item's row is)."""
    for i in range(n):
        ok, unsent = i % 7 != 0, i % 101 == 0
        late = 30_000_000 if i % 50 == 0 else 0
        yield (
            f"doc-{i:07d}", BRANCH if i % 3 == 0 else None, f"{i:08x}" if ok else None,
            "invalid" if unsent else "ok" if ok else "not_found",
            None if unsent else 200 if ok else 404,
            "" if ok else "Document with identifier x not found", 0 if unsent else 1,
            0.05 + (i % 100) / 1000, T0 + i * 1000 - late, ROOT, f"run-{i // 1000:04d}",
            0.0 if i % 5 else 0.4, None if unsent else f"k{i % 3:07d}", 0,
            "discard" if i % 13 == 0 else "create",
        )


def build(path: Path, n: int) -> float:
    """Make a ledger of ``n`` rows at ``path``; the seconds it took."""
    start = time.perf_counter()
    open_ledger(path).close()  # the schema, as omni_nb makes it
    conn = sqlite3.connect(path, isolation_level=None)
    # Column names from omni_nb's constant; the values are bound parameters.
    insert = (f"INSERT INTO calls ({', '.join(STORED_FIELDS)}) "  # noqa: S608
              f"VALUES ({', '.join('?' * len(STORED_FIELDS))})")
    conn.execute("BEGIN")
    conn.executemany(insert, rows(n))
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start


def ratio(ours: float, base: float) -> str:
    """``ours / base`` to two places; "n/a" when the baseline measured nothing (a tiny read
    can leave peak RSS where it was)."""
    return f"{ours / base:.2f}" if base > 0 else "n/a"


def measure(which: str, path: Path, since: str = "") -> dict[str, float]:
    sql = f"SELECT {', '.join(STORED_FIELDS)} FROM calls"  # noqa: S608 (omni_nb's column names)
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(path), sql, since],
                         capture_output=True, text=True, check=True, timeout=600)
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="2,000 rows, one repetition: every code path in seconds (CI)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 2_000, 1
    n = args.rows
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite3"
        print(f"built {n:,} rows in {build(path, n):.1f} s "
              f"({path.stat().st_size / 2**20:.0f} MB file)")
        ours, base = [], []
        for i in range(args.repeat):
            ours.append(measure("ours", path))
            base.append(measure("pandas", path))
            assert ours[-1]["n"] == base[-1]["n"] == n
            print(f"  {i + 1}: results() {ours[-1]['s']:.2f} s {ours[-1]['mb']:.0f} MB, "
                  f"read_sql_query {base[-1]['s']:.2f} s {base[-1]['mb']:.0f} MB")
        t, bt = (statistics.median(m["s"] for m in ms) for ms in (ours, base))
        mb, bmb = (statistics.median(m["mb"] for m in ms) for ms in (ours, base))
        print(f"results() of {n:,} rows, medians of {args.repeat}: {t:.2f} s vs "
              f"read_sql_query {bt:.2f} s -> time ratio {ratio(t, bt)}; peak RSS growth "
              f"{mb:.0f} MB vs {bmb:.0f} MB -> memory ratio {ratio(mb, bmb)} (targets <= 1.10)")
        with sqlite3.connect(path) as conn:  # the 1,000th newest send time
            (edge,) = conn.execute("SELECT requested_at_us FROM calls ORDER BY "
                                   "requested_at_us DESC LIMIT 1 OFFSET 999").fetchone()
        since = datetime.fromtimestamp(edge // 1_000_000, UTC).replace(
            microsecond=edge % 1_000_000).isoformat()  # exact: no float rounding
        window = [measure("ours", path, since) for _ in range(args.repeat)]
        print(f"results(since=<last 1,000 rows' window>): {window[0]['n']:,} rows, "
              f"median of {args.repeat} {statistics.median(m['s'] for m in window):.3f} s "
              f"(target well under 1 s)")


if __name__ == "__main__":
    main()
