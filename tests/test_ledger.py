"""The ledger room (omni_nb.ledger): rows committed as they arrive, read back by run, time and
API root, resume's view of ok rows, where the ledger lives, and sharing one file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from omni_nb import OmniClient, sandbox
from omni_nb.ledger import Ledger, open_ledger, results
from omni_nb.rows import Row
from omni_nb.table import frame_from_rows

ROOT_A = "https://a.omniapp.co/api"
ROOT_B = "https://b.omniapp.co/api"
BRANCH = "081c8cec-a997-5c87-9f41-00dd4e31bc04"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds


def row(doc: str = "doc-1", branch: str | None = None, draft: str | None = "d1",
        status: str = "ok", *, at: int = T0, root: str = ROOT_A, run: str = "r1") -> Row:
    """A ledger row; only the fields a test cares about vary."""
    http_status = {"ok": 200, "not_found": 404, "invalid": None}.get(status, 500)
    return Row(doc, branch, draft if status == "ok" else None, status, http_status,
               "" if status == "ok" else "why", 1, 0.25, at, root, run)


def test_record_is_committed_when_it_returns(tmp_path: Path) -> None:
    """Rows are committed by record() itself: another connection sees them at once."""
    path = tmp_path / "l.sqlite3"
    led = Ledger(path)
    led.record([row("doc-1"), row("doc-2", status="not_found")])
    with sqlite3.connect(path) as other:
        seen = other.execute("SELECT document_id, status FROM calls ORDER BY id").fetchall()
    assert seen == [("doc-1", "ok"), ("doc-2", "not_found")]


def test_a_failing_record_stores_none_of_its_rows(tmp_path: Path) -> None:
    """record() is one transaction: a refused row rolls back its whole batch."""
    led = Ledger(tmp_path / "l.sqlite3")
    bad = row("doc-2")
    bad.document_id = None  # type: ignore[assignment]  # NOT NULL in the schema
    with pytest.raises(sqlite3.IntegrityError):
        led.record([row("doc-1"), bad])
    assert led.rows() == []
    led.record([row("doc-3")])
    assert [r[0] for r in led.rows()] == ["doc-3"]


def test_results_read_back_the_rows_with_the_tables_dtypes(tmp_path: Path) -> None:
    """results() gives the recorded rows with the batch table's columns, values and dtypes."""
    rows = [row("doc-1", BRANCH), row("doc-2", status="not_found", at=T0 + 5),
            row("bad/x", status="invalid", at=T0 + 9)]
    led = Ledger(tmp_path / "l.sqlite3")
    led.record(rows)
    pd.testing.assert_frame_equal(pd.DataFrame(led.results()),
                                  pd.DataFrame(frame_from_rows(rows)))


def test_ok_rows_are_the_latest_ok_per_pair_for_one_api_root(tmp_path: Path) -> None:
    """ok_rows() is the newest ok row per asked pair, for that API root only."""
    led = Ledger(tmp_path / "l.sqlite3")
    led.record([
        row("doc-1", draft="old", run="r1"),
        row("doc-1", draft="new", run="r2"),
        row("doc-1", status="not_found", run="r3"),  # a later failure does not hide the ok
        row("doc-1", BRANCH, draft="on-branch"),
        row("doc-2", draft="other-root", root=ROOT_B),
        row("doc-3", status="not_found"),
        row("doc-4", draft="not-asked"),
    ])
    pairs = [("doc-1", None), ("doc-1", BRANCH), ("doc-2", None), ("doc-3", None)]
    found = led.ok_rows(ROOT_A, pairs)
    assert {pair: r.draft_id for pair, r in found.items()} == {
        ("doc-1", None): "new", ("doc-1", BRANCH): "on-branch",
    }
    assert found[("doc-1", None)].run_id == "r2"
    assert {p: r.draft_id for p, r in led.ok_rows(ROOT_B, pairs).items()} == {
        ("doc-2", None): "other-root"}


