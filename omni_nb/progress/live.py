"""The widget progress renderer (:class:`WidgetProgress`, every front end's widget bar) and the
magic's live display (:class:`LiveProgress`): a widget bar in a notebook front end, text
elsewhere.

Which one (``mode="auto"``, the default of ``OmniNB.progress``):

* a widget bar (``IntProgress`` + ``HTML``) when the shell is a kernel whose current request
  allows stdin and ipywidgets is installed. Interactive front ends (JupyterLab, Notebook,
  VS Code) send ``allow_stdin=True``; headless executors (nbclient, papermill, nbconvert)
  send ``False``, and they cannot render a widget anyway, so they get text;
* the :class:`omni_nb.progress.text.TextProgress` bar otherwise (terminal IPython, headless runs).

Both show done/total, the rate, per-status counts and, while the shared rate limiter is
paused after a 429, a countdown ("rate limited: resuming in 7 s"). No result arrives during
such a pause, so a small ticker thread redraws once a second until the batch ends.

ipywidgets is imported only when a widget bar is actually drawn; this module itself is
imported only when a batch starts (it pulls in the ledger and so httpx).
"""

from __future__ import annotations

import html as html_text
import importlib.util
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from ..rows import Row
from .style import outcome, paint_html, tone_of
from .tally import Budget, Paint, Tally, Throttle, Ticker, line_for
from .text import TextProgress

__all__ = ["LiveProgress", "WidgetProgress", "choose_mode", "make_progress"]

Mode = Literal["widget", "text", "off"]
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def choose_mode(shell: Any, wanted: str = "auto") -> Mode:
    """The display to use for ``wanted`` (``auto``, ``widget``, ``text`` or ``off``).

    Example:
        >>> choose_mode(None)
        'text'
        >>> choose_mode(None, "off")
        'off'
    """
    if wanted in ("widget", "text", "off"):
        return wanted  # type: ignore[return-value]
    if not _front_end_allows_stdin(shell):
        return "text"
    return "widget" if importlib.util.find_spec("ipywidgets") is not None else "text"


def _front_end_allows_stdin(shell: Any) -> bool:
    # The current execute_request says whether its front end can prompt (interactive) or
    # not (headless executors); ipykernel >= 6 hands it out through the public get_parent().
    get_parent = getattr(getattr(shell, "kernel", None), "get_parent", None)
    if get_parent is None:
        return False
    try:
        parent = get_parent()
    except Exception:  # a kernel of another kind: assume headless, text always works
        return False
    content = parent.get("content") if isinstance(parent, dict) else None
    return isinstance(content, dict) and bool(content.get("allow_stdin"))


