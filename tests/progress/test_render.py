"""The progress renderers on their own: the widget renderer and the text renderer, driven with
fake rows, a fake budget and an injected clock, and the one colour rule both follow."""

from __future__ import annotations

import io
import time

import pytest

from omni_nb.progress import TextProgress, WidgetProgress
from omni_nb.progress.run_view import RunView
from omni_nb.progress.style import ANSI, CSS, TONES, outcome, tone_of
from omni_nb.progress.tally import Hold
from omni_nb.rows import STATUSES, Row


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeBudget:
    """A rate budget a test sets by hand."""

    def __init__(self) -> None:
        self.hold: Hold | None = None
        self.rate: float | None = 1.0

    def held(self) -> Hold | None:
        return self.hold

    def per_second(self) -> float | None:
        return self.rate


def row(status: str = "ok", doc: str = "d") -> Row:
    return Row(doc, None, "x" if status == "ok" else None, status, 200, "", 1, 0.1, 0, "a", "r")


def widget(total: int, clock: Clock, **kw: object) -> WidgetProgress:
    bar = WidgetProgress(total, clock=clock, tick=None, **kw)  # type: ignore[arg-type]
    _ = bar.box  # built, as when shown
    return bar


# -- the colour rule ---------------------------------------------------------------------------


def test_every_status_has_a_tone() -> None:
    """Each status of rows.STATUSES has a tone: ok success, cancelled danger, else warning."""
    assert set(TONES) == set(STATUSES)
    assert tone_of("ok") == "success"
    assert tone_of("cancelled") == "danger"
    assert {tone_of(s) for s in STATUSES} - {"success", "danger"} == {"warning"}


@pytest.mark.parametrize(
    ("counts", "done", "total", "final", "held", "stopped", "tone"),
    [
        ({"ok": 1}, 1, 3, False, False, False, ""),
        ({"ok": 1}, 1, 3, False, True, False, "warning"),
        ({"ok": 3}, 3, 3, True, False, False, "success"),
        ({"ok": 2, "not_found": 1}, 3, 3, True, False, False, "warning"),
        ({"ok": 2, "skipped": 1}, 3, 3, True, False, False, "warning"),
        ({"ok": 1, "cancelled": 2}, 3, 3, True, False, False, "danger"),
        ({"ok": 1}, 1, 3, True, False, False, "danger"),
        ({"ok": 3}, 3, 3, True, False, True, "danger"),
        ({}, 0, 0, True, False, False, "success"),
    ],
)
def test_the_bar_takes_the_worst_tone_and_danger_when_stopped(
    counts: dict[str, int], done: int, total: int, final: bool, held: bool, stopped: bool,
    tone: str,
) -> None:
    """Running: nothing, or warning while held; at the end: danger when stopped (or fewer
    rows than items), else the worst tone of the rows."""
    assert outcome(counts, done=done, total=total, final=final, held=held,
                   stopped=stopped) == tone


