"""Reading the ledger back at scale (omni_nb.ledger's read path): the queries reach their
rows through an index, and the table they make is the one the row-by-row build made (same
rows, columns, dtypes and arrival order) for every filter, across chunk boundaries, for
rows of older schemas and odd values."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from omni_nb import ledger as ledger_module
from omni_nb.ledger import Ledger, results
from omni_nb.rows import STATUSES, known_actions

ROOT_A = "https://a.omniapp.co/api"
ROOT_B = "https://b.omniapp.co/api"
BRANCH = "081c8cec-a997-5c87-9f41-00dd4e31bc04"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
COLUMNS = ("document_id", "branch_id", "draft_id", "status", "http_status", "message",
           "attempts", "elapsed_s", "requested_at_us", "api_root", "run_id", "queued_s", "key",
           "from_ledger", "action")


def categorical(values: Sequence[Any], known: Sequence[str]) -> pd.Categorical:
    """The known categories first, then each other text value in the order met: a value
    this version does not know reads back as itself."""
    extra = [v for v in dict.fromkeys(values) if isinstance(v, str) and v not in known]
    return pd.Categorical(list(values), categories=[*known, *extra])


def reference_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """The table as the row-by-row build made it before the ledger read in chunks: each
    column from a list of Python values (the oracle for "unchanged")."""
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    at = dict(zip(COLUMNS, cols, strict=True))
    text = pd.StringDtype()
    return pd.DataFrame({
        "document_id": pd.array(at["document_id"], dtype=text),
        "branch_id": pd.array(at["branch_id"], dtype=text),
        "draft_id": pd.array(at["draft_id"], dtype=text),
        "status": categorical(at["status"], STATUSES),
        "http_status": pd.array(at["http_status"], dtype="Int64"),
        "message": pd.array(at["message"], dtype=text),
        "attempts": pd.array(at["attempts"], dtype="Int64"),
        "queued_s": pd.array(at["queued_s"], dtype="float64"),
        "elapsed_s": pd.array(at["elapsed_s"], dtype="float64"),
        "requested_at": pd.to_datetime(pd.Series(at["requested_at_us"], dtype="int64"),
                                       unit="us", utc=True),
        "key": pd.array(at["key"], dtype=text),
        "api_root": pd.array(at["api_root"], dtype=text),
        "run_id": pd.array(at["run_id"], dtype=text),
        "from_ledger": pd.array([bool(v) for v in at["from_ledger"]], dtype="bool"),
        "action": categorical(at["action"], known_actions()),
    })


def stored(path: Path) -> list[tuple[Any, ...]]:
    """Every stored row, in id order, read with a connection of its own."""
    with sqlite3.connect(path) as conn:
        sql = f"SELECT {', '.join(COLUMNS)} FROM calls ORDER BY id"  # noqa: S608 (constants)
        return conn.execute(sql).fetchall()


def insert(path: Path, rows: Sequence[tuple[Any, ...]]) -> None:
    with sqlite3.connect(path) as conn:
        sql = (f"INSERT INTO calls ({', '.join(COLUMNS)}) "  # noqa: S608 (constants)
               f"VALUES ({', '.join('?' * len(COLUMNS))})")
        conn.executemany(sql, rows)


def odd_rows(start: int, n: int) -> list[tuple[Any, ...]]:
    """Rows with every kind of value a ledger holds: missing branch, draft, HTTP status and
    key; a status and an action outside the table's categories; discards and resumed rows;
    and send times out of id order (a retried item's row is recorded after later sends)."""
    out = []
    for i in range(start, start + n):
        out.append((
            f"doc-{i}", BRANCH if i % 3 == 0 else None, f"d{i}" if i % 4 else None,
            ("ok", "not_found", "invalid", "weird")[i % 4], (200, 404, None, 500)[i % 4],
            "" if i % 4 == 0 else f"why {i}", i % 3, 0.25 * i, T0 + i * 1_000_000
            - (5_000_000 if i % 5 == 0 else 0), ROOT_B if i % 6 == 0 else ROOT_A,
            f"r{i // 10}", 0.5 * (i % 2), None if i % 7 == 0 else f"k{i % 2}", i % 2,
            ("create", "discard", "list")[i % 3],
        ))
    return out


def v0_ledger(path: Path) -> None:
    """A ledger as the first schema made it: no queued_s, key, action or from_ledger."""
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE calls (id INTEGER PRIMARY KEY, document_id TEXT NOT NULL,
                branch_id TEXT, draft_id TEXT, status TEXT NOT NULL, http_status INTEGER,
                message TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL,
                elapsed_s REAL NOT NULL, requested_at_us INTEGER NOT NULL,
                api_root TEXT NOT NULL, run_id TEXT NOT NULL);
        """)
        conn.executemany("INSERT INTO calls (document_id, branch_id, draft_id, status, "
                         "http_status, message, attempts, elapsed_s, requested_at_us, "
                         "api_root, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [r[:11] for r in odd_rows(0, 25)])


@pytest.fixture
def ledger_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ledger begun by the first schema, then written by today's: 60 rows, read back in
    chunks of 7 so the chunk boundaries fall everywhere."""
    monkeypatch.setattr(ledger_module, "_CHUNK_ROWS", 7)
    path = tmp_path / "l.sqlite3"
    v0_ledger(path)
    Ledger(path).close()  # migrates: the old rows take the new columns' defaults
    insert(path, odd_rows(25, 35))
    return path


def _since(i: int) -> datetime:
    return datetime.fromtimestamp((T0 + i * 1_000_000) / 1_000_000, UTC)


FILTERS: list[dict[str, Any]] = [
    {}, {"run_id": "r3"}, {"since": _since(40)}, {"api_root": ROOT_B},
    {"run_id": "r4", "since": _since(45)}, {"since": _since(20), "api_root": ROOT_A},
    {"run_id": "r1", "api_root": ROOT_B}, {"run_id": "r5", "since": _since(52), "api_root": ROOT_A},
    {"run_id": "nope"}, {"since": _since(10_000)}, {"api_root": "https://c.omniapp.co/api"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: "+".join(f) or "all")
def test_results_are_the_row_by_row_table_for_every_filter(
    ledger_path: Path, filters: dict[str, Any]
) -> None:
    """Every filter and mixture gives the rows the filter selects, in id order, with the
    columns and dtypes the row-by-row build gave (old rows with their defaults, odd values,
    empty results); ``rows()`` gives the same tuples."""
    since = filters.get("since")
    expected = [
        r for r in stored(ledger_path)
        if filters.get("run_id", r[10]) == r[10] and filters.get("api_root", r[9]) == r[9]
        and (since is None or r[8] >= int(since.timestamp() * 1_000_000))
    ]
    led = Ledger(ledger_path)
    assert led.rows(**filters) == expected
    got = results(ledger=led, **filters)
    pd.testing.assert_frame_equal(pd.DataFrame(got), reference_frame(expected), check_exact=True)


def test_the_fixture_holds_what_the_filters_need(ledger_path: Path) -> None:
    """The rows cover old-schema defaults, missing values, unknown categories and send times
    out of id order (so a since= read that lost id order would show)."""
    table = results(ledger=ledger_path)
    assert len(table) == 60
    assert table["key"].isna().iloc[:25].all()  # the first schema's rows: defaults
    assert not table["from_ledger"].iloc[:25].any()
    for column in ("http_status", "branch_id", "draft_id", "key"):
        assert table[column].isna().any(), column
    for column in ("status", "action"):  # values of a newer version read back as themselves
        assert not table[column].isna().any(), column
    assert "weird" in set(table["status"])
    assert not table["requested_at"].is_monotonic_increasing
    window = results(ledger=ledger_path, since=_since(30))
    assert not window["requested_at"].is_monotonic_increasing  # id order, not time order


def _plan(led: Ledger, **filters: Any) -> str:
    """SQLite's plan for the query ``results(**filters)`` runs on this ledger."""
    seen: list[str] = []
    led._conn.set_trace_callback(seen.append)  # the SQL as run, with its values bound
    try:
        led.results(**filters)
    finally:
        led._conn.set_trace_callback(None)
    (query,) = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    with sqlite3.connect(led.path) as other:  # type: ignore[arg-type]
        return " | ".join(row[3] for row in other.execute(f"EXPLAIN QUERY PLAN {query}"))


@pytest.mark.parametrize(("filters", "index"), [
    ({"since": _since(59)}, "calls_when"),
    ({"since": _since(59), "api_root": ROOT_A}, "calls_when"),
    ({"run_id": "r5"}, "calls_run"),
    ({"run_id": "r5", "since": _since(50)}, "calls_"),  # either index narrows the read
    ({"run_id": "r5", "api_root": ROOT_A}, "calls_run"),
])
def test_filtered_reads_go_through_an_index(
    ledger_path: Path, filters: dict[str, Any], index: str
) -> None:
    """since= and run_id= (alone or with api_root=) search an index, never scan the table:
    a recent window of a large ledger reads only its own rows."""
    plan = _plan(Ledger(ledger_path), **filters)
    assert f"USING INDEX {index}" in plan, plan
    assert "SCAN calls" not in plan, plan


def test_the_whole_ledger_is_read_in_rowid_order_without_a_sort(ledger_path: Path) -> None:
    """No filter (or api_root= alone, which no index would narrow: a ledger holds one or two
    API roots) reads the table once in rowid order: id order without sorting."""
    led = Ledger(ledger_path)
    for filters in ({}, {"api_root": ROOT_A}):
        plan = _plan(led, **filters)
        assert plan.startswith("SCAN calls"), plan
        assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_leaves_the_garbage_collector_as_it_was(
    ledger_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    """The collector paused during a read is on again after it (and after a failed one),
    and one the caller had turned off stays off."""
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        led = Ledger(ledger_path)
        led.results()
        assert gc.isenabled() is enabled
        led.rows()
        assert gc.isenabled() is enabled

        def broken(chunks: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr("omni_nb.table.frame_from_chunks", broken)
        with pytest.raises(RuntimeError):
            led.results()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
