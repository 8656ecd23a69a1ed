"""The rest of a draft's life in batch form: discard_drafts (a careful undo of a run or a
results table, or ids as asked), list_drafts, and the ledger keeping both actions apart. Over
real sockets against the sandbox."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import omni_nb
from omni_nb import InvalidInputError, RetryPolicy, sandbox
from omni_nb.batch import CLOCK_SKEW_S
from omni_nb.ledger import SCHEMA_VERSION, Ledger, results
from omni_nb.rows import Row
from omni_nb.sandbox.state import Reply

FAST = RetryPolicy(backoff=0.01, backoff_cap=0.05)


@pytest.fixture
def kw(sb: sandbox.Sandbox, tmp_path: Path) -> dict[str, Any]:
    """Connection keywords for the sandbox, one ledger file, no client-side limit."""
    return {"base_url": sb.base_url, "token": sb.token, "rate_limit": None,
            "ledger": str(tmp_path / "ledger.sqlite3"), "retry": FAST}


def listing_kw(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if k not in ("ledger", "resume")}


def made_long_ago(sb: sandbox.Sandbox, *pairs: tuple[str, str | None]) -> dict[str, str]:
    """Drafts someone made an hour before the test (the sandbox stamps them then)."""
    store = sb._state.drafts
    real = store._clock
    store._clock = lambda: time.time() - 3600
    try:
        with omni_nb.OmniClient(sb.base_url, sb.token, rate_limit=None) as c:
            return {doc: c.create_draft(doc, branch).identifier for doc, branch in pairs}
    finally:
        store._clock = real


def methods(sb: sandbox.Sandbox) -> list[tuple[str, str | None]]:
    return [(r.method, r.document_id) for r in sb.requests()]


def deletes(sb: sandbox.Sandbox) -> list[str | None]:
    return sorted(r.document_id for r in sb.requests() if r.method == "DELETE")


def archived(sb: sandbox.Sandbox) -> set[str]:
    return {d.identifier for d in sb.archived_drafts()}


def test_undoing_a_run_skips_drafts_that_existed_before_and_archives_the_rest(
    sb: sandbox.Sandbox, kw: dict[str, Any],
) -> None:
    """A run over documents, one of which already had a draft (the run got it back): undoing
    the run by run_id archives only the run's own drafts; the older one stays active."""
    before = made_long_ago(sb, ("doc-0002", None))
    made = omni_nb.create_drafts(["doc-0001", "doc-0002", "doc-0003"], **kw)
    assert made.loc[1, "draft_id"] == before["doc-0002"]  # Omni answers with the existing one
    sb.clear_requests()
    undone = omni_nb.discard_drafts(run_id=made["run_id"].iloc[0], **kw)
    # A run's rows come back in the order the ledger received them.
    undone = undone.sort_values("document_id", ignore_index=True)
    assert list(undone["status"]) == ["ok", "skipped", "ok"]
    assert list(undone["action"]) == ["discard"] * 3
    assert undone.loc[1, "message"].startswith("made before the run: draft "
                                               + before["doc-0002"])
    assert list(undone["draft_id"]) == [made.loc[0, "draft_id"], pd.NA, made.loc[2, "draft_id"]]
    assert deletes(sb) == ["doc-0001", "doc-0003"]
    assert archived(sb) == {made.loc[0, "draft_id"], made.loc[2, "draft_id"]}
    assert sb.drafts() == {("doc-0002", None): before["doc-0002"]}
    assert undone.summary() == "3 rows: 2 ok, 1 skipped"


def test_a_draft_replaced_since_the_run_is_skipped(sb: sandbox.Sandbox, kw: dict[str, Any]) -> None:
    """Someone discarded the run's draft and made a new one: the undo leaves the new one."""
    made = omni_nb.create_drafts(["doc-0001"], **kw)
    with omni_nb.OmniClient(sb.base_url, sb.token, rate_limit=None) as c:
        c.discard_draft("doc-0001")
        newer = c.create_draft("doc-0001").identifier
    sb.clear_requests()
    undone = omni_nb.discard_drafts(made, **kw)
    assert list(undone["status"]) == ["skipped"]
    assert undone.loc[0, "message"].startswith(f"replaced since: the active draft is {newer}")
    assert deletes(sb) == []
    assert sb.drafts() == {("doc-0001", None): newer}


