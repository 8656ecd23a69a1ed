"""The asyncio bridge: run a coroutine to completion from synchronous code, anywhere.

A Jupyter kernel already runs an event loop in the main thread, so ``asyncio.run`` fails
there. Patching asyncio (nest-asyncio) is global, its last release is archived and breaks on
Python 3.12+/3.14; the maintained fork still patches globally. Instead the coroutine runs on
one private event loop in a daemon thread: nothing global changes, it works the same in a
script, a kernel, or after a user's own ``nest_asyncio.apply()``, and an interrupt in the
caller's thread cancels the task promptly (tests/batch/test_batch.py interrupts a running batch).

The loop and its thread come from anyio: a :class:`~anyio.from_thread.BlockingPortal` that
``anyio.run`` opens in a daemon thread and keeps for the life of the process, so every batch,
foreground or background, runs on one loop; calls cross into it with ``portal.call``. Three
parts stay ours, each for a reason found by trying: ``start_blocking_portal`` must be exited
before interpreter shutdown or the exit hangs (its clean-up waits on a thread that shutdown
has frozen), so the thread is ours; a cancelled portal future drops the coroutine's result,
and anyio's cancel scopes are level-triggered (every later await in the scope is cancelled
again, cutting a batch's clean-up short), so the coroutine runs as a plain asyncio task,
cancelled once, whose outcome reaches the caller through a future of our own; and
``BlockingPortalProvider`` stops the loop when its last user leaves: not one loop.

Measured against the hand-written loop thread it replaced (``benchmarks/bench_loop.py``, same
run, 2 busy cores, medians of 7 rounds, two runs): 200 ``run_sync`` calls of a coroutine that
returns at once took 30.8 vs 9.9 ms, then 15.8 vs 15.0 ms (``portal.call`` costs about 60 us,
paid once per ``run_sync``, so once per batch); a 300-document ``create_drafts``
against the sandbox took 457 vs 422 ms, then 407 vs 416 ms: no difference a batch shows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

__all__ = ["run_sync", "submit"]

T = TypeVar("T")

_lock = threading.Lock()
_portal: BlockingPortal | None = None


def _open_portal() -> BlockingPortal:
    opened: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()

    async def serve() -> None:
        async with BlockingPortal() as portal:
            opened.set_result(portal)
            await portal.sleep_until_stopped()

    def run() -> None:
        try:
            anyio.run(serve)
        except BaseException as exc:  # the loop could not start: say so to the caller
            if not opened.done():
                opened.set_exception(exc)
            raise

    threading.Thread(target=run, name="omni_nb-loop", daemon=True).start()
    return opened.result()


def _portal_now() -> BlockingPortal:
    global _portal
    with _lock:
        if _portal is None:
            _portal = _open_portal()
        return _portal


def _forget_portal() -> None:
    # A forked child has the parent's portal object but not its thread: open a new one.
    global _lock, _portal
    _lock = threading.Lock()
    _portal = None


os.register_at_fork(after_in_child=_forget_portal)


#: Tasks still running, held here: the loop keeps only weak references to its tasks.
_tasks: set[asyncio.Task[Any]] = set()


class _Run(Generic[T]):
    """One coroutine on the private loop: a plain asyncio task, cancelled at most once, and
    ``outcome``, the future the caller waits on.

    ``outcome`` exists before anything is scheduled, so an interrupt that lands while the
    task is being started still has something to cancel and wait for. :meth:`start`,
    :meth:`cancel` and the task's callback all run in the loop's thread: no lock."""

    def __init__(self, make: Callable[[], Coroutine[Any, Any, T]]) -> None:
        self._make = make
        self.outcome: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._task: asyncio.Task[T] | None = None
        self._loop_thread: int | None = None

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        if self.outcome.done():  # cancelled before it started
            return
        try:
            coroutine = self._make()
        except Exception as exc:  # the caller hears of it from ``outcome``, as of any error
            self.outcome.set_exception(exc)
            return
        task = self._task = asyncio.get_running_loop().create_task(coroutine)
        _tasks.add(task)
        task.add_done_callback(self._settle)

    def cancel(self) -> None:
        if self._task is None:
            self.outcome.cancel()
        else:
            self._task.cancel()

    def _settle(self, task: asyncio.Task[T]) -> None:
        _tasks.discard(task)
        # Read the error even when nobody waits (the caller cancelled ``outcome``), so asyncio
        # does not log it as never retrieved.
        error = None if task.cancelled() else task.exception()
        # The caller may cancel ``outcome`` from its thread at any moment, even now.
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            if task.cancelled():
                self.outcome.cancel()
            elif error is not None:
                self.outcome.set_exception(error)
            else:
                self.outcome.set_result(task.result())

    def cancel_from(self, portal: BlockingPortal) -> None:
        """Cancel the task from any thread (the caller cancelled ``outcome``)."""
        if threading.get_ident() == self._loop_thread:
            self.cancel()
        else:
            portal.call(self.cancel)


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` on the private loop and wait; Ctrl-C cancels it and waits for its
    clean-up (which records what was received), then the result is returned.

    A coroutine that lets the cancel through (returns no result) re-raises the interrupt.

    Example:
        >>> async def answer() -> int:
        ...     return 42
        >>> run_sync(answer)
        42
    """
    portal = _portal_now()
    run = _Run(make)
    try:
        portal.call(run.start)
        return run.outcome.result()
    except KeyboardInterrupt as interrupt:
        # Cancel the batch inside its loop; it records cancelled rows and returns its table.
        portal.call(run.cancel)
        try:
            return run.outcome.result()
        except concurrent.futures.CancelledError:
            raise interrupt from None


def submit(make: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
    """Start ``make()`` on the private loop and return at once (a background batch); cancel
    the returned future to cancel the task.

    Example:
        >>> async def answer() -> int:
        ...     return 42
        >>> submit(answer).result(timeout=10)
        42
    """
    portal = _portal_now()
    run = _Run(make)
    portal.call(run.start)

    def cancelled(outcome: concurrent.futures.Future[T]) -> None:
        if outcome.cancelled():
            run.cancel_from(portal)

    run.outcome.add_done_callback(cancelled)
    return run.outcome
