"""The form's run panel: the progress bar, the counts per status, the status line and the output
area, and the error the status line last showed. Every part of the form reports through it
(a create run, a discard, a listing, a connection check), so none reaches into another.

Example:
    >>> panel = RunPanel()
    >>> panel.say("Connecting…")
    >>> panel.message.value
    '<span style="color:inherit">Connecting…</span>'
    >>> panel.fail("Could not\\n  list  ")
    >>> panel.error
    'Could not list'
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import ipywidgets as w

from .._text import one_line as _one_line
from ..errors import APIConnectionError, AuthenticationError, OmniError
from ..progress.live import WidgetProgress
from ..progress.style import ended
from ..progress.tally import Budget, Tally
from ..rows import Row

if TYPE_CHECKING:
    import pandas as pd

    from ..table import DraftResults

__all__ = ["RunPanel", "error_line", "one_line"]

_LINE = 400  # characters at most in the status line
_TICK = 1.0  # seconds between redraws while no result arrives (a wait's countdown moves)
#: The problems a results table's summary names after it, with what each means.
_PROBLEMS = (("unauthorized", "The token was refused"),
             ("network_error", "Could not reach the instance"),
             ("invalid", "Invalid ids were not sent"))

T = TypeVar("T")

#: What a batch calls with each result: (done, total, row).
OnProgress = Callable[[int, int, Row], None]


class RunPanel:
    """The bar, the counts, the status line and the output area of a form, and what they
    show: :meth:`start` a run, :meth:`update` it from a :class:`~omni_nb.progress.Tally`,
    :meth:`finish` it; :meth:`say` a line, :meth:`fail` with one; :meth:`show` a table.

    ``error`` is the last error line shown (None once a plain line replaced it);
    ``redraw_interval`` the seconds between redraws while results arrive.

    Example:
        >>> panel = RunPanel()
        >>> tally = panel.start("Creating drafts for 2 ids…", 2)
        >>> (panel.progress.value, panel.progress.max, panel.counts.value)
        (0, 2, '0/2')
        >>> panel.finish(ok=False, cancelled=True)
        >>> panel.progress.bar_style
        'danger'
    """

    def __init__(self, redraw_interval: float = 0.1) -> None:
        #: The last error line shown (None when the last line was no error).
        self.error: str | None = None
        #: The one widget progress renderer (the magic's and a background run's too): it
        #: draws the bar and its line, counts, rate, waits and ETA, in the one colour rule.
        self.renderer = WidgetProgress(0, description="", tick=_TICK,
                                       interval=redraw_interval)
        self.progress = self.renderer.bar
        self.progress.layout.width = "300px"
        self.counts = self.renderer.line
        self.message = w.HTML(value="")
        self.output = w.Output(layout=w.Layout(max_height="420px", overflow="auto"))
        #: The bar and the counts, side by side (the form lays the rest out).
        self.bar_row = self.renderer.box
        #: The counts of the last run :meth:`start` began (None before the first).
        self.tally: Tally | None = None

    @property
    def redraw_interval(self) -> float:
        """Seconds between progress redraws while results arrive (the last is always drawn).

        Example:
            >>> RunPanel(redraw_interval=0.5).redraw_interval
            0.5
        """
        return self.renderer.interval

    @redraw_interval.setter
    def redraw_interval(self, seconds: float) -> None:
        self.renderer.interval = seconds

    # -- the status line ---------------------------------------------------------------------

    def say(self, text: str, ok: bool = False) -> None:
        """Show ``text`` as the status line (green when ``ok``); the error is cleared.

        Example:
            >>> panel = RunPanel()
            >>> panel.fail("boom"); panel.say("Done", ok=True)
            >>> panel.error, panel.message.value
            (None, '<span style="color:#1a7f37">Done</span>')
        """
        self.error = None
        color = "#1a7f37" if ok else "inherit"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def fail(self, problem: BaseException | str) -> None:
        """Show ``problem`` as the error line (one line, see :func:`error_line`), kept in
        ``error``.

        Example:
            >>> panel = RunPanel()
            >>> panel.fail(KeyError("x"))
            >>> panel.error
            "Unexpected error: KeyError: 'x'"
        """
        line = error_line(problem)
        self.error = line
        self.message.value = f'<span style="color:#cf222e">⚠ {html.escape(line)}</span>'

    # -- a run -------------------------------------------------------------------------------

    def start(self, doing: str, total: int, budget: Budget | None = None) -> Tally:
        """A run begins: the output is cleared, the bar empty, the status line says
        ``doing``; returns the tally its results are counted in (with ``budget``, the line
        says every second why sending waits and for how long).

        Example:
            >>> panel = RunPanel()
            >>> panel.start("Listing…", 3).total, panel.message.value
            (3, '<span style="color:inherit">Listing…</span>')
        """
        self.output.outputs = ()
        self.renderer.start(total, budget)
        tally = self.tally = self.renderer.tally
        self.say(doing)
        return tally

    def update(self, tally: Tally) -> None:
        """Draw the bar and the counts from ``tally`` now (counts made elsewhere).

        Example:
            >>> panel, tally = RunPanel(), Tally(4, clock=lambda: 0.0)
            >>> panel.update(tally)
            >>> panel.progress.max, panel.counts.value
            (4, '0/4')
        """
        self.renderer.tally = self.tally = tally
        self.renderer.tick()

    def run(self, doing: str, total: int, work: Callable[[OnProgress], T],
            budget: Budget | None = None) -> T:
        """:meth:`start`, then ``work(on_progress)`` with the bar and counts live (redrawn
        every ``redraw_interval`` as results arrive, and every second while none does); the
        last result is drawn. Returns what ``work`` returned.

        Example:
            >>> panel = RunPanel()
            >>> panel.run("Counting…", 0, lambda on_progress: "done")
            'done'
        """
        self.start(doing, total, budget)
        try:
            # The renderer counts every result and redraws when its throttle allows (a
            # resumed 100k batch must not flood the browser), and every second while none
            # arrives (why sending waits, for how long, the ETA).
            out = work(self.renderer.update)
        finally:
            self.renderer.stop_ticking()
        self.renderer.tick()  # the last result, drawn
        return out

    def finish(self, ok: bool, *, cancelled: bool = False) -> None:
        """Colour the bar for the run's end: green when ``ok``, red when cancelled, else
        amber.

        Example:
            >>> panel = RunPanel()
            >>> panel.finish(ok=True); panel.progress.bar_style
            'success'
        """
        self.progress.bar_style = ended(ok, stopped=cancelled)  # the one colour rule

    def report(self, table: DraftResults, *, cancelled: bool, label: str = "") -> None:
        """End a run on its results table: the bar's colour, and the summary as the status
        line, or as the error line with the problems it had (a refused token, an unreachable
        host, invalid ids). A Cancel is no error: the summary says what it left.

        Example:
            >>> from omni_nb.table import frame_from_rows
            >>> panel = RunPanel()
            >>> panel.report(frame_from_rows([]), cancelled=False, label="Discard: ")
            >>> panel.error, panel.progress.bar_style
            (None, 'success')
        """
        summary = table.summary()
        statuses = table["status"].astype(str)
        problems: list[str] = []
        for status, what in _PROBLEMS:
            hits = table[statuses == status]
            if len(hits):
                problems.append(f"{what} ({len(hits)}): {hits['message'].iloc[0]}")
        ok = not problems and bool((statuses == "ok").all())
        self.finish(ok, cancelled=cancelled)
        head = f"Cancelled: {label}{summary}" if cancelled else label + summary
        if problems:
            self.fail(f"{head}. " + " · ".join(problems))
        else:
            self.say(head, ok=ok)

    # -- the output area ---------------------------------------------------------------------

    def show(self, table: pd.DataFrame, html_text: str | None = None, *,
             text: str | None = None) -> None:
        """Show ``table`` in the output area (as ``html_text`` when given, else as a notebook
        shows it; as ``text`` where no HTML is read, else the table's repr), replacing what
        was there.

        Example:
            >>> from omni_nb.table import frame_from_rows
            >>> panel = RunPanel()
            >>> panel.show(frame_from_rows([]))
            >>> panel.output.outputs[0]["data"]["text/plain"].splitlines()[0]
            '0 rows'
        """
        # What Output.append_display_data does, without asking for an InteractiveShell (the
        # form also runs in scripts and tests); replacing ``outputs`` is safe from a thread.
        shown = html_text if html_text is not None else notebook_html(table)
        bundle = {"text/plain": repr(table) if text is None else text, "text/html": shown}
        self.output.outputs = (
            {"output_type": "display_data", "data": bundle, "metadata": {}},
        )


def notebook_html(frame: pd.DataFrame) -> str:
    """``frame`` as a notebook shows it (with pandas' default display options): a results
    table's compact view, pandas' table for any other frame (the first and last rows of a
    long one).

    Example:
        >>> from omni_nb.table import dry_run_frame
        >>> "<table" in notebook_html(dry_run_frame([], "nothing"))
        True
    """
    # Imported here: a table exists, so pandas is loaded; importing the form loads neither.
    from ..table import compact_html, is_results_frame

    if is_results_frame(frame):
        return compact_html(frame)
    # pandas' notebook defaults (display.max_rows 60, min_rows 10, max_columns 20,
    # show_dimensions 'truncate'): a frame longer than 60 rows shows its first and last 5.
    view: Any = frame
    text: str = view.to_html(notebook=True, max_rows=60 if len(frame) <= 60 else 10,
                             max_cols=20, show_dimensions="truncate")
    return text


def error_line(problem: BaseException | str) -> str:
    """The form's error line for ``problem``: one line, at most 400 characters, saying what
    kind of trouble it is (a refused token, an unreachable host, a bug).

    Example:
        >>> error_line(AuthenticationError(403, "Invalid bearer token"))
        'The token was refused: AuthenticationError: HTTP 403: Invalid bearer token'
        >>> error_line(KeyError("x"))
        "Unexpected error: KeyError: 'x'"
    """
    if isinstance(problem, BaseException):
        prefix = ""
        if isinstance(problem, AuthenticationError):
            prefix = "The token was refused: "
        elif isinstance(problem, APIConnectionError):
            prefix = "Could not reach the instance: "
        elif not isinstance(problem, OmniError):
            prefix = "Unexpected error: "
        text = f"{prefix}{type(problem).__name__}: {problem}"
    else:
        text = problem
    return _one_line(text, _LINE)


#: The name :func:`error_line` had when the form kept it (``omni_nb.widget.form.one_line``).
one_line = error_line
