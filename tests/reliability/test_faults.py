"""Fault injection: 2,000-item batches against a sandbox that fails, drops, stalls and
rate-limits, and a sandbox that stays down.

What must hold under every fault mix: exactly one row per distinct input; every ``ok`` row's
draft is the one the sandbox stored for that pair; no pair was ever answered with two
different draft ids; no pair was sent more than ``max_retries + 1`` times (plus at most
``probe_retries`` refused probes of the rate budget); a failure row only after the retry
bound was spent; and the run ends within a bound computed from the settings.
"""

from __future__ import annotations

import collections
import email.utils
import math
import time
from dataclasses import dataclass
from typing import Any

import pytest

import omni_nb
from omni_nb import RateLimit, RetryPolicy

from ..conftest import MakeSandbox
from .conftest import (
    BRANCHES,
    FLOOR_RPS,
    OVERHEAD_S,
    assert_consistent_drafts,
    closed_port,
    count_faults,
    expected_status,
    fast_retry,
    pair_of,
    posts,
    settle,
)

DOCS = 650  # 650 documents x (no branch + 2 branches) = 1,950 pairs, plus 50 unknown ones
CONCURRENCY = 16


def _items() -> tuple[list[Any], int]:
    """2,000 distinct pairs (some not eligible, some unknown) plus 40 repeats; (items, n)."""
    pairs: list[Any] = []
    for i in range(1, DOCS + 1):
        doc = f"doc-{i:04d}"
        pairs += [doc, (doc, BRANCHES[0]), (doc, BRANCHES[1].upper())]  # upper: canonicalised
    pairs += [f"missing-{i:03d}" for i in range(50)]
    distinct = len(pairs)
    pairs += pairs[:20] + [(f"doc-{i:04d}", BRANCHES[0]) for i in range(1, 21)]
    return pairs, distinct


@dataclass(frozen=True)
class Mix:
    """One fault mix and the client settings it runs with."""

    name: str
    server: dict[str, Any]
    retry: RetryPolicy
    timeout: float
    pause_per_storm: float = 0.0  # the longest shared pause one 429 can cause

    def bound(self, n: int) -> float:
        """Seconds the batch may take: requests at the throughput floor, plus every wait the
        fault settings can cause, spread over the workers."""
        s = self.server
        bad = s.get("fail_rate", 0.0) + s.get("drop_rate", 0.0)
        requests = n / (1.0 - bad) * 1.2
        waits = n * bad / (1.0 - bad) * self.retry.backoff_cap / CONCURRENCY
        stalls = n * s.get("slow_rate", 0.0) * self.timeout * 2 / CONCURRENCY * 1.5
        storms = 0.0
        if s.get("rate_limit"):
            limit, per = s["rate_limit"]
            windows = math.ceil(n / limit) + 1
            requests = max(requests, n * 1.5)  # refused sends count too
            storms = windows * (per + self.pause_per_storm + self.retry.backoff_cap * 4)
        return OVERHEAD_S + requests / FLOOR_RPS + waits + stalls + storms


MIXES = [
    Mix(
        "5xx20_drop5_slow",
        {"fail_rate": 0.2, "drop_rate": 0.05, "slow_rate": 0.01, "slow_seconds": 3.0},
        # The timeout is one deadline for the whole attempt: on two busy cores a whole
        # loopback attempt can take longer than 0.3 s; stalls still outlast it.
        fast_retry(8), timeout=1.5,
    ),
    Mix(
        "429_storm_no_retry_after",
        {"rate_limit": (200, 1.0), "retry_after": None},
        RetryPolicy(max_retries=12, backoff=0.05, backoff_cap=0.4, max_wait=30.0),
        timeout=5.0, pause_per_storm=0.4,
    ),
    Mix(
        "429_storm_http_date",
        {"rate_limit": (200, 1.0), "retry_after": "date"},
        RetryPolicy(max_retries=12, backoff=0.05, backoff_cap=0.4, max_wait=30.0),
        timeout=5.0, pause_per_storm=2.0,
    ),
]


def _storm_headers(retry_after: str | None) -> dict[str, str]:
    headers = {"X-Omni-Waf-Action": "block"}
    if retry_after == "date":
        headers["Retry-After"] = email.utils.formatdate(time.time() + 1, usegmt=True)
    return headers


