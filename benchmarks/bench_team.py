"""A team's rate budget on Redis (issue 21): "machines" simulated as processes, each with its
own clock offset and its own fallback store, sharing one key through one ``redis-server``.
Each case is judged, as in ``bench_company.py``, by what the server let through: its 429
answers, the busiest trailing window (``Sandbox.busiest_window``), the rows not ``ok``, and the
server's span from first to last arrival as a ratio of the least time its limit allows,
measured in the same run; the no-limit case is a ratio against bare httpx in the same run.

    python benchmarks/bench_team.py                     # every case (about 6 minutes)
    python benchmarks/bench_team.py --only redis --runs 5
    python benchmarks/bench_team.py --only stop --offsets 0,0,0,0   # clocks in agreement
    python benchmarks/bench_team.py --quick             # tiny sizes: the code paths (CI)

Needs ``redis-server`` on the PATH (Debian's package) and redis-py (``omni_nb[redis]``); the
script starts its own server on a free loopback port in a temporary directory
(``--save '' --appendonly no``) and stops it at the end, also on error.

A "machine" is a pair of child processes: each patches ``time.time`` by the machine's offset
(-3, -1, +1, +3 s) before importing omni_nb, so every omni_nb reading of the wall clock is off
by that much, and has its own ``XDG_DATA_HOME`` (its machine's SQLite store, the fallback).
Children import everything, say "ready", and are released at one real wall-clock instant.

Cases (``--only``): ``redis`` 4 machines x 2 processes x 25 documents on one key through one
Redis (``OMNI_NB_BUDGET=redis://127.0.0.1:PORT/0?prefix=bench<uuid>:``) against the sandbox
at 20 per 2 s (grace 0.25 s, 20 ms latency), concurrency 8, ``RateLimit(20, 2)``;
``sqlite`` the same 8 processes on their machine's SQLite store (no sharing across machines:
the "before"); ``one-file`` the same 8 on one SQLite file (as if one machine: a log kept in
each process's own wall clock, which ``--offsets`` sets apart); ``stop`` Redis stopped
(SIGTERM) a third into the batch and started again on the same port 5 s later, empty;
``pause`` Redis paused (SIGSTOP) for 5 s then resumed (SIGCONT), its data kept; ``bare`` no
limit, 16 concurrent, one process: omni_nb on the Redis store and on a SQLite store against
bare ``httpx.AsyncClient``, alternating, medians, and CPU seconds per 1,000 requests.
``--quick`` runs ``redis``, ``stop`` (for 1.5 s) and ``bare`` on 5 per 0.5 s windows.

For the outage cases each child polls its key's limiter (``shared_limiter(...).shared``, the
public flag: True while the budget is shared through the store) every 5 ms from a thread and
stamps each change with the real wall clock; the parent stamps when Redis was stopped and when
it answered a PING again. "Resumed" is, per process, the time from Redis answering again to
that process's flag turning True (its next store step that worked).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import bare, machine
from bench_company import GRACE_SHARE, docs, gap_text, least, ready, release, serve

from omni_nb import create_drafts, sandbox
from omni_nb.ratelimit.claims import FLUSH_S

#: Each machine's clock offset in seconds; two processes per machine.
OFFSETS = (-3.0, -1.0, 1.0, 3.0)
PER_MACHINE = 2
OUTAGE_S = 5.0

#: One process of a machine. The clock is patched before anything imports omni_nb, so every
#: omni_nb reading of the wall clock is off by the machine's offset; the child's own waiting
#: (the release instant) and its stamps use the real clock, saved first. It prints one JSON
#: line: its rows' statuses, its warnings and its limiter's ``shared`` changes, both stamped
#: with the real clock, and the limiter's claim-to-write gaps.
CHILD = textwrap.dedent("""
    import time
    real_time = time.time
    offset = float(__import__("sys").argv[5])
    time.time = lambda: real_time() + offset
    import json, sys, threading, warnings
    import httpx, pandas, omni_nb
    from omni_nb import RateLimit, create_drafts
    from omni_nb.config import resolve_settings
    from omni_nb.ratelimit import shared_limiter
    base_url, docs = sys.argv[1], sys.argv[2].split(",")
    limit = RateLimit(int(sys.argv[3]), float(sys.argv[4]))
    seen = []
    def note(message, category, filename, lineno, file=None, line=None):
        seen.append((real_time(), f"{category.__name__}: {message}"))
    warnings.showwarning = note
    settings = resolve_settings(base_url)
    limiter = shared_limiter(settings.api_root, settings.token.fingerprint(), limit,
                             budget=settings.budget)
    changes, done = [(real_time(), limiter.shared)], threading.Event()
    def watch():
        while not done.wait(0.005):
            if limiter.shared != changes[-1][1]:
                changes.append((real_time(), limiter.shared))
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - real_time()))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    table = create_drafts(docs, base_url=base_url, rate_limit=limit, concurrency=8,
                          ledger="off", progress=False)
    done.set()
    watcher.join()
    print(json.dumps({"statuses": list(table["status"]), "warnings": seen,
                      "changes": changes, "gaps": [float(g) for g in limiter.stamp_gaps()]}))
