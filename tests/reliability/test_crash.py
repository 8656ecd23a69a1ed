"""Crash safety: a batch process killed with SIGKILL at random points loses nothing it had
received beyond the calls in flight, leaves a database that opens cleanly, and ``resume=True``
finishes the rest without re-sending any pair already ``ok``."""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import omni_nb

from ..conftest import MakeSandbox
from .conftest import (
    BRANCHES,
    assert_consistent_drafts,
    expected_status,
    fast_retry,
    pair_of,
    posts,
    settle,
)

CONCURRENCY = 4
CHILD = textwrap.dedent(
    """
    import sys
    import omni_nb
    from omni_nb import RetryPolicy

    base_url, ledger, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    items = []
    for i in range(1, n + 1):
        items += [f"doc-{i:04d}", (f"doc-{i:04d}", "%s")]
    items += ["missing-1", "missing-2"]
    print("start", flush=True)
    # The token comes from OMNI_API_TOKEN, as a user's script would have it.
    omni_nb.create_drafts(items, base_url=base_url, ledger=ledger, rate_limit=None,
                          concurrency=%d, retry=RetryPolicy(max_retries=2, backoff=0.01,
                          backoff_cap=0.05))
    print("done", flush=True)
    """
) % (BRANCHES[0], CONCURRENCY)
DOCS = 150  # 302 distinct pairs


def _items() -> list[Any]:
    items: list[Any] = []
    for i in range(1, DOCS + 1):
        items += [f"doc-{i:04d}", (f"doc-{i:04d}", BRANCHES[0])]
    return [*items, "missing-1", "missing-2"]


def _ledger_rows(path: Path) -> list[tuple[str, str | None, str, str | None]]:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return conn.execute(
            "SELECT document_id, branch_id, status, draft_id FROM calls"
        ).fetchall()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_sigkill_mid_batch_loses_nothing_and_resume_finishes(
    seed: int, make_sandbox: MakeSandbox, tmp_path: Path, figures: collections.Counter[str]
) -> None:
    """SIGKILL loses only in-flight rows; resume sends each non-ok pair exactly once."""
    rng = random.Random(seed)
    ledger = tmp_path / "ledger.sqlite3"
    kill_after = rng.randint(5, 250)  # answered requests before the kill
    sb = make_sandbox(documents=DOCS, latency=0.004, latency_jitter=0.004, seed=seed)
    env = {**os.environ, "OMNI_API_TOKEN": sb.token, "OMNI_NB_LEDGER": str(ledger)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, sb.base_url, str(ledger), str(DOCS)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while len(sb.requests()) < kill_after and child.poll() is None:
            assert time.monotonic() < deadline, "child never got going"
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    before = settle(sb)  # requests the child sent before dying are still being answered

    # Everything the sandbox answered is in the ledger, but for the calls in flight; nothing
    # is in the ledger that the sandbox did not answer.
    rows = _ledger_rows(ledger)
    recorded = {(d, b) for d, b, _, _ in rows}
    answered = {(r.document_id, r.branch_id) for r in posts(before) if r.status != 0}
    unrecorded = answered - recorded
    assert len(unrecorded) <= CONCURRENCY, unrecorded
    assert recorded <= answered, recorded - answered
    assert len(rows) == len(recorded)  # no row twice
    ok_before = {(d, b) for d, b, status, _ in rows if status == "ok"}
    stored = sb.drafts()
    for d, b, status, draft in rows:
        if status == "ok":
            assert stored[(d, b)] == draft

    # resume=True: nothing with an ok row is sent again; the rest is sent once and completes.
    table = omni_nb.create_drafts(
        _items(), base_url=sb.base_url, token=sb.token, ledger=ledger, resume=True,
        rate_limit=None, concurrency=CONCURRENCY, retry=fast_retry(2),
    )
    after = settle(sb)[len(before):]  # the log is never cleared: settle() counts it
    sent_after = collections.Counter((r.document_id, r.branch_id) for r in posts(after))
    resent = set(sent_after) & ok_before
    assert not resent, f"re-sent pairs that had ok rows: {sorted(resent)[:5]}"
    assert len(table) == 2 * DOCS + 2
    not_copied = [pair_of(d, b) for d, b, copied in zip(
        table["document_id"], table["branch_id"], table["from_ledger"], strict=True)
        if not copied]
    # No faults here: each pair without an ok row is one request, none retried.
    assert sent_after == collections.Counter(not_copied)
    for doc, branch, status in zip(table["document_id"], table["branch_id"], table["status"],
                                   strict=True):
        assert status == expected_status(sb, *pair_of(doc, branch))
    assert int(table["from_ledger"].sum()) == len(ok_before)
    assert_consistent_drafts(sb, table, before + after)
    _ledger_rows(ledger)  # still clean after the resumed run
    figures["kills_survived"] += 1
    figures["answered_in_flight_at_kill"] += len(unrecorded)
    figures["rows_lost"] += 0  # asserted above: every input has its row after resume
