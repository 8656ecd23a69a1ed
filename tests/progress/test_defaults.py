"""The display a batch shows when its caller gave none, and how each display ends.

* The Python API shows what the magic shows where a person watches: a widget bar in a
  notebook (replaced by a static summary when the batch ends), a text bar on a terminal, a
  few lines in a headless run; nothing in a script or test with no terminal.
  ``progress=False`` silences it, a callable replaces it.
* A background run's live view draws its bar and the rows under it from one snapshot, the
  rows styled as the final table, and ends as a static summary.

A notebook front end is stood in for by IPython's own shell with a kernel that answers
``get_parent()`` as ipykernel does, and a capturing display publisher: every display and
display update is recorded as the kernel would send it.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display

from omni_nb import RateLimit, create_drafts, sandbox
from omni_nb.progress import TextProgress
from omni_nb.progress.live import watching
from omni_nb.progress.run_view import TABLE_CSS, RunView
from omni_nb.rows import Row

WIDGET = "application/vnd.jupyter.widget-view+json"
DOCS = [f"doc-{i:04d}" for i in range(1, 7)]  # doc-0001..0006: all eligible in the sandbox


class FakeKernel:
    """What the display choice asks of ipykernel: the current request's ``allow_stdin``
    (True from JupyterLab, False from nbclient, papermill and nbconvert)."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def get_parent(self) -> dict[str, Any]:
        return {"content": {"allow_stdin": self.interactive}}


class TTY(io.StringIO):
    """A terminal, as far as a renderer can tell."""

    def isatty(self) -> bool:
        return True


def _kernel(monkeypatch: pytest.MonkeyPatch, interactive: bool) -> CapturingDisplayPublisher:
    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell, "kernel", FakeKernel(interactive), raising=False)
    published = CapturingDisplayPublisher()  # type: ignore[no-untyped-call]
    monkeypatch.setattr(shell, "display_pub", published)
    return published


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> CapturingDisplayPublisher:
    """A kernel whose front end renders widgets (JupyterLab); yields what it published."""
    return _kernel(monkeypatch, interactive=True)


@pytest.fixture
def headless(monkeypatch: pytest.MonkeyPatch) -> CapturingDisplayPublisher:
    """A kernel run by a headless executor (its streams are the test's captured ones, not a
    terminal); yields what it published."""
    return _kernel(monkeypatch, interactive=False)


def row(status: str = "ok", doc: str = "d") -> Row:
    return Row(doc, None, "x" if status == "ok" else None, status, 200, "", 1, 0.1, 0, "a", "r")


def _create(sb: sandbox.Sandbox, **kw: Any) -> Any:
    return create_drafts(DOCS, base_url=sb.base_url, token=sb.token, ledger="off", **kw)


# -- the Python API's default: where a person watches -----------------------------------------


def test_api_shows_a_widget_bar_in_a_notebook_and_ends_as_a_static_summary(
    notebook: CapturingDisplayPublisher, sb: sandbox.Sandbox
) -> None:
    """create_drafts with no progress= in JupyterLab: a widget bar is displayed (with a
    display id) and, when the batch ends, that display is replaced by HTML and text."""
    table = _create(sb)
    assert (table["status"] == "ok").all()
    first, *_, last = notebook.outputs
    display_id = first["transient"]["display_id"]
    assert WIDGET in first["data"]
    assert not first["update"]
    assert last["update"]
    assert last["transient"]["display_id"] == display_id
    assert WIDGET not in last["data"]
    assert last["data"]["text/plain"].startswith("6/6 ")
    assert "ok 6" in last["data"]["text/html"]


def test_api_draws_a_text_bar_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, sb: sandbox.Sandbox
) -> None:
    """No notebook, stderr a terminal: the text bar, redrawn in place, ended with a newline."""
    err = TTY()
    monkeypatch.setattr("sys.stderr", err)
    _create(sb)
    text = err.getvalue()
    assert text.startswith("\r[")
    assert text.endswith("\n")
    assert "6/6" in text.rsplit("\r", 1)[-1]