class WidgetProgress:
    """The one widget progress renderer: an ``IntProgress`` and an HTML line (plus, with
    ``rows_html``, an HTML block under them), drawn from its own :class:`Tally`, redrawn at
    most every ``interval`` seconds (always for the last result) and, with ``tick`` and a
    budget, every ``tick`` seconds while sending waits. Colours follow :mod:`.style`.

    How a front end uses it: build one, put :attr:`box` in its layout (or :meth:`show` it),
    call :meth:`start` when a batch begins, pass the renderer as the batch's ``progress=``
    callback (it is :meth:`update`), and call :meth:`finish` when the batch ends (with the
    word for how it ended, and HTML to show under the bar if any). :meth:`start` again
    reuses the same widgets for the next batch (the form's case). ipywidgets is imported
    only when :attr:`box` is first used; until then the renderer only counts.

    Example:
        >>> from omni_nb.rows import Row
        >>> bar = WidgetProgress(2, tick=None)
        >>> bar(1, 2, Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r"))
        >>> bar.bar.value, bar.bar.bar_style
        (1, '')
        >>> bar.finish()
        >>> bar.bar.bar_style  # one of two: stopped early
        'danger'
    """

    def __init__(
        self,
        total: int = 0,
        *,
        budget: Budget | None = None,
        description: str = "drafts",
        status: str | None = None,
        interval: float = 0.2,
        tick: float | None = 1.0,
        clock: Callable[[], float] = time.monotonic,
        rows_html: Callable[[], str] | None = None,
    ) -> None:
        self.description = description
        #: The word before the line (``running``, ``done``...), or None for none.
        self.status = status
        self._interval = interval
        self._every = tick
        self._clock = clock
        self._rows_html = rows_html
        self._lock = threading.RLock()
        self._widgets: tuple[Any, Any, Any, Any] | None = None
        self._ticker: Ticker | None = None
        self.start(total, budget)

    # -- the widgets -------------------------------------------------------------------------

    @property
    def box(self) -> Any:
        """The widgets to show (built on first use): the bar and its line, and the rows."""
        return self._built()[0]

    @property
    def bar(self) -> Any:
        """The ``IntProgress``."""
        return self._built()[1]

    @property
    def line(self) -> Any:
        """The ``HTML`` line beside the bar: counts, rate, why sending waits, the ETA."""
        return self._built()[2]

    @property
    def built(self) -> bool:
        """True once the widgets exist (a view never shown never builds them)."""
        return self._widgets is not None

    def show(self, display: Callable[[Any], Any] | None = None) -> None:
        """Display :attr:`box` (IPython's ``display`` unless one is given)."""
        if display is None:
            from IPython.display import display as ipython_display

            display = ipython_display
        display(self.box)

    def mimebundle(self) -> dict[str, Any]:
        """What a Jupyter front end renders: the widgets' view (the Jupyter widgets message
        spec's ``widget-view+json``, version 2.0), and the line as text.

        Example:
            >>> sorted(WidgetProgress(2, tick=None).mimebundle())
            ['application/vnd.jupyter.widget-view+json', 'text/plain']
        """
        view = {"version_major": 2, "version_minor": 0, "model_id": self.box.model_id}
        return {_WIDGET_VIEW: view, "text/plain": self.text()}

    def _built(self) -> tuple[Any, Any, Any, Any]:
        with self._lock:
            if self._widgets is None:
                import ipywidgets as w

                bar = w.IntProgress(value=0, min=0, max=max(self.tally.total, 1),
                                    description=self.description)
                line = w.HTML(value="")
                rows = w.HTML(value="")
                header = w.HBox([bar, line])
                box = header if self._rows_html is None else w.VBox([header, rows])
                self._widgets = (box, bar, line, rows)
                self._draw()
            return self._widgets

    # -- the interface -----------------------------------------------------------------------

    def start(self, total: int, budget: Budget | None = None) -> None:
        """Begin (again) for a batch of ``total`` items: an empty bar, a fresh tally, the
        ticker running while ``budget`` can hold sending back."""
        self.stop_ticking()
        with self._lock:
            self.tally = Tally(total, clock=self._clock)
            self._budget = budget
            self._throttle = Throttle(self._interval, clock=self._clock)
            self._final = False
            self._stopped = False
            self._html: str | None = None
            if self._widgets is not None:
                self._draw()
        if self._every is not None and budget is not None:
            self._ticker = Ticker(self._every, self.tick)

    def update(self, done: int, total: int, row: Row) -> None:
        """Count one result; redraw when the throttle allows (always for the last)."""
        self.tally.total = total
        self.tally.add(done, row)
        if self._widgets is not None and self._throttle.due(final=done == total):
            with self._lock:
                self._draw()

    __call__ = update

    def tick(self) -> None:
        """Redraw now (the ticker's call: a wait's countdown and the ETA change)."""
        if self._widgets is not None:
            with self._lock:
                self._draw()

    def finish(self, status: str | None = None, html: str | None = None) -> None:
        """The batch ended: stop ticking, draw the final state. ``status``: the word for how
        it ended (``done``; anything else, ``cancelled`` or ``failed: ...``, is a stopped
        batch); ``html``: what to show under the bar instead of the newest rows."""
        self.stop_ticking()
        with self._lock:
            if status is not None:
                self.status = status
            self._final = True
            self._stopped = status not in (None, "done")
            self._html = html
            if self._widgets is not None:
                self._draw()

    def stop_ticking(self) -> None:
        """Stop the ticker, if one runs."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def text(self, word: str | None = None, paint: Paint | None = None) -> str:
        """The line as text: ``status: 3/20 ...`` (``word`` instead of the status word; plain,
        unless ``paint`` colours the counts).

        Example:
            >>> WidgetProgress(3, status="running", tick=None).text("background batch")
            'background batch: 0/3'
        """
        budget = None if self._final else self._budget
        line = line_for(self.tally, budget, paint)
        word = word or self.status
        return f"{word}: {line}" if word else line

    def _draw(self) -> None:
        # Under the lock, widgets built: every redraw sets bar, colour, line and rows at once.
        _, bar, line, rows = self._widgets or self._built()
        t = self.tally
        held = (not self._final and self._budget is not None
                and self._budget.held() is not None)
        bar.max = max(t.total, 1)
        bar.value = t.settled
        bar.bar_style = outcome(t.counts, done=t.done, total=t.total, final=self._final,
                                held=held, stopped=self._stopped)
        status = f"{html_text.escape(self.status)}: " if self.status else ""
        budget = None if self._final else self._budget
        line.value = status + line_for(t, budget, _html_count)
        if self._html is not None:
            rows.value = self._html
        elif self._rows_html is not None:  # the newest rows (also for a view shown late)
            rows.value = self._rows_html()


def _html_count(status: str, text: str) -> str:
    return paint_html(tone_of(status), text)


class LiveProgress:
    """A ``progress=`` callback for :func:`omni_nb.create_drafts` that says when and why
    sending waits (the rate budget, a 429 pause), with the seconds to the next send and an
    ETA from the budget, redrawn every second while the batch runs: the magic's choice of
    :class:`WidgetProgress` (displayed at once) or :class:`TextProgress` by ``mode``.

    ``budget`` is what the batch's keys allow (:class:`~omni_nb.progress.tally.Budget`).
    Call :meth:`close` when the batch ends (it draws the final state and stops the ticker).

    Example:
        >>> import io
        >>> bar = LiveProgress(2, mode="text", stream=io.StringIO(), tick=None)
        >>> bar.close()
    """

    def __init__(
        self,
        total: int,
        *,
        mode: Mode = "text",
        budget: Budget | None = None,
        stream: Any = None,
        tick: float | None = 1.0,
        display: Callable[[Any], Any] | None = None,
    ) -> None:
        self.mode = mode
        #: What draws: a widget or a text renderer (None for ``off``).
        self.renderer: WidgetProgress | TextProgress | None = None
        if mode == "text":
            self.renderer = TextProgress(total, stream=stream, budget=budget, tick=tick)
        elif mode == "widget":
            self.renderer = WidgetProgress(total, budget=budget, tick=tick)
            self.renderer.show(display)

    def __call__(self, done: int, total: int, row: Row) -> None:
        if self.renderer is not None:
            self.renderer.update(done, total, row)

    def refresh(self) -> None:
        """Redraw now (a wait, its countdown and the ETA change while no result arrives)."""
        if self.renderer is not None:
            self.renderer.tick()

    def close(self) -> None:
        """Stop the ticker and draw the final state."""
        if self.renderer is not None:
            self.renderer.finish()


def make_progress(
    shell: Any, total: int, *, wanted: str = "auto", budget: Budget | None = None,
) -> LiveProgress | None:
    """The progress display for a batch of ``total`` items, or None (one item, or ``off``).

    ``budget`` says when sending waits and how fast it may go (the batch's keys).

    Example:
        >>> make_progress(None, 1) is None
        True
    """
    if total <= 1:
        return None
    mode = choose_mode(shell, wanted)
    if mode == "off":
        return None
    return LiveProgress(total, mode=mode, budget=budget)
