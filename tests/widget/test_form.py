"""DraftForm headless: fill the widgets, click the buttons, check what a user would see.

Every test talks to the real loopback sandbox; handlers run as a click would run them, and
the batch runs on the form's background worker (``form.wait()`` waits for it).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets
import pytest

import omni_nb
from omni_nb import sandbox
from omni_nb.config import resolve_settings
from omni_nb.ledger import Ledger
from omni_nb.widget import OTHER_BRANCH, DraftForm


def line_text(value: str) -> str:
    """The progress line as a reader sees it (the status counts are coloured spans)."""
    return re.sub(r"<[^>]+>", "", value)

WAIT = 20.0  # seconds; a generous bound that only a hung test reaches


def make(forms: list[DraftForm], *args: Any, **kwargs: Any) -> DraftForm:
    form = DraftForm(*args, **kwargs)
    forms.append(form)
    assert form.wait(WAIT)
    return form


def synced_state(form: DraftForm) -> str:
    """Everything the browser (and a saved notebook's widget state) can hold, as JSON: the
    state of every open widget in the process, the form's among them."""
    state = ipywidgets.Widget.get_manager_state(drop_defaults=False)
    assert form.widget.model_id in state["state"]
    return json.dumps(state, default=str)


def posts(sb: sandbox.Sandbox) -> list[sandbox.RequestRecord]:
    return [r for r in sb.requests() if r.method == "POST"]


def test_create_fills_table_progress_counts_and_ledger(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Clicking Create runs the batch: table, summary, progress and counts, ledger rows."""
    form = make(forms, sb.base_url, sb.token)
    assert "Connected" in form.message.value
    assert form.error is None
    branch = sb.branches[1].id
    form.branch.value = branch
    form.documents.value = "doc-0001\n\ndoc-0002\ndoc-0010\nnope\ndoc-0001\n"
    form.create.click()
    assert form.wait(WAIT)

    table = form.result
    assert table is not None
    assert list(table["document_id"]) == ["doc-0001", "doc-0002", "doc-0010", "nope"]
    assert list(table["status"]) == ["ok", "ok", "not_eligible", "not_found"]
    assert set(table["branch_id"]) == {branch}
    assert (form.progress.value, form.progress.max) == (4, 4)
    assert line_text(form.counts.value).startswith("4/4")
    assert "ok 2, not_eligible 1, not_found 1" in line_text(form.counts.value)
    (shown,) = form.output.outputs
    assert "4 rows: 2 ok, 1 not_eligible, 1 not_found" in shown["data"]["text/plain"]
    assert 'class="omni-nb-results"' in shown["data"]["text/html"]  # the compact view
    assert "<b>4 rows</b>" in shown["data"]["text/html"]
    assert "doc-0002" in shown["data"]["text/html"]
    assert "4 rows: 2 ok, 1 not_eligible, 1 not_found" in form.message.value
    assert sb.drafts()[("doc-0001", branch)] == table.loc[0, "draft_id"]
    ledger = omni_nb.results(run_id=str(table.loc[0, "run_id"]))
    assert sorted(ledger["document_id"]) == ["doc-0001", "doc-0002", "doc-0010", "nope"]


def test_submit_wait_returns_the_table_like_the_button(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """form.submit(wait=True) runs the same batch and returns form.result."""
    form = make(forms, sb.base_url, sb.token, ledger="off")
    form.documents.value = "doc-0003"
    table = form.submit(wait=True)
    assert table is form.result
    assert table is not None
    assert list(table["status"]) == ["ok"]
    assert table["branch_id"].isna().all()


def test_create_is_disabled_while_the_batch_runs(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Create is disabled and Cancel enabled from the click until the batch ends."""
    form = make(forms, sb.base_url, sb.token, ledger="off")
    assert not form.create.disabled
    assert form.cancel.disabled
    sb.configure(latency=0.1)
    form.documents.value = "doc-0001\ndoc-0002"
    form.create.click()
    assert form.create.disabled
    assert not form.cancel.disabled
    assert form.busy
    form.submit()  # a second click while running starts nothing
    assert form.error is not None
    assert "already running" in form.error
    assert form.wait(WAIT)
    assert not form.create.disabled
    assert form.cancel.disabled
    assert not form.busy
    assert form.result is not None
    assert list(form.result["status"]) == ["ok", "ok"]
    assert len(posts(sb)) == 2


def cancel_midway(sb: sandbox.Sandbox, form: DraftForm, lines: list[str]) -> None:
    """Start a slow batch of ``lines`` and click Cancel once the first result is in."""
    sb.configure(latency=0.2)
    form.concurrency.value = 2
    form.documents.value = "\n".join(lines)
    first = threading.Event()
    form.progress.observe(lambda change: first.set() if change["new"] >= 1 else None, "value")
    form.create.click()
    assert first.wait(WAIT)
    form.cancel.click()
    assert form.wait(WAIT)


def test_cancel_mid_batch_keeps_results_and_cancels_the_rest(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Cancel stops a running batch: received rows stay, the others are 'cancelled'; it is
    no error (form.error None), the status line says what it left."""
    form = make(forms, sb.base_url, sb.token, ledger="off")
    ids = [f"doc-{i:04d}" for i in range(1, 31) if i % 10]
    cancel_midway(sb, form, ids)

    table = form.result
    assert table is not None
    assert len(table) == len(ids)
    counts = table["status"].value_counts()
    assert counts["ok"] >= 1
    assert counts["cancelled"] >= 1
    assert counts["ok"] + counts["cancelled"] == len(ids)
    assert len(posts(sb)) < len(ids)
    assert form.error is None
    summary = f"Cancelled: {len(ids)} rows: {counts['ok']} ok, {counts['cancelled']} cancelled"
    assert summary in form.message.value
    assert "⚠" not in form.message.value
    assert form.progress.bar_style == "danger"
    assert f"cancelled {counts['cancelled']}" in line_text(form.counts.value)
    assert not form.create.disabled
    assert form.cancel.disabled


def test_cancel_with_a_real_problem_still_sets_the_error(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """A cancelled batch that also had a real problem (an invalid id) reports it as the
    error, after the summary."""
    form = make(forms, sb.base_url, sb.token, ledger="off")
    cancel_midway(sb, form, ["a?b", *(f"doc-{i:04d}" for i in range(1, 20) if i % 10)])
    assert form.error is not None
    assert form.error.startswith("Cancelled: 19 rows: 1 invalid, ")
    assert "Invalid ids were not sent (1)" in form.error


def test_token_field_is_emptied_and_never_in_widget_state(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """A typed token is read, the field emptied, and no widget state ever holds it."""
    form = make(forms, sb.base_url)
    assert form.error is None
    assert "Paste the API token" in form.message.value
    form.token.value = sb.token
    assert form.token.value == ""
    assert form.wait(WAIT)
    assert "Connected" in form.message.value
    assert form.token.trait_metadata("value", "echo_update") is False
    form.documents.value = "doc-0001\ndoc-0002"
    form.submit(wait=True)
    assert form.result is not None
    assert list(form.result["status"]) == ["ok", "ok"]
    state = synced_state(form)
    assert "doc-0002" in state  # the state reaches the output area
    assert sb.token not in state
    assert sb.token not in repr(form)
    assert sb.token not in str(vars(form))


def test_token_argument_is_not_in_widget_state(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """A token passed to the constructor stays out of every widget's synced state."""
    form = make(forms, sb.base_url, sb.token, ledger="off")
    form.documents.value = "doc-0001"
    form.submit(wait=True)
    assert form.token.value == ""
    assert sb.token not in synced_state(form)


def test_bad_token_is_one_line_and_sends_no_draft(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """An unknown token (403 Invalid bearer token) shows one readable line; nothing is sent."""
    bad = "omni_osk_" + secrets.token_hex(16)
    form = make(forms, sb.base_url, bad, ledger="off")
    expected = "The token was refused: AuthenticationError: HTTP 403: Invalid bearer token"
    assert form.error == expected
    form.documents.value = "doc-0001\ndoc-0002"
    form.create.click()
    assert form.wait(WAIT)
    assert form.error == expected
    assert expected in form.message.value
    assert "Traceback" not in form.message.value
    assert form.result is None
    assert posts(sb) == []
    assert bad not in synced_state(form)


def test_unreachable_host_is_one_line(forms: list[DraftForm]) -> None:
    """A closed loopback port shows 'Could not reach the instance' as one line, no table."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    form = make(forms, f"http://127.0.0.1:{port}", "omni_osk_test", ledger="off")
    assert form.error is not None
    assert form.error.startswith("Could not reach the instance: HostUnreachableError: ")
    assert f"127.0.0.1:{port}" in form.error
    assert "\n" not in form.error
    form.documents.value = "doc-0001"
    assert form.submit(wait=True) is None
    assert form.error.startswith("Could not reach the instance: HostUnreachableError: ")
    assert form.result is None


def test_config_and_input_errors_are_lines_before_anything_is_sent(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """No instance, no ids, or a typed branch that is not a UUID: one line, no request."""
    form = make(forms)
    assert form.error is None
    assert "Enter the instance" in form.message.value
    form.documents.value = "doc-0001"
    assert form.submit() is None
    assert form.error is not None
    assert form.error.startswith("ConfigError: No Omni API root")

    form = make(forms, sb.base_url, sb.token, ledger="off")
    sb.clear_requests()
    form.documents.value = "  \n"
    form.create.click()
    assert form.error == "InvalidInputError: Enter at least one document id (one per line)."
    form.documents.value = "doc-0001"
    form.branch.value = OTHER_BRANCH
    assert not form.branch_uuid.disabled
    form.branch_uuid.value = "feature-a"
    form.create.click()
    assert form.error is not None
    assert form.error.startswith("InvalidInputError: branch id 'feature-a': not a UUID")
    assert not form.busy
    assert sb.requests() == []

    bad_url = make(forms, "ftp://example.com", sb.token)
    assert bad_url.error is not None
    assert bad_url.error.startswith("ConfigError: base_url")


def test_typed_branch_uuid_is_used(sb: sandbox.Sandbox, forms: list[DraftForm]) -> None:
    """The 'other' branch option sends the typed UUID (canonical lower case)."""
    form = make(forms, sb.base_url, sb.token, ledger="off")
    branch = sb.branches[2].id
    form.branch.value = OTHER_BRANCH
    form.branch_uuid.value = branch.upper()
    form.documents.value = "doc-0004"
    table = form.submit(wait=True)
    assert table is not None
    assert table.loc[0, "branch_id"] == branch
    assert ("doc-0004", branch) in sb.drafts()


def test_picker_is_filled_searchable_paged_and_adds_ids(forms: list[DraftForm]) -> None:
    """The picker lists every document (all API pages), filters, pages by 50, adds ids."""
    with sandbox.serve(documents=120, rate_limit=None) as sb:
        form = make(forms, sb.base_url, sb.token, ledger="off")
        assert form.page_label.value == "1–50 of 120"
        assert form.prev_page.disabled
        assert not form.next_page.disabled
        form.next_page.click()
        form.next_page.click()
        assert form.page_label.value == "101–120 of 120"
        assert form.next_page.disabled
        assert len(form.picker.options) == 20

        form.search.value = "OVERVIEW 011"
        assert form.page_label.value == "1–10 of 10"
        picked = [value for _, value in form.picker.options[:2]]
        form.picker.value = tuple(picked)
        form.documents.value = picked[1]
        form.add_selected.click()
        assert form.document_ids() == [picked[1], picked[0]]
        form.add_all.click()
        assert sorted(form.document_ids()) == [f"doc-{i:04d}" for i in range(110, 120)]
        form.search.value = "no such thing"
        assert form.page_label.value == "no match"
        assert form.picker.options == ()

        branch_labels = [label for label, _ in form.branch.options]
        assert branch_labels[0] == "no branch"
        assert branch_labels[-1].startswith("other")
        assert [v for _, v in form.branch.options[1:-1]] == [b.id for b in sb.branches]


def test_interpreter_exit_cancels_a_running_batch(tmp_path: Path) -> None:
    """A script (or a kernel shutting down) that exits while the form's batch runs exits
    promptly, and the unanswered items are 'cancelled' rows in the ledger, not lost."""
    ledger = tmp_path / "exit.sqlite3"
    script = textwrap.dedent(f"""
        import threading
        import omni_nb
        from omni_nb import sandbox
        sb = sandbox.serve(documents=60, latency=0.5, rate_limit=None)
        form = omni_nb.DraftForm(sb.base_url, sb.token, ledger={str(ledger)!r}, concurrency=1)
        assert form.wait(20)
        first = threading.Event()
        form.progress.observe(lambda change: first.set() if change["new"] >= 1 else None,
                              "value")
        form.documents.value = "\\n".join(f"doc-{{i:04d}}" for i in range(1, 60) if i % 10)
        form.submit()
        assert first.wait(20)  # sending has begun; the script ends here
    """)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 20  # the batch alone would take about 27 s
    rows = omni_nb.results(ledger=ledger)
    counts = rows["status"].value_counts()
    assert len(rows) == 54
    assert counts["ok"] >= 1
    assert counts["ok"] + counts["cancelled"] == 54


PLACEHOLDER_CHARS = 40  # what fits the 420 px boxes (about 330 px of text) without a cut


def api_root(sb: sandbox.Sandbox) -> str:
    return resolve_settings(sb.base_url, "unused", environ={}).api_root


def placeholders(form: DraftForm) -> dict[str, str]:
    return {name: getattr(form, name).placeholder
            for name in ("connection", "token", "documents", "search", "branch_uuid")}


def test_placeholders_are_short_and_the_detail_is_in_tooltips(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Every placeholder fits its box, before and after a token arrives; the instance and
    token boxes explain the rest in a tooltip."""
    empty = make(forms)
    assert placeholders(empty)["connection"] == "acme or https://acme.omniapp.co"
    assert placeholders(empty)["token"] == "paste the API token"
    for tooltip in (empty.connection.tooltip, empty.token.tooltip):
        assert "omni_nb.login()" in tooltip
    assert "OMNI_BASE_URL" in empty.connection.tooltip
    assert "OMNI_API_TOKEN" in empty.token.tooltip

    given = make(forms, sb.base_url, sb.token, ledger="off")
    typed = make(forms, sb.base_url, ledger="off")
    typed.token.value = sb.token
    for form in (empty, given, typed):
        too_long = {k: v for k, v in placeholders(form).items() if len(v) > PLACEHOLDER_CHARS}
        assert too_long == {}
    assert given.token.placeholder == "kept in memory · type to replace"
    assert typed.token.placeholder == "kept in memory · type to replace"


def test_connection_line_from_arguments_and_typed_fields(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Given to DraftForm or typed into the form: the line names the API root and where it
    and the token come from, 'Connected to' once a listing succeeded."""
    root = api_root(sb)
    form = make(forms, sb.base_url, sb.token, ledger="off")
    assert form.connection_info.value.count("Connected to ") == 1
    assert (f"{root} (given to DraftForm) · token given to DraftForm"
            in form.connection_info.value)
    assert "Connected: " in form.message.value

    typed = make(forms, ledger="off")
    assert "no instance yet" in typed.connection_info.value
    assert "no token yet" in typed.connection_info.value
    typed.connection.value = sb.base_url
    typed.token.value = sb.token
    assert typed.wait(WAIT)
    assert (f"Connected to {root} (typed in the Instance box) · token typed in the Token box"
            in typed.connection_info.value)
    for each in (form, typed):
        assert sb.token not in each.connection_info.value
        assert sb.token not in synced_state(each)


def test_connection_line_from_login_and_environment(
    sb: sandbox.Sandbox, forms: list[DraftForm], monkeypatch: pytest.MonkeyPatch
) -> None:
    """omni_nb.login() or the environment: the Instance box stays empty (it shows the root
    as its placeholder), the line says where root and token come from, no token anywhere."""
    root = api_root(sb)
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    from_env = make(forms, ledger="off")
    assert from_env.error is None
    assert (f"Connected to {root} (from OMNI_BASE_URL) · token from the environment"
            in from_env.connection_info.value)
    assert from_env.connection.value == ""
    assert from_env.connection.placeholder == root
    assert from_env.token.placeholder == "from the environment · type to replace"

    monkeypatch.delenv("OMNI_BASE_URL")
    monkeypatch.delenv("OMNI_API_TOKEN")
    omni_nb.login(sb.token, base_url=sb.base_url)
    from_login = make(forms, ledger="off")
    assert (f"Connected to {root} (from omni_nb.login()) · token from omni_nb.login()"
            in from_login.connection_info.value)
    assert from_login.connection.value == ""
    assert from_login.token.placeholder == "from omni_nb.login() · type to replace"
    for form in (from_env, from_login):
        assert sb.token not in form.connection_info.value
        assert sb.token not in synced_state(form)


def test_connection_line_names_omni_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """OMNI_INSTANCE (no listing: the connection alone, nothing is sent)."""
    from omni_nb.widget.connection import Connection

    monkeypatch.setenv("OMNI_INSTANCE", "acme")
    assert Connection().describe() == (
        "Connection: https://acme.omniapp.co/api (from OMNI_INSTANCE) · no token yet")
    monkeypatch.setenv("OMNI_BASE_URL", "https://other.omniapp.co")  # wins over the instance
    assert Connection().describe().startswith(
        "Connection: https://other.omniapp.co/api (from OMNI_BASE_URL)")


@pytest.mark.parametrize(("rate_limit", "tail"), [
    (omni_nb.RateLimit(60, 60), "; the batch takes 4–5 min at 60 requests per minute."),
    (None, "."),
], ids=["60-per-60", "off"])
def test_add_all_says_how_many_and_how_long(
    forms: list[DraftForm], rate_limit: omni_nb.RateLimit | None, tail: str
) -> None:
    """The button shows the count; the status line says how many were added and, with a
    rate limit, how long the batch takes at it."""
    with sandbox.serve(documents=300, rate_limit=None) as sb:
        form = make(forms, sb.base_url, sb.token, ledger="off", rate_limit=rate_limit)
        assert form.add_all.description == "Add all 300"
        form.add_all.click()
        assert len(form.document_ids()) == 300
        assert f"Added 300 documents (300 in the box){tail}<" in form.message.value
        assert form.error is None
        form.search.value = "overview 000"
        assert form.add_all.description == "Add all 9"
        form.add_all.click()  # all already in the box
        assert f"Added 0 documents (300 in the box){tail}<" in form.message.value


# -- after a run: discard its drafts, show the documents' drafts ---------------------------------


def made_long_ago(sb: sandbox.Sandbox, document_id: str) -> str:
    """A draft made with create_drafts an hour before the test (the sandbox stamps it then):
    one made in the seconds before a run would fall inside the undo's clock-skew allowance
    and be taken for the run's."""
    store = sb._state.drafts
    real = store._clock
    store._clock = lambda: time.time() - 3600
    try:
        made = omni_nb.create_drafts([document_id], base_url=sb.base_url, token=sb.token,
                                     rate_limit=None, ledger="off")
    finally:
        store._clock = real
    return str(made.loc[0, "draft_id"])


def shown_text(form: DraftForm) -> str:
    (output,) = form.output.outputs
    return str(output["data"]["text/plain"]) + str(output["data"]["text/html"])


def test_discard_asks_first_then_archives_only_the_runs_drafts(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Discard these drafts: a dry run (GETs only) and a question naming 4 to discard and 1
    skipped; Keep them sends nothing; confirming archives exactly the run's drafts, the draft
    that existed before stays active, and the token is in no widget."""
    before = made_long_ago(sb, "doc-0003")
    form = make(forms, sb.base_url, sb.token, rate_limit=None)
    life = form.lifecycle
    assert form.discard_button.disabled  # nothing to undo yet
    docs = [f"doc-000{i}" for i in range(1, 6)]
    form.documents.value = "\n".join(docs)
    made = form.submit(wait=True)
    assert made is not None
    assert list(made["status"]) == ["ok"] * 5
    assert made.loc[2, "draft_id"] == before  # Omni answered with the existing draft
    assert form.wait(WAIT)
    assert not form.discard_button.disabled
    assert life.question_row.layout.display == "none"

    sb.clear_requests()
    form.discard_button.click()
    assert form.wait(WAIT)
    assert form.error is None
    assert {r.method for r in sb.requests()} == {"GET"}  # nothing sent before confirming
    assert "Discard 4 drafts this run created? 1 will be skipped (made before the run)" \
        in life.question.value
    assert life.confirm_button.description == "Discard 4 drafts"
    assert life.question_row.layout.display is None
    assert "made before the run: doc-0003" in shown_text(form)
    life.keep_button.click()
    assert life.pending is None
    assert life.question_row.layout.display == "none"
    assert "nothing was discarded" in form.message.value
    assert sb.archived_drafts() == []
    assert len(sb.drafts()) == 5

    check = form.discard(wait=True)  # the same question, from code
    assert check is not None
    assert list(check["message"]).count(
        f"would discard draft {made.loc[0, 'draft_id']}") == 1
    life.confirm_button.click()
    assert form.wait(WAIT)
    assert form.error is None
    undone = form.discarded
    assert undone is not None
    assert form.result is made
    assert sorted(r.document_id or "" for r in sb.requests() if r.method == "DELETE") == \
        ["doc-0001", "doc-0002", "doc-0004", "doc-0005"]
    assert {d.identifier for d in sb.archived_drafts()} == \
        set(made["draft_id"]) - {before}
    assert sb.drafts() == {("doc-0003", None): before}
    assert list(undone["status"]).count("skipped") == 1
    assert "Discard: 5 rows: 4 ok, 1 skipped" in form.message.value
    assert "skipped" in shown_text(form)
    assert life.pending is None
    assert form.discard_button.disabled  # undone: nothing left to discard until the next run
    assert sb.token not in synced_state(form)


def test_show_drafts_lists_the_documents_in_the_box(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Show drafts lists the box's documents (archived ones when ticked), compactly, with a
    line counting them; discard(confirm=True) from code discards without a question."""
    form = make(forms, sb.base_url, sb.token, rate_limit=None, ledger="off")
    form.documents.value = "doc-0001\ndoc-0002"
    form.submit(wait=True)
    undone = form.discard(wait=True, confirm=True)
    assert undone is not None
    assert list(undone["status"]) == ["ok", "ok"]
    assert sb.drafts() == {}
    form.documents.value = "doc-0002"
    assert form.submit(wait=True) is not None

    form.documents.value = "doc-0001\ndoc-0002\nnope"
    form.show_button.click()
    assert form.wait(WAIT)
    drafts = form.drafts
    assert drafts is not None
    assert list(drafts["document_id"]) == ["doc-0002", "nope"]
    assert list(drafts["status"]) == ["ok", "not_found"]
    assert form.message.value.endswith(
        "1 draft of 2 documents: 1 active; 1 listing failed (not_found).</span>")
    text = shown_text(form)
    assert "draft_status" in text
    assert "last_edited_by" not in text
    assert (form.progress.value, form.progress.max) == (3, 3)

    form.include_archived.value = True
    listed = form.show_drafts(wait=True)
    assert listed is form.drafts
    assert listed is not None
    assert sorted(listed["draft_status"].dropna()) == ["active", "archived", "archived"]
    assert {r.method for r in sb.requests()[-3:]} == {"GET"}
    assert sb.token not in synced_state(form)


def test_discard_and_show_drafts_say_what_they_need(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Before any run there is nothing to discard; an empty box has no drafts to list."""
    form = make(forms, sb.base_url, sb.token, rate_limit=None, ledger="off")
    sb.clear_requests()
    assert form.discard(wait=True) is None
    assert form.error == "Nothing to discard: create drafts first."
    assert form.show_drafts(wait=True) is None
    assert form.error is not None
    assert "document id" in form.error
    assert sb.requests() == []


def test_cancel_stops_a_discard_and_the_rest_can_be_discarded_later(
    sb: sandbox.Sandbox, forms: list[DraftForm]
) -> None:
    """Cancel works on a discard as on a create: some drafts archived, the rest cancelled
    rows; the button stays enabled and a second discard archives the rest."""
    form = make(forms, sb.base_url, sb.token, rate_limit=None, ledger="off")
    ids = [f"doc-{i:04d}" for i in range(1, 21) if i % 10]
    form.documents.value = "\n".join(ids)
    made = form.submit(wait=True)
    assert made is not None
    assert form.discard(wait=True) is not None
    sb.configure(latency=0.2)
    form.concurrency.value = 2
    first = threading.Event()
    form.progress.observe(lambda change: first.set() if change["new"] >= 1 else None, "value")
    form.lifecycle.confirm_button.click()
    assert first.wait(WAIT)
    form.cancel.click()
    assert form.wait(WAIT)
    undone = form.discarded
    assert undone is not None
    assert "cancelled" in set(undone["status"])
    assert form.message.value.count("Cancelled: Discard: ") == 1
    assert 0 < len(sb.archived_drafts()) < len(ids)
    assert not form.discard_button.disabled
    sb.configure(latency=0.0)
    assert form.discard(wait=True, confirm=True) is not None
    assert len(sb.archived_drafts()) == len(ids)


def test_a_ledger_write_that_fails_keeps_the_table_in_the_form(
    sb: sandbox.Sandbox, forms: list[DraftForm], tmp_path: Path,
) -> None:
    """The ledger locked past its busy timeout mid-batch: the form keeps and shows the table
    (form.result) and its error line names the rows not in the ledger."""
    path = tmp_path / "l.sqlite3"
    led = Ledger(path, busy_timeout_s=0.01)
    form = make(forms, sb.base_url, sb.token, ledger=led)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        form.documents.value = "doc-0005\ndoc-0006"
        form.create.click()
        assert form.wait(WAIT)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    table = form.result
    assert table is not None
    assert list(table["document_id"]) == ["doc-0005", "doc-0006"]
    assert form.error is not None
    assert form.error.startswith("LedgerError: ledger ")
    assert "database is locked" in form.error
    assert "form.result" in form.error
    draft = sb.drafts()[("doc-0005", None)]
    assert f"doc-0005 (draft {draft})" in form.error
    (shown,) = form.output.outputs
    assert "doc-0006" in shown["data"]["text/html"]
    led.close()
