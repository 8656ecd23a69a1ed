"""Background batches: the handle returns at once, fills as answers arrive, reports how it
ended in its view, and leaves nothing unrecorded."""

from __future__ import annotations

import pytest

from omni_nb import InvalidInputError, results, sandbox
from omni_nb.batch import BatchRun, create_drafts


def test_background_returns_a_handle_that_completes(sb: sandbox.Sandbox) -> None:
    """background=True gives a BatchRun; wait() gives the table, in input order."""
    docs = [f"doc-{i:04d}" for i in range(1, 21)]
    run = create_drafts(docs, base_url=sb.base_url, token=sb.token, rate_limit=None,
                        background=True)
    assert isinstance(run, BatchRun)
    table = run.wait(60)
    assert table is not None
    assert run.done
    assert list(table["document_id"]) == docs
    assert run.table is table
    assert len(results(run_id=table["run_id"].iloc[0])) == 20
    view = run._repr_mimebundle_()
    assert view["text/plain"].startswith("done: 20/20")
    # Ended: the static summary with the whole table, no widget a saved notebook would lose.
    assert "application/vnd.jupyter.widget-view+json" not in view
    assert "<b>20 rows</b>" in view["text/html"]


def test_bad_input_raises_at_the_call_not_in_the_background(sb: sandbox.Sandbox) -> None:
    """A bad batch-wide branch raises before anything starts."""
    with pytest.raises(InvalidInputError):
        create_drafts(["doc-0001"], "not-a-uuid", base_url=sb.base_url, token=sb.token,
                      background=True)
    assert sb.requests() == []


def test_rows_so_far_while_running_and_cancel(make_slow: None, sb: sandbox.Sandbox) -> None:
    """While it runs, table holds the rows received so far; cancel() ends it with every
    other input cancelled (and recorded)."""
    docs = [f"doc-{i:04d}" for i in range(1, 61)]
    run = create_drafts(docs, base_url=sb.base_url, token=sb.token, rate_limit=None,
                        concurrency=1, background=True)
    assert isinstance(run, BatchRun)
    while len(run.table) < 2 and not run.done:
        run.wait(0.05)
    assert 2 <= len(run.table) < 60
    run.cancel()
    table = run.wait(60)
    assert table is not None
    assert len(table) == 60
    assert (table["status"] == "cancelled").sum() > 0
    assert run._repr_mimebundle_()["text/plain"].startswith("cancelled: ")
    assert len(results(run_id=table["run_id"].iloc[0])) == 60


@pytest.fixture
def make_slow(sb: sandbox.Sandbox) -> None:
    """Each answer takes 50 ms, so a 60-item batch at concurrency 1 runs for seconds."""
    sb.configure(latency=0.05)
