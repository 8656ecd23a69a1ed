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

A widget shown by :meth:`WidgetProgress.show` in a kernel is displayed with a display id and,
when its batch ends, replaced by a static summary (HTML and text, no widget): a saved
notebook, GitHub and nbviewer show how the batch ended, never a widget whose model is gone.

:func:`watching` is the display a batch shows when its caller gave none (the Python API's
default): the magic's choice where a person watches, nothing in a script with no terminal.

ipywidgets is imported only when a widget bar is actually drawn; this module itself is
imported only when a batch starts (it pulls in the ledger and so httpx).
"""

from __future__ import annotations

import html as html_text
import importlib.util
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..rows import Row
from .style import CSS, Tone, outcome, paint_html, tone_of
from .tally import Budget, Paint, Snapshot, Tally, Throttle, Ticker, line_for
from .text import TextProgress, is_terminal

__all__ = ["LiveProgress", "WidgetProgress", "choose_mode", "current_shell", "make_progress",
           "static_html", "text_stream", "watching"]

Mode = Literal["widget", "text", "off"]
log = logging.getLogger("omni_nb")
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


def current_shell() -> Any:
    """The running IPython shell, or None (IPython is not imported just to ask: a script
    that never loaded it has no shell).

    Example:
        >>> shell = current_shell()  # None in a script; the shell where IPython runs
        >>> shell is None or hasattr(shell, "user_ns")
        True
    """
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get() if get is not None else None


def _in_kernel(shell: Any) -> bool:
    # A kernel (JupyterLab, nbclient...) has somewhere to show a display; a terminal shell not.
    return getattr(shell, "kernel", None) is not None


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
    ``rows_table``, the newest ``shown_rows`` rows under them, or with ``rows_html`` any HTML
    block), drawn from one snapshot of its own :class:`Tally` each time, redrawn at
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
        rows_table: Callable[[Sequence[Row]], str] | None = None,
        shown_rows: int = 20,
    ) -> None:
        self.description = description
        #: The word before the line (``running``, ``done``...), or None for none.
        self.status = status
        #: Seconds between redraws while results arrive (the last one is always drawn).
        self.interval = interval
        self._every = tick
        self._clock = clock
        self._rows_html = rows_html
        self._rows_table = rows_table
        self._keep = shown_rows if rows_table is not None else 0
        self._lock = threading.RLock()
        self._widgets: tuple[Any, Any, Any, Any] | None = None
        self._ticker: Ticker | None = None
        #: The display id :meth:`show` used in a kernel (None until shown there).
        self.display_id: str | None = None
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
        """Display the bar: given a ``display``, it gets :attr:`box`. Otherwise, in a kernel,
        the view goes out with a display id, and :meth:`finish` replaces it by the static
        summary (:meth:`static_bundle`); a front end that cannot render widgets (a headless
        executor) gets the static summary from the start and builds no widget. Elsewhere
        (terminal IPython) IPython shows :attr:`box` as it does any widget."""
        if display is not None:
            display(self.box)
            return
        from IPython import display as ipd

        ipython_display: Any = ipd.display  # untyped in IPython
        shell = current_shell()
        if not _in_kernel(shell):
            ipython_display(self.box)
            return
        with self._lock:
            self.display_id = self.display_id or uuid.uuid4().hex
            live = not self._final and choose_mode(shell) == "widget"
            bundle = self.mimebundle() if live else self.static_bundle()
        ipython_display(bundle, raw=True, display_id=self.display_id)

    def mimebundle(self) -> dict[str, Any]:
        """What a Jupyter front end renders: the widgets' view (the Jupyter widgets message
        spec's ``widget-view+json``, version 2.0), and the line as text and static HTML for
        a reader that shows no widgets.

        Example:
            >>> sorted(WidgetProgress(2, tick=None).mimebundle())
            ['application/vnd.jupyter.widget-view+json', 'text/html', 'text/plain']
        """
        view = {"version_major": 2, "version_minor": 0, "model_id": self.box.model_id}
        return {_WIDGET_VIEW: view, **self.static_bundle()}

    def static_bundle(self) -> dict[str, str]:
        """The bar as it stands, with no widget: HTML (a coloured bar, the line, the rows or
        the final HTML) and text. What a saved notebook keeps once the batch has ended.

        Example:
            >>> bar = WidgetProgress(2, tick=None)
            >>> bar.finish("done")
            >>> bundle = bar.static_bundle()
            >>> bundle["text/plain"], "widget" in str(bundle)
            ('done: 0/2', False)
        """
        with self._lock:
            snap = self.tally.snapshot()
            tone = outcome(snap.counts, done=snap.done, total=snap.total, final=self._final,
                           held=False, stopped=self._stopped)
            line = self._status_html() + line_for(snap, self._live_budget(), _html_count)
            rows = self._rows_for(snap)
            text = self._text_of(snap)
        return {"text/html": static_html(self.description, snap, tone, line, rows),
                "text/plain": text}

    def _built(self) -> tuple[Any, Any, Any, Any]:
        with self._lock:
            if self._widgets is None:
                import ipywidgets as w

                bar = w.IntProgress(value=0, min=0, max=max(self.tally.total, 1),
                                    description=self.description)
                line = w.HTML(value="")
                rows = w.HTML(value="")
                # JupyterLab's own look for rendered HTML (tables included), so rows in a
                # widget read as the same table shown as output does.
                rows.add_class("jp-RenderedHTMLCommon")
                header = w.HBox([bar, line])
                box = header if not self._has_rows() else w.VBox([header, rows])
                self._widgets = (box, bar, line, rows)
                self._draw()
            return self._widgets

    # -- the interface -----------------------------------------------------------------------

    def start(self, total: int, budget: Budget | None = None) -> None:
        """Begin (again) for a batch of ``total`` items: an empty bar, a fresh tally, the
        ticker running while ``budget`` can hold sending back."""
        self.stop_ticking()
        with self._lock:
            self.tally = Tally(total, clock=self._clock, keep=self._keep)
            self._budget = budget
            self._throttle = Throttle(self.interval, clock=self._clock)
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
        self.replace_display()

    def replace_display(self) -> None:
        """Once the batch has ended, put the static summary where :meth:`show` displayed the
        bar (every display of it): a saved notebook keeps no widget. Nothing when never
        shown in a kernel. Called by :meth:`finish`; again to refresh (a later cell's wait).
        """
        if self.display_id is None or not self._final:
            return
        from IPython import display as ipd

        update: Any = ipd.update_display  # untyped in IPython
        try:
            update(self.static_bundle(), raw=True, display_id=self.display_id)
        except Exception:  # a display that cannot be updated must not fail the batch
            log.debug("progress: the display could not be updated", exc_info=True)

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
        return self._text_of(self.tally.snapshot(), word, paint)

    def _text_of(self, snap: Snapshot, word: str | None = None,
                 paint: Paint | None = None) -> str:
        line = line_for(snap, self._live_budget(), paint)
        word = word or self.status
        return f"{word}: {line}" if word else line

    def _live_budget(self) -> Budget | None:
        return None if self._final else self._budget

    def _status_html(self) -> str:
        return f"{html_text.escape(self.status)}: " if self.status else ""

    def _has_rows(self) -> bool:
        return self._rows_table is not None or self._rows_html is not None

    def _rows_for(self, snap: Snapshot) -> str:
        # The final HTML once given; else the newest rows of the same snapshot as the bar.
        if self._html is not None:
            return self._html
        if self._rows_table is not None:
            return self._rows_table(snap.rows) if snap.rows else ""
        return self._rows_html() if self._rows_html is not None else ""

    def _draw(self) -> None:
        # Under the lock, widgets built: one snapshot draws bar, colour, line and rows, so
        # the bar never says 15/25 over a table of 11 rows; everything is rendered before
        # any widget changes, so the front end gets the four values back to back.
        _, bar, line, rows = self._widgets or self._built()
        snap = self.tally.snapshot()
        held = (not self._final and self._budget is not None
                and self._budget.held() is not None)
        tone = outcome(snap.counts, done=snap.done, total=snap.total, final=self._final,
                       held=held, stopped=self._stopped)
        text = self._status_html() + line_for(snap, self._live_budget(), _html_count)
        table = self._rows_for(snap) if self._has_rows() or self._html is not None else None
        bar.max = max(snap.total, 1)
        bar.value = snap.settled
        bar.bar_style = tone
        line.value = text
        if table is not None:
            rows.value = table


def static_html(description: str, snap: Snapshot, tone: Tone, line: str, rows: str = "") -> str:
    """A progress bar in plain HTML (no widget, no script): the description, a bar filled to
    the settled share in the tone's colour, the line (HTML, already escaped) and ``rows``.

    Example:
        >>> from omni_nb.progress.tally import Snapshot
        >>> html = static_html("drafts", Snapshot(1, 2, {"ok": 1}, 0.0, ()), "success", "1/2")
        >>> 'width:50.0%' in html and "#1a7f37" in html
        True
    """
    share = 100.0 * snap.settled / snap.total if snap.total else 100.0
    fill = CSS[tone] if tone else "#2f81f7"  # running, nothing to say: a neutral blue
    bar = ('<span style="display:inline-block;vertical-align:middle;width:200px;height:10px;'
           'background:#d0d7de;border-radius:2px;overflow:hidden">'
           f'<span style="display:block;width:{share:.1f}%;height:100%;background:{fill}">'
           "</span></span>")
    head = (f'<div class="omni-nb-progress" style="line-height:1.6">'
            f"{html_text.escape(description)} {bar} {line}</div>")
    return head + rows


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

    def close(self, status: str | None = None) -> None:
        """Stop the ticker and draw the final state (``status``: how the batch ended when
        not as its counts say, ``interrupted`` say); a widget bar shown in a kernel becomes
        its static summary."""
        if self.renderer is not None:
            self.renderer.finish(status)


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
    return LiveProgress(total, mode=mode, budget=budget, stream=text_stream(shell))


def watching(
    total: int, *, budget: Budget | None = None, shell: Any = None, stream: Any = None,
    force: bool = False,
) -> LiveProgress | None:
    """The display a batch shows when its caller gave none (``progress=None``): the magic's
    choice (:func:`choose_mode`) where a person watches, None where nobody does.

    * a kernel whose front end renders widgets: the widget bar, replaced by its static
      summary when the batch ends;
    * a headless kernel (nbclient, papermill, ``nbconvert --execute``): a few text lines on
      the cell's stdout;
    * a terminal (``stream``, default :func:`text_stream`, is one): the text bar, redrawn
      in place;
    * anything else (a script or a test with no terminal, a log): None, nothing is written
      (``force=True``, the caller's ``progress=True``: the text lines even there).

    ``shell``: the IPython shell to ask (default: the running one, if any). One item shows
    nothing, as in the magic.

    Example:
        >>> import io
        >>> watching(5, stream=io.StringIO()) is None  # no shell, no terminal: silent
        True
        >>> watching(5, stream=io.StringIO(), force=True).mode
        'text'
    """
    if total <= 1:
        return None
    shell = shell if shell is not None else current_shell()
    mode = choose_mode(shell)
    stream = stream if stream is not None else text_stream(shell)
    if mode == "text" and not (force or _in_kernel(shell) or is_terminal(stream)):
        return None
    return LiveProgress(total, mode=mode, budget=budget, stream=stream)


def text_stream(shell: Any) -> Any:
    """Where a text bar writes: the cell's stdout in a kernel (a notebook shows stderr on
    red, as an error; these lines are not one), stderr elsewhere (a terminal's pipes keep
    their stdout for data).

    Example:
        >>> import sys
        >>> text_stream(None) is sys.stderr
        True
    """
    return sys.stdout if _in_kernel(shell) else sys.stderr

