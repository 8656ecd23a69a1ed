"""The table room (omni_nb.table): the results table's columns and dtypes as the README
documents them, its summary line, DataFrame input, the dry-run table and the terminal view."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from omni_nb import InvalidInputError
from omni_nb.rows import STATUSES, Row
from omni_nb.table import (
    DraftResults,
    TableBuilder,
    dry_run_frame,
    frame_from_chunks,
    frame_from_rows,
    frame_from_tuples,
    items_from_frame,
    summarize,
    text_view,
)

ROOT = "https://acme.omniapp.co/api"
BRANCH = "081c8cec-a997-5c87-9f41-00dd4e31bc04"
T0 = 1_767_225_600_123_456  # 2026-01-01T00:00:00.123456Z in microseconds

#: The README's "results table" section, column by column.
DOCUMENTED_DTYPES = {
    "document_id": "string", "branch_id": "string", "draft_id": "string",
    "status": "category", "http_status": "Int64", "message": "string", "attempts": "Int64",
    "queued_s": "float64", "elapsed_s": "float64", "requested_at": "datetime64[us, UTC]",
    "key": "string", "api_root": "string", "run_id": "string", "from_ledger": "bool",
    "action": "category",
}


def row(doc: str, status: str = "ok", *, branch: str | None = None,
        from_ledger: bool = False) -> Row:
    """A row as a batch makes it (no HTTP status or draft for an unsent input)."""
    sent = status not in ("invalid", "cancelled")
    return Row(doc, branch, "d1" if status == "ok" else None, status, 200 if sent else None,
               "" if status == "ok" else f"{doc}: {status}", 1 if sent else 0, 0.5, T0, ROOT,
               "run-1", from_ledger)


def mixed() -> DraftResults:
    return frame_from_rows([row("doc-1", branch=BRANCH), row("doc-2", "not_eligible"),
                            row("bad/x", "invalid"), row("doc-3", "not_found")])


def test_columns_and_dtypes_are_the_documented_ones() -> None:
    """Every column has the README's dtype, in order, for a table with rows and an empty one."""
    for table in (mixed(), frame_from_rows([])):
        assert {c: str(t) for c, t in table.dtypes.items()} == DOCUMENTED_DTYPES
        assert list(table.columns) == list(DOCUMENTED_DTYPES)


def test_status_is_categorical_over_every_status() -> None:
    """status is categorical over all of STATUSES, in order, whatever rows hold."""
    status = mixed()["status"]
    assert list(status.cat.categories) == list(STATUSES)
    assert list(status.astype(str)) == ["ok", "not_eligible", "invalid", "not_found"]


def test_missing_values_are_pandas_na() -> None:
    """Unsent rows hold <NA> (not NaN/None) in draft_id, http_status, branch_id."""
    table = mixed()
    assert table["http_status"].iloc[2] is pd.NA
    assert table["draft_id"].iloc[2] is pd.NA
    assert table["branch_id"].iloc[1] is pd.NA
    assert table["branch_id"].iloc[0] == BRANCH
    assert list(table["attempts"]) == [1, 1, 0, 1]


def test_requested_at_is_the_utc_microsecond() -> None:
    """requested_at is the row's microsecond timestamp as a UTC datetime."""
    when = mixed()["requested_at"].iloc[0]
    assert when == pd.Timestamp("2026-01-01T00:00:00.123456", tz="UTC")
    assert str(when.tz) == "UTC"


def test_from_ledger_defaults_to_false_for_ledger_tuples() -> None:
    """Tuples without the from_ledger field (the ledger's) read as False; given, it is kept."""
    fields = ("doc-1", None, "d1", "ok", 200, "", 1, 0.5, T0, ROOT, "run-1", 0.0, "k1")
    assert list(frame_from_tuples([fields])["from_ledger"]) == [False]
    assert list(frame_from_tuples([(*fields, True)])["from_ledger"]) == [True]



def test_chunks_make_the_same_table_as_one_list() -> None:
    """frame_from_chunks over any split of the tuples (empty chunks, or no chunk at all,
    included) is frame_from_tuples of them all: same values, dtypes and order."""
    rows = [
        ("doc-1", BRANCH, "d1", "ok", 200, "", 1, 0.5, T0, ROOT, "run-1", 0.0, "k1", 0,
         "create"),
        ("doc-2", None, None, "not_found", 404, "gone", 1, 0.5, T0 - 9, ROOT, "run-1", 0.2,
         None, 1, "discard"),
        ("doc-3", None, None, "invalid", None, "bad", 0, 0.0, T0 + 1, ROOT, "run-2", 0.0,
         None, 0, "list"),  # a listing's row reads as itself
        ("doc-4", None, None, "published", None, "", 1, 0.0, T0 + 2, ROOT, "run-3", 0.0,
         None, 0, "publish"),  # written by a newer omni_nb: status and action as themselves
    ]
    whole = pd.DataFrame(frame_from_tuples(rows))
    for chunks in ([rows[:1], [], rows[1:]], [[r] for r in rows], [rows]):
        pd.testing.assert_frame_equal(pd.DataFrame(frame_from_chunks(chunks)), whole)
    assert whole["action"].tolist() == ["create", "discard", "list", "publish"]
    assert whole["status"].tolist() == ["ok", "not_found", "invalid", "published"]
    empty = frame_from_chunks([])
    assert {c: str(t) for c, t in empty.dtypes.items()} == DOCUMENTED_DTYPES
    assert empty.empty

