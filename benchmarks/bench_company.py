"""The rate budget with company (issue 18): several processes on one key released at one
instant, callers joining a running background batch, a budget store that is locked or deleted
mid-batch, and a pool of keys. Each case is judged by what the server let through: the 429
answers it gave, the most requests it accepted in any trailing window (``busiest``, from its
own arrival times) and the rows that did not end ``ok``; the time as a ratio of the least
time the server's limit allows (the last request can go no earlier than ((n - 1) // N)
windows after the first), measured on the server's first and last arrival.

    python benchmarks/bench_company.py                      # every case (about 6 minutes)
    python benchmarks/bench_company.py --only processes --runs 10
    python benchmarks/bench_company.py --quick              # tiny sizes: the code paths (CI)

The server is the issue's: a strict trailing window per key counted on arrival, with a grace
of an eighth of the window at its edge (0.25 s of 2 s: it accepts a request whose window frees
within the grace), 20 ms latency, 429 + ``X-Omni-Waf-Action: block`` without Retry-After.
Each process run starts its children, waits until every one has imported everything, then
releases them at one wall-clock instant; each run has a fresh sandbox (a new API root, so a
new key) and a fresh budget store; batches run with ``ledger="off"`` (the ledger is measured
by other benchmarks). Where the limiter records its claim-to-write gaps
(``Limiter.stamp_gaps()``) their median and max are printed, else "not measured".

Cases (``--only``): ``processes`` 2 x 50 and 3 x 40 documents at 20 per 2 s, concurrency 8;
``join`` a background batch at 20 per 2 s (and at 5 per 2 s on a 5 per 2 s server) joined
1.5 s in by ``login()``, one call on ``OmniClient(rate_limit=None)``, ``DraftForm()``'s
connect check, one call on ``OmniClient(rate_limit=RateLimit(50, 2))`` or a second
background run at 20 per 2 s; ``lock`` a third process holding the store's write lock for 2 s
during a two-process batch; ``deleted`` the store file deleted during a two-process batch
(both have it open, so on Linux they go on sharing the unlinked file); ``deleted-late`` the
same with the second process starting 1 s after the deletion (it makes a new store);
``pool`` 3 keys at 20 per 2 s each, 240 documents.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import io
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import machine

from omni_nb import (
    DraftForm,
    OmniClient,
    OmniError,
    RateLimit,
    create_drafts,
    login,
    logout,
    sandbox,
)
from omni_nb.config import resolve_settings
from omni_nb.ratelimit import shared_limiter

#: The grace at the window's edge, as a share of the window: 0.25 s of a 2 s window.
GRACE_SHARE = 1 / 8
LATENCY = 0.02
#: The document a one-off call drafts: in no batch's list.
ONE_OFF = "doc-0999"

#: One process's batch: it imports everything, says "ready", reads from stdin the wall-clock
#: instant it is to start at, sleeps until then, drafts its documents and prints one JSON
#: line: its rows' statuses and the limiter's claim-to-write gaps (None when not recorded).
CHILD = textwrap.dedent("""
    import json, sys, time
    import httpx, pandas, omni_nb
    from omni_nb import RateLimit, create_drafts
    from omni_nb.config import resolve_settings
    from omni_nb.ratelimit import shared_limiter
    base_url, docs = sys.argv[1], sys.argv[2].split(",")
    limit = RateLimit(int(sys.argv[3]), float(sys.argv[4]))
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - time.time()))
    table = create_drafts(docs, base_url=base_url, rate_limit=limit, concurrency=8,
                          ledger="off", progress=False)
    settings = resolve_settings(base_url)
    limiter = shared_limiter(settings.api_root, settings.token.fingerprint(), limit,
                             budget=settings.budget)
    gaps = getattr(limiter, "stamp_gaps", None)
    print(json.dumps({"statuses": list(table["status"]),
                      "gaps": None if gaps is None else [float(g) for g in gaps()]}))
