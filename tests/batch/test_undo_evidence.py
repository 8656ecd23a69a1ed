"""Safe undo when the network, the rate budget and the clocks take part (issue 19, points 1
to 5): a draft is the run's only when its ``createdAt`` falls inside one of the run's
requests, read in Omni's time; a lost answer is never blindly repeated; older ledgers say
what they cannot tell. Over real sockets against the sandbox, which plays another user."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import omni_nb
from omni_nb import RetryPolicy, sandbox
from omni_nb.ledger import Ledger
from omni_nb.rows import Row
from tests.conftest import MakeSandbox

FAST = RetryPolicy(backoff=0.01, backoff_cap=0.05)


def keywords(sb: sandbox.Sandbox, tmp_path: Path, **more: Any) -> dict[str, Any]:
    """Connection keywords for the sandbox, one ledger file, no client-side limit."""
    return {"base_url": sb.base_url, "token": sb.token, "rate_limit": None, "retry": FAST,
            "ledger": str(tmp_path / "ledger.sqlite3"), **more}


def deletes(sb: sandbox.Sandbox) -> list[str | None]:
    return [r.document_id for r in sb.requests() if r.method == "DELETE"]


@pytest.mark.parametrize("lost", [0, 502], ids=["dropped", "proxy-502"])
def test_a_lost_delete_answer_is_never_resent_over_another_users_new_draft(
    sb: sandbox.Sandbox, tmp_path: Path, lost: int,
) -> None:
    """The first DELETE archives the run's draft but its answer is lost; another user makes
    a new draft before the answer would have come. The undo lists again instead of
    resending: the row is ok with the run's draft, and the other user's draft stays."""
    kw = keywords(sb, tmp_path)
    made = omni_nb.create_drafts(["doc-0001"], **kw)
    theirs: list[str] = []
    sb.replace_answer("DELETE", "doc-0001", status=lost,
                      then=lambda: theirs.append(sb.make_draft("doc-0001")))
    sb.clear_requests()
    undone = omni_nb.discard_drafts(run_id=made["run_id"].iloc[0], **kw)
    assert (undone.loc[0, "status"], undone.loc[0, "draft_id"]) == (
        "ok", made.loc[0, "draft_id"])
    assert "answer was lost" in undone.loc[0, "message"]
    assert deletes(sb) == ["doc-0001"]  # sent once
    assert sb.drafts() == {("doc-0001", None): theirs[0]}


def test_a_delete_lost_before_it_took_effect_is_sent_again(
    sb: sandbox.Sandbox, tmp_path: Path,
) -> None:
    """A DELETE dropped before Omni acted on it: the new listing shows the run's draft still
    active, so the DELETE goes again (one listing and DELETE per round) and the row is ok."""
    kw = keywords(sb, tmp_path)
    made = omni_nb.create_drafts(["doc-0001"], **kw)
    sb.replace_answer("DELETE", "doc-0001", status=0, route=False)
    sb.clear_requests()
    undone = omni_nb.discard_drafts(made, **kw)
    assert (undone.loc[0, "status"], undone.loc[0, "attempts"]) == ("ok", 2)
    assert [r.method for r in sb.requests()] == ["GET", "DELETE", "GET", "DELETE"]
    assert sb.drafts() == {}


@pytest.mark.parametrize(("answer", "headers", "after", "reason"), [
    (429, {"X-Omni-Waf-Action": "block", "Retry-After": "3"}, 0.2,
     "made while the run waited out a 429"),
    # A 503 came from the application: a draft made within the clock bound (about a second
    # from two answers) of it could be the run's, so the other user acts 1.5 s after it.
    (503, {}, 1.5, "made while the run waited to retry after a 503"),
], ids=["429-retry-after-3", "503-backoff"])
def test_a_draft_another_user_made_while_the_create_waited_is_not_the_runs(
    sb: sandbox.Sandbox, tmp_path: Path, answer: int, headers: dict[str, str], after: float,
    reason: str,
) -> None:
    """The run's POST is refused (a firewall 429 with Retry-After 3 s, or a 503 and a 3-6 s
    backoff); meanwhile another user makes the document's draft, and the retry answers with
    it. The run records it, but the undo sees it was made between the run's attempts."""
    kw = keywords(sb, tmp_path, retry=RetryPolicy(backoff=6.0, backoff_cap=6.0))
    theirs: list[str] = []
    sb.replace_answer("POST", "doc-0001", status=answer, headers=headers, route=False,
                      then=lambda: theirs.append(sb.make_draft("doc-0001")), then_after=after)
    made = omni_nb.create_drafts(["doc-0001"], **kw)
    assert (made.loc[0, "status"], made.loc[0, "attempts"]) == ("ok", 2)
    assert made.loc[0, "draft_id"] == theirs[0]  # the retry got the other user's draft
    sb.clear_requests()
    undone = omni_nb.discard_drafts(run_id=made["run_id"].iloc[0], **kw)
    assert undone.loc[0, "status"] == "skipped"
    assert undone.loc[0, "message"].startswith(f"{reason}: draft {theirs[0]}")
    assert deletes(sb) == []
    assert sb.drafts() == {("doc-0001", None): theirs[0]}