def test_discarding_twice_gives_not_found_and_never_archives_anything_else(
    sb: sandbox.Sandbox, kw: dict[str, Any],
) -> None:
    """The second undo (by run_id or by table) finds no active draft: not_found rows, no
    DELETE, and a draft made meanwhile on a branch stays active."""
    made = omni_nb.create_drafts(["doc-0001", "doc-0002"], **kw)
    first = omni_nb.discard_drafts(made, **kw)
    assert list(first["status"]) == ["ok", "ok"]
    branch = sb.branches[0].id
    with omni_nb.OmniClient(sb.base_url, sb.token, rate_limit=None) as c:
        other = c.create_draft("doc-0001", branch).identifier
    sb.clear_requests()
    for again in (omni_nb.discard_drafts(made, **kw),
                  omni_nb.discard_drafts(run_id=made["run_id"].iloc[0], **kw)):
        assert list(again["status"]) == ["not_found", "not_found"]
        # A run's rows come back in the order they were answered: find each by document.
        made_id = made.set_index("document_id").loc["doc-0001", "draft_id"]
        assert again.set_index("document_id").loc["doc-0001", "message"] == (
            f"no active draft: draft {made_id} is already archived")
    assert deletes(sb) == []
    assert sb.drafts() == {("doc-0001", branch): other}


def test_discarding_ids_twice_keeps_the_servers_words(sb: sandbox.Sandbox,
                                                      kw: dict[str, Any]) -> None:
    """Ids are discarded as asked: the DELETE is sent, and with no active draft its 404 is a
    not_found row with the server's words."""
    with omni_nb.OmniClient(sb.base_url, sb.token, rate_limit=None) as c:
        made = c.create_draft("doc-0001").identifier
    first = omni_nb.discard_drafts(["doc-0001"], **kw)
    assert (first.loc[0, "status"], first.loc[0, "draft_id"]) == ("ok", made)
    again = omni_nb.discard_drafts(["doc-0001"], **kw)
    assert (again.loc[0, "status"], again.loc[0, "http_status"]) == ("not_found", 404)
    assert again.loc[0, "message"] == "Draft with id doc-0001 does not exist"
    assert pd.isna(again.loc[0, "draft_id"])


def test_a_results_table_sends_nothing_for_its_failed_rows(
    sb: sandbox.Sandbox, kw: dict[str, Any],
) -> None:
    """Only the ok rows of a table are undone; a filtered table works the same."""
    made = omni_nb.create_drafts(["doc-0001", "doc-0010", "nope", "../x", "doc-0003"], **kw)
    assert list(made["status"]) == ["ok", "not_eligible", "not_found", "invalid", "ok"]
    sb.clear_requests()
    undone = made.omni.discard_drafts(**kw)
    assert list(undone["document_id"]) == ["doc-0001", "doc-0003"]
    assert list(undone["status"]) == ["ok", "ok"]
    assert {doc for _, doc in methods(sb)} == {"doc-0001", "doc-0003"}
    assert sorted(m for m, _ in methods(sb)) == ["DELETE", "DELETE", "GET", "GET"]
    sb.clear_requests()
    failed = made[made["status"] != "ok"]
    assert len(omni_nb.discard_drafts(failed, **kw)) == 0
    assert sb.requests() == []


