"""The form's background work: one job at a time, in order, on a single-worker executor.

Listings and batches run off the kernel's thread, so the kernel stays responsive and Cancel
works. One worker keeps them in order: a listing started by a connection change ends before
the batch queued behind it starts. While a batch runs or waits its turn, no other job is
taken (the form says so).

Example:
    >>> jobs = Jobs()
    >>> future = jobs.start(lambda: 6 * 7)
    >>> jobs.wait(5), future.result() if future else None
    (True, 42)
    >>> jobs.close()
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from ..errors import OmniError

__all__ = ["Jobs"]

log = logging.getLogger("omni_nb")

T = TypeVar("T")

#: on_state(running, batch): running is False once the queue is empty.
OnState = Callable[[bool, bool], None]

_open: weakref.WeakSet[Jobs] = weakref.WeakSet()


class Jobs:
    """A form's queue of background jobs; a job started with a ``cancel`` event is a batch.

    ``on_state(running, batch)`` is told when a job is taken (``running`` True, ``batch``
    whether it is one) and when the queue empties (``running`` False), under the queue's
    lock, so the form's buttons always match it. ``on_error`` receives what a job raised:
    a form shows one line, never a traceback.

    Example:
        >>> jobs = Jobs()
        >>> cancel = threading.Event()
        >>> batch = jobs.start(cancel.wait, cancel=cancel)
        >>> jobs.start(lambda: None) is None  # refused while the batch runs
        True
        >>> jobs.stop()
        >>> jobs.wait(5), jobs.busy
        (True, False)
        >>> jobs.close()
    """

    def __init__(
        self,
        on_state: OnState | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._on_state = on_state
        self._on_error = on_error
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omni_nb-form")
        self._lock = threading.Lock()
        self._last: Future[Any] | None = None
        self._queued = 0  # jobs started so far: a finishing job is last when it is the latest
        self._cancel: threading.Event | None = None  # the batch's, from start until it ends
        _open.add(self)

    @property
    def busy(self) -> bool:
        """True while a job runs or waits its turn."""
        last = self._last
        return last is not None and not last.done()

    @property
    def batch_running(self) -> bool:
        """True from a batch's start until it ends."""
        return self._cancel is not None

    def start(
        self, work: Callable[[], T], *, cancel: threading.Event | None = None
    ) -> Future[T | None] | None:
        """Queue ``work`` (a batch when ``cancel`` is given); None when refused because a
        batch runs. The future's result is what ``work`` returned, None when it raised.

        Example:
            >>> jobs = Jobs()
            >>> jobs.start(lambda: 1 / 0).result()  # on_error has the ZeroDivisionError
            >>> jobs.close()
        """
        batch = cancel is not None
        with self._lock:
            if self._cancel is not None:
                return None
            # The job cannot finish before this block ends (its clean-up takes the lock), and
            # nothing changes when submit raises (a closed queue).
            number = self._queued + 1
            future = self._executor.submit(self._guarded, work, number, batch)
            self._queued, self._last = number, future
            if batch:
                self._cancel = cancel
            if self._on_state is not None:
                self._on_state(True, batch)
            return future

    def stop(self) -> None:
        """Cancel the running batch, if any (its results so far are kept).

        Example:
            >>> Jobs().stop()
        """
        cancel = self._cancel
        if cancel is not None:
            cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every job started so far has ended; False if ``timeout`` passed first.

        Example:
            >>> Jobs().wait(0)
            True
        """
        last = self._last
        if last is None:
            return True
        done, _ = wait([last], timeout)
        return bool(done)

    def close(self) -> None:
        """Cancel the batch, let the queue end and stop the worker thread; starts nothing
        after this.

        Example:
            >>> Jobs().close()
        """
        self.stop()
        self._executor.shutdown(wait=True)
        _open.discard(self)

    def _guarded(self, work: Callable[[], T], number: int, batch: bool) -> T | None:
        try:
            return work()
        except Exception as exc:
            if not isinstance(exc, OmniError):
                log.debug("DraftForm: unexpected error", exc_info=True)
            if self._on_error is not None:
                self._on_error(exc)
            return None
        finally:
            with self._lock:
                if batch:
                    self._cancel = None
                if number == self._queued and self._on_state is not None:
                    self._on_state(False, False)  # no job queued behind this one


def _cancel_batches() -> None:
    # The executor's worker is joined when the interpreter exits (a kernel shutting down or
    # restarting): a batch still running would hold the exit until its last item. Cancelling
    # ends it in moments, with its unanswered items in the ledger as 'cancelled' rows.
    for jobs in list(_open):
        jobs.stop()


# threading's exit hooks run in reverse order of registration, before threads are joined:
# registered after concurrent.futures' own (imported above), this one runs first.
_register_atexit: Callable[[Callable[[], None]], None] | None = getattr(
    threading, "_register_atexit", None
)
if _register_atexit is not None:
    _register_atexit(_cancel_batches)
