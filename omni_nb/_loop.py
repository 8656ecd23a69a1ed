"""The asyncio bridge: run a coroutine to completion from synchronous code, anywhere.

A Jupyter kernel already runs an event loop in the main thread, so ``asyncio.run`` fails
there. Patching asyncio (nest-asyncio) is global, its last release is archived and breaks on
Python 3.12+/3.14; the maintained fork still patches globally. Instead the coroutine runs on
one private event loop in a daemon thread: nothing global changes, it works the same in a
script, a kernel, or after a user's own ``nest_asyncio.apply()``, and an interrupt in the
caller's thread cancels the task promptly (tests/test_batch.py interrupts a running batch).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync", "submit"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _private_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            # A plain SelectorEventLoop/ProactorEventLoop from the policy-free constructor,
            # so a global patch of asyncio.run/new_event_loop cannot reach it.
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=serve, name="omni_nb-loop", daemon=True).start()
            ready.wait()
            _loop = loop
        return _loop


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` on the private loop and wait; Ctrl-C cancels it and waits for its
    clean-up (which records what was received), then the result is returned.

    Example:
        >>> async def answer() -> int:
        ...     return 42
        >>> run_sync(answer)
        42
    """
    loop = _private_loop()
    task_box: list[asyncio.Task[T]] = []

    async def wrapper() -> T:
        task = asyncio.ensure_future(make())
        task_box.append(task)
        return await asyncio.shield(task)

    future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(wrapper(), loop)
    try:
        return future.result()
    except KeyboardInterrupt:
        # Cancel the batch inside its loop; it records cancelled rows and returns its table.
        if task_box:
            loop.call_soon_threadsafe(task_box[0].cancel)
        return future.result()


def submit(make: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
    """Start ``make()`` on the private loop and return at once (a background batch); cancel
    the returned future to cancel the task.

    Example:
        >>> async def answer() -> int:
        ...     return 42
        >>> submit(answer).result(timeout=10)
        42
    """

    async def wrapper() -> T:
        return await make()

    return asyncio.run_coroutine_threadsafe(wrapper(), _private_loop())
