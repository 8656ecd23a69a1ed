"""The live view of a background batch: a bar, the summary, the newest rows, refreshed as
answers arrive, and the batch's error or cancellation when it ends.

ipywidgets is imported only when a view is built (a handle shown in a notebook front end).

Example:
    >>> view = RunView(3)
    >>> view.mimebundle()["text/plain"]
    'background batch: 0/3'
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

from .tally import Budget, Tally, line_for

__all__ = ["RunView"]

#: Rows shown under the bar while a batch runs (the newest); the whole table is the handle's.
SHOWN_ROWS = 20


class RunView:
    """Widgets drawn from a :class:`Tally` and an HTML rendering of the newest rows."""

    def __init__(self, total: int, budget: Budget | None = None) -> None:
        self.tally = Tally(total)
        self._budget = budget
        self._lock = threading.Lock()
        self._box: Any = None
        self._status = "running"

    def _widgets(self) -> Any:
        with self._lock:
            if self._box is None:
                import ipywidgets as w

                bar = w.IntProgress(value=0, min=0, max=max(self.tally.total, 1),
                                    description="drafts")
                label = w.HTML(value=html.escape(self._line()))
                rows = w.HTML(value="")
                self._box = w.VBox([w.HBox([bar, label]), rows])
            return self._box

    def _line(self) -> str:
        budget = self._budget if self._status == "running" else None
        return f"{self._status}: {line_for(self.tally, budget)}"

    def mimebundle(self, **kwargs: Any) -> dict[str, Any]:
        """What IPython shows: the live widget where a front end can render it, else text."""
        text = f"background batch: {line_for(self.tally, self._budget)}" \
            if self._status == "running" else self._line()
        try:
            bundle: dict[str, Any] = self._widgets()._repr_mimebundle_(**kwargs) or {}
        except ImportError:  # no ipywidgets: the text line is the view
            bundle = {}
        bundle["text/plain"] = text
        return bundle

    def update(self, rows_html: Callable[[], str] | None = None) -> None:
        """Redraw the bar and the line, and the rows when given (built only if shown)."""
        box = self._box
        if box is None:
            return
        header, rows = box.children
        bar, label = header.children
        bar.max = max(self.tally.total, 1)
        bar.value = self.tally.settled
        label.value = html.escape(self._line())
        if rows_html is not None:
            rows.value = rows_html()

    def finish(self, status: str, rows_html: Callable[[], str] | None = None) -> None:
        """The batch ended: ``status`` is the final line's word (done, cancelled, failed:...)."""
        self._status = status
        self.update(rows_html)
        if self._box is not None:
            bar = self._box.children[0].children[0]
            ok = status == "done" and self.tally.counts["ok"] == self.tally.done
            bar.bar_style = "success" if ok else ("warning" if status == "done" else "danger")
