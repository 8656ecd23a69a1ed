"""How every part of the form runs its work: one background queue (:class:`~.jobs.Jobs`), the
options every batch runs with (the concurrency box among them), and the run panel that a job's
error and a refused start are reported to.

Example:
    >>> from omni_nb.batch import BatchOptions
    >>> from omni_nb.widget.panel import RunPanel
    >>> worker = Worker(RunPanel(), BatchOptions(rate_limit=None), concurrency=3)
    >>> worker.start(lambda cancel: 6 * 7, wait=True)
    42
    >>> worker.options().concurrency
    3
    >>> worker.close()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import ipywidgets as w

from ..batch import BatchOptions
from .jobs import Jobs, OnState
from .panel import RunPanel

__all__ = ["Worker"]

T = TypeVar("T")


class Worker:
    """The form's queue of jobs and the options its batches run with.

    ``on_state(running, batch)`` is told when the queue takes a job and when it empties
    (under its lock: the form enables its buttons from it); a job's error goes to the
    ``panel``'s error line. ``concurrency`` is the box's first value.

    Example:
        >>> from omni_nb.batch import BatchOptions
        >>> panel = RunPanel()
        >>> worker = Worker(panel, BatchOptions(rate_limit=None))
        >>> worker.start(lambda event: event.wait(), wait=False) is None
        True
        >>> worker.start(lambda event: 1, wait=True) is None  # refused while the batch runs
        True
        >>> panel.error
        'A batch is already running; wait for it or Cancel it.'
        >>> worker.close()
    """

    def __init__(self, panel: RunPanel, options: BatchOptions, *, concurrency: int = 8,
                 on_state: OnState | None = None) -> None:
        self._panel = panel
        self._options = options  # how every batch runs; each job fills in the concurrency
        self._jobs = Jobs(on_state=on_state, on_error=panel.fail)
        self.concurrency = w.BoundedIntText(value=concurrency, min=1, max=100,
                                            description="Concurrency",
                                            style={"description_width": "initial"},
                                            layout=w.Layout(width="160px"))

    @property
    def base_options(self) -> BatchOptions:
        """The options the form was given (rate limit, retries, timeout, ledger).

        Example:
            >>> Worker(RunPanel(), BatchOptions(timeout=5.0)).base_options.timeout
            5.0
        """
        return self._options

    def options(self) -> BatchOptions:
        """The options for a job starting now: the form's, at the concurrency shown.

        Example:
            >>> worker = Worker(RunPanel(), BatchOptions(rate_limit=None))
            >>> worker.concurrency.value = 2
            >>> worker.options().concurrency
            2
        """
        return replace(self._options, concurrency=int(self.concurrency.value))

    @property
    def busy(self) -> bool:
        """True while a job runs or waits its turn.

        Example:
            >>> Worker(RunPanel(), BatchOptions()).busy
            False
        """
        return self._jobs.busy

    @property
    def batch_running(self) -> bool:
        """True from a batch's start until it ends.

        Example:
            >>> Worker(RunPanel(), BatchOptions()).batch_running
            False
        """
        return self._jobs.batch_running

    def start(self, work: Callable[[threading.Event], T], *, wait: bool,
              batch: bool = True) -> T | None:
        """Queue ``work(cancel)`` (a batch, which Cancel stops through ``cancel``, unless
        ``batch`` is False); its result when ``wait``, else None at once. The error line is
        cleared; a start refused because a batch runs says so there.

        Example:
            >>> worker = Worker(RunPanel(), BatchOptions())
            >>> worker.start(lambda cancel: cancel.is_set(), wait=True, batch=False)
            False
            >>> worker.close()
        """
        cancel = threading.Event()
        self._panel.error = None
        job = self._jobs.start(lambda: work(cancel), cancel=cancel if batch else None)
        if job is None:
            self._panel.fail("A batch is already running; wait for it or Cancel it.")
            return None
        return job.result() if wait else None

    def queue(self, work: Callable[[], object]) -> bool:
        """Queue ``work`` behind the jobs already queued (no Cancel: a listing); False when
        refused because a batch runs.

        Example:
            >>> worker = Worker(RunPanel(), BatchOptions())
            >>> worker.queue(lambda: None), worker.wait(5)
            (True, True)
            >>> worker.close()
        """
        return self._jobs.start(work) is not None

    def stop(self) -> None:
        """Cancel the running batch, if any (its results so far are kept).

        Example:
            >>> Worker(RunPanel(), BatchOptions()).stop()
        """
        self._jobs.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every job queued so far has ended; False if ``timeout`` passed first.

        Example:
            >>> Worker(RunPanel(), BatchOptions()).wait(0)
            True
        """
        return self._jobs.wait(timeout)

    def close(self) -> None:
        """Cancel the batch, let the queue end and stop its thread.

        Example:
            >>> Worker(RunPanel(), BatchOptions()).close()
        """
        self._jobs.close()