def test_api_is_silent_with_no_terminal_and_no_notebook(
    sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A script or a test (stderr not a terminal, no IPython): nothing is written."""
    _create(sb)
    assert capsys.readouterr() == ("", "")


def test_api_progress_true_writes_lines_even_with_no_terminal(
    sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """progress=True asks for the display where nothing would show: plain lines, no \\r."""
    _create(sb, progress=True)
    err = capsys.readouterr().err
    assert "6/6" in err
    assert "\r" not in err


def test_progress_false_shows_nothing_even_in_a_notebook(
    notebook: CapturingDisplayPublisher, sb: sandbox.Sandbox,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """progress=False: no display, no text."""
    _create(sb, progress=False)
    assert notebook.outputs == []
    assert capsys.readouterr() == ("", "")


def test_a_callable_is_called_and_nothing_else_is_shown(
    notebook: CapturingDisplayPublisher, sb: sandbox.Sandbox
) -> None:
    """progress=callable: called once per result; the default display does not appear."""
    seen: list[tuple[int, int]] = []
    _create(sb, progress=lambda done, total, _row: seen.append((done, total)))
    assert seen[-1] == (6, 6)
    assert len(seen) == 6
    assert notebook.outputs == []


def test_a_headless_notebook_gets_a_few_lines_not_one_per_redraw(
    headless: CapturingDisplayPublisher, sb: sandbox.Sandbox,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Executed by nbclient or papermill (a kernel, no widgets), a throttled batch writes a
    few whole lines to the cell's stdout (not stderr: a notebook shows it on red, as an
    error): no carriage return, nothing per redraw."""
    _create(sb, rate_limit=RateLimit(3, per=1))  # about a second of waiting on the budget
    captured = capsys.readouterr()
    assert captured.err == ""
    text = captured.out
    assert headless.outputs == []
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3, lines
    assert "6/6" in lines[-1]


def test_one_item_shows_nothing(notebook: CapturingDisplayPublisher,
                                sb: sandbox.Sandbox) -> None:
    """One document is one answer: no bar, as in the magic."""
    create_drafts(["doc-0001"], base_url=sb.base_url, token=sb.token, ledger="off")
    assert notebook.outputs == []


def test_watching_picks_the_magic_display_and_none_where_nobody_watches() -> None:
    """The choice on its own: text on a terminal, None on a plain stream, widget in a
    notebook front end (the same test as the magic's, choose_mode)."""
    shown = watching(3, stream=TTY())
    assert shown is not None
    assert shown.mode == "text"
    shown.close()
    assert watching(3, stream=io.StringIO()) is None


def test_watching_in_an_interactive_kernel_is_the_widget(
    notebook: CapturingDisplayPublisher,
) -> None:
    """In JupyterLab the default is the widget bar, displayed at once."""
    shown = watching(3, stream=io.StringIO())
    assert shown is not None
    assert shown.mode == "widget"
    shown.close()
    assert WIDGET in notebook.outputs[0]["data"]
    assert WIDGET not in notebook.outputs[-1]["data"]


# -- the text renderer off a terminal ----------------------------------------------------------


def test_text_off_a_terminal_writes_whole_lines_a_few_per_long_batch() -> None:
    """Ten minutes of results, redrawn every 0.2 s on a terminal, are at most one line a
    minute on a captured stream (a headless notebook's output), and never a \\r."""
    now = [0.0]
    out = io.StringIO()
    bar = TextProgress(3000, stream=out, clock=lambda: now[0], colour=False)
    for done in range(1, 3001):
        now[0] = done * 0.2
        bar.update(done, 3000, row())
    bar.finish()
    text = out.getvalue()
    assert "\r" not in text
    assert 2 <= len(text.splitlines()) <= 12
    assert text.splitlines()[-1].startswith("[" + "#" * 24 + "] 3000/3000")


def test_text_ticks_off_a_terminal_follow_the_same_line_budget() -> None:
    """The ticker's redraws (a countdown while held) do not add a line each."""
    now = [0.0]
    out = io.StringIO()
    bar = TextProgress(2, stream=out, clock=lambda: now[0], colour=False)
    for _ in range(50):
        now[0] += 1.0
        bar.tick()
    assert len(out.getvalue().splitlines()) == 1


# -- a background run's live view --------------------------------------------------------------


def _rows_in(html: str) -> int:
    found = re.search(r"<b>(\d+) rows?</b>", html)
    return int(found.group(1)) if found else 0


def test_background_view_draws_bar_and_rows_from_one_snapshot() -> None:
    """The view keeps the rows it counts: at every redraw the bar's count and the table
    under it show the same rows."""
    view = RunView(5, tick=None)
    view.update(1, 5, row(doc="a"))
    bar, rows = view.renderer.bar, view.renderer.box.children[1]
    assert (bar.value, _rows_in(rows.value)) == (1, 1)
    view.update(2, 5, row(doc="b"))
    view.update(3, 5, row(doc="c"))
    view.renderer.tick()
    assert (bar.value, _rows_in(rows.value)) == (3, 3)
    assert ">c<" in rows.value


def test_background_live_table_is_styled_as_the_final_one() -> None:
    """The rows under the live bar are the compact table with its CSS (headings do not run
    together inside a widget), in JupyterLab's rendered-HTML class, as the final table is."""
    view = RunView(2, tick=None)
    view.update(1, 2, row())
    rows = view.renderer.box.children[1]
    assert TABLE_CSS in rows.value
    assert '<div class="omni-nb-results">' in rows.value
    assert "jp-RenderedHTMLCommon" in rows._dom_classes
    view.update(2, 2, row())
    view.finish("done", "<p>final</p>")
    assert rows.value == "<p>final</p>"


def test_background_run_shown_in_a_notebook_ends_as_a_static_summary(
    notebook: CapturingDisplayPublisher, sb: sandbox.Sandbox
) -> None:
    """Displaying the handle sends the live view with a display id; when the run ends that
    display becomes the static summary with the whole, styled table."""
    run = create_drafts(DOCS, base_url=sb.base_url, token=sb.token, ledger="off",
                        rate_limit=RateLimit(3, per=1), background=True)
    show: Any = display  # untyped in IPython
    show(run)
    table = run.wait(60)
    assert table is not None
    first, last = notebook.outputs[0], notebook.outputs[-1]
    assert WIDGET in first["data"]
    assert last["update"]
    assert last["transient"] == first["transient"]
    assert WIDGET not in last["data"]
    assert last["data"]["text/plain"].startswith("done: 6/6")
    assert TABLE_CSS in last["data"]["text/html"]
    assert "<b>6 rows</b>" in last["data"]["text/html"]


def test_background_run_in_a_headless_notebook_builds_no_widget(
    headless: CapturingDisplayPublisher, sb: sandbox.Sandbox
) -> None:
    """Executed headless, the handle displays its static summary from the start (no widget
    for a saved notebook to lose), updated when the run ends."""
    published = headless
    run = create_drafts(DOCS, base_url=sb.base_url, token=sb.token, ledger="off",
                        background=True)
    show: Any = display  # untyped in IPython
    show(run)
    run.wait(60)
    assert all(WIDGET not in o["data"] for o in published.outputs)
    assert published.outputs[-1]["update"]
    assert published.outputs[-1]["data"]["text/plain"].startswith("done: 6/6")


# -- the magic keeps its own choice ------------------------------------------------------------


def test_the_magic_with_progress_off_shows_no_bar(
    notebook: CapturingDisplayPublisher, sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """%omni_draft with progress off in JupyterLab: the batch it calls shows no widget bar
    of its own (the magic passes progress=False when it draws nothing)."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    monkeypatch.setenv("OMNI_NB_LEDGER", "off")
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "omni_nb")
    shell.run_line_magic("config", "OmniNB.progress = 'off'")
    try:
        shell.run_line_magic("omni_draft", "doc-0001 doc-0002 doc-0003 -o made")
    finally:
        shell.config.pop("OmniNB", None)
        shell.run_line_magic("reload_ext", "omni_nb")
    assert (shell.user_ns["made"]["status"] == "ok").all()
    assert [o for o in notebook.outputs if WIDGET in o["data"]] == []
