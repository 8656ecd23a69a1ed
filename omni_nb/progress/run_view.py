"""The live view of a background batch: the widget renderer (a bar, the summary line and the
newest rows, refreshed as answers arrive) and what IPython shows of it, text included, with
the batch's error or cancellation when it ends.

ipywidgets is imported only when a view is shown in a front end that renders widgets.

Example:
    >>> view = RunView(3)
    >>> view.mimebundle()["text/plain"]
    'background batch: 0/3'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from ..rows import Row
from .live import WidgetProgress
from .tally import Budget, Tally

__all__ = ["SHOWN_ROWS", "RunView"]

#: Rows shown under the bar while a batch runs (the newest); the whole table is the handle's.
SHOWN_ROWS = 20


class RunView:
    """A background batch's :class:`WidgetProgress` (status ``running`` until it ends, one
    redraw a second at most) and its text for where widgets do not render.

    Example:
        >>> view = RunView(1, rows_html=lambda: "")
        >>> view.finish("cancelled")
        >>> view.mimebundle()["text/plain"]
        'cancelled: 0/1'
    """

    def __init__(self, total: int, budget: Budget | None = None,
                 rows_html: Callable[[], str] | None = None, tick: float | None = 1.0) -> None:
        #: What draws the view (the same renderer as the magic's bar).
        self.renderer = WidgetProgress(total, budget=budget, status="running", interval=1.0,
                                       tick=tick, rows_html=rows_html)

    @property
    def tally(self) -> Tally:
        """What the view counts."""
        return self.renderer.tally

    def mimebundle(self, **kwargs: Any) -> dict[str, Any]:
        """What IPython shows: the live widget where a front end can render it, else text
        (``kwargs``: IPython's include/exclude, which the view does not need)."""
        running = self.renderer.status == "running"
        text = self.renderer.text("background batch" if running else None)
        try:
            bundle = self.renderer.mimebundle()
        except ImportError:  # no ipywidgets: the text line is the view
            bundle = {}
        bundle["text/plain"] = text
        return bundle

    def update(self, done: int | None = None, total: int | None = None, row: Row | None = None,
               rows_html: Callable[[], str] | None = None) -> None:
        """Count one result (the renderer redraws when its throttle allows).

        Called without a result (the old ``update(rows_html)``: redraw now), it redraws, with
        a DeprecationWarning: the renderer now counts, redraws and ticks on its own.
        """
        if done is None or total is None or row is None:
            warnings.warn("RunView.update() without a result is deprecated: the view redraws "
                          "on its own (renderer.tick() redraws now)", DeprecationWarning,
                          stacklevel=2)
            self.renderer.tick()
            return
        self.renderer.update(done, total, row)

    def finish(self, status: str, html: str | Callable[[], str] | None = None) -> None:
        """The batch ended: ``status`` is the final line's word (done, cancelled, failed:...);
        ``html`` replaces the newest rows (the whole table, say). A callable (the old form)
        still works, with a DeprecationWarning."""
        if callable(html):
            warnings.warn("RunView.finish(status, rows_html) with a callable is deprecated: "
                          "pass the HTML", DeprecationWarning, stacklevel=2)
            html = html() if self.renderer.built else None
        self.renderer.finish(status, html)
