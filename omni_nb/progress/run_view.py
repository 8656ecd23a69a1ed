"""The live view of a background batch: the widget renderer (a bar, the summary line and the
newest rows, refreshed as answers arrive, all drawn from one snapshot of its tally so the bar
and the table always agree) and what IPython shows of it, text included, with the batch's
error or cancellation when it ends. The rows are the compact results table
(:func:`omni_nb.table.compact_html`) with the CSS it needs where the front end's own does
not reach (inside a widget), so the live table looks as the final one does.

Shown in a kernel, the view goes out with a display id and, when the batch ends, becomes a
static summary (bar, line and the whole table, as HTML and text): a saved notebook keeps no
widget.

ipywidgets is imported only when a view is shown in a front end that renders widgets.

Example:
    >>> view = RunView(3)
    >>> view.mimebundle()["text/plain"]
    'background batch: 0/3'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..rows import Row
from .live import WidgetProgress
from .tally import Budget, Tally

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SHOWN_ROWS", "TABLE_CSS", "RunView", "rows_html", "table_html"]

#: Rows shown under the bar while a batch runs (the newest); the whole table is the handle's.
SHOWN_ROWS = 20

#: The compact table's spacing where a notebook's own table CSS does not reach (a widget's
#: HTML is not rendered output: without it, headings run together). Scoped to the view.
TABLE_CSS = (
    "<style>.omni-nb-live table{border-collapse:collapse;border:none;margin:0.3em 0}"
    ".omni-nb-live th,.omni-nb-live td{padding:0.25em 0.6em;text-align:right;"
    "vertical-align:middle;border:none;border-bottom:1px solid rgba(128,128,128,0.3)}"
    ".omni-nb-live thead th{font-weight:bold}</style>"
)


def table_html(table: pd.DataFrame) -> str:
    """A results table as the view shows it: :func:`omni_nb.table.compact_html` with
    :data:`TABLE_CSS`.

    Example:
        >>> from omni_nb.table import frame_from_rows
        >>> html = table_html(frame_from_rows([Row("d", None, "x", "ok", 200, "", 1, 0.1, 0,
        ...                                         "https://a/api", "r")]))
        >>> html.startswith("<style>") and 'class="omni-nb-live"' in html
        True
    """
    from ..table import compact_html

    return f'{TABLE_CSS}<div class="omni-nb-live">{compact_html(table)}</div>'


def rows_html(rows: Sequence[Row]) -> str:
    """The newest rows as the view shows them (nothing for none).

    Example:
        >>> rows_html([])
        ''
    """
    from ..table import frame_from_rows

    return table_html(frame_from_rows(list(rows))) if rows else ""


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
        #: What draws the view (the same renderer as the magic's bar): the newest rows come
        #: from the renderer's own tally, unless ``rows_html`` (the older form) gives them.
        self.renderer = WidgetProgress(
            total, budget=budget, status="running", interval=1.0, tick=tick,
            rows_html=rows_html, shown_rows=SHOWN_ROWS,
            rows_table=_rows_table if rows_html is None else None)

    def show(self) -> None:
        """Display the view (IPython's display; in a kernel, with a display id that the end
        of the batch updates to the static summary)."""
        self.renderer.show()

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
            bundle: dict[str, Any] = (self.renderer.mimebundle() if running
                                      else self.renderer.static_bundle())
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


def _rows_table(rows: Sequence[Row]) -> str:
    # RunView's parameter of the same name hides rows_html inside __init__.
    return rows_html(rows)
