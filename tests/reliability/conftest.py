"""Shared helpers of the reliability suites (faults, crashes, concurrency, hostile input,
secret hygiene, parsing), and the figures docs/reliability.md quotes.

Every suite talks to a real :mod:`omni_nb.sandbox` over loopback sockets: the network is the
point here. Sandboxes come from ``make_sandbox`` in ``tests/conftest.py``, whose isolation
fixture covers these suites too. The figures (items run under faults, faults injected, bad
inputs tried, kills survived, rows lost, token leaks) are tallied while the tests run, printed
at the end of the session, and written as JSON to ``$OMNI_NB_RELIABILITY_FIGURES`` when that is set
(``benchmarks/reliability_figures.py`` does that).
"""

from __future__ import annotations

import collections
import json
import math
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from omni_nb import RetryPolicy
from omni_nb.sandbox import RequestRecord, Sandbox

#: The three seeded sandbox branches, in order (see omni_nb.sandbox's docstring).
BRANCHES = (
    "081c8cec-a997-5c87-9f41-00dd4e31bc04",
    "11c0f8c9-7e50-523f-9be0-f7de1104f2b5",
    "9bd33108-f31c-5418-94dc-c9637db659f1",
)

#: A conservative floor for loopback throughput on 2 cores with client and sandbox in one
#: process, on a machine busy with other work (measured: ~400 requests/s idle, ~44 with a load
#: average of 6, ~7 with the run niced under twelve busy processes); run-time bounds are
#: computed from it. They catch hangs, not slowness: speed is measured in benchmarks/.
FLOOR_RPS = 10.0
#: Process start, pandas import, thread start-up: a fixed allowance in every time bound.
OVERHEAD_S = 3.0

FIGURE_KEYS = (
    "items_under_faults",
    "faults_injected",
    "bad_inputs_tried",
    "kills_survived",
    "rows_lost",
    "answered_in_flight_at_kill",
    "artefacts_scanned",
    "token_leaks",
)
_figures: collections.Counter[str] = collections.Counter({k: 0 for k in FIGURE_KEYS})


@pytest.fixture
def figures() -> collections.Counter[str]:
    """The session's tally of reliability figures (tests add to it once their asserts passed)."""
    return _figures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures, and write them as JSON when asked to."""
    if not any(_figures.values()):
        return
    terminalreporter.write_line(
        "reliability figures: " + ", ".join(f"{k}={_figures[k]}" for k in FIGURE_KEYS)
    )
    target = os.environ.get("OMNI_NB_RELIABILITY_FIGURES")
    if target:
        Path(target).write_text(json.dumps(dict(_figures), indent=2, sort_keys=True))


def fast_retry(max_retries: int = 6, *, backoff: float = 0.01, cap: float = 0.05,
               max_wait: float = 60.0) -> RetryPolicy:
    """A retry policy with millisecond backoffs, so fault tests take seconds."""
    return RetryPolicy(max_retries=max_retries, backoff=backoff, backoff_cap=cap,
                       max_retry_after=5.0, max_wait=max_wait)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settle(sb: Sandbox, timeout: float = 10.0) -> list[RequestRecord]:
    """The request log once every request the sandbox received has been answered and logged.

    The sandbox logs a request after answering it, and a "slow" answer is still being held
    after the client gave up on it; counting before those land would undercount. Past
    ``timeout`` the log is returned as it stands.
    """
    sb.wait_idle(timeout)
    return sb.requests()


def posts(records: Iterable[RequestRecord]) -> list[RequestRecord]:
    """Create-draft requests only."""
    return [r for r in records if r.method == "POST" and r.path.endswith("/draft")]


def expected_status(sb: Sandbox, doc: str, branch: str | None) -> str:
    """What a fault-free sandbox answers for a pair (seeded data: every 10th not eligible)."""
    known = {d.identifier: d for d in sb.documents}
    if doc not in known or (branch is not None and branch not in BRANCHES):
        return "not_found"
    return "ok" if known[doc].eligible else "not_eligible"


def assert_consistent_drafts(sb: Sandbox, table: Any, records: list[RequestRecord]) -> None:
    """Every ok row carries the sandbox's stored draft, and no pair was ever answered with
    two different draft ids."""
    stored = sb.drafts()
    for doc, branch, draft in zip(
        table["document_id"], table["branch_id"], table["draft_id"], strict=True
    ):
        if not _missing(draft):
            key = pair_of(doc, branch)
            assert stored[key] == draft, f"{key}: row has {draft}, sandbox stored {stored[key]}"
    ok_rows = table[table["status"] == "ok"]
    assert ok_rows["draft_id"].notna().all()
    seen: dict[tuple[str | None, str | None], set[str]] = collections.defaultdict(set)
    for r in posts(records):
        if r.status == 200 and r.draft_id is not None:
            seen[(r.document_id, r.branch_id)].add(r.draft_id)
    doubled = {k: v for k, v in seen.items() if len(v) > 1}
    assert not doubled, f"pairs answered with different draft ids: {doubled}"
    for key, ids in seen.items():
        assert ids == {stored[key]}  # type: ignore[index]


def _missing(value: object) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def pair_of(doc: object, branch: object) -> tuple[str, str | None]:
    """A table row's (document, branch) with pandas' missing values as None."""
    return str(doc), (None if _missing(branch) else str(branch))


def count_faults(records: Iterable[RequestRecord], slow_after: float | None = None) -> int:
    """Faults the sandbox injected, read off its log: drops, 5xx, 429s and slow answers."""
    n = 0
    for r in records:
        slow = slow_after is not None and r.answered_at - r.received_at >= slow_after
        if r.status == 0 or r.status >= 500 or r.status == 429 or slow:
            n += 1
    return n