def test_builder_orders_rows_by_position_whatever_order_they_came_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows added in any order, across chunk boundaries, make the table frame_from_rows makes
    of them in position order: same values, dtypes and order; the builder is empty after."""
    monkeypatch.setattr(TableBuilder, "CHUNK_ROWS", 3)
    rows = [row(f"doc-{i}", status, branch=BRANCH if i % 2 else None)
            for i, status in enumerate(["ok", "not_found", "invalid", "ok", "cancelled",
                                        "not_eligible", "ok", "server_error"])]
    builder = TableBuilder()
    for position in [5, 0, 7, 2, 1, 6, 3, 4]:
        builder.add(rows[position], position)
    assert len(builder) == 8
    table = builder.frame()
    pd.testing.assert_frame_equal(pd.DataFrame(table), pd.DataFrame(frame_from_rows(rows)))
    assert len(builder) == 0
    assert builder.frame().empty


def test_errors_has_one_entry_per_row() -> None:
    """table.errors has one entry per row (None until a batch fills it in)."""
    assert mixed().errors == [None] * 4
    assert frame_from_rows([]).errors == []


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "0 rows"),
        (["not_found", "ok", "not_found"], "3 rows: 1 ok, 2 not_found"),
        (["cancelled", "invalid", "ok", "server_error"],
         "4 rows: 1 ok, 1 invalid, 1 server_error, 1 cancelled"),
    ],
)
def test_summarize_counts_only_statuses_present_in_status_order(
    statuses: list[str], expected: str
) -> None:
    """The summary counts each status present, in STATUSES order, and names no absent one."""
    assert summarize(frame_from_rows([row(f"d{i}", s) for i, s in enumerate(statuses)])) == (
        expected)


def test_summarize_counts_rows_from_the_ledger() -> None:
    """Rows copied from the ledger by resume are counted at the end of the summary."""
    table = frame_from_rows([row("a", from_ledger=True), row("b", from_ledger=True), row("c")])
    assert summarize(table) == "3 rows: 3 ok (2 from the ledger)"


def test_the_table_shows_its_summary_above_itself() -> None:
    """repr starts with the summary, the HTML view with the row count; a filtered table is a
    results table too (the compact display follows it)."""
    table = mixed()
    line = "4 rows: 1 ok, 1 invalid, 1 not_eligible, 1 not_found"
    assert table.summary() == line
    assert repr(table).startswith(line + "\n")
    assert table._repr_html_().startswith('<div class="omni-nb-results"><p><b>4 rows</b>')
    assert type(table[table["status"] == "ok"]) is DraftResults


def test_items_from_frame_reads_documents_and_branches() -> None:
    """A DataFrame gives (document, branch) pairs from the named or branch_id column."""
    frame = pd.DataFrame({"document_id": ["a", "b"], "branch_id": [BRANCH, "x"],
                          "other": ["o1", "o2"]})
    assert items_from_frame(frame, "document_id", None) == [("a", BRANCH), ("b", "x")]
    assert items_from_frame(frame, "other", "document_id") == [("o1", "a"), ("o2", "b")]
    assert items_from_frame(pd.DataFrame({"doc": ["a"]}), "doc", None) == [("a", None)]
    assert items_from_frame(["a"], "document_id", None) is None


@pytest.mark.parametrize("missing", [None, math.nan, pd.NA, pd.NaT], ids=repr)
def test_items_from_frame_missing_branch_is_none(missing: object) -> None:
    """None, NaN, NA and NaT cells read as None (no branch / no document)."""
    frame = pd.DataFrame({"document_id": pd.Series(["a", missing], dtype=object),
                          "branch_id": pd.Series([missing, BRANCH], dtype=object)})
    assert items_from_frame(frame, "document_id", None) == [("a", None), (None, BRANCH)]


@pytest.mark.parametrize(
    ("document_col", "branch_col", "named"),
    [("doc", None, "'doc'"), ("document_id", "br", "'br'")],
)
def test_items_from_frame_missing_column_is_invalid_input(
    document_col: str, branch_col: str | None, named: str
) -> None:
    """A document or branch column the frame does not have raises InvalidInputError naming it."""
    frame = pd.DataFrame({"document_id": ["a"]})
    with pytest.raises(InvalidInputError, match=named):
        items_from_frame(frame, document_col, branch_col)


def test_dry_run_frame_columns_dtypes_and_summary() -> None:
    """The dry-run table has its six columns with string/bool dtypes and the summary in attrs."""
    frame = dry_run_frame([("item 1", "d", None, True, "POST x {}", ""),
                           ("item 2", "../x", None, False, "", "item 2: bad")], "1 request")
    assert list(frame.columns) == ["input", "document_id", "branch_id", "valid", "request",
                                   "message"]
    assert {c: str(frame[c].dtype) for c in frame.columns[1:]} == {
        "document_id": "string", "branch_id": "string", "valid": "bool", "request": "string",
        "message": "string"}
    assert frame.attrs["summary"] == "1 request"


def test_text_view_is_the_summary_and_the_first_rows() -> None:
    """The terminal view is the summary, then at most ``limit`` rows of the main columns, then
    how many rows it left out."""
    assert text_view(frame_from_rows([])) == "0 rows"
    view = text_view(mixed(), limit=2)
    lines = view.splitlines()
    assert lines[0] == mixed().summary()
    assert lines[1].split() == ["document_id", "branch_id", "draft_id", "status", "http_status",
                                "message"]
    assert len(lines) == 5
    assert "doc-2" in lines[3]
    assert "bad/x" not in view
    assert lines[4] == "… 2 more rows not shown"
