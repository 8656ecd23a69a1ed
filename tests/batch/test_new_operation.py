"""A new operation is one Operation subclass plus its call: defined here, outside omni_nb, it
runs through the planner, the engine, the ledger, the table, resume, dry runs, background
runs and the progress display without any change to the package."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote

import pytest

import omni_nb
from omni_nb import sandbox
from omni_nb.batch import Operation, operations
from omni_nb.client import Call
from omni_nb.progress import TextProgress
from omni_nb.rows import Row, known_actions


class GetDocument(Operation):
    """``GET /v1/documents/{id}``: read a document (Omni's "Get document")."""

    action = "get_document"

    def call(self, document_id: str, branch_id: str | None) -> Call:
        return Call("GET", f"/v1/documents/{quote(document_id, safe='')}", action=self.action)


GET_DOCUMENT = omni_nb.register_operation(GetDocument())


@pytest.fixture
def sb() -> sandbox.Sandbox:
    with sandbox.serve() as server:
        yield server


def test_a_registered_operation_is_part_of_the_vocabulary() -> None:
    """Registering adds the action to the vocabulary and the registry, once; another class
    cannot take the same word."""
    assert "get_document" in known_actions()
    assert operations()["get_document"] is GetDocument
    assert omni_nb.register_operation(GetDocument()).action == "get_document"  # idempotent

    class Impostor(GetDocument):
        pass

    with pytest.raises(ValueError, match="registered already"):
        omni_nb.register_operation(Impostor())


def test_it_runs_through_the_batch_the_ledger_and_the_table(
    sb: sandbox.Sandbox, tmp_path: Path
) -> None:
    """Every input becomes one row with the operation's action, in the table and in the
    ledger, and the progress display counts them."""
    ledger = tmp_path / "ledger.sqlite3"
    out = io.StringIO()
    seen: list[Row] = []
    bar = TextProgress(4, stream=out)

    def progress(done: int, total: int, row: Row) -> None:
        seen.append(row)
        bar(done, total, row)

    table = omni_nb.run_operation(
        GET_DOCUMENT, ["doc-0001", "nope", "../x", "doc-0001"], base_url=sb.base_url,
        token=sb.token, ledger=ledger, progress=progress)
    assert table["document_id"].tolist() == ["doc-0001", "nope", "../x"]
    assert table["status"].tolist() == ["ok", "not_found", "invalid"]
    assert table["action"].tolist() == ["get_document"] * 3  # itself, never NaN
    assert [r.action for r in seen] == ["get_document"] * 3
    assert "3/3" in out.getvalue()
    assert sorted((r.method, r.path) for r in sb.requests()) == [  # sent concurrently
        ("GET", "/api/v1/documents/doc-0001"), ("GET", "/api/v1/documents/nope")]
    stored = omni_nb.results(ledger=ledger)
    assert stored["action"].tolist() == ["get_document"] * 3
    assert stored["run_id"].nunique() == 1


def test_resume_copies_what_this_operation_did_and_nothing_else(
    sb: sandbox.Sandbox, tmp_path: Path
) -> None:
    """resume=True copies the pairs whose latest ok row is this operation's; a create of the
    same document is not taken for it."""
    kw = {"base_url": sb.base_url, "token": sb.token, "ledger": tmp_path / "l.sqlite3"}
    omni_nb.create_drafts(["doc-0002"], **kw)
    omni_nb.run_operation(GET_DOCUMENT, ["doc-0001"], **kw)
    sb.clear_requests()
    again = omni_nb.run_operation(GET_DOCUMENT, ["doc-0001", "doc-0002"], resume=True, **kw)
    assert again["from_ledger"].tolist() == [True, False]
    assert again["action"].tolist() == ["get_document", "get_document"]
    assert [r.path for r in sb.requests()] == ["/api/v1/documents/doc-0002"]


def test_a_dry_run_shows_its_request_and_sends_nothing(sb: sandbox.Sandbox) -> None:
    """dry_run=True describes each GET; the server receives nothing."""
    plan = omni_nb.run_operation(GET_DOCUMENT, ["doc-0001", "../x"], dry_run=True,
                                 base_url=sb.base_url, token=sb.token)
    assert plan["request"].tolist() == [f"GET {sb.base_url}/v1/documents/doc-0001", ""]
    assert plan["valid"].tolist() == [True, False]
    assert sb.requests() == []


def test_it_runs_in_the_background_and_async(sb: sandbox.Sandbox) -> None:
    """background=True gives a handle whose table carries the action; the async twin too."""
    import asyncio

    kw = {"base_url": sb.base_url, "token": sb.token, "ledger": "off"}
    run = omni_nb.run_operation(GET_DOCUMENT, ["doc-0003"], background=True, **kw)
    table = run.wait(timeout=60)
    assert table is not None
    assert table["action"].tolist() == ["get_document"]
    done = asyncio.run(omni_nb.arun_operation(GET_DOCUMENT, ["doc-0004"], **kw))
    assert done[["status", "action"]].values.tolist() == [["ok", "get_document"]]
