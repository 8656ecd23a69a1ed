"""create_drafts / acreate_drafts against the sandbox: rows, dtypes, ledger, resume, interrupts."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import omni_nb
from omni_nb import ConfigError, InvalidInputError, sandbox
from omni_nb.batch import BatchInterrupted, acreate_drafts, create_drafts
from omni_nb.ledger import open_ledger, results
from omni_nb.rows import STATUSES

ROOT = Path(__file__).resolve().parents[1]


def run(sb: sandbox.Sandbox, items: object, **kwargs: object) -> pd.DataFrame:
    kwargs.setdefault("rate_limit", None)
    return create_drafts(items, base_url=sb.base_url, token=sb.token, **kwargs)  # type: ignore[arg-type]


def test_mixed_outcomes_map_to_statuses(sb: sandbox.Sandbox) -> None:
    """ok, not_eligible, not_found and invalid each land in their row, in input order."""
    branch = sb.branches[0].id
    table = run(sb, ["doc-0001", "doc-0010", "missing", "../etc", ("doc-0002", branch),
                     ("doc-0003", "not-a-uuid")])
    assert list(table["document_id"]) == ["doc-0001", "doc-0010", "missing", "../etc",
                                          "doc-0002", "doc-0003"]
    assert list(table["status"]) == ["ok", "not_eligible", "not_found", "invalid", "ok",
                                     "invalid"]
    assert list(table["http_status"].astype(object)) == [200, 400, 404, pd.NA, 200, pd.NA]
    assert table.loc[4, "branch_id"] == branch
    assert table.loc[4, "draft_id"] == sb.drafts()[("doc-0002", branch)]
    assert "item 4" in table.loc[3, "message"]
    assert "'/'" in table.loc[3, "message"]
    assert "item 6" in table.loc[5, "message"]
    assert "branch id" in table.loc[5, "message"]
    assert table.loc[1, "message"] == "Document is not eligible for publishing workflow"
    assert pd.isna(table.loc[2, "draft_id"])
    assert table["run_id"].nunique() == 1
    assert set(table["api_root"]) == {sb.base_url}
    # Invalid inputs were never sent.
    assert sorted(r.document_id for r in sb.requests()) == ["doc-0001", "doc-0002", "doc-0010",
                                                           "missing"]


def test_table_keeps_each_calls_error(sb: sandbox.Sandbox) -> None:
    """table.errors holds the exception behind each failed call (with its parsed body), and
    None for ok and invalid rows."""
    table = run(sb, ["doc-0001", "nope", "a/b"])
    ok, missing, invalid = table.errors
    assert ok is None
    assert invalid is None
    assert isinstance(missing, omni_nb.NotFoundError)
    assert missing.body["message"] == "Document with identifier nope not found"


def test_forbidden_and_unauthorized(sb: sandbox.Sandbox) -> None:
    """A viewer gets forbidden rows; a refused token stops the batch after the first answer
    and the rest are honestly 'cancelled', not sent."""
    viewer = create_drafts(["doc-0001", "doc-0002"], base_url=sb.base_url,
                           token=sb.viewer_token, rate_limit=None)
    assert list(viewer["status"]) == ["forbidden", "forbidden"]
    sb.clear_requests()
    bad = create_drafts([f"doc-{i:04d}" for i in range(1, 41)], base_url=sb.base_url,
                        token="omni_osk_wrong", rate_limit=None, concurrency=1)
    assert bad["status"].iloc[0] == "unauthorized"
    assert set(bad["status"].iloc[1:]) == {"cancelled"}
    assert bad["message"].iloc[1].startswith("not sent: the token was refused")
    assert len(sb.requests()) == 1


def test_duplicates_are_sent_once(sb: sandbox.Sandbox) -> None:
    """The same pair given twice is one row and one request; another branch is another."""
    branch = sb.branches[1].id
    table = run(sb, ["doc-0001", "doc-0001", " doc-0001 ", ("doc-0001", branch),
                     ("doc-0001", branch.upper())])
    assert len(table) == 2
    assert len(sb.requests()) == 2


def test_dataframe_input_with_missing_branches(sb: sandbox.Sandbox) -> None:
    """NaN/None in the branch column mean the batch-wide branch_id (here: none)."""
    branch = sb.branches[0].id
    frame = pd.DataFrame({"document_id": ["doc-0001", "doc-0002", "doc-0003", None],
                          "branch_id": [branch, float("nan"), None, branch]})
    table = run(sb, frame)
    assert list(table["branch_id"].astype(object).where(table["branch_id"].notna(), None)) == [
        branch, None, None, branch]
    assert list(table["status"]) == ["ok", "ok", "ok", "invalid"]
    assert "item 4" in table.loc[3, "message"]


def test_dataframe_columns_are_configurable(sb: sandbox.Sandbox) -> None:
    """document_col / branch_col pick the columns; the accessor does the same."""
    branch = sb.branches[2].id
    frame = pd.DataFrame({"doc": ["doc-0004", "doc-0005"], "br": [branch, None]})
    table = run(sb, frame, document_col="doc", branch_col="br")
    assert list(table["status"]) == ["ok", "ok"]
    via_accessor = frame.omni.create_drafts("doc", "br", base_url=sb.base_url, token=sb.token,
                                            rate_limit=None)
    assert list(via_accessor["draft_id"]) == list(table["draft_id"])
    with pytest.raises(InvalidInputError, match="'nope'"):
        run(sb, frame, document_col="nope")


def test_dtypes_are_exact(sb: sandbox.Sandbox) -> None:
    """Every column has its documented dtype."""
    table = run(sb, ["doc-0001", "x/y"])
    assert {c: str(t) for c, t in table.dtypes.items()} == {
        "document_id": "string", "branch_id": "string", "draft_id": "string",
        "status": "category", "http_status": "Int64", "message": "string",
        "attempts": "Int64", "queued_s": "float64", "elapsed_s": "float64",
        "requested_at": "datetime64[us, UTC]", "key": "string", "api_root": "string",
        "run_id": "string", "from_ledger": "bool",
    }
    assert list(table["status"].cat.categories) == list(STATUSES)
    assert table["requested_at"].iloc[0] <= pd.Timestamp.now(tz="UTC")


def test_summary_line_is_shown(sb: sandbox.Sandbox) -> None:
    """The table displays a one-line status count above itself."""
    table = run(sb, ["doc-0001", "doc-0010", "nope"])
    assert table.summary() == "3 rows: 1 ok, 1 not_eligible, 1 not_found"
    assert "3 rows: 1 ok, 1 not_eligible, 1 not_found" in table._repr_html_()
    assert repr(table).startswith("3 rows:")
    assert type(table[table["status"] == "ok"]) is pd.DataFrame


def test_progress_reports_each_result(sb: sandbox.Sandbox) -> None:
    """progress(done, total, row) counts up to total, once per row."""
    seen: list[tuple[int, int, str]] = []
    run(sb, ["doc-0001", "doc-0002", "bad/id"], progress=lambda d, t, r: seen.append(
        (d, t, r.status)))
    assert [d for d, _, _ in seen] == [1, 2, 3]
    assert {t for _, t, _ in seen} == {3}


def test_settings_errors_raise_before_sending(sb: sandbox.Sandbox) -> None:
    """No token or an unsafe URL raises ConfigError and sends nothing."""
    with pytest.raises(ConfigError, match="OMNI_API_TOKEN"):
        create_drafts(["doc-0001"], base_url=sb.base_url)
    with pytest.raises(ConfigError, match="plain http"):
        create_drafts(["doc-0001"], base_url="http://example.com", token="t")
    with pytest.raises(InvalidInputError, match="branch id"):
        run(sb, ["doc-0001"], branch_id="main")
    with pytest.raises(InvalidInputError, match="single string"):
        run(sb, "doc-0001")
    assert sb.requests() == []


def test_empty_input_is_an_empty_table(sb: sandbox.Sandbox) -> None:
    """No items: an empty table with the right columns, nothing sent."""
    table = run(sb, [])
    assert len(table) == 0
    assert "status" in table.columns
    assert sb.requests() == []


def test_every_row_is_in_the_ledger(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """results(run_id) reads back exactly the batch's rows (in arrival order); the token is
    not in the file."""
    ledger = tmp_path / "l.sqlite3"
    table = run(sb, ["doc-0001", "doc-0010", "bad/x"], ledger=ledger)
    back = results(run_id=table["run_id"].iloc[0], ledger=ledger)

    def canon(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(df).sort_values("document_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(canon(back), canon(table))
    assert sb.token.encode() not in ledger.read_bytes()


def test_resume_sends_only_what_is_left(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """resume=True copies ok rows from the ledger (from_ledger) and sends only the rest."""
    ledger = tmp_path / "l.sqlite3"
    docs = [f"doc-{i:04d}" for i in range(1, 9)]
    sb.enqueue(503, {"error": "x", "message": "down"}, times=8)
    first = run(sb, docs, ledger=ledger, max_retries=0)
    assert set(first["status"]) == {"server_error"}
    sb.clear_requests()
    ok = run(sb, docs[:2], ledger=ledger)
    assert set(ok["status"]) == {"ok"}
    sb.clear_requests()
    resumed = run(sb, docs, ledger=ledger, resume=True)
    assert set(resumed["status"]) == {"ok"}
    assert list(resumed["from_ledger"]) == [True, True] + [False] * 6
    assert list(resumed["draft_id"][:2]) == list(ok["draft_id"])
    assert sorted(r.document_id for r in sb.requests()) == docs[2:]


def test_resume_is_per_api_root(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """An ok row for another API root does not count."""
    ledger = tmp_path / "l.sqlite3"
    run(sb, ["doc-0001"], ledger=ledger)
    with sandbox.serve(rate_limit=None) as other:
        again = create_drafts(["doc-0001"], base_url=other.base_url, token=other.token,
                              rate_limit=None, ledger=ledger, resume=True)
        assert list(again["from_ledger"]) == [False]
        assert len(other.requests()) == 1


def test_async_api(sb: sandbox.Sandbox) -> None:
    """await acreate_drafts gives the same table."""
    table = asyncio.run(acreate_drafts(["doc-0001", "doc-0010"], base_url=sb.base_url,
                                       token=sb.token, rate_limit=None))
    assert list(table["status"]) == ["ok", "not_eligible"]


def test_sync_api_inside_a_running_loop(sb: sandbox.Sandbox) -> None:
    """create_drafts works where an event loop already runs (a Jupyter cell)."""
    async def cell() -> pd.DataFrame:
        return run(sb, ["doc-0001", "doc-0002"])

    assert list(asyncio.run(cell())["status"]) == ["ok", "ok"]


def test_sync_api_after_nest_asyncio(tmp_path: Path) -> None:
    """After a user's nest_asyncio.apply(), create_drafts still works inside a running loop
    (in a child process: nest_asyncio patches asyncio for good)."""
    pytest.importorskip("nest_asyncio")
    script = textwrap.dedent("""
        import asyncio, nest_asyncio
        nest_asyncio.apply()
        from omni_nb import sandbox, create_drafts
        async def cell():
            with sandbox.serve(rate_limit=None) as sb:
                t = create_drafts(["doc-0001", "doc-0010"], base_url=sb.base_url,
                                  token=sb.token, rate_limit=None, ledger="off")
                return list(t["status"])
        print(asyncio.get_event_loop().run_until_complete(cell()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['ok', 'not_eligible']"


def test_keyboard_interrupt_keeps_results_and_cancels_the_rest(tmp_path: Path) -> None:
    """Ctrl-C mid-batch: sending stops, received rows are kept (and in the ledger), the rest
    are 'cancelled', and BatchInterrupted carries the full table."""
    ledger = tmp_path / "l.sqlite3"
    docs = [f"doc-{i:04d}" for i in range(1, 201)]

    def interrupt_at_ten(done: int, total: int, row: object) -> None:
        if done == 10:
            os.kill(os.getpid(), signal.SIGINT)  # delivered to the waiting main thread

    with sandbox.serve(rate_limit=None, latency=0.02) as sb:
        with pytest.raises(BatchInterrupted) as info:
            create_drafts(docs, base_url=sb.base_url, token=sb.token, rate_limit=None,
                          concurrency=4, ledger=ledger, progress=interrupt_at_ten)
        time.sleep(0.2)  # let any straggler arrive before counting what the server saw
        sent = len(sb.requests())
    table = info.value.result
    assert len(table) == 200
    counts = table["status"].value_counts()
    assert counts["ok"] + counts["not_eligible"] >= 10
    assert counts["ok"] + counts["not_eligible"] + counts["cancelled"] == 200
    assert sent <= 10 + 4 + 4  # what was done, what was in flight, a little scheduling slack
    assert len(results(run_id=table["run_id"].iloc[0], ledger=ledger)) == 200


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


def test_sigkill_half_way_loses_nothing_received(tmp_path: Path) -> None:
    """A batch process killed with SIGKILL: every answer the server sent before the kill,
    minus the calls in flight, is in the ledger; resume sends only the rest."""
    ledger = tmp_path / "l.sqlite3"
    docs = [f"doc-{i:04d}" for i in range(1, 121)]
    with sandbox.serve(rate_limit=None, latency=0.01) as sb:
        script = textwrap.dedent(f"""
            from omni_nb import create_drafts
            create_drafts({docs!r}, base_url={sb.base_url!r}, token={sb.token!r},
                          rate_limit=None, concurrency=4, ledger={str(ledger)!r})
        """)
        proc = subprocess.Popen([sys.executable, "-c", script])
        deadline = time.monotonic() + 30
        while sum(r.status == 200 for r in sb.requests()) < 40:
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        settle(sb)  # requests the child sent before dying are still being answered
        answered = {r.document_id for r in sb.requests() if r.status}
        with sqlite3.connect(ledger) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = set(results(ledger=ledger)["document_id"])
        assert kept <= answered
        assert len(answered - kept) <= 4  # at most the calls in flight
        sb.clear_requests()
        done = create_drafts(docs, base_url=sb.base_url, token=sb.token, rate_limit=None,
                             ledger=ledger, resume=True)
        resent = [r.document_id for r in sb.requests()]
    ok_before = set(results(ledger=ledger).query("status == 'ok'")["document_id"])
    assert set(done["status"]) <= {"ok", "not_eligible"}
    assert not (set(resent) & {d for d in kept if d in ok_before and not d.endswith("0")})
    assert len(resent) == len(docs) - int(done["from_ledger"].sum())


def settle(sb: sandbox.Sandbox, quiet: float = 0.2, limit: float = 5.0) -> None:
    """Wait until the sandbox's log has not grown for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    seen = -1
    while time.monotonic() < deadline:
        count = len(sb.requests())
        if count == seen:
            return
        seen = count
        time.sleep(quiet)


def test_results_filters(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """results() filters by run, by time and by API root."""
    ledger = tmp_path / "l.sqlite3"
    a = run(sb, ["doc-0001"], ledger=ledger)
    b = run(sb, ["doc-0002", "doc-0003"], ledger=ledger)
    assert len(results(ledger=ledger)) == 3
    assert len(results(run_id=b["run_id"].iloc[0], ledger=ledger)) == 2
    assert len(results(since=b["requested_at"].min().to_pydatetime(), ledger=ledger)) == 2
    assert len(results(api_root="https://else.omniapp.co/api", ledger=ledger)) == 0
    assert a["run_id"].iloc[0] != b["run_id"].iloc[0]


def test_ledger_off_keeps_results_in_memory(sb: sandbox.Sandbox,
                                            monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    """OMNI_NB_LEDGER=off writes no file; results() still reads this process's rows."""
    monkeypatch.setenv("OMNI_NB_LEDGER", "off")
    monkeypatch.chdir(tmp_path)
    table = run(sb, ["doc-0001"])
    assert open_ledger().path is None
    assert len(results(run_id=table["run_id"].iloc[0])) == 1
    assert list(tmp_path.iterdir()) == []


def test_single_create_draft_is_recorded(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """omni_nb.create_draft returns a Draft and appends its row to the ledger."""
    ledger = tmp_path / "l.sqlite3"
    draft = omni_nb.create_draft("doc-0001", base_url=sb.base_url, token=sb.token,
                                 ledger=ledger)
    rows = results(ledger=ledger)
    assert list(rows["draft_id"]) == [draft.identifier]
    assert not math.isnan(rows["elapsed_s"].iloc[0])