SCENARIOS = {
    "all ok": (["ok", "ok"], None, "success"),
    "one failed": (["ok", "not_found"], None, "warning"),
    "cancelled": (["ok", "cancelled"], None, "danger"),
    "stopped early": (["ok"], None, "danger"),
    "failed after the last row": (["ok", "ok"], "failed: boom", "danger"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_both_renderers_end_in_the_same_colour(name: str) -> None:
    """The widget's final bar_style and the text bar's final ANSI colour come from one rule."""
    statuses, status, tone = SCENARIOS[name]
    clock = Clock()
    bar = widget(2, clock)
    out = io.StringIO()
    text = TextProgress(2, stream=out, clock=clock, colour=True, carriage_return=True)
    for done, s in enumerate(statuses, start=1):
        bar.update(done, 2, row(s))
        text.update(done, 2, row(s))
    bar.finish(status)
    text.finish(status)
    assert bar.bar.bar_style == tone
    last = out.getvalue().rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith(f"[{ANSI[tone]}#")  # type: ignore[index]


def test_both_renderers_colour_each_count_by_its_status() -> None:
    """The counts in the widget's line and the text line wear their status's tone."""
    clock = Clock()
    bar = widget(3, clock)
    out = io.StringIO()
    text = TextProgress(3, stream=out, clock=clock, colour=True)
    for done, s in enumerate(["ok", "not_found", "cancelled"], start=1):
        bar.update(done, 3, row(s))
        text.update(done, 3, row(s))
    for status in ("ok", "not_found", "cancelled"):
        tone = tone_of(status)
        assert f'<span style="color:{CSS[tone]}">{status} 1</span>' in bar.line.value
        assert f"{ANSI[tone]}{status} 1\x1b[0m" in out.getvalue()


# -- the widget renderer -----------------------------------------------------------------------


def test_widget_builds_nothing_until_its_box_is_used() -> None:
    """A renderer never shown only counts (the background view of a script, say)."""
    bar = WidgetProgress(2, tick=None)
    bar.update(1, 2, row())
    assert not bar.built
    assert bar.tally.counts["ok"] == 1
    assert bar.bar.value == 1  # built on first use, from the counts so far
    assert bar.built


def test_widget_redraws_at_most_every_interval_and_always_the_last() -> None:
    """Results inside the interval are counted but not drawn; the last one always is."""
    clock = Clock()
    bar = widget(4, clock, interval=1.0)
    bar.update(1, 4, row())
    assert bar.bar.value == 1
    clock.now += 0.5
    bar.update(2, 4, row())
    assert bar.bar.value == 1
    assert bar.tally.done == 2
    clock.now += 0.6
    bar.update(3, 4, row())
    assert bar.bar.value == 3
    bar.update(4, 4, row())
    assert bar.bar.value == 4


def test_widget_tick_redraws_the_wait_and_the_eta_without_results() -> None:
    """tick() (the ticker's call) shows why sending waits, for how long, and the ETA; the
    bar is warning while held; the final draw drops both."""
    clock = Clock()
    budget = FakeBudget()
    bar = widget(3, clock, budget=budget)
    bar.update(1, 3, row())
    assert bar.line.value.startswith("1/3")
    assert "ETA 2 s" in bar.line.value
    budget.hold = Hold("the rate budget", 41.5)
    bar.tick()
    assert "waiting for the rate budget: next send in 42 s" in bar.line.value
    assert bar.bar.bar_style == "warning"
    budget.hold = None
    bar.tick()
    assert bar.bar.bar_style == ""
    bar.update(2, 3, row())
    bar.update(3, 3, row())
    bar.finish("done")
    assert "waiting" not in bar.line.value
    assert "ETA" not in bar.line.value
    assert bar.line.value.startswith("done: 3/3")
    assert bar.bar.bar_style == "success"


def test_widget_start_again_reuses_the_widgets_for_the_next_batch() -> None:
    """The form's case: one renderer, a batch after another; start() empties the bar."""
    clock = Clock()
    bar = widget(2, clock)
    first = bar.bar
    bar.update(1, 2, row("not_found"))
    bar.update(2, 2, row("not_found"))
    bar.finish()
    assert bar.bar.bar_style == "warning"
    bar.start(5)
    assert bar.bar is first
    assert (bar.bar.value, bar.bar.max, bar.bar.bar_style) == (0, 5, "")
    assert bar.line.value == "0/5"
    assert bar.tally.counts["not_found"] == 0


def test_widget_rows_under_the_bar_then_the_final_html() -> None:
    """With rows_html, the newest rows are drawn under the bar; finish(html=) replaces them."""
    clock = Clock()
    shown: list[str] = []
    bar = widget(2, clock, rows_html=lambda: f"<p>{len(shown)}</p>")
    shown.append("x")
    bar.update(1, 2, row())
    header, rows = bar.box.children
    assert rows.value == "<p>1</p>"
    bar.finish("cancelled", "<table>all</table>")
    assert rows.value == "<table>all</table>"
    assert header.children[1].value.startswith("cancelled: 1/2")
    assert bar.bar.bar_style == "danger"


def test_widget_status_word_is_escaped() -> None:
    """A failure's repr in the status word cannot inject HTML into the line."""
    bar = widget(1, Clock())
    bar.finish("failed: ValueError('<b>')")
    assert "<b>" not in bar.line.value
    assert "&lt;b&gt;" in bar.line.value


def test_widget_ticker_redraws_on_its_own_while_held() -> None:
    """With tick and a budget, the line is redrawn without results (real time: bounds only,
    generous for a busy machine)."""
    budget = FakeBudget()
    budget.hold = Hold("a 429 pause", 30.0)
    bar = WidgetProgress(2, budget=budget, tick=0.01)
    _ = bar.box
    bar.line.value = ""
    deadline = time.monotonic() + 10
    while "next send in 30 s" not in bar.line.value and time.monotonic() < deadline:
        time.sleep(0.01)
    redrawn = bar.line.value
    bar.finish()
    assert "next send in 30 s" in redrawn


def test_background_view_text_says_running_then_how_it_ended() -> None:
    """The background handle's text: 'background batch: ...' while running, then the word."""
    view = RunView(2, tick=None)
    view.update(1, 2, row())
    assert view.mimebundle()["text/plain"].startswith("background batch: 1/2")
    view.finish("done")
    assert view.mimebundle()["text/plain"].startswith("done: 1/2")


# -- the text renderer -------------------------------------------------------------------------


def test_text_draws_one_line_per_redraw_throttled_and_the_last_always() -> None:
    """Carriage returns redraw one line; inside the interval a result is not drawn."""
    clock = Clock()
    out = io.StringIO()
    text = TextProgress(3, stream=out, width=6, clock=clock, interval=1.0, colour=False,
                        carriage_return=True)  # as on a terminal
    text.update(1, 3, row())
    clock.now += 0.1
    text.update(2, 3, row())
    assert out.getvalue().count("\r") == 1
    text.update(3, 3, row("not_found"))
    assert out.getvalue().endswith("\r[######] 3/3 30.0/s ok 2, not_found 1\n")
    text.finish()
    assert out.getvalue().count("\n") == 1  # the last line was final already


def test_text_tick_redraws_the_countdown() -> None:
    """tick() redraws the wait, no result needed."""
    out = io.StringIO()
    budget = FakeBudget()
    budget.hold = Hold("the rate budget", 3.0)
    text = TextProgress(2, stream=out, budget=budget, clock=Clock(), colour=False,
                        carriage_return=True)
    text.update(1, 2, row())
    before = out.getvalue().count("next send in 3 s")
    text.tick()
    assert out.getvalue().count("next send in 3 s") == before + 1


def test_text_finish_ends_a_stopped_line_honestly() -> None:
    """Stopped early: finish draws the final line (no wait, no ETA) and ends it."""
    out = io.StringIO()
    budget = FakeBudget()
    text = TextProgress(4, stream=out, width=4, budget=budget, clock=Clock(), colour=False,
                        carriage_return=True)
    text.update(1, 4, row())
    text.finish("cancelled")
    last = out.getvalue().rsplit("\r", 1)[-1]
    assert last.startswith("[#---] 1/4")
    assert last.endswith("\n")
    assert "ETA" not in last


def test_text_has_no_colour_off_a_terminal() -> None:
    """A StringIO (a log, a pipe) gets plain text by default."""
    out = io.StringIO()
    text = TextProgress(1, stream=out)
    text.update(1, 1, row("not_found"))
    assert "\x1b[" not in out.getvalue()


def test_background_view_old_calls_still_work_with_a_deprecation_warning() -> None:
    """RunView.update() without a result and finish() with a callable: the old interface."""
    view = RunView(1, rows_html=lambda: "<p>rows</p>", tick=None)
    _ = view.renderer.box
    with pytest.warns(DeprecationWarning, match="without a result"):
        view.update()
    with pytest.warns(DeprecationWarning, match="with a callable"):
        view.finish("done", lambda: "<table>all</table>")
    assert view.renderer.box.children[1].value == "<table>all</table>"