def test_branch_bodies_are_sent(sb: sandbox.Sandbox, kw: dict[str, Any]) -> None:
    """Pairs (and a table's branch column) discard the branch's draft with {"branchId"};
    the document's other drafts stay."""
    a, b = sb.branches[0].id, sb.branches[1].id
    made = omni_nb.create_drafts([("doc-0001", a), ("doc-0002", b), "doc-0001"], **kw)
    sb.clear_requests()
    undone = omni_nb.discard_drafts(made.iloc[:2], **kw)
    bodies = [json.loads(r.body) for r in sb.requests() if r.method == "DELETE"]
    assert sorted(x["branchId"] for x in bodies) == sorted([a, b])
    assert list(undone["branch_id"]) == [a, b]
    assert list(sb.drafts()) == [("doc-0001", None)]
    sb.clear_requests()
    plain = omni_nb.discard_drafts([("doc-0001", a.upper())], **kw)
    assert plain.loc[0, "status"] == "not_found"
    assert [json.loads(r.body) for r in sb.requests() if r.method == "DELETE"] == [
        {"branchId": a}]
    assert list(sb.drafts()) == [("doc-0001", None)]


def test_a_dropped_delete_is_retried_and_ends_ok(
    make_sandbox: Any, tmp_path: Path,
) -> None:
    """The sandbox drops writes at random (seeded): every discard still ends ok."""
    sb = make_sandbox()
    kw = {"base_url": sb.base_url, "token": sb.token, "rate_limit": None, "retry": FAST,
          "ledger": str(tmp_path / "l.sqlite3")}
    docs = [f"doc-{n:04d}" for n in range(1, 10)]
    made = omni_nb.create_drafts(docs, **kw)
    assert set(made["status"]) == {"ok"}
    sb.configure(drop_rate=0.4, seed=3)
    undone = omni_nb.discard_drafts(run_id=made["run_id"].iloc[0], **kw)
    dropped = [r for r in sb.requests() if r.method == "DELETE" and r.status == 0]
    assert dropped, "the seed should drop at least one DELETE"
    assert set(undone["status"]) == {"ok"}
    assert undone["attempts"].max() > 1
    assert archived(sb) == set(made["draft_id"])


