"""The form's parts on their own: each is built alone, driven through its public interface,
and judged by its widgets' state. The last test holds the rule that lets them be parts: no
module of omni_nb.widget reaches another object's underscore names.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pytest

from omni_nb import sandbox
from omni_nb.batch import BatchOptions
from omni_nb.config import resolve_settings
from omni_nb.errors import AuthenticationError
from omni_nb.progress.tally import Tally
from omni_nb.ratelimit import RateLimit
from omni_nb.rows import Row
from omni_nb.table import dry_run_frame, frame_from_rows
from omni_nb.widget import DraftForm
from omni_nb.widget.connect import Connector
from omni_nb.widget.connection import Listing
from omni_nb.widget.create import CreateRun
from omni_nb.widget.documents import DocumentBox
from omni_nb.widget.lifecycle import AfterRun, Lifecycle
from omni_nb.widget.live import run_live
from omni_nb.widget.panel import RunPanel
from omni_nb.widget.worker import Worker


def line_text(value: str) -> str:
    """The progress line as a reader sees it (the status counts are coloured spans)."""
    return re.sub(r"<[^>]+>", "", value)

WAIT = 20.0  # seconds; a generous bound that only a hung test reaches


def row(document_id: str, status: str = "ok", message: str = "") -> Row:
    return Row(document_id, None, "draft-" + document_id, status, 200, message, 1, 0.1, 0,
               "https://a.omniapp.co/api", "run-1")


@pytest.fixture
def panel() -> RunPanel:
    return RunPanel()


@pytest.fixture
def worker(panel: RunPanel) -> Iterator[Worker]:
    """A worker reporting to ``panel``, closed after the test."""
    made = Worker(panel, BatchOptions(rate_limit=None, ledger="off"), concurrency=4)
    yield made
    made.close()


# -- RunPanel ------------------------------------------------------------------------------


def test_panel_say_clears_the_error_and_fail_keeps_one_escaped_line(panel: RunPanel) -> None:
    """fail() shows one line in red and keeps it in error; say() replaces it, escaped, green
    only when ok."""
    panel.fail("Could not\n   list <b>x</b>")
    assert panel.error == "Could not list <b>x</b>"
    assert panel.message.value == (
        '<span style="color:#cf222e">⚠ Could not list &lt;b&gt;x&lt;/b&gt;</span>')
    panel.say("Listing <all>")
    assert panel.error is None
    assert panel.message.value == '<span style="color:inherit">Listing &lt;all&gt;</span>'
    panel.say("Done", ok=True)
    assert "#1a7f37" in panel.message.value
    panel.fail(AuthenticationError(403, "Invalid bearer token"))
    assert panel.error == (
        "The token was refused: AuthenticationError: HTTP 403: Invalid bearer token")


def test_panel_start_resets_bar_counts_and_output(panel: RunPanel) -> None:
    """start() empties the output, resets the bar (style, max, value) and says what runs."""
    panel.show(frame_from_rows([row("a")]))
    panel.progress.bar_style, panel.progress.value = "danger", 1
    tally = panel.start("Creating drafts for 3 ids…", 3)
    assert tally.total == 3
    assert panel.output.outputs == ()
    assert (panel.progress.bar_style, panel.progress.value, panel.progress.max) == ("", 0, 3)
    assert line_text(panel.counts.value) == "0/3"
    assert "Creating drafts for 3 ids…" in panel.message.value


def test_panel_update_draws_the_tally(panel: RunPanel) -> None:
    """update() sets the bar to the settled count and the counts line per status."""
    tally = Tally(3, clock=lambda: 0.0)
    tally.add(1, row("a"))
    tally.add(2, row("b", "not_found"))
    panel.update(tally)
    assert (panel.progress.value, panel.progress.max) == (2, 3)
    assert line_text(panel.counts.value).startswith("2/3")
    assert "ok 1, not_found 1" in line_text(panel.counts.value)


def test_panel_run_throttles_redraws_and_draws_the_last_result(panel: RunPanel) -> None:
    """run() counts every result, redraws only when the throttle allows (first, last) and
    returns what the work returned."""
    panel.redraw_interval = 3600.0  # nothing but the first and the last result redraw
    seen: list[int] = []

    def work(on_progress: Callable[[int, int, Row], None]) -> str:
        for done, name in enumerate(["a", "b", "c"], start=1):
            on_progress(done, 3, row(name))
            seen.append(panel.progress.value)
        return "finished"

    assert panel.run("Working…", 3, work) == "finished"
    assert seen == [1, 1, 3]
    assert (panel.progress.value, panel.progress.max) == (3, 3)
    assert line_text(panel.counts.value).startswith("3/3")


@pytest.mark.parametrize(("ok", "cancelled", "style"), [
    (True, False, "success"), (False, False, "warning"), (False, True, "danger"),
])
def test_panel_finish_colours_the_bar(panel: RunPanel, ok: bool, cancelled: bool,
                                      style: str) -> None:
    """Green when every row is ok, red when cancelled, amber otherwise."""
    panel.finish(ok, cancelled=cancelled)
    assert panel.progress.bar_style == style


def test_panel_report_says_the_summary_or_fails_with_the_problems(panel: RunPanel) -> None:
    """A clean table is a green summary; a cancelled one says so without an error; invalid
    ids, a refused token or an unreachable host make the line an error naming them."""
    panel.report(frame_from_rows([row("a"), row("b")]), cancelled=False)
    assert panel.error is None
    assert "2 rows: 2 ok" in panel.message.value
    assert panel.progress.bar_style == "success"

    panel.report(frame_from_rows([row("a"), row("b", "cancelled")]), cancelled=True,
                 label="Discard: ")
    assert panel.error is None
    assert "Cancelled: Discard: 2 rows: 1 ok, 1 cancelled" in panel.message.value
    assert panel.progress.bar_style == "danger"

    panel.report(frame_from_rows([row("a"), row("a?b", "invalid", "bad id")]),
                 cancelled=False)
    assert panel.error is not None
    assert panel.error.startswith("2 rows: 1 ok, 1 invalid. ")
    assert panel.error.endswith("Invalid ids were not sent (1): bad id")
    assert panel.progress.bar_style == "warning"


def test_panel_show_renders_results_compactly_and_other_frames_as_tables(
    panel: RunPanel
) -> None:
    """A results table shows its compact view; another frame pandas' table; given HTML is
    shown as given. Each replaces the last."""
    panel.show(frame_from_rows([row("doc-1")]))
    (shown,) = panel.output.outputs
    assert 'class="omni-nb-results"' in shown["data"]["text/html"]
    assert shown["data"]["text/plain"].startswith("1 row")

    panel.show(dry_run_frame([("row 1", "doc-2", None, True, "GET x", "would discard")], ""))
    (shown,) = panel.output.outputs
    assert '<table border="1" class="dataframe">' in shown["data"]["text/html"]
    assert "would discard" in shown["data"]["text/html"]

    panel.show(frame_from_rows([]), "<b>mine</b>")
    (shown,) = panel.output.outputs
    assert shown["data"]["text/html"] == "<b>mine</b>"


@pytest.mark.parametrize("rows", [0, 3, 60, 61, 150])
def test_panel_shows_a_plain_frame_as_a_notebook_would(panel: RunPanel, rows: int) -> None:
    """Another frame than a results table (a dry run's) looks as pandas shows it in a
    notebook, short or cut to its first and last rows."""
    frame = dry_run_frame([(f"row {i}", f"doc-{i}", None, True, "GET x", "would discard")
                           for i in range(rows)], "")
    panel.show(frame)
    assert panel.output.outputs[0]["data"]["text/html"] == frame._repr_html_()


# -- Worker --------------------------------------------------------------------------------


def test_worker_refuses_a_second_batch_and_says_so(panel: RunPanel, worker: Worker) -> None:
    """While a batch runs, another start is refused with a line on the panel; stop() ends
    the batch through its cancel event."""
    started = threading.Event()

    def batch(cancel: threading.Event) -> str:
        started.set()
        cancel.wait(WAIT)
        return "stopped" if cancel.is_set() else "timed out"

    assert worker.start(batch, wait=False) is None
    assert started.wait(WAIT)
    assert worker.busy
    assert worker.batch_running
    assert worker.start(lambda cancel: 1, wait=True) is None
    assert panel.error == "A batch is already running; wait for it or Cancel it."
    assert not worker.queue(lambda: None)
    worker.stop()
    assert worker.wait(WAIT)
    assert not worker.busy
    assert not worker.batch_running


def test_worker_start_clears_the_error_and_reports_a_jobs_failure(
    panel: RunPanel, worker: Worker
) -> None:
    """A job starts with no error line; what it raises becomes the panel's one error line."""
    panel.fail("old trouble")

    def failing(cancel: threading.Event) -> None:
        assert panel.error is None  # cleared before the job ran
        raise KeyError("x")

    assert worker.start(failing, wait=True) is None
    assert panel.error == "Unexpected error: KeyError: 'x'"


def test_worker_tells_its_state_and_fills_in_the_concurrency(panel: RunPanel) -> None:
    """on_state hears a batch taken and the queue emptied; options() carries the box's
    concurrency over the form's options."""
    states: list[tuple[bool, bool]] = []
    worker = Worker(panel, BatchOptions(rate_limit=None, timeout=7.0), concurrency=3,
                    on_state=lambda running, batch: states.append((running, batch)))
    try:
        assert worker.options().concurrency == 3
        worker.concurrency.value = 5
        assert (worker.options().concurrency, worker.options().timeout) == (5, 7.0)
        assert worker.base_options.timeout == 7.0
        assert worker.start(lambda cancel: 42, wait=True) == 42
        assert worker.wait(WAIT)
        assert states == [(True, True), (False, False)]
    finally:
        worker.close()


# -- Connector -----------------------------------------------------------------------------


def test_connector_asks_for_what_is_missing_or_fails_on_a_bad_value(
    panel: RunPanel, worker: Worker
) -> None:
    """No instance: the line asks for it; a bad URL is an error line; neither lists."""
    Connector(None, None, worker=worker, panel=panel).changed()
    assert panel.error is None
    assert "Enter the instance" in panel.message.value
    Connector("acme", None, worker=worker, panel=panel).changed()
    assert "Paste the API token" in panel.message.value
    bad = Connector("ftp://example.com", "t", worker=worker, panel=panel)
    bad.changed()
    assert panel.error is not None
    assert panel.error.startswith("ConfigError: base_url")
    assert not worker.busy


def test_connector_lists_and_hands_over_what_it_found(
    sb: sandbox.Sandbox, panel: RunPanel, worker: Worker
) -> None:
    """Connect lists the instance on the worker: the connection is verified, on_listed gets
    the documents and branches, the line says 'Connected to' without the token."""
    found: list[Listing] = []
    connector = Connector(sb.base_url, sb.token, worker=worker, panel=panel,
                          on_listed=found.append)
    connector.connect.click()
    assert worker.wait(WAIT)
    (listing,) = found
    assert len(listing.documents or []) == 300
    assert [b["id"] for b in listing.branches or []] == [b.id for b in sb.branches]
    assert connector.connection.verified(connector.settings())
    assert "Connected to" in connector.info.value
    assert sb.token not in connector.info.value
    assert "Connected: 300 documents" in panel.message.value


def test_connector_ready_lists_once_and_honours_a_cancel(
    sb: sandbox.Sandbox, panel: RunPanel, worker: Worker
) -> None:
    """ready() lists unverified settings first, not verified ones; a set cancel means
    nothing is sent and the line says so."""
    connector = Connector(sb.base_url, sb.token, worker=worker, panel=panel)
    settings = connector.settings()
    cancel = threading.Event()
    assert connector.ready(settings, cancel)
    assert sb.requests()  # the listing that checked the connection
    sb.clear_requests()
    assert connector.ready(settings, cancel)
    assert sb.requests() == []
    cancel.set()
    assert not connector.ready(settings, cancel)
    assert "Cancelled before anything was sent." in panel.message.value


def test_connector_refuses_to_list_while_a_batch_runs(panel: RunPanel,
                                                      worker: Worker) -> None:
    """Connect during a batch says to wait; a change of the fields waits silently."""
    connector = Connector("https://acme.omniapp.co", "t", worker=worker, panel=panel)
    release = threading.Event()
    worker.start(lambda cancel: release.wait(WAIT), wait=False)
    try:
        connector.refresh()
        assert panel.error == "A batch is running; Connect again when it ends."
        panel.say("unchanged")
        connector.changed()
        assert "unchanged" in panel.message.value
    finally:
        release.set()
    connector.buttons(True)
    assert connector.connect.disabled
    connector.buttons(False)
    assert not connector.connect.disabled


# -- DocumentBox ---------------------------------------------------------------------------


def test_document_box_adds_only_new_ids_and_says_how_long(panel: RunPanel) -> None:
    """add() appends the ids not in the box, in order, and the line counts them and says
    how long the box's batch takes at the rate limit."""
    box = DocumentBox(panel, rate_limit=RateLimit(60, 60))
    box.text.value = "a\n\n b \n"
    box.add(["b", "c", "d", "c"])
    assert box.ids() == ["a", "b", "c", "d"]
    assert box.text.value == "a\nb\nc\nd"
    assert ("Added 2 documents (4 in the box); the batch takes up to 4 s at 60 requests "
            "per minute.") in panel.message.value
    DocumentBox(panel, rate_limit=None).add(["x"])
    assert "Added 1 document (1 in the box).<" in panel.message.value


# -- CreateRun -----------------------------------------------------------------------------


def create_run(worker: Worker, panel: RunPanel, connector: Connector, ids: list[str],
               on_result: Callable[[], None] | None = None) -> CreateRun:
    return CreateRun(worker, connector, panel, ids=lambda: ids, branch=lambda: None,
                     on_result=on_result)


def test_create_run_refuses_no_ids_before_anything_is_sent(
    sb: sandbox.Sandbox, panel: RunPanel, worker: Worker
) -> None:
    """No ids: an error line, no job, no request."""
    connector = Connector(sb.base_url, sb.token, worker=worker, panel=panel)
    run = create_run(worker, panel, connector, [])
    run.create.click()
    assert panel.error == "InvalidInputError: Enter at least one document id (one per line)."
    assert not worker.busy
    assert sb.requests() == []


def test_create_run_keeps_shows_and_announces_its_table(
    sb: sandbox.Sandbox, panel: RunPanel, worker: Worker
) -> None:
    """submit(wait=True) runs the batch: result kept and returned, on_result told, the table
    in the panel's output, the summary on its line."""
    connector = Connector(sb.base_url, sb.token, worker=worker, panel=panel)
    told: list[int] = []
    run = create_run(worker, panel, connector, ["doc-0001", "doc-0010", "doc-0001"],
                     on_result=lambda: told.append(1))
    table = run.submit(wait=True)
    assert table is not None
    assert run.result is table
    assert list(table["status"]) == ["ok", "not_eligible"]
    assert told == [1]
    (shown,) = panel.output.outputs
    assert "doc-0010" in shown["data"]["text/html"]
    assert "2 rows: 1 ok, 1 not_eligible" in panel.message.value
    assert (panel.progress.value, panel.progress.max) == (2, 2)


def test_create_run_buttons_follow_the_queue(panel: RunPanel, worker: Worker) -> None:
    """Create off while any job runs; Cancel on only while a batch runs."""
    run = create_run(worker, panel, Connector(None, None, worker=worker, panel=panel), [])
    assert (run.create.disabled, run.cancel.disabled) == (False, True)
    run.buttons(True, False)
    assert (run.create.disabled, run.cancel.disabled) == (True, True)
    run.buttons(True, True)
    assert (run.create.disabled, run.cancel.disabled) == (True, False)
    run.buttons(False, False)
    assert (run.create.disabled, run.cancel.disabled) == (False, True)


# -- AfterRun ------------------------------------------------------------------------------


def test_after_run_needs_a_table_and_ids(panel: RunPanel, worker: Worker) -> None:
    """No run: nothing to discard (button off); no ids: nothing to list."""
    after = AfterRun(worker, Connector(None, None, worker=worker, panel=panel), panel,
                     ids=list, table=lambda: None)
    after.buttons(False)
    assert after.discard_button.disabled
    assert not after.show_button.disabled
    assert after.discard(wait=True) is None
    assert panel.error == "Nothing to discard: create drafts first."
    assert after.show_drafts(wait=True) is None
    assert panel.error is not None
    assert "document id" in panel.error
    assert not worker.busy


def test_after_run_asks_keeps_and_discards_the_tables_drafts(
    sb: sandbox.Sandbox, panel: RunPanel, worker: Worker
) -> None:
    """With a run's table: the dry run sends GETs only and asks; Keep drops the question;
    confirming discards and keeps the table in discarded; the button goes off (undone)."""
    connector = Connector(sb.base_url, sb.token, worker=worker, panel=panel)
    made = create_run(worker, panel, connector, ["doc-0001", "doc-0002"]).submit(wait=True)
    assert made is not None
    after = AfterRun(worker, connector, panel, ids=list, table=lambda: made)
    after.buttons(False)
    assert not after.discard_button.disabled

    sb.clear_requests()
    after.discard_button.click()
    assert worker.wait(WAIT)
    assert {r.method for r in sb.requests()} == {"GET"}
    assert after.pending is not None
    assert after.confirm_button.description == "Discard 2 drafts"
    assert after.question_row.layout.display is None
    assert "Discard 2 drafts this run created?" in after.question.value
    after.keep_button.click()
    assert after.pending is None
    assert after.question_row.layout.display == "none"
    assert "nothing was discarded" in panel.message.value

    undone = after.discard(wait=True, confirm=True)
    assert undone is not None
    assert after.discarded is undone
    assert list(undone["status"]) == ["ok", "ok"]
    assert "Discard: 2 rows: 2 ok" in panel.message.value
    assert sb.drafts() == {}
    after.buttons(False)
    assert after.discard_button.disabled
    after.new_run()
    after.buttons(False)
    assert not after.discard_button.disabled


def test_after_run_lists_the_ids_drafts(sb: sandbox.Sandbox, panel: RunPanel,
                                        worker: Worker) -> None:
    """Show drafts lists the ids' drafts into drafts, with a counting line and the bar."""
    connector = Connector(sb.base_url, sb.token, worker=worker, panel=panel)
    create_run(worker, panel, connector, ["doc-0003"]).submit(wait=True)
    after = AfterRun(worker, connector, panel, ids=lambda: ["doc-0003", "nope"],
                     table=lambda: None)
    after.show_button.click()
    assert worker.wait(WAIT)
    drafts = after.drafts
    assert drafts is not None
    assert list(drafts["document_id"]) == ["doc-0003", "nope"]
    assert "1 draft of 2 documents: 1 active; 1 listing failed (not_found)." \
        in panel.message.value
    assert panel.progress.bar_style == "warning"
    assert "draft_status" in panel.output.outputs[0]["data"]["text/html"]


# -- the form's old entry points ------------------------------------------------------------


def test_old_entry_points_warn_and_still_work(sb: sandbox.Sandbox) -> None:
    """run_live(form, ...) and Lifecycle(form), from before the parts, warn and work."""
    form = DraftForm(sb.base_url, sb.token, ledger="off", rate_limit=None)
    try:
        assert form.wait(WAIT)
        settings = resolve_settings(sb.base_url, sb.token)
        with pytest.warns(DeprecationWarning, match="form.panel"):
            out = run_live(form, "Old way…", 0, settings, BatchOptions(rate_limit=None),
                           lambda progress: "ran")
        assert out == "ran"
        assert "Old way…" in form.message.value
        with pytest.warns(DeprecationWarning, match="form.lifecycle"):
            old = Lifecycle(form)
        assert old.discard(wait=True) is None
        assert form.error == "Nothing to discard: create drafts first."
        form.documents.value = "doc-0004"
        assert form.submit(wait=True) is not None
        assert old.discard(wait=True) is not None  # the form's run, through its parts
        assert old.pending is not None
    finally:
        form.close()


def test_panel_draws_with_the_one_widget_renderer(panel: RunPanel) -> None:
    """The form's bar and line are the progress package's widget renderer (the magic's and a
    background run's too), so they count, colour and wait the same way."""
    from omni_nb.progress import WidgetProgress

    assert isinstance(panel.renderer, WidgetProgress)
    assert panel.progress is panel.renderer.bar
    assert panel.counts is panel.renderer.line
    tally = panel.start("Creating drafts for 2 ids…", 2)
    panel.renderer.update(1, 2, row("a", "not_found"))
    panel.renderer.update(2, 2, row("b"))
    assert tally is panel.renderer.tally
    assert tally.done == 2
    assert "#9a6700" in panel.counts.value  # the colour rule's warning tone for not_found
