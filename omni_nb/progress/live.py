"""The magic's live progress display: a widget bar in a notebook front end, text elsewhere.

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

import html
import importlib.util
import sys
import threading
from collections.abc import Callable
from typing import Any, Literal

from ..rows import Row
from .tally import Budget, Tally, Ticker, line_for
from .text import TextProgress

__all__ = ["LiveProgress", "choose_mode", "make_progress"]

Mode = Literal["widget", "text", "off"]


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


class LiveProgress:
    """A ``progress=`` callback for :func:`omni_nb.create_drafts` that says when and why
    sending waits (the rate budget, a 429 pause), with the seconds to the next send and an
    ETA from the budget, redrawn every second while the batch runs.

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
        self._budget = budget
        self._lock = threading.Lock()
        self._text: TextProgress | None = None
        self._tally = Tally(total)
        self._bar: Any = None
        self._label: Any = None
        if mode == "text":
            self._text = TextProgress(
                total, stream=stream if stream is not None else sys.stderr, budget=budget
            )
            self._tally = self._text.tally
        elif mode == "widget":
            self._build_widget(total, display)
        self._ticker: Ticker | None = None
        if tick is not None and mode != "off" and budget is not None:
            self._ticker = Ticker(tick, self.refresh)

    def _build_widget(self, total: int, display: Callable[[Any], Any] | None) -> None:
        import ipywidgets as w

        self._bar = w.IntProgress(value=0, min=0, max=max(total, 1), description="drafts")
        self._label = w.HTML(value=html.escape(self._tally.line()))
        box = w.HBox([self._bar, self._label])
        if display is None:
            from IPython.display import display as show

            display = show
        display(box)

    def __call__(self, done: int, total: int, row: Row) -> None:
        if self._text is not None:
            with self._lock:
                self._text(done, total, row)
            return
        self._tally.total = total
        self._tally.add(done, row)
        if self.mode == "widget":
            self._draw_widget()

    def _draw_widget(self, final: bool = False) -> None:
        t = self._tally
        self._bar.max = max(t.total, 1)
        self._bar.value = t.settled
        hold = None if final or self._budget is None else self._budget.held()
        self._label.value = html.escape(line_for(t, None if final else self._budget))
        if hold is not None:
            self._bar.bar_style = "warning"
        elif final:
            failed = t.done - t.counts["ok"]
            cancelled = t.counts["cancelled"] or t.done < t.total
            self._bar.bar_style = (
                "danger" if cancelled else "success" if failed == 0 else "warning"
            )
        else:
            self._bar.bar_style = ""

    def refresh(self) -> None:
        """Redraw now (the ticker calls this every second: a wait, its countdown and the ETA
        change while no result arrives)."""
        if self._text is not None:
            with self._lock:
                self._text.draw()
        elif self.mode == "widget":
            self._draw_widget()

    def close(self) -> None:
        """Stop the ticker and draw the final state."""
        if self._ticker is not None:
            self._ticker.stop()
        if self.mode == "widget":
            self._draw_widget(final=True)
        elif self._text is not None and self._tally.done < self._tally.total:
            with self._lock:  # interrupted or stopped early: end the line honestly
                self._text.draw(final=True)


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