""")


def docs(n: int, part: int = 0) -> list[str]:
    """n eligible documents (every tenth sandbox document is not), distinct for each part."""
    ids = [i for i in range(1, 1000) if i % 10][part * n:(part + 1) * n]
    return [f"doc-{i:04d}" for i in ids]


def least(n: int, requests: int, per: float) -> float:
    return ((n - 1) // requests) * per


def serve(limit: tuple[int, float]) -> sandbox.Sandbox:
    """The issue's server: strict window with a grace at its edge, 20 ms, no Retry-After."""
    return sandbox.serve(documents=999, rate_limit=limit, grace=limit[1] * GRACE_SHARE,
                         latency=LATENCY, retry_after=None)


@dataclass
class Outcome:
    """What one run left: the server's view and the rows'."""

    refused: int
    busiest: int
    not_ok: Counter[str]
    ratio: float
    gaps: list[float] | None = None
    notes: list[str] = field(default_factory=list)

    def line(self, span: bool = True) -> str:
        """One run in words; ``span=False`` leaves out the time (meaningless when a joiner's
        own requests, at their own pace, are among the arrivals)."""
        bad = ", ".join(f"{n} {s}" for s, n in sorted(self.not_ok.items())) or "none"
        text = (f"429 answers {self.refused}, busiest window {self.busiest}, rows not ok: "
                f"{bad}" + (f", span {self.ratio:.3f}x least" if span else "")
                + f"; claim-to-write gap {gap_text(self.gaps)}")
        return text + "".join(f"; {note}" for note in self.notes)


def gap_text(gaps: list[float] | None) -> str:
    if gaps is None:
        return "not measured"
    if not gaps:
        return "none recorded"
    return (f"median {statistics.median(gaps) * 1000:.1f} ms, max {max(gaps) * 1000:.1f} ms "
            f"({len(gaps)} sends)")


def limiter_gaps(sb: sandbox.Sandbox, limit: RateLimit | None) -> list[float] | None:
    """This process's claim-to-write gaps on the sandbox's key (``Limiter.stamp_gaps()``),
    None where the limiter does not record them. Call it once the key's batches are over."""
    settings = resolve_settings(sb.base_url, sb.token)
    limiter = shared_limiter(settings.api_root, settings.token.fingerprint(), limit,
                             budget=settings.budget)
    gaps = getattr(limiter, "stamp_gaps", None)
    return None if gaps is None else [float(g) for g in gaps()]


def outcome(sb: sandbox.Sandbox, limit: tuple[int, float], statuses: list[str],
            gaps: list[float] | None = None) -> Outcome:
    sb.wait_idle(10.0)
    records = sb.requests()
    arrivals = sorted(r.received_at for r in records)
    span = arrivals[-1] - arrivals[0] if arrivals else 0.0
    low = least(sum(r.status == 200 for r in records), *limit)
    return Outcome(refused=sum(r.status == 429 for r in records),
                   busiest=sb.busiest_window(limit[1]),
                   not_ok=Counter(s for s in statuses if s != "ok"),
                   ratio=span / low if low else float("nan"), gaps=gaps)


def summarize(name: str, outcomes: list[Outcome], target: str) -> None:
    """Each run's line, then the medians and the worst run."""
    for i, o in enumerate(outcomes, 1):
        print(f"  run {i}: {o.line()}", flush=True)
    refused = [o.refused for o in outcomes]
    bad = [sum(o.not_ok.values()) for o in outcomes]
    gaps = [g for o in outcomes for g in (o.gaps or [])] if outcomes[0].gaps is not None else None
    print(f"{name}: {len(outcomes)} runs: median 429 answers {statistics.median(refused):g} "
          f"(max {max(refused)}, runs with any {sum(r > 0 for r in refused)}), median busiest "
          f"window {statistics.median(o.busiest for o in outcomes):g} "
          f"(max {max(o.busiest for o in outcomes)}), rows not ok in "
          f"{sum(b > 0 for b in bad)} runs ({sum(bad)} rows), median span "
          f"{statistics.median(o.ratio for o in outcomes):.3f}x least "
          f"(max {max(o.ratio for o in outcomes):.3f}); claim-to-write gap {gap_text(gaps)} "
          f"[{target}]", flush=True)


