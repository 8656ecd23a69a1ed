"""Running a batch in the form with its progress live: the bar, the counts per status, the
waiting line (the rate budget, a 429 pause) redrawn every second. Creating, discarding and
listing drafts all run through :func:`run_live`.

Example:
    >>> # table = run_live(form, "Creating drafts…", 10, settings, options,
    >>> #                  lambda progress: run_batch(..., progress=progress))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..batch import BatchOptions, Progress
from ..batch.budget import budget_for
from ..config import Settings
from ..progress.tally import Tally, Throttle, Ticker
from ..rows import Row

if TYPE_CHECKING:
    from .form import DraftForm

__all__ = ["run_live"]

T = TypeVar("T")


def run_live(form: DraftForm, doing: str, total: int, settings: Settings,
             options: BatchOptions, work: Callable[[Progress], T]) -> T:
    """Run ``work(progress)`` (in the form's job thread) with the form's output cleared, its
    status line saying ``doing`` and its bar and counts live; the last result is drawn.

    Example:
        >>> # run_live(form, "Listing…", 3, settings, options, lambda p: list_with(..., progress=p))
    """
    form.output.outputs = ()
    form.progress.bar_style = ""
    form.progress.max = max(total, 1)
    form.progress.value = 0
    tally = Tally(total)
    throttle = Throttle(form.redraw_interval)
    budget = budget_for(settings, options.rate_limit)

    def on_progress(done: int, total: int, row: Row) -> None:
        # Runs in the batch's event-loop thread: count every result, redraw when the
        # throttle allows (a resumed 100k batch must not flood the browser).
        tally.total = total
        tally.add(done, row)
        if throttle.due(final=done == total):
            form._draw(tally, budget)

    form.counts.value = tally.line()
    form._say(doing)
    # Every second: why sending waits (the budget, a 429 pause), for how long, the ETA.
    ticker = Ticker(1.0, lambda: form._draw(tally, budget))
    try:
        out = work(on_progress)
    finally:
        ticker.stop()
    form._draw(tally)
    return out