def test_a_delete_whose_answer_was_lost_is_listed_again_not_resent(
    sb: sandbox.Sandbox, kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server archived the draft but the connection dropped before the answer: the
    DELETE is not sent again; a new listing shows the draft archived, so the row is ok."""
    made = omni_nb.create_drafts(["doc-0001"], **kw)
    state = sb._state
    real = state._discard
    dropped: list[str] = []

    def archive_then_drop(caller: Any, document_id: str, body: bytes) -> Reply:
        reply = real(caller, document_id, body)
        if not dropped:
            dropped.append(document_id)
            return Reply(0, drop=True)
        return reply

    monkeypatch.setattr(state, "_discard", archive_then_drop)
    undone = omni_nb.discard_drafts(made, **kw)
    assert dropped == ["doc-0001"]
    row = undone.iloc[0]
    assert (row["status"], row["draft_id"], row["attempts"]) == (
        "ok", made.loc[0, "draft_id"], 1)
    assert "answer was lost" in row["message"]
    assert "archived it" in row["message"]
    assert [m for m, _ in methods(sb)].count("DELETE") == 1
    assert undone.errors == [None]


def test_a_dry_run_lists_but_sends_no_delete(sb: sandbox.Sandbox, kw: dict[str, Any]) -> None:
    """dry_run=True shows per input what would happen; only GETs reach the server."""
    before = made_long_ago(sb, ("doc-0002", None))
    made = omni_nb.create_drafts(["doc-0001", "doc-0002"], **kw)
    sb.clear_requests()
    frame = omni_nb.discard_drafts(made, dry_run=True, **kw)
    assert {m for m, _ in methods(sb)} == {"GET"}
    assert list(frame["message"]) == [
        f"would discard draft {made.loc[0, 'draft_id']}",
        frame["message"].iloc[1]]
    assert frame["message"].iloc[1].startswith(
        f"would skip: made before the run: draft {before['doc-0002']}")
    assert frame.loc[0, "request"].startswith("DELETE ")
    assert frame.loc[1, "request"] == ""
    assert "1 request would be sent" in frame.attrs["summary"]
    assert len(sb.drafts()) == 2
    assert len(results(ledger=kw["ledger"])) == 2  # the dry run recorded nothing


def test_bad_input_is_refused_clearly(sb: sandbox.Sandbox, kw: dict[str, Any]) -> None:
    """Invalid ids are invalid rows naming their position (never sent); an unknown run, a
    discard run, neither or both of items and run_id, a branch for a run: one clear error."""
    sb.clear_requests()
    t = omni_nb.discard_drafts(["../x", "doc-0001", None], **kw)
    assert list(t["status"]) == ["invalid", "not_found", "invalid"]
    assert t.loc[0, "message"].startswith("item 1: ")
    assert t.loc[2, "message"].startswith("item 3: ")
    assert {doc for _, doc in methods(sb)} == {"doc-0001"}
    with pytest.raises(InvalidInputError, match="has no run with that id"):
        omni_nb.discard_drafts(run_id="nope", **kw)
    with pytest.raises(InvalidInputError, match="needs items"):
        omni_nb.discard_drafts(**kw)
    with pytest.raises(InvalidInputError, match="not both"):
        omni_nb.discard_drafts(["doc-1"], run_id="x", **kw)
    with pytest.raises(InvalidInputError, match="nothing to undo"):
        omni_nb.discard_drafts(run_id=t["run_id"].iloc[0], **kw)
    made = omni_nb.create_drafts(["doc-0001"], **kw)
    with pytest.raises(InvalidInputError, match="branch_id= applies"):
        omni_nb.discard_drafts(made, branch_id=sb.branches[0].id, **kw)
    with pytest.raises(InvalidInputError, match="was sent to"):
        omni_nb.discard_drafts(made, **{**kw, "base_url": "http://127.0.0.1:1/api"})


def test_the_ledger_keeps_both_actions_apart(sb: sandbox.Sandbox, kw: dict[str, Any]) -> None:
    """results(run_id=) of a discard run lists what it discarded; resume looks at a pair's
    latest ok row across both actions, and its copies are recorded under the new run."""
    made = omni_nb.create_drafts(["doc-0001", "doc-0002"], **kw)
    again = omni_nb.create_drafts(["doc-0001", "doc-0002"], resume=True, **kw)
    assert list(again["from_ledger"]) == [True, True]
    again_run = again["run_id"].iloc[0]
    logged = results(run_id=again_run, ledger=kw["ledger"])
    assert list(logged["from_ledger"]) == [True, True]
    assert list(logged["draft_id"]) == list(made["draft_id"])
    undone = omni_nb.discard_drafts(run_id=again_run, **kw)  # the copies undo the same drafts
    assert list(undone["status"]) == ["ok", "ok"]
    assert archived(sb) == set(made["draft_id"])
    gone = results(run_id=undone["run_id"].iloc[0], ledger=kw["ledger"])
    assert list(gone["action"]) == ["discard", "discard"]
    assert list(gone["status"]) == ["ok", "ok"]
    assert set(gone["draft_id"]) == set(made["draft_id"])
    assert str(gone["action"].dtype) == "category"
    everything = results(ledger=kw["ledger"])
    counts = everything["action"].value_counts()
    assert counts[counts > 0].to_dict() == {"create": 4, "discard": 2}
    sb.clear_requests()
    resumed = omni_nb.discard_drafts(["doc-0001", "doc-0002"], resume=True, **kw)
    assert list(resumed["from_ledger"]) == [True, True]
    assert sb.requests() == []
    recreated = omni_nb.create_drafts(["doc-0001"], resume=True, **kw)  # latest ok: a discard
    assert list(recreated["from_ledger"]) == [False]
    assert recreated.loc[0, "draft_id"] not in set(made["draft_id"])


def test_a_table_finds_its_evidence_in_the_ledger_by_draft(
    sb: sandbox.Sandbox, kw: dict[str, Any],
) -> None:
    """A hand-made frame of document_id/status/draft_id: the ledger holds the requests that
    got the draft; a draft the ledger never saw is skipped (cannot tell whose)."""
    made = omni_nb.create_drafts(["doc-0001"], **kw)
    other = made_long_ago(sb, ("doc-0002", None))
    frame = pd.DataFrame({"document_id": ["doc-0001", "doc-0002"], "status": ["ok", "ok"],
                          "draft_id": [made.loc[0, "draft_id"], other["doc-0002"]]})
    undone = frame.omni.discard_drafts(**kw)
    assert list(undone["status"]) == ["ok", "skipped"]
    assert undone.loc[1, "message"].startswith("cannot tell whose draft: the ledger")


def test_list_drafts_one_row_per_draft(sb: sandbox.Sandbox, kw: dict[str, Any]) -> None:
    """Columns and dtypes; archived drafts with include_archived; a failed listing or an
    invalid id is one row with its outcome; progress once per document."""
    branch = sb.branches[0]
    made = omni_nb.create_drafts(["doc-0001", ("doc-0001", branch.id), "doc-0002"], **kw)
    omni_nb.discard_drafts(["doc-0002"], **kw)
    seen: list[int] = []
    drafts = omni_nb.list_drafts(["doc-0001", "doc-0002", "nope", "../x", "doc-0001"],
                                 progress=lambda done, total, row: seen.append(done),
                                 **listing_kw(kw))
    assert seen == [1, 2, 3, 4]
    assert list(drafts.columns) == [
        "document_id", "draft_id", "branch_id", "branch_name", "draft_status", "out_of_date",
        "created_at", "updated_at", "created_by", "last_edited_by", "status", "message"]
    assert str(drafts["created_at"].dtype) == "datetime64[us, UTC]"
    assert str(drafts["status"].dtype) == "category"
    assert list(drafts["document_id"]) == ["doc-0001", "doc-0001", "nope", "../x"]
    assert list(drafts["status"]) == ["ok", "ok", "not_found", "invalid"]
    assert set(drafts["draft_id"].iloc[:2]) == set(made["draft_id"].iloc[:2])
    assert branch.name in set(drafts["branch_name"].dropna())
    assert drafts.loc[2, "message"] == "Document with identifier nope not found"
    everything = made.omni.list_drafts(include_archived=True, **listing_kw(kw))
    assert sorted(everything["draft_status"].astype(str)) == ["active", "active", "archived"]
    assert (everything["created_by"] == sb.editor_name).all()


def test_an_old_ledger_gains_action_and_from_ledger(tmp_path: Path) -> None:
    """A version-1 ledger (queued_s, key) gains action 'create' and from_ledger 0 in place."""
    path = tmp_path / "v1.sqlite3"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE old AS SELECT * FROM calls")  # keep a v1-shaped copy
    conn.execute("DROP TABLE calls")
    conn.execute(
        "CREATE TABLE calls (id INTEGER PRIMARY KEY, document_id TEXT NOT NULL, branch_id "
        "TEXT, draft_id TEXT, status TEXT NOT NULL, http_status INTEGER, message TEXT NOT "
        "NULL DEFAULT '', attempts INTEGER NOT NULL, elapsed_s REAL NOT NULL, requested_at_us "
        "INTEGER NOT NULL, api_root TEXT NOT NULL, run_id TEXT NOT NULL, queued_s REAL NOT "
        "NULL DEFAULT 0, key TEXT)")
    conn.execute("INSERT INTO calls (document_id, draft_id, status, attempts, elapsed_s, "
                 "requested_at_us, api_root, run_id) VALUES ('doc-1', 'd1', 'ok', 1, 0.1, 1, "
                 "'https://a/api', 'old')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    ledger = Ledger(path)
    ledger.record([Row("doc-1", None, None, "ok", 200, "", 1, 0.1, 2, "https://a/api", "new",
                       action="discard")])
    table = ledger.results()
    assert list(table["action"]) == ["create", "discard"]
    assert list(table["from_ledger"]) == [False, False]
    assert ledger.ok_rows("https://a/api", [("doc-1", None)])[("doc-1", None)].action == (
        "discard")
    ledger.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    conn.close()


def test_the_clock_skew_allowance_is_documented() -> None:
    """The allowance is a few seconds, not minutes: a draft made well before a run is never
    taken for the run's."""
    assert 0 < CLOCK_SKEW_S <= 5