def test_results_filter_by_run_since_and_api_root(tmp_path: Path) -> None:
    """results() filters by run id, by time (naive ISO is UTC) and by API root."""
    path = tmp_path / "l.sqlite3"
    open_ledger(path).record([
        row("doc-1", at=T0, run="r1"),
        row("doc-2", at=T0 + 1_000_000, run="r2"),
        row("doc-3", at=T0 + 2_000_000, run="r2", root=ROOT_B),
    ])

    def docs(**filters: object) -> list[str]:
        return list(results(ledger=path, **filters)["document_id"])  # type: ignore[arg-type]

    assert docs() == ["doc-1", "doc-2", "doc-3"]
    assert docs(run_id="r2") == ["doc-2", "doc-3"]
    assert docs(since=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)) == ["doc-2", "doc-3"]
    assert docs(since="2026-01-01T00:00:02") == ["doc-3"]
    assert docs(since="2026-01-01T01:00:01+01:00") == ["doc-2", "doc-3"]
    assert docs(api_root=ROOT_B) == ["doc-3"]
    assert docs(run_id="r2", api_root=ROOT_A) == ["doc-2"]
    assert docs(run_id="nope") == []


def test_off_keeps_rows_in_memory_and_writes_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OMNI_NB_LEDGER=off is one shared in-memory ledger: rows readable, no file."""
    monkeypatch.setenv("OMNI_NB_LEDGER", "off")
    monkeypatch.chdir(tmp_path)
    led = open_ledger()
    assert led.path is None
    assert open_ledger("memory") is led
    assert open_ledger(":memory:") is led
    led.record([row("doc-1", run="mem-run")])
    assert list(results(run_id="mem-run")["document_id"]) == ["doc-1"]
    assert list(tmp_path.iterdir()) == []


def test_ledgers_are_shared_per_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open_ledger() gives one Ledger per file, however the path is spelled."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "l.sqlite3"
    led = open_ledger(path)
    assert open_ledger(str(path)) is led
    assert open_ledger("l.sqlite3") is led
    assert open_ledger(tmp_path / "other.sqlite3") is not led
    monkeypatch.setenv("OMNI_NB_LEDGER", str(path))
    assert open_ledger() is led
    own = Ledger(None)
    assert open_ledger(own) is own


def test_a_file_ledger_is_in_wal_mode(tmp_path: Path) -> None:
    """A file ledger uses SQLite's write-ahead log: the -wal file exists once a row is in."""
    path = tmp_path / "l.sqlite3"
    Ledger(path).record([row()])
    assert Path(f"{path}-wal").exists()
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_two_ledger_objects_on_one_path_both_write(tmp_path: Path) -> None:
    """Two connections to one file (two Ledger objects) interleave writes; each sees all."""
    path = tmp_path / "l.sqlite3"
    first, second = Ledger(path), Ledger(path)
    for i in range(5):
        first.record([row(f"doc-{i}", run="first")])
        second.record([row(f"doc-{i}", run="second")])
    for led in (first, second):
        assert led.results()["run_id"].value_counts().to_dict() == {"first": 5, "second": 5}


def test_two_processes_write_the_ledger_at_once(tmp_path: Path) -> None:
    """Two processes appending 300 rows each to one ledger both succeed; all 600 are there."""
    ledger = tmp_path / "shared.sqlite3"
    script = textwrap.dedent(f"""
        import sys
        from omni_nb.ledger import open_ledger
        from omni_nb.rows import Row
        led = open_ledger({str(ledger)!r})
        for i in range(300):
            led.record([Row(f"doc-{{i}}", None, "d", "ok", 200, "", 1, 0.0, 0,
                            "https://a.omniapp.co/api", sys.argv[1])])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    df = results(ledger=ledger)
    assert df["run_id"].value_counts().to_dict() == {"a": 300, "b": 300}


def test_record_outcome_logs_every_client_call(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """record_outcome logs each client call under run id 'client', never the token."""
    path = tmp_path / "l.sqlite3"
    led = open_ledger(path)
    with OmniClient(sb.base_url, sb.token, rate_limit=None,
                    on_result=led.record_outcome) as client:
        draft = client.create_draft("doc-0001")
        client.create_draft_outcome("nope")
    table = led.results()
    assert list(table["document_id"]) == ["doc-0001", "nope"]
    assert list(table["status"]) == ["ok", "not_found"]
    assert table["draft_id"].iloc[0] == draft.identifier
    assert set(table["run_id"]) == {"client"}
    assert set(table["api_root"]) == {sb.base_url}
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("l.sqlite3*"))  # with -wal
    assert table["draft_id"].iloc[0].encode() in stored
    assert sb.token.encode() not in stored