@pytest.mark.parametrize(("offset", "before"), [(5.0, 4.0), (120.0, 90.0)],
                         ids=["5s-ahead", "2min-ahead"])
def test_a_server_clock_ahead_does_not_pass_an_older_draft_for_the_runs(
    make_sandbox: MakeSandbox, tmp_path: Path, offset: float, before: float,
) -> None:
    """Omni's clock is ahead of ours; another user made the draft a little before the run
    (less than the offset). Read in Omni's time, measured from the answers' Date headers,
    it is older than the run's request: skipped, while the run's own draft is archived."""
    sb = make_sandbox(clock_offset=offset)
    kw = keywords(sb, tmp_path)
    theirs = sb.make_draft("doc-0002", created_at=time.time() + offset - before)
    made = omni_nb.create_drafts(["doc-0001", "doc-0002"], **kw)
    assert made.loc[1, "draft_id"] == theirs
    undone = omni_nb.discard_drafts(made, **kw).set_index("document_id")
    assert list(undone["status"]) == ["ok", "skipped"]
    assert undone.loc["doc-0002", "message"].startswith(f"made before the run: draft {theirs}")
    assert sb.drafts() == {("doc-0002", None): theirs}


@pytest.mark.parametrize("offset", [-5.0, -120.0], ids=["5s-behind", "2min-behind"])
def test_a_server_clock_behind_still_lets_the_run_undo_its_own_drafts(
    make_sandbox: MakeSandbox, tmp_path: Path, offset: float,
) -> None:
    """Omni's clock is behind ours: the run's drafts carry createdAt earlier than our first
    send, yet the measured offset places them inside the run's requests: archived."""
    sb = make_sandbox(clock_offset=offset)
    kw = keywords(sb, tmp_path)
    made = omni_nb.create_drafts(["doc-0001", "doc-0002"], **kw)
    undone = omni_nb.discard_drafts(run_id=made["run_id"].iloc[0], **kw)
    assert list(undone["status"]) == ["ok", "ok"]
    assert sb.drafts() == {}


def old_row(draft: str, sent_s: float, *, key: str | None, attempts: int = 1,
            elapsed_s: float = 0.1, api_root: str, run_id: str = "old") -> Row:
    """A create row as an older omni_nb wrote it: no evidence (``key`` None: before
    ``requested_at`` meant the first send)."""
    return Row("doc-0001", None, draft, "ok", 200, "", attempts, elapsed_s,
               int(sent_s * 1e6), api_root, run_id, key=key)


def test_a_row_from_before_requested_at_meant_the_first_send_is_skipped_unless_trusted(
    sb: sandbox.Sandbox, tmp_path: Path,
) -> None:
    """A row of a ledger written when requested_at was the queueing time (no key) and
    elapsed_s included the wait: today's rule took another user's later draft for the
    run's. It is skipped, naming the keyword that says otherwise; with it, archived."""
    kw = keywords(sb, tmp_path)
    theirs = sb.make_draft("doc-0001")
    ledger = Ledger(Path(kw["ledger"]))
    ledger.record([old_row(theirs, time.time() - 5, key=None, elapsed_s=6.0,
                           api_root=sb.base_url)])
    undone = omni_nb.discard_drafts(run_id="old", **kw)
    assert undone.loc[0, "status"] == "skipped"
    message = undone.loc[0, "message"]
    assert message.startswith("recorded by an older omni_nb: cannot tell whose draft")
    assert "trust_old_ledger=True" in message
    assert "--trust-old-ledger" in message
    assert sb.drafts() == {("doc-0001", None): theirs}
    trusted = omni_nb.discard_drafts(run_id="old", trust_old_ledger=True, **kw)
    assert trusted.loc[0, "status"] == "ok"
    assert sb.drafts() == {}


