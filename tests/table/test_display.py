"""The results table's display: compact in a notebook (summary, status bar, the columns an
analyst reads first), following the table when it is filtered, never showing a token."""

from __future__ import annotations

import re

import pandas as pd

from omni_nb import sandbox
from omni_nb.batch import create_drafts
from omni_nb.table import DraftResults


def _table(sb: sandbox.Sandbox) -> DraftResults:
    long_doc = "doc-0002"
    return create_drafts(
        ["doc-0001", "doc-0010", "nope", (long_doc, sb.branches[0].id), "../x"],
        base_url=sb.base_url, token=sb.token, ledger="off", rate_limit=None,
    )


def test_html_shows_summary_bar_and_compact_columns(sb: sandbox.Sandbox) -> None:
    """The HTML view: counts of the statuses present with a stacked SVG bar, then document,
    branch (short, full on hover), draft, status, HTTP, message, attempts, elapsed."""
    t = _table(sb)
    page = t._repr_html_()
    assert page is not None
    assert "<b>5 rows</b>" in page
    assert page.count("<rect") == 4  # ok, invalid, not_eligible, not_found: no zero slices
    headings = re.findall(r"<th[^>]*>([^<]+)</th>", page.split("<tbody>")[0])
    assert headings == ["document", "branch", "draft", "status", "HTTP", "message",
                        "attempts", "elapsed s"]
    branch = sb.branches[0].id
    assert f'title="{branch}">{branch[:8]}…</td>' in page
    assert ("also in the DataFrame: queued_s, requested_at, key, api_root, run_id, "
            "from_ledger") in page
    assert list(t.columns)[:3] == ["document_id", "branch_id", "draft_id"]  # data untouched
    assert len(t.columns) == 15  # ... from_ledger, action


def test_message_is_one_line_with_the_full_text_on_hover(sb: sandbox.Sandbox) -> None:
    """A long message is cut to one line in the cell; the title attribute holds all of it."""
    t = _table(sb)
    t.loc[2, "message"] = "line one\nline two " + "x" * 300
    page = t._repr_html_() or ""
    cells = re.findall(r'<td title="([^"]*)" style="max-width:[^>]*>([^<]*)</td>', page)
    title, shown = next(c for c in cells if c[0].startswith("line one"))
    assert title.startswith("line one\nline two")
    assert len(title) > 300
    assert "\n" not in shown
    assert shown.endswith("…")


def test_filtered_table_keeps_the_compact_display_and_its_errors(sb: sandbox.Sandbox) -> None:
    """t[t.status != "ok"] is still a results table: same display, its own rows' errors."""
    t = _table(sb)
    failed = t[t["status"] != "ok"]
    assert isinstance(failed, DraftResults)
    assert failed.summary() == "3 rows: 1 invalid, 1 not_eligible, 1 not_found"
    assert "<b>3 rows</b>" in (failed._repr_html_() or "")
    assert [type(e).__name__ if e else None for e in failed.errors] == [
        "NotEligibleError", "NotFoundError", None]
    assert repr(failed).startswith("3 rows: ")


def test_counts_list_only_statuses_that_occur(sb: sandbox.Sandbox) -> None:
    """counts() has no zeros; status stays categorical with every status (value_counts)."""
    t = _table(sb)
    assert t.counts().to_dict() == {"ok": 2, "invalid": 1, "not_eligible": 1, "not_found": 1}
    assert len(t["status"].value_counts()) == 11


def test_other_derived_frames_use_pandas_own_view(sb: sandbox.Sandbox) -> None:
    """A selection without the status column shows as a plain DataFrame would."""
    t = _table(sb)
    only_docs = t[["document_id"]]
    assert repr(only_docs) == repr(pd.DataFrame(only_docs))


def test_display_never_shows_the_token(sb: sandbox.Sandbox) -> None:
    """Neither the HTML nor the text view carries the token."""
    t = _table(sb)
    assert sb.token not in (t._repr_html_() or "")
    assert sb.token not in repr(t)


def test_text_view_is_compact(sb: sandbox.Sandbox) -> None:
    """The text repr: the summary line, then the compact columns (short branch)."""
    text = repr(_table(sb))
    first, header = text.splitlines()[:2]
    assert first == "5 rows: 2 ok, 1 invalid, 1 not_eligible, 1 not_found"
    assert header.split() == ["document", "branch", "draft", "status", "HTTP", "message",
                              "attempts", "elapsed", "s"]
