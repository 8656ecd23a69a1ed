"""Batches that do not hold the kernel: a handle that fills as answers arrive.

1,000 documents at 60 a minute hold a notebook for 17 minutes when run in the foreground.
``create_drafts(..., background=True)`` and ``%omni_draft ... --background`` return at once
with a :class:`BatchRun`: the batch runs on the private event loop (:mod:`omni_nb._loop`),
every row is committed to the ledger as always, the kernel stays free, and another batch on
the same key shares its rate budget. Shown in a notebook, the handle is a live view (the bar
and the newest rows, drawn from one snapshot), which becomes a static summary with the whole
table when the batch ends (a saved notebook keeps no widget).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .._loop import submit
from ..config import Settings
from ..errors import LedgerError
from ..progress.run_view import RunView, table_html
from ..progress.tally import Budget
from ..rows import Row
from . import run as engine
from .budget import budget_for
from .ops import Operation
from .plan import Plan
from .run import BatchOptions, Progress, ledger_of

if TYPE_CHECKING:
    from ..table import DraftResults

__all__ = ["BatchRun", "start"]


class BatchRun:
    """A batch running in the background.

    ``done``; ``wait(timeout)`` -> the results table (None if still running at the timeout);
    ``cancel()`` stops sending (unsent items become ``cancelled`` rows, as a foreground
    interrupt does); ``table``: the rows so far in arrival order while it runs, the whole
    table (input order) once done; ``error``: what stopped it, if it failed.

    Example:
        >>> from omni_nb import create_drafts, sandbox
        >>> with sandbox.serve() as sb:
        ...     run = create_drafts(["doc-0001", "nope"], background=True, ledger="off",
        ...                         base_url=sb.base_url, token=sb.token)
        ...     table = run.wait(timeout=60)
        >>> run.done, table.summary()
        (True, '2 rows: 1 ok, 1 not_found')
    """

    def __init__(self, total: int, budget: Budget | None = None) -> None:
        self._rows: list[Row] = []
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._future: concurrent.futures.Future[tuple[DraftResults, bool]] | None = None
        # The view redraws at most once a second, and every second while sending waits (why,
        # for how long, the ETA), rows or not; it keeps the newest rows itself, so the bar
        # and the rows under it are drawn from one snapshot.
        self._view = RunView(total, budget)
        self._finished = False
        self._end_lock = threading.Lock()
        #: Turns the results table into what the operation returns (None: the table).
        self.shape: Callable[[DraftResults], Any] | None = None

    def __repr__(self) -> str:
        return f"<BatchRun {self._view.mimebundle()['text/plain']}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self._view.mimebundle(**kwargs)

    def _ipython_display_(self) -> None:
        # IPython's display (and a cell ending in the handle): shown with a display id, so
        # the end of the batch can put the static summary in its place.
        self._view.show()

    @property
    def done(self) -> bool:
        """True once the batch has ended (finished, cancelled or failed)."""
        return self._future is not None and self._future.done()

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the batch, if it failed (not set by a cancel)."""
        if not self.done or self._future is None or self._future.cancelled():
            return None
        return self._future.exception()

    @property
    def table(self) -> DraftResults:
        """The whole table once done (also when a ledger write stopped it: the
        LedgerError's ``.result``); the rows received so far while running."""
        if self.done and self.error is None and self._future is not None:
            return self._future.result()[0]
        kept = getattr(self.error, "result", None)
        if kept is not None:
            return cast("DraftResults", kept)
        from ..table import frame_from_rows

        with self._lock:
            return frame_from_rows(list(self._rows))

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the batch ends (or ``timeout`` seconds); what the operation returns
        (the results table; a listing's drafts table), or None if it is still running;
        raises the batch's error if it failed."""
        assert self._future is not None
        try:
            table = self._future.result(timeout)[0]
        except concurrent.futures.TimeoutError:
            return None
        self._ended(self._future)  # the done callback may not have run yet: same view now
        # Again from this cell: a headless executor only hears the cell it is running, and
        # the done callback's update may have gone out between cells.
        self._view.renderer.replace_display()
        return table if self.shape is None else self.shape(table)

    def cancel(self) -> None:
        """Stop sending; the batch ends with the rest ``cancelled`` (and in the ledger)."""
        self._cancel.set()

    def _on_row(self, done: int, total: int, row: Row) -> None:
        with self._lock:
            self._rows.append(row)
        self._view.update(done, total, row)

    def _ended(self, future: concurrent.futures.Future[tuple[DraftResults, bool]]) -> None:
        # Once, from the done callback or from wait(), whichever comes first; the other
        # waits until the view is final (wait() must return with the view already final).
        with self._end_lock:
            if self._finished:
                return
            if future.cancelled() or future.exception() is not None:
                self._view.finish(f"failed: {future.exception()!r}" if not future.cancelled()
                                  else "cancelled")
            else:
                table, _ = future.result()
                status = "cancelled" if self._cancel.is_set() else "done"
                # The whole table under the bar (compact: at most pandas' max_rows are drawn),
                # also for a view first shown after the end.
                self._view.finish(status, table_html(table))
            self._finished = True


def start(
    op: Operation, planned: Plan, *, settings: Settings, options: BatchOptions,
    progress: Progress | None = None, on_table: Callable[[DraftResults], None] | None = None,
    shape: Callable[[DraftResults], Any] | None = None,
) -> BatchRun:
    """Run ``planned`` in the background; the handle returns at once.

    Example:
        >>> from omni_nb import sandbox
        >>> from omni_nb.batch import CREATE_DRAFT, plan
        >>> from omni_nb.config import resolve_settings
        >>> with sandbox.serve() as sb:
        ...     s = resolve_settings(sb.base_url, sb.token, ledger="off")
        ...     run = start(CREATE_DRAFT, plan(["doc-0001"]), settings=s,
        ...                 options=BatchOptions())
        ...     run.wait(timeout=60)["status"].tolist()
        ['ok']
    """
    ledger_of(settings, options)  # a ledger that cannot be used fails here, not in the run
    run = BatchRun(len(planned.distinct), budget_for(settings, options.rate_limit))
    run.shape = shape

    def both(done: int, total: int, row: Row) -> None:
        run._on_row(done, total, row)
        if progress is not None:
            progress(done, total, row)

    async def work() -> tuple[DraftResults, bool]:
        try:
            result = await engine.run(op, planned, settings=settings, options=options,
                                      progress=both, cancel=run._cancel)
        except LedgerError as failed:
            if on_table is not None and failed.result is not None:
                on_table(failed.result)  # a write failed: the table is still the last one
            raise
        if on_table is not None:
            on_table(result[0])
        return result

    run._future = submit(work)
    run._future.add_done_callback(run._ended)
    return run