""")


def free_port() -> int:
    """A loopback port free now (the OS picks it), for this run's Redis."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A throwaway ``redis-server`` on a loopback port, no persistence: stopped and started
    again on the same port it comes back empty (as a Redis restarted without a save would)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The address every child is given, under a prefix of this run's own."""
        return f"redis://127.0.0.1:{self.port}/0?prefix=bench{uuid.uuid4().hex[:8]}:"

    def start(self) -> float:
        """Start it and wait until it answers; returns the real time it first answered."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench_team.py needs redis-server (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.wait_answer(10.0)

    def wait_answer(self, timeout: float) -> float:
        """Poll with PING every 10 ms; the real time of the first answer."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.2,
                             socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return time.time()
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        finally:
            client.close()

    def stop(self) -> float:
        """SIGTERM, wait for the exit; returns the real time the signal went."""
        at = time.time()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server must be able to exit
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return at

    def signal(self, sig: signal.Signals) -> float:
        """Send ``sig`` (SIGSTOP, SIGCONT); returns the real time it went."""
        assert self.proc is not None
        at = time.time()
        self.proc.send_signal(sig)
        return at


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A started :class:`RedisServer` in a temporary directory, stopped on the way out."""
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class Child:
    """One process's report."""

    machine: int
    statuses: list[str]
    warnings: list[tuple[float, str]]
    changes: list[tuple[float, bool]]
    gaps: list[float]


