"""create_drafts / acreate_drafts against the sandbox: rows, errors, progress, the ledger
from a batch's side, resume, interrupts. (The table's dtypes and summary are pinned in
test_table.py, the ledger's own behaviour in test_ledger.py, planning in test_plan.py, and a
SIGKILL mid-batch in reliability/test_crash.py.)"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

import omni_nb
from omni_nb import ConfigError, InvalidInputError, sandbox
from omni_nb.batch import BatchInterrupted, acreate_drafts, create_drafts
from omni_nb.batch.run import UNREACHABLE_STOP, _Batch
from omni_nb.client import HostUnreachableError
from omni_nb.ledger import results
from omni_nb.table import DraftResults

from ..conftest import MakeSandbox


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


def test_kept_errors_let_go_of_what_their_frames_held(make_sandbox: MakeSandbox) -> None:
    """An answer's error keeps its status, message and body but no traceback; a connection
    failure keeps its traceback with the frames' locals cleared: a table of many failed
    rows does not keep every attempt's request, response and pool waiters alive."""
    sb = make_sandbox()
    table = run(sb, ["doc-0010", "doc-0020"])
    for error in table.errors:
        assert isinstance(error, omni_nb.NotEligibleError)
        assert error.__traceback__ is None
        assert error.body["message"] == "Document is not eligible for publishing workflow"
    flaky = make_sandbox(drop_rate=1.0)
    retry = omni_nb.RetryPolicy(max_retries=0)
    dropped = run(flaky, ["doc-0001"], retry=retry)
    (error,) = dropped.errors
    assert isinstance(error, omni_nb.APIConnectionError)
    tb = error.__traceback__
    assert tb is not None
    while tb is not None:
        assert not tb.tb_frame.f_locals, tb.tb_frame.f_code.co_name
        tb = tb.tb_next


def test_the_errors_a_table_keeps_weigh_little(make_sandbox: MakeSandbox) -> None:
    """What a finished batch's errors keep alive stays small (each one's status, message and
    parsed body, about 1 KB): 2 KB an error at most, where keeping each error's traceback
    frames kept about 10 KB. Measured with tracemalloc: what letting the errors go frees."""
    sb = make_sandbox(documents=2000)
    docs = [f"doc-{i:04d}" for i in range(10, 2001, 10)]  # every 10th is not eligible
    tracemalloc.start()
    try:
        table = run(sb, docs, ledger="off", concurrency=8)
        assert isinstance(table, DraftResults)
        assert set(table["status"]) == {"not_eligible"}
        gc.collect()
        with_errors = tracemalloc.get_traced_memory()[0]
        table.errors = [None] * len(table)
        gc.collect()
        kept = with_errors - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert 0 < kept / len(docs) < 2048, f"{kept / len(docs):.0f} bytes an error"


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


def test_resume_is_per_api_root(sb: sandbox.Sandbox, make_sandbox: MakeSandbox,
                                tmp_path: Path) -> None:
    """An ok row for another API root does not count."""
    ledger = tmp_path / "l.sqlite3"
    run(sb, ["doc-0001"], ledger=ledger)
    other = make_sandbox()
    again = run(other, ["doc-0001"], ledger=ledger, resume=True)
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


def test_keyboard_interrupt_keeps_results_and_cancels_the_rest(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    """Ctrl-C keeps answered rows, cancels the rest, and sends nothing more after it."""
    ledger = tmp_path / "l.sqlite3"
    docs = [f"doc-{i:04d}" for i in range(1, 201)]
    concurrency = 4

    def interrupt_at_ten(done: int, total: int, row: object) -> None:
        if done == 10:
            os.kill(os.getpid(), signal.SIGINT)  # delivered to the waiting main thread

    sb = make_sandbox(latency=0.02)
    with pytest.raises(BatchInterrupted) as info:
        run(sb, docs, concurrency=concurrency, ledger=ledger, progress=interrupt_at_ten)
    assert sb.wait_idle(10.0)  # requests in flight at the interrupt are answered and logged
    sent = len(sb.requests())
    table = info.value.result
    assert len(table) == 200
    counts = table["status"].value_counts()
    answered = counts["ok"] + counts["not_eligible"]
    assert answered >= 10
    assert answered + counts["cancelled"] == 200
    # Every request the server saw has its row, or was in flight when sending stopped.
    assert answered <= sent <= answered + concurrency
    assert len(results(run_id=table["run_id"].iloc[0], ledger=ledger)) == 200


def test_single_create_draft_is_recorded(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """omni_nb.create_draft returns a Draft and appends its row to the ledger."""
    ledger = tmp_path / "l.sqlite3"
    draft = omni_nb.create_draft("doc-0001", base_url=sb.base_url, token=sb.token,
                                 ledger=ledger)
    rows = results(ledger=ledger)
    assert list(rows["draft_id"]) == [draft.identifier]
    assert not math.isnan(rows["elapsed_s"].iloc[0])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_host_stops_the_batch() -> None:
    """24 documents to a port nothing listens on: the first answers (at least three) never
    connect, the batch stops and the rest are 'cancelled' naming the host, in seconds."""
    docs = [f"doc-{i:04d}" for i in range(1, 25)]
    started = time.perf_counter()
    table = create_drafts(docs, base_url=f"http://127.0.0.1:{_closed_port()}/api",
                          token="tok", rate_limit=None, timeout=5)
    took = time.perf_counter() - started
    counts = table["status"].value_counts()
    # The first answers, those in flight (8 workers), and what two early workers took next.
    assert UNREACHABLE_STOP <= counts["network_error"] <= 8 + UNREACHABLE_STOP - 1
    assert counts["network_error"] + counts["cancelled"] == 24
    cancelled = table[table["status"] == "cancelled"]
    assert cancelled["message"].str.startswith("not sent: host unreachable (").all()
    assert "ConnectError talking to http://127.0.0.1:" in cancelled["message"].iloc[0]
    assert took < 0.75 + 6.0, took  # one call's short schedule, plus start-up


def test_dropped_connections_do_not_stop_the_batch(make_sandbox: MakeSandbox) -> None:
    """A connection dropped after connecting is not a dead host: every item gets its row."""
    flaky = make_sandbox(drop_rate=1.0)
    retry = omni_nb.RetryPolicy(max_retries=1, backoff=0.01, backoff_cap=0.01)
    table = create_drafts([f"doc-{i:04d}" for i in range(1, 9)], base_url=flaky.base_url,
                          token=flaky.token, rate_limit=None, retry=retry, concurrency=2)
    assert set(table["status"]) == {"network_error"}


def test_reachability_counts_only_before_the_first_answer() -> None:
    """The stop rule itself: three connect failures with no answer stop; after one answer
    (any HTTP status) they never do."""
    dead = HostUnreachableError("ConnectError talking to https://x: refused")
    batch = _Batch.__new__(_Batch)
    batch.answered, batch.unreachable, batch.stop_reason = False, 0, None
    for _ in range(UNREACHABLE_STOP - 1):
        batch.check_reachable(dead, None)
    assert batch.stop_reason is None
    batch.check_reachable(dead, None)
    assert batch.stop_reason == f"not sent: host unreachable ({dead})"
    batch.answered, batch.unreachable, batch.stop_reason = False, 0, None
    batch.check_reachable(omni_nb.NotFoundError(404, "x"), 404)
    for _ in range(10):
        batch.check_reachable(dead, None)
    assert batch.stop_reason is None