def test_an_older_row_with_one_attempt_carries_its_interval(
    sb: sandbox.Sandbox, tmp_path: Path,
) -> None:
    """A row of an older schema with one attempt is judged by requested_at to requested_at
    + elapsed_s; one with several attempts cannot say when each was sent: skipped."""
    kw = keywords(sb, tmp_path)
    with omni_nb.OmniClient(sb.base_url, sb.token, rate_limit=None) as client:
        sent = time.time()
        mine = client.create_draft("doc-0001").identifier
        answered = time.time()
    ledger = Ledger(Path(kw["ledger"]))
    ledger.record([old_row(mine, sent, key="k", elapsed_s=answered - sent,
                           api_root=sb.base_url, run_id="one"),
                   old_row(mine, sent, key="k", attempts=2, elapsed_s=answered - sent,
                           api_root=sb.base_url, run_id="two")])
    skipped = omni_nb.discard_drafts(run_id="two", **kw)
    assert skipped.loc[0, "status"] == "skipped"
    assert "2 attempts" in skipped.loc[0, "message"]
    undone = omni_nb.discard_drafts(run_id="one", **kw)
    assert undone.loc[0, "status"] == "ok"
    assert "allowance" in undone.loc[0, "message"]
    assert sb.drafts() == {}


@pytest.mark.parametrize("undo", ["cancelled-run", "resuming-run"])
def test_requests_in_flight_at_a_cancel_are_settled_by_their_interval(
    make_sandbox: MakeSandbox, tmp_path: Path, undo: str,
) -> None:
    """A background run cancelled while 5 requests were in flight: the server made the 5
    drafts, and each row is cancelled, says it was in flight and when it was sent. The undo
    of that run (or of the run that resumed it and got the same drafts back) archives them:
    they were made within those requests' intervals. Another user's draft stays."""
    sb = make_sandbox(latency=2.0)
    kw = keywords(sb, tmp_path, concurrency=5, progress=False)
    docs = [f"doc-{n:04d}" for n in range(1, 6)]
    theirs = sb.make_draft("doc-0006")
    run = omni_nb.create_drafts([*docs, "doc-0006"], background=True, **kw)
    deadline = time.monotonic() + 10
    while len(sb.drafts()) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)  # the sandbox makes each draft when its request arrives
    run.cancel()
    table = run.wait(15).set_index("document_id")
    assert set(table["status"]) == {"cancelled"}
    assert table.loc["doc-0001", "message"].startswith("interrupted in flight: sent ")
    assert set(table.loc[docs, "attempts"]) == {1}
    made = dict(sb.drafts())
    run_id = str(table["run_id"].iloc[0])
    if undo == "resuming-run":
        sb.configure(latency=0.0)
        again = omni_nb.create_drafts(docs, resume=True, **kw)
        assert list(again["draft_id"]) == [made[(d, None)] for d in docs]
        run_id = str(again["run_id"].iloc[0])
    undone = omni_nb.discard_drafts(run_id=run_id, **{**kw, "concurrency": 8})
    assert set(undone["status"]) == {"ok"}
    assert sorted(undone["draft_id"]) == sorted(made[(d, None)] for d in docs)
    assert sb.drafts() == {("doc-0006", None): theirs}


def test_a_table_the_ledger_never_saw_is_judged_by_its_own_single_attempt(
    sb: sandbox.Sandbox, tmp_path: Path,
) -> None:
    """A results table whose run went to another ledger: a row of one attempt is judged by
    its own requested_at and elapsed_s (with the 2 s allowance, said in the row); a row of
    several attempts cannot say when each was sent: skipped."""
    made = omni_nb.create_drafts(["doc-0001", "doc-0002"], **keywords(sb, tmp_path,
                                                                      ledger="off"))
    kw = keywords(sb, tmp_path)
    several = made.copy()
    several.loc[1, "attempts"] = 2
    undone = omni_nb.discard_drafts(several, **kw)
    assert list(undone["status"]) == ["ok", "skipped"]
    assert "judged by the table's row" in undone.loc[0, "message"]
    assert undone.loc[1, "message"].startswith("cannot tell whose draft: the ledger")
    assert list(sb.drafts()) == [("doc-0002", None)]


def test_the_cli_flag_trusts_an_older_row(
    sb: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """omni-nb discard --run-id of an older row skips it and names --trust-old-ledger;
    with the flag, the draft is archived."""
    from omni_nb.cli import main

    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    ledger = tmp_path / "ledger.sqlite3"
    theirs = sb.make_draft("doc-0001")
    Ledger(ledger).record([old_row(theirs, time.time() - 5, key=None, elapsed_s=6.0,
                                   api_root=sb.base_url)])
    argv = ["discard", "--run-id", "old", "--yes", "--rate-limit", "off", "--ledger",
            str(ledger)]
    main(argv)
    assert "--trust-old-ledger" in capsys.readouterr().out
    assert sb.drafts() == {("doc-0001", None): theirs}
    assert main([*argv, "--trust-old-ledger"]) == 0
    assert sb.drafts() == {}