@contextmanager
def machines(sb: sandbox.Sandbox, tmp: Path, budget: str | None, each: int,
             limit: tuple[int, float],
             offsets: tuple[float, ...]) -> Iterator[list[subprocess.Popen[str]]]:
    """``PER_MACHINE`` processes for each offset, ready (everything imported); ``budget``
    None leaves ``OMNI_NB_BUDGET`` unset (each machine's own SQLite store). Killed on the
    way out if one is still running."""
    procs: list[subprocess.Popen[str]] = []
    for m, offset in enumerate(offsets):
        env = {k: v for k, v in os.environ.items() if k != "OMNI_NB_BUDGET"}
        env.update(OMNI_API_TOKEN=sb.token, XDG_DATA_HOME=str(tmp / f"machine-{m}"))
        if budget is not None:
            env["OMNI_NB_BUDGET"] = budget
        for p in range(PER_MACHINE):
            part = m * PER_MACHINE + p
            procs.append(subprocess.Popen(
                [sys.executable, "-c", CHILD, sb.base_url, ",".join(docs(each, part)),
                 str(limit[0]), str(limit[1]), repr(offset)],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    with ready(procs):
        yield procs


def collect(procs: list[subprocess.Popen[str]]) -> list[Child]:
    """Each child's report, in order (a child that failed fails the run)."""
    out: list[Child] = []
    for i, proc in enumerate(procs):
        text, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"a child failed (exit {proc.returncode})"
        r = json.loads(text.strip().splitlines()[-1])
        out.append(Child(i // PER_MACHINE, r["statuses"], [tuple(w) for w in r["warnings"]],
                         [tuple(c) for c in r["changes"]], r["gaps"]))
    return out


@dataclass
class Outcome:
    """What one run left: the server's view, the rows', and the outage's timeline."""

    refused: int
    busiest: int
    not_ok: Counter[str]
    ratio: float
    gaps: list[float]
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One run in words."""
        bad = ", ".join(f"{n} {s}" for s, n in sorted(self.not_ok.items())) or "none"
        return (f"429 answers {self.refused}, busiest window {self.busiest}, rows not ok: {bad}, "
                f"span {self.ratio:.3f}x least; claim-to-write gap {gap_text(self.gaps)}"
                + "".join(f"; {note}" for note in self.notes))


def outcome(sb: sandbox.Sandbox, limit: tuple[int, float], kids: list[Child]) -> Outcome:
    """The run as the server saw it (429s, busiest window, span) and the rows not ok."""
    sb.wait_idle(10.0)
    records = sb.requests()
    arrivals = sorted(r.received_at for r in records)
    span = arrivals[-1] - arrivals[0] if arrivals else 0.0
    low = least(sum(r.status == 200 for r in records), *limit)
    return Outcome(refused=sum(r.status == 429 for r in records),
                   busiest=sb.busiest_window(limit[1]),
                   not_ok=Counter(s for k in kids for s in k.statuses if s != "ok"),
                   ratio=span / low if low else float("nan"),
                   gaps=[g for k in kids for g in k.gaps])


def warned(kids: list[Child], start_at: float) -> str:
    """Each kind of warning: how many processes gave it, when (seconds after the release,
    real clock) and its first text (omni_nb masks an address's password; this run's has
    none)."""
    kinds: dict[str, list[tuple[float, str]]] = {}
    for k in kids:
        for at, text in k.warnings:
            kind = ("lost its data" if "lost its data" in text
                    else "cannot be used" if "cannot be used" in text
                    else "cannot be reached" if "cannot be reached" in text
                    else text[:40])
            kinds.setdefault(kind, []).append((at - start_at, text))
    return "; ".join(
        f"'{kind}' x {len(seen)} at {min(a for a, _ in seen):.2f}-{max(a for a, _ in seen):.2f} s"
        f" (first: {min(seen)[1][:300]!r})" for kind, seen in kinds.items()) or "none"


def by_machine(sb: sandbox.Sandbox, each: int, offsets: tuple[float, ...]) -> str:
    """The 429 answers to each machine's requests (a machine's clock misread shows here)."""
    machine_of = {d: part // PER_MACHINE for part in range(len(offsets) * PER_MACHINE)
                  for d in docs(each, part)}
    refused = Counter(machine_of.get(r.document_id or "") for r in sb.requests()
                      if r.status == 429)
    return "429 answers by machine clock " + ", ".join(
        f"{o:+g} s: {refused[m]}" for m, o in enumerate(offsets))


def run_team(limit: tuple[int, float], each: int, offsets: tuple[float, ...],
             budget: str, fault: str | None = None, outage: float = OUTAGE_S) -> Outcome:
    """One run: the machines released at one instant, sharing through ``budget``: "redis",
    "machine" (each machine its own SQLite store) or "one-file" (one SQLite file for all, as
    if they were one machine); ``fault`` ("stop" or "pause") happens to Redis a third into
    the least time, for ``outage`` seconds."""
    n = each * len(offsets) * PER_MACHINE
    low = least(n, *limit)
    with redis_server() as rs, serve(limit) as sb, tempfile.TemporaryDirectory() as tmp:
        place = {"redis": rs.url, "machine": None, "one-file": f"{tmp}/budget.sqlite3"}[budget]
        with machines(sb, Path(tmp), place, each, limit, offsets) as procs:
            start_at = release(procs)
            times: dict[str, float] = {}
            helper = None
            if fault is not None:
                helper = threading.Thread(target=outage_of, args=(
                    rs, fault, start_at + low / 3, outage, times))
                helper.start()
            kids = collect(procs)
            if helper is not None:
                helper.join()
        result = outcome(sb, limit, kids)
        result.notes.append(f"warnings: {warned(kids, start_at)}")
        result.notes.append(by_machine(sb, each, offsets))
        # The machine's load says how much of a figure is the code's and how much the host's.
        result.notes.append("load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        if fault is not None:
            result.notes += timeline(sb, kids, times, each, limit[1])
    return result


def outage_of(rs: RedisServer, fault: str, at: float, seconds: float,
              times: dict[str, float]) -> None:
    """At real time ``at`` stop (or pause) Redis for ``seconds``, then start (or resume) it
    and stamp when it answers again."""
    time.sleep(max(0.0, at - time.time()))
    if fault == "stop":
        times["away"] = rs.stop()
        time.sleep(seconds)
        times["back"] = rs.start()
    else:
        times["away"] = rs.signal(signal.SIGSTOP)
        time.sleep(seconds)
        rs.signal(signal.SIGCONT)
        times["back"] = rs.wait_answer(10.0)


def timeline(sb: sandbox.Sandbox, kids: list[Child], times: dict[str, float], each: int,
             per: float) -> list[str]:
    """When each process saw Redis go and come back, the 429s before, during and after, the
    accepted rate in each part, and each process's last request after Redis answered."""
    away, back = times["away"], times["back"]
    downs, ups = [], []
    for k in kids:
        down = next((t for t, s in k.changes if not s and t >= away - 0.5), None)
        up = next((t for t, s in k.changes if s and down is not None and t > down), None)
        if down is not None:
            downs.append(down - away)
        if up is not None:
            ups.append(up - back)
    records = sb.requests()
    refused = [r.received_at for r in records if r.status == 429]
    during = sum(away <= t <= back for t in refused)
    after = sum(t > back for t in refused)
    resumed = (f"{min(ups):.2f}-{max(ups):.2f} s (median {statistics.median(ups):.2f})"
               if ups else "never seen")
    accepted = sorted(r.received_at for r in records if r.status != 429)
    first, last = accepted[0], accepted[-1]

    def rate(lo: float, hi: float) -> str:
        n = sum(lo <= t < hi for t in accepted)
        return f"{n / (hi - lo) * per:.1f}" if hi > lo else "-"

    ends = []
    for part in range(len(kids)):
        mine = set(docs(each, part))
        ends.append(max(r.received_at for r in records if r.document_id in mine) - back)
    flips = [sum(1 for t, _ in k.changes if t > back) for k in kids]
    return [f"Redis away {back - away:.2f} s (until it answered again)",
            f"processes that saw it down {len(downs)} of {len(kids)}"
            + (f", {min(downs):.2f}-{max(downs):.2f} s after it went" if downs else ""),
            f"sharing resumed in {len(ups)} of {len(kids)}, {resumed} after Redis answered",
            f"429 answers before / during / after the outage "
            f"{len(refused) - during - after} / {during} / {after}",
            f"accepted per {per:g} s before / during / after {rate(first, away)} / "
            f"{rate(away, back)} / {rate(back, last)}",
            f"each process's last request {', '.join(f'{e:.1f}' for e in ends)} s after Redis "
            f"answered; shared-flag changes after it {flips}"]


def summarize(name: str, outcomes: list[Outcome], target: str) -> None:
    """Each run's line, then the case's runs side by side."""
    for i, o in enumerate(outcomes, 1):
        print(f"  run {i}: {o.line()}", flush=True)
    refused = [o.refused for o in outcomes]
    bad = [sum(o.not_ok.values()) for o in outcomes]
    print(f"{name}: {len(outcomes)} runs: 429 answers {refused}, busiest window "
          f"{[o.busiest for o in outcomes]}, rows not ok in {sum(b > 0 for b in bad)} runs "
          f"({sum(bad)} rows), span {', '.join(f'{o.ratio:.3f}' for o in outcomes)}x least "
          f"(median {statistics.median(o.ratio for o in outcomes):.3f}) [{target}]",
          flush=True)


#: Each process case: where the processes share the key, what happens to Redis, the target.
TEAM_CASES = {
    "redis": ("redis", None, "one Redis", "target: 0 x 429, every row ok, <= 1.15x least"),
    "sqlite": ("machine", None, "each machine's own SQLite store (before)",
               "before: no target (429s expected)"),
    "one-file": ("one-file", None, "one SQLite file for all (as if on one machine)",
                 "reference: no target"),
    "stop": ("redis", "stop", "one Redis, stopped a third in and started again empty",
             "target: every row ok; 429s and resumption reported"),
    "pause": ("redis", "pause", "one Redis, paused (SIGSTOP) a third in, its data kept",
              "target: every row ok; 429s and resumption reported"),
}


def bench_team(case: str, runs: int, quick: bool, offsets: tuple[float, ...]) -> None:
    """``runs`` runs of one of :data:`TEAM_CASES`, summarized."""
    limit = (5, 0.5) if quick else (20, 2.0)
    each = 4 if quick else 25
    n = each * len(offsets) * PER_MACHINE
    # --quick: an outage half its least time (1.5 s): longer than the store's 1 s socket
    # timeout, so a paused Redis is noticed.
    outage = least(n, *limit) / 2 if quick else OUTAGE_S
    budget, fault, where, target = TEAM_CASES[case]
    outcomes = [run_team(limit, each, offsets, budget, fault, outage) for _ in range(runs)]
    away = f" for {outage:g} s" if fault else ""
    summarize(f"{case}: {len(offsets)} machines (clocks {', '.join(f'{o:+g}' for o in offsets)}"
              f" s) x {PER_MACHINE} processes x {each} = {n} documents, one key, {where}{away}, "
              f"{limit[0]}/{limit[1]:g} s, grace {limit[1] * GRACE_SHARE:g} s", outcomes, target)


def bench_bare(n: int, rounds: int) -> None:
    """No limit, 16 concurrent, one process: create_drafts on the Redis store and on a SQLite
    store against bare httpx.AsyncClient + gather, over one sandbox (each round a new key's
    budget: a fresh prefix, a fresh file), the two stores' order swapped each round, medians
    of ``rounds``; with each one's CPU seconds per 1,000 requests (this process's, the
    in-process sandbox's included), which the machine's load moves less than the rates."""
    items = [f"doc-{i:04d}" for i in range(1, n * 10 // 9 + 2) if i % 10][:n]
    rates: dict[str, list[float]] = {"bare": [], "redis": [], "sqlite": []}
    cpu: dict[str, list[float]] = {"bare": [], "redis": [], "sqlite": []}
    with redis_server() as rs, tempfile.TemporaryDirectory() as tmp, \
            sandbox.serve(documents=n * 10 // 9 + 2, rate_limit=None) as sb:
        # A warm-up on each store first: the first batch of a process pays its one-time costs
        # (modules imported on first use, the event loop's thread), which no round should.
        for budget in (rs.url, f"{tmp}/warm-up.sqlite3"):
            os.environ["OMNI_NB_BUDGET"] = budget
            create_drafts(items[:20], base_url=sb.base_url, token=sb.token, rate_limit=None,
                          ledger="off", progress=False)
        for r in range(rounds):
            used = time.process_time()
            rates["bare"].append(n / asyncio.run(bare(sb.base_url, sb.token, items, 16)))
            cpu["bare"].append((time.process_time() - used) * 1000 / n)
            stores = [("redis", rs.url), ("sqlite", f"{tmp}/budget-{r}.sqlite3")]
            for store, budget in stores if r % 2 == 0 else stores[::-1]:
                os.environ["OMNI_NB_BUDGET"] = budget
                start, used = time.perf_counter(), time.process_time()
                table = create_drafts(items, base_url=sb.base_url, token=sb.token,
                                      rate_limit=None, concurrency=16, ledger="off",
                                      progress=False)
                rates[store].append(n / (time.perf_counter() - start))
                cpu[store].append((time.process_time() - used) * 1000 / n)
                assert (table["status"] == "ok").all(), table.summary()
        # The limiters write their last batch up to FLUSH_S after a batch: let it reach the
        # stores before Redis stops and the SQLite files go (else a timer's flush warns that
        # the store cannot be reached, or was deleted).
        time.sleep(3 * FLUSH_S)
    b = statistics.median(rates["bare"])
    rounds_text = "; ".join(f"{k} " + "/".join(f"{x:,.0f}" for x in v) for k, v in rates.items())
    cpu_text = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in cpu.items())
    for store in ("redis", "sqlite"):
        o = statistics.median(rates[store])
        print(f"no limit, 16 concurrent, {n} requests, {store} store: create_drafts "
              f"{o:,.0f} req/s, bare httpx {b:,.0f} req/s -> ratio {o / b:.3f} "
              f"(target >= 0.95; medians of {rounds}: {rounds_text})", flush=True)
    print(f"  CPU seconds per 1,000 requests (medians): {cpu_text}", flush=True)


CASES = (*TEAM_CASES, "bare")


def main(argv: list[str] | None = None) -> None:
    """Run the cases asked for (every one by default; see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", choices=CASES)
    parser.add_argument("--runs", type=int, default=2, help="runs of each case (default 2)")
    parser.add_argument("--offsets", default=",".join(f"{o:g}" for o in OFFSETS),
                        help="the machines' clock offsets in seconds (default -3,-1,1,3)")
    parser.add_argument("--quick", action="store_true",
                        help="every case once on tiny sizes and half-second windows (CI)")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    offsets = tuple(float(o) for o in args.offsets.split(","))
    print(f"machine: {machine()}", flush=True)
    for case in CASES:
        # --quick runs "redis", "stop" and "bare": the others run the same code ("pause" is
        # "stop" keeping the data), and each case costs seconds of eight interpreters
        # importing everything.
        if args.only not in (None, case) or (args.quick and args.only is None
                                                and case not in ("redis", "stop", "bare")):
            continue
        if case == "bare":
            bench_bare(200 if args.quick else 1000, 1 if args.quick else 4)
        else:
            bench_team(case, runs, args.quick, offsets)


if __name__ == "__main__":
    main()