# -- processes released at one instant ----------------------------------------------------------


@contextmanager
def children(sb: sandbox.Sandbox, store: Path, parts: int, each: int,
             limit: tuple[int, float]) -> Iterator[list[subprocess.Popen[str]]]:
    """``parts`` child processes on the sandbox's key, each ready (everything imported);
    killed on the way out if one is still running."""
    env = {**os.environ, "OMNI_API_TOKEN": sb.token, "OMNI_NB_BUDGET": str(store)}
    procs = [subprocess.Popen(
        [sys.executable, "-c", CHILD, sb.base_url, ",".join(docs(each, i)), str(limit[0]),
         str(limit[1])],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) for i in range(parts)]
    with ready(procs):
        yield procs


@contextmanager
def ready(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Wait until every child says "ready" (everything imported); kill those still running
    on the way out, also when one never started."""
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "ready", f"a child did not start: {line!r}"
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def release(procs: list[subprocess.Popen[str]], ahead: float = 0.3,
            last_later: float = 0.0) -> float:
    """Tell every child to start at one wall-clock instant ``ahead`` seconds from now (so
    each is asleep on it before it comes), the last one ``last_later`` seconds after the
    others; returns that instant."""
    start_at = time.time() + ahead
    for i, proc in enumerate(procs):
        assert proc.stdin is not None
        later = last_later if i == len(procs) - 1 else 0.0
        proc.stdin.write(f"{start_at + later!r}\n")
        proc.stdin.flush()
    return start_at


def collect(procs: list[subprocess.Popen[str]]) -> tuple[list[str], list[float] | None]:
    statuses: list[str] = []
    gaps: list[float] | None = None
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"a child failed (exit {proc.returncode})"
        result = json.loads(out.strip().splitlines()[-1])
        statuses += result["statuses"]
        if result["gaps"] is not None:
            gaps = (gaps or []) + result["gaps"]
    return statuses, gaps


def hold_lock(store: Path, at: float, seconds: float, notes: list[str]) -> None:
    """At wall-clock ``at``, take the store's write lock (``BEGIN EXCLUSIVE``) for
    ``seconds``, as a third process busy with the file would."""
    time.sleep(max(0.0, at - time.time()))
    conn = sqlite3.connect(store, timeout=10.0, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        notes.append(f"write lock taken {time.time() - at:.2f} s late, held {seconds:g} s")
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


def delete_store(store: Path, at: float, notes: list[str]) -> None:
    time.sleep(max(0.0, at - time.time()))
    gone = []
    for path in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
        try:
            path.unlink()
            gone.append(path.name)
        except FileNotFoundError:
            pass
    notes.append(f"deleted {', '.join(gone) or 'nothing (no store yet)'}")


def run_processes(parts: int, each: int, limit: tuple[int, float],
                  fault: str | None = None, fault_at: float = 1.5,
                  lock_seconds: float = 2.0) -> Outcome:
    """One run: ``parts`` processes released at one instant; ``fault`` ("lock", "deleted"
    or "deleted-late") happens to the budget store ``fault_at`` seconds after the release
    ("deleted-late": the last process starts 1 s after the store is deleted)."""
    notes: list[str] = []
    with serve(limit) as sb, tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "budget.sqlite3"
        with children(sb, store, parts, each, limit) as procs:
            late = fault_at + 1.0 if fault == "deleted-late" else 0.0
            start_at = release(procs, last_later=late)
            helper = None
            if fault == "lock":
                helper = threading.Thread(target=hold_lock,
                                          args=(store, start_at + fault_at, lock_seconds, notes))
            elif fault in ("deleted", "deleted-late"):
                helper = threading.Thread(target=delete_store,
                                          args=(store, start_at + fault_at, notes))
            if helper is not None:
                helper.start()
            statuses, gaps = collect(procs)
            if helper is not None:
                helper.join()
        result = outcome(sb, limit, statuses, gaps)
    result.notes = notes
    return result


def bench_processes(runs: int, quick: bool) -> None:
    limit = (5, 0.5) if quick else (20, 2.0)
    for parts, each in ((2, 8),) if quick else ((2, 50), (3, 40)):
        outcomes = [run_processes(parts, each, limit) for _ in range(runs)]
        summarize(f"{parts} processes x {each} documents released at one instant, one key, "
                  f"{limit[0]}/{limit[1]:g} s, grace {limit[1] * GRACE_SHARE:g} s", outcomes,
                  "target: 0 x 429 in every run, every row ok, <= 1.15x least")


FAULTS = {"lock": "a third process holds the store's write lock",
          "deleted": "the store file deleted",
          "deleted-late": "the second process starting 1 s after the store file is deleted"}


def bench_store_faults(kinds: list[str], runs: int, quick: bool) -> None:
    limit = (5, 0.5) if quick else (20, 2.0)
    each = 8 if quick else 50
    fault_at, lock_seconds = (0.5, 1.0) if quick else (1.5, 2.0)
    for kind in kinds:
        outcomes = [run_processes(2, each, limit, kind, fault_at, lock_seconds)
                    for _ in range(runs)]
        held = f" for {lock_seconds:g} s" if kind == "lock" else ""
        summarize(f"2 processes x {each}, {FAULTS[kind]}{held} {fault_at:g} s in", outcomes,
                  "target: 0 x 429, every row ok")


# -- callers joining a running background batch ------------------------------------------------


def join_login(sb: sandbox.Sandbox) -> list[str]:
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its "Logged in to ..." line
            login(sb.token, base_url=sb.base_url)
    except OmniError as exc:
        return [f"login: {type(exc).__name__}"]
    finally:
        logout()
    return []


def join_unlimited(sb: sandbox.Sandbox) -> list[str]:
    return one_call(sb, None)


def join_fifty(sb: sandbox.Sandbox) -> list[str]:
    return one_call(sb, RateLimit(50, 2.0))


def one_call(sb: sandbox.Sandbox, limit: RateLimit | None) -> list[str]:
    with OmniClient(sb.base_url, sb.token, rate_limit=limit) as client:
        try:
            client.create_draft(ONE_OFF)
        except OmniError as exc:
            return [f"one call: {type(exc).__name__}"]
    return []


def join_form(sb: sandbox.Sandbox) -> list[str]:
    form = DraftForm(sb.base_url, sb.token, ledger="off")
    try:
        form.wait(timeout=120)
        return [] if form.error is None else ["form: connect check failed"]
    finally:
        form.close()


def join_second_run(sb: sandbox.Sandbox) -> list[str]:
    run = create_drafts(docs(20, part=20), base_url=sb.base_url, token=sb.token,
                        rate_limit=RateLimit(20, 2.0), concurrency=8, ledger="off",
                        background=True, progress=False)
    table = run.wait(timeout=600)
    return [s for s in table["status"] if s != "ok"] if table is not None else ["second: hung"]


JOINERS: dict[str, Callable[[sandbox.Sandbox], list[str]]] = {
    "login()": join_login,
    "OmniClient(rate_limit=None), one call": join_unlimited,
    "DraftForm() connect check": join_form,
    "OmniClient(rate_limit=RateLimit(50, 2)), one call": join_fifty,
    "a second background run at RateLimit(20, 2)": join_second_run,
}


def run_join(limit: tuple[int, float], n: int, joiner: Callable[[sandbox.Sandbox], list[str]],
             after: float) -> Outcome:
    with serve(limit) as sb:
        run = create_drafts(docs(n), base_url=sb.base_url, token=sb.token,
                            rate_limit=RateLimit(*limit), concurrency=8, ledger="off",
                            background=True, progress=False)
        time.sleep(after)
        joined = joiner(sb)
        table = run.wait(timeout=600)
        statuses = ([] if table is None else list(table["status"])) + joined
        result = outcome(sb, limit, statuses, limiter_gaps(sb, RateLimit(*limit)))
        result.notes.append(while_held(sb, set(docs(n)), limit))
        return result


def while_held(sb: sandbox.Sandbox, batch: set[str], limit: tuple[int, float]) -> str:
    """The 429s and the busiest window while the batch's limit held (until its last request
    and one window after: its lease), and the 429s after: a joiner that outlives the batch
    is alone with its own limit then, right or wrong about the server."""
    records = sb.requests()
    end = max((r.received_at for r in records if r.document_id in batch), default=0.0)
    end += limit[1]
    during = [r for r in records if r.received_at <= end]
    accepted = sorted(r.received_at for r in during if r.status != 429)
    busiest = max((bisect.bisect_right(accepted, t) - bisect.bisect_right(accepted, t - limit[1])
                   for t in accepted), default=0)
    refused = sum(r.status == 429 for r in during)
    later = sum(r.status == 429 for r in records if r.received_at > end)
    return (f"while the batch's limit held: 429 answers {refused}, busiest window {busiest}; "
            f"after it: 429 answers {later}")


def bench_join(quick: bool) -> None:
    cases = [((5, 0.5), 12, 0.3)] if quick else [((20, 2.0), 60, 1.5), ((5, 2.0), 20, 1.5)]
    for limit, n, after in cases:
        for name, joiner in JOINERS.items():
            result = run_join(limit, n, joiner, after)
            print(f"join: a background batch of {n} at RateLimit({limit[0]}, {limit[1]:g}) on "
                  f"a {limit[0]}/{limit[1]:g} s server, {after:g} s in: {name}: "
                  f"{result.line(span=False)} [target: 0 x 429, every row ok]", flush=True)


# -- a pool of keys ------------------------------------------------------------------------------


def bench_pool(quick: bool) -> None:
    limit = (5, 0.5) if quick else (20, 2.0)
    n = 30 if quick else 240
    with serve(limit) as sb:
        pool = [sb.token] + [sb.add_token("editor") for _ in range(2)]
        table = create_drafts(docs(n), base_url=sb.base_url, tokens=pool,
                              rate_limit=RateLimit(*limit), concurrency=8, ledger="off",
                              progress=False)
        sb.wait_idle(10.0)
        records = sb.requests()
        arrivals = sorted(r.received_at for r in records)
        low = least(n // 3, *limit)
        refused = sum(r.status == 429 for r in records)
        bad = Counter(s for s in table["status"] if s != "ok")
        print(f"pool: 3 keys at {limit[0]}/{limit[1]:g} s each, {n} documents: 429 answers "
              f"{refused}, busiest window of any key {sb.busiest_window(limit[1])}, rows not "
              f"ok {dict(bad) or 'none'}, span {(arrivals[-1] - arrivals[0]) / low:.3f}x least "
              f"(one key's share, {n // 3}); claim-to-write gap on the first key "
              f"{gap_text(limiter_gaps(sb, RateLimit(*limit)))} "
              "[target: 0 x 429, <= 1.15x least]", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", choices=["processes", "join", "lock", "deleted",
                                           "deleted-late", "pool"])
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each process case (default 3; the target: 10)")
    parser.add_argument("--quick", action="store_true",
                        help="every case once on tiny sizes and half-second windows (CI)")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    os.environ["OMNI_NB_BUDGET"] = str(Path(tempfile.mkdtemp()) / "budget.sqlite3")
    print(f"machine: {machine()}", flush=True)

    def wanted(name: str) -> bool:
        return args.only in (None, name)

    if wanted("processes"):
        bench_processes(runs, args.quick)
    if wanted("join"):
        bench_join(args.quick)
    # --quick leaves out "deleted": "deleted-late" runs the same code, and each process case
    # costs seconds of interpreters importing everything.
    faults = [kind for kind in FAULTS if wanted(kind)
              and not (args.quick and args.only is None and kind == "deleted")]
    if faults:
        bench_store_faults(faults, runs, args.quick)
    if wanted("pool"):
        bench_pool(args.quick)


if __name__ == "__main__":
    main()
