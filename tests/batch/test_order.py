"""Input order kept (issue 20, point 8): a throttled batch sends each item's first request in
input order, so the rows an interrupt leaves unsent are always the input's last ones.

Real sockets and a real rate budget (a few windows of a quarter second); the assertions are
on order only, never on how fast anything went.
"""

from __future__ import annotations

import os
import signal
import threading

import pandas as pd
import pytest

from omni_nb import RateLimit, sandbox
from omni_nb.batch import BatchInterrupted, create_drafts

from ..conftest import MakeSandbox

DOCS = [f"doc-{i:04d}" for i in range(1, 41)]


def assert_never_sent_are_a_suffix(table: pd.DataFrame, sb: sandbox.Sandbox) -> None:
    """The documents the server never received are the input's last ones, and the answered
    ones went out in input order. (A request in flight at the interrupt was sent, but its
    row cannot say so: it is ``cancelled``, "not sent, or interrupted in flight".)"""
    assert list(table["document_id"]) == DOCS  # rows in input order
    assert sb.wait_idle(10.0)  # requests in flight at the interrupt are answered and logged
    received = {r.document_id for r in sb.requests() if r.method == "POST"}
    assert 0 < len(received) < len(DOCS), received  # the interrupt came mid-batch
    assert received == set(DOCS[:len(received)]), sorted(received)
    answered = table[table["attempts"] > 0]
    assert set(answered["document_id"]) <= received
    assert (table.loc[~table["document_id"].isin(received), "status"] == "cancelled").all()
    assert answered["requested_at"].is_monotonic_increasing, answered["requested_at"].tolist()


def test_a_throttled_batch_cancelled_leaves_only_the_last_items_unsent(
    sb: sandbox.Sandbox,
) -> None:
    """Eight workers, four sends a quarter second, Cancel after 14 answers: documents go out
    in input order and every cancelled row comes after every sent one (workers used to take
    items and then race for the budget's next slot, so doc-0007 could be cancelled unsent
    while doc-0008 and doc-0014 had been sent)."""
    cancel = threading.Event()

    def cancel_at_14(done: int, total: int, row: object) -> None:
        if done == 14:
            cancel.set()

    table = create_drafts(DOCS, base_url=sb.base_url, token=sb.token,
                          rate_limit=RateLimit(4, per=0.25), concurrency=8,
                          progress=cancel_at_14, cancel=cancel)
    assert_never_sent_are_a_suffix(table, sb)


def test_a_throttled_pool_interrupted_by_ctrl_c_leaves_only_the_last_items_unsent(
    make_sandbox: MakeSandbox,
) -> None:
    """Two keys, each two sends a quarter second, a real SIGINT after 14 answers: the same
    suffix, whichever key each item went on."""
    sb = make_sandbox()
    tokens = [sb.token, sb.add_token("editor")]

    def interrupt_at_14(done: int, total: int, row: object) -> None:
        if done == 14:
            os.kill(os.getpid(), signal.SIGINT)  # delivered to the waiting main thread

    with pytest.raises(BatchInterrupted) as info:
        create_drafts(DOCS, base_url=sb.base_url, tokens=tokens,
                      rate_limit=RateLimit(2, per=0.25), concurrency=8,
                      progress=interrupt_at_14)
    table = info.value.result
    assert_never_sent_are_a_suffix(table, sb)
    assert table["key"].nunique() == 2  # both keys carried items
