"""Concurrency: batches sharing one token, in two threads (one process, one limiter) and in
two processes (one budget at the server, two limiters)."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import omni_nb
from omni_nb import RateLimit

from ..conftest import MakeSandbox
from .conftest import assert_consistent_drafts, count_faults, fast_retry, posts, settle

LIMIT, PER = 20, 1.0
# Sends are timed at the client and counted at the server on arrival; scheduling on a busy
# 2-core machine shifts arrivals by a few milliseconds (the client keeps a 10 ms margin).
JITTER = 0.02


def _max_in_window(times: list[float], per: float) -> int:
    """The most requests whose arrival times fall in any window of ``per`` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - per:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_two_threads_share_one_limiter_and_stay_under_the_limit(
    make_sandbox: MakeSandbox, figures: collections.Counter[str],
) -> None:
    """Two batches in two threads with one token: no trailing window over the limit at the
    sandbox, no 429, and both finish with every row ok."""
    halves = [[f"doc-{i:04d}" for i in range(k, 61, 2) if i % 10] for k in (1, 2)]
    tables: dict[int, Any] = {}
    errors: list[BaseException] = []
    sb = make_sandbox(documents=60, rate_limit=(LIMIT, PER))

    def run(k: int) -> None:
        try:
            tables[k] = omni_nb.create_drafts(
                halves[k], base_url=sb.base_url, token=sb.token,
                rate_limit=RateLimit(LIMIT, PER), concurrency=8, ledger="off",
                retry=fast_retry(6),
            )
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    records = settle(sb)
    assert not errors, errors
    assert all(not t.is_alive() for t in threads)
    for k in (0, 1):
        assert len(tables[k]) == len(halves[k])
        assert (tables[k]["status"] == "ok").all(), tables[k].summary()
        assert_consistent_drafts(sb, tables[k], records)
    sent = posts(records)
    assert len(sent) == sum(map(len, halves))  # no retries were needed
    assert not [r for r in sent if r.status == 429]
    assert _max_in_window([r.received_at for r in sent], PER - JITTER) <= LIMIT


CHILD = textwrap.dedent(
    """
    import sys, omni_nb
    from omni_nb import RateLimit, RetryPolicy
    docs = sys.argv[2].split(",")
    t = omni_nb.create_drafts(docs, base_url=sys.argv[1], rate_limit=RateLimit(%d, %r),
                              concurrency=8, ledger="off",
                              retry=RetryPolicy(max_retries=20, backoff=0.05, backoff_cap=0.5))
    print(",".join(f"{d}={s}={a}" for d, s, a in zip(t["document_id"], t["status"],
                                                  t["attempts"])))
    """
) % (LIMIT, PER)


def test_two_processes_absorb_429s_and_finish_all_ok(
    make_sandbox: MakeSandbox, figures: collections.Counter[str]
) -> None:
    """Two processes with one token (two limiters, one server budget): the 429s are absorbed
    and both finish with every row ok, each pair sent within the retry bound."""
    halves = [[f"doc-{i:04d}" for i in range(k, 61, 2) if i % 10] for k in (1, 2)]
    sb = make_sandbox(documents=60, rate_limit=(LIMIT, PER), retry_after="seconds")
    env = {**os.environ, "OMNI_API_TOKEN": sb.token}
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, sb.base_url, ",".join(h)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for h in halves
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    records = settle(sb)
    for p, (out, err), half in zip(procs, outs, halves, strict=True):
        assert p.returncode == 0, err
        rows = [line.split("=") for line in out.strip().split(",")]
        assert [d for d, _, _ in rows] == half
        assert all(s == "ok" for _, s, _ in rows), out
        assert all(int(a) <= 21 for _, _, a in rows)
    sent = posts(records)
    refused = [r for r in sent if r.status == 429]
    assert refused, "two limiters on one token should have drawn 429s"
    stored = sb.drafts()
    for r in sent:
        if r.status == 200:
            assert r.draft_id == stored[(r.document_id, r.branch_id)]
    assert {(r.document_id, None) for r in sent if r.status == 200} == {
        (d, None) for h in halves for d in h
    }
    figures["faults_injected"] += count_faults(sent)
