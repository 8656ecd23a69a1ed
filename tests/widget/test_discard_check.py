"""The form's discard check and "Show drafts" (issue 20, row 6): each shows its own live
progress (the bar reset for its listings, counts moving), Cancel is enabled and stops the
listings, and the check ends in a short list of what will be archived and what skipped and
why, not the request table.

Every test talks to the real loopback sandbox; a little latency keeps the listings running
long enough to watch and cancel them (the assertions never depend on how long they took).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import omni_nb
from omni_nb import sandbox
from omni_nb.widget import DraftForm

WAIT = 20.0  # seconds; a generous bound that only a hung test reaches
DOCS = [f"doc-{i:04d}" for i in range(1, 21) if i % 10]  # 18 documents, all eligible


@pytest.fixture
def form(sb: sandbox.Sandbox) -> Iterator[DraftForm]:
    """A form on the sandbox, with one create run of DOCS behind it."""
    made = DraftForm(sb.base_url, sb.token, rate_limit=None, ledger="off")
    try:
        assert made.wait(WAIT)
        made.documents.value = "\n".join(DOCS)
        table = made.submit(wait=True)
        assert table is not None
        assert set(table["status"]) == {"ok"}
        assert made.wait(WAIT)
        yield made
    finally:
        made.close()


def shown(form: DraftForm) -> tuple[str, str]:
    (output,) = form.output.outputs
    return str(output["data"]["text/plain"]), str(output["data"]["text/html"])


class Watch:
    """What the bar showed while a job ran, and whether Cancel could be pressed meanwhile;
    cancels the job once ``cancel_at`` listings are in (never, when None)."""

    def __init__(self, form: DraftForm, cancel_at: int | None = None) -> None:
        self.form, self.cancel_at = form, cancel_at
        self.values: list[int] = []
        self.cancel_enabled: list[bool] = []
        self.first = threading.Event()
        form.progress.observe(self._value, "value")

    def _value(self, change: dict[str, Any]) -> None:
        self.values.append(change["new"])
        if change["new"] >= 1:
            self.cancel_enabled.append(not self.form.cancel.disabled)
            self.first.set()
            if self.cancel_at is not None and change["new"] >= self.cancel_at:
                self.form.cancel.click()  # as a user would, while the listings run


def test_the_discard_check_has_its_own_live_progress_and_cancel(
    sb: sandbox.Sandbox, form: DraftForm
) -> None:
    """Pressing "Discard these drafts" after an 18-document run: the bar starts again at 0
    for the check's 18 listings and fills as they come (not the run's full bar, frozen),
    Cancel is enabled while they run, and pressing it stops them: fewer than 18 listings
    sent, no question asked, no DELETE, a line saying nothing was discarded."""
    assert (form.progress.value, form.progress.max) == (18, 18)  # the run's full bar
    sb.configure(latency=0.2)
    form.concurrency.value = 2
    sb.clear_requests()
    watch = Watch(form, cancel_at=2)
    form.discard_button.click()
    assert watch.first.wait(WAIT)
    assert form.wait(WAIT)
    assert watch.values[0] == 0  # reset for the check
    assert any(0 < v < len(DOCS) for v in watch.values)  # filled as the listings came
    assert form.progress.max == len(DOCS)
    assert all(watch.cancel_enabled)
    assert watch.cancel_enabled
    listings = [r for r in sb.requests() if r.method == "GET" and r.path.endswith("/drafts")]
    assert 2 <= len(listings) < len(DOCS)
    assert {r.method for r in sb.requests()} == {"GET"}
    life = form.lifecycle
    assert life.pending is None
    assert life.question_row.layout.display == "none"
    assert form.error is None
    assert "Cancelled: the check listed" in form.message.value
    assert "nothing was discarded" in form.message.value
    assert form.progress.bar_style == "danger"
    assert not form.discard_button.disabled  # the run can still be undone
    assert sb.archived_drafts() == []


def test_the_discard_check_ends_in_a_short_list_of_what_is_archived_and_skipped(
    sb: sandbox.Sandbox, form: DraftForm
) -> None:
    """After the run, doc-0003's draft is replaced and doc-0004's archived by someone else:
    the check's preview names the 16 drafts to archive (the first few and a count) and the
    two skipped with their reasons; it is no request table (no DELETE URL, no valid column),
    and the question counts the same."""
    result = form.result
    assert result is not None
    kw: dict[str, Any] = {"base_url": sb.base_url, "token": sb.token, "rate_limit": None,
                          "ledger": "off"}
    omni_nb.discard_drafts(["doc-0003", "doc-0004"], **kw)
    omni_nb.create_drafts(["doc-0003"], **kw)  # replaced since the run
    watch = Watch(form)
    check = form.discard(wait=True)
    assert watch.values[0] == 0  # the bar starts again for the check's listings
    assert (form.progress.value, form.progress.max) == (18, 18)
    text, page = shown(form)
    assert text.splitlines() == [
        "Will archive 16 drafts: doc-0001 (draft "
        f"{result.loc[0, 'draft_id']}), doc-0002 (draft {result.loc[1, 'draft_id']}), "
        + ", ".join(f"doc-{i:04d} (draft {result.loc[i - 1, 'draft_id']})"
                    for i in range(5, 11) if i != 10)
        + f", doc-0011 (draft {result.loc[9, 'draft_id']}) and 8 more",
        "Will skip 2 documents:",
        "  replaced since: doc-0003",
        "  no active draft: doc-0004",
    ]
    assert "<b>Will archive 16 drafts</b>" in page
    assert "<li>replaced since (1): doc-0003</li>" in page
    assert "<li>no active draft (1): doc-0004</li>" in page
    for table_only in ("DELETE", "http", "valid", "<table"):
        assert table_only not in text + page
    question = form.lifecycle.question.value
    assert "Discard 16 drafts this run created? 2 will be skipped" in question
    assert form.lifecycle.confirm_button.description == "Discard 16 drafts"
    assert form.progress.bar_style == "success"
    assert check is not None
    assert check is form.lifecycle.checked


def test_show_drafts_has_its_own_live_progress_and_cancel(
    sb: sandbox.Sandbox, form: DraftForm
) -> None:
    """"Show drafts" for the 18 documents: the bar starts again at 0, Cancel is enabled
    while the listings run and stops them (fewer than 18 sent), and the line says so."""
    sb.configure(latency=0.2)
    form.concurrency.value = 2
    sb.clear_requests()
    watch = Watch(form, cancel_at=2)
    form.show_button.click()
    assert watch.first.wait(WAIT)
    assert form.wait(WAIT)
    assert watch.values[0] == 0
    assert all(watch.cancel_enabled)
    assert watch.cancel_enabled
    assert 2 <= len(sb.requests()) < len(DOCS)
    assert "Cancelled: " in form.message.value
    assert form.progress.bar_style == "danger"