@pytest.mark.parametrize("mix", MIXES, ids=lambda m: m.name)
def test_batch_under_faults_keeps_one_honest_row_per_input(
    mix: Mix, make_sandbox: MakeSandbox, tmp_path: Any, figures: collections.Counter[str]
) -> None:
    """Under 5xx/drops/stalls/429 storms: one row per distinct input, the stored drafts, the
    retry bound, and a run time within the bound the fault settings give."""
    items, n = _items()
    assert n >= 2000
    server = {"rate_limit": None, **mix.server}
    sb = make_sandbox(documents=DOCS, seed=11, **server)
    if "rate_limit" in mix.server:
        # One storm by design, whatever the machine's speed: the first sends are refused
        # with the mix's kind of 429 (a slow client may never reach the server's limit).
        sb.enqueue(429, {"error": "Too Many Requests", "message": "rate limited"},
                   headers=_storm_headers(mix.server.get("retry_after")),
                   times=2 * CONCURRENCY)
    started = time.monotonic()
    table = omni_nb.create_drafts(
        items, base_url=sb.base_url, token=sb.token, rate_limit=None, retry=mix.retry,
        timeout=mix.timeout, concurrency=CONCURRENCY, ledger=tmp_path / "ledger.sqlite3",
    )
    elapsed = time.monotonic() - started
    records = settle(sb, timeout=5.0)

    # Exactly one row per distinct input, in input order, nothing left unsent.
    assert len(table) == n
    keys = [pair_of(d, b) for d, b in zip(table["document_id"], table["branch_id"],
                                           strict=True)]
    assert len(set(keys)) == n
    assert not (table["status"] == "cancelled").any()

    # Final statuses are the data's, or a transient failure after the retry bound.
    # A 429 to one of the rate budget's probes is not a retry (RetryPolicy.probe_retries):
    # only a mix with 429s may go past max_retries + 1 sends.
    limit = mix.retry.max_retries + 1
    most = limit + (mix.retry.probe_retries if "rate_limit" in mix.server else 0)
    assert (table["attempts"] <= most).all()
    transient = {"server_error", "network_error", "rate_limited"}
    for (doc, branch), status, attempts in zip(keys, table["status"], table["attempts"],
                                               strict=True):
        if status in transient:
            assert limit <= attempts <= most, f"{doc}/{branch} gave up early: {status}@{attempts}"
        else:
            assert status == expected_status(sb, doc, branch), (doc, branch, status)
    eligible = [k for k in keys if expected_status(sb, *k) == "ok"]
    assert (table["status"] == "ok").sum() >= 0.99 * len(eligible)

    assert_consistent_drafts(sb, table, records)
    sent = collections.Counter((r.document_id, r.branch_id) for r in posts(records))
    assert max(sent.values()) <= most
    assert sum(sent.values()) >= n  # every valid pair was tried (unknown docs included)

    bound = mix.bound(n)
    assert elapsed < bound, f"{elapsed:.1f} s > bound {bound:.1f} s"

    faults = count_faults(posts(records), slow_after=mix.server.get("slow_seconds"))
    if "rate_limit" in mix.server:  # the scripted storm, plus any the limit caused
        assert sum(r.status == 429 for r in records) >= 2 * CONCURRENCY
    else:  # the mix really was hostile
        assert faults > 0.2 * n
    figures["items_under_faults"] += n
    figures["faults_injected"] += faults


@pytest.mark.parametrize("down", ["fail_rate_1", "closed_port"])
def test_server_that_stays_down_ends_with_error_rows(
    down: str, make_sandbox: MakeSandbox, tmp_path: Any, figures: collections.Counter[str]
) -> None:
    """A sandbox answering only 5xx ends the batch with server_error rows after the retry
    bound; a closed port stops it after its first answers (connect failures, retried
    briefly), the rest 'cancelled' as host unreachable; never a hang."""
    items = [f"doc-{i:04d}" for i in range(1, 201)]
    retry = fast_retry(3)
    sb = make_sandbox(documents=200, fail_rate=1.0)
    base = sb.base_url if down == "fail_rate_1" else f"http://127.0.0.1:{closed_port()}/api"
    started = time.monotonic()
    table = omni_nb.create_drafts(
        items, base_url=base, token=sb.token, rate_limit=None, retry=retry, timeout=1.0,
        concurrency=CONCURRENCY, ledger=tmp_path / "l.sqlite3",
    )
    elapsed = time.monotonic() - started
    records = settle(sb)
    assert len(table) == len(items)
    assert table["message"].str.len().min() > 0
    # 4 attempts each, waits <= 3 x cap, 16 workers: a fraction of a second; bound generously.
    bound = OVERHEAD_S + len(items) * 4 / FLOOR_RPS + len(items) * 3 * retry.backoff_cap / 16
    assert elapsed < bound
    if down == "fail_rate_1":
        assert (table["status"] == "server_error").all(), table["status"].value_counts()
        assert (table["attempts"] == retry.max_retries + 1).all()
        assert len(posts(records)) == len(items) * (retry.max_retries + 1)
        figures["faults_injected"] += len(posts(records))
    else:
        failed = table[table["status"] == "network_error"]
        cancelled = table[table["status"] == "cancelled"]
        assert 3 <= len(failed) <= CONCURRENCY + 2
        assert len(failed) + len(cancelled) == len(items)
        assert (failed["attempts"] == retry.connect_retries + 1).all()
        assert cancelled["message"].str.startswith("not sent: host unreachable").all()
        assert records == []
        figures["faults_injected"] += len(failed) * (retry.connect_retries + 1)
    figures["items_under_faults"] += len(items)


def test_client_rate_limit_prevents_the_storm(make_sandbox: MakeSandbox) -> None:
    """With the client told the sandbox's limit, a batch draws no 429 at all."""
    sb = make_sandbox(documents=60, rate_limit=(40, 0.5))
    table = omni_nb.create_drafts(
        [f"doc-{i:04d}" for i in range(1, 61)], base_url=sb.base_url, token=sb.token,
        rate_limit=RateLimit(40, 0.5), retry=fast_retry(3), concurrency=8, ledger="off",
    )
    records = settle(sb)
    assert len(table) == 60
    assert not [r for r in records if r.status == 429]
    assert (table["status"].isin(["ok", "not_eligible"])).all()
