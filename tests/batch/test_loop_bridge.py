"""The event-loop bridge (:mod:`omni_nb._loop`): results, errors, interrupts and cancels cross
from the caller's thread to the private loop and back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from omni_nb._loop import run_sync, submit

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0  # generous: two busy cores


class Boom(Exception):
    """An error raised inside the loop."""


async def answer() -> int:
    return 42


def test_result_comes_back() -> None:
    """run_sync returns what the coroutine returned."""
    assert run_sync(answer) == 42


def test_exception_propagates_with_its_type() -> None:
    """An exception raised by the coroutine is raised by run_sync, as itself."""

    async def fail() -> None:
        raise Boom("inside the loop")

    with pytest.raises(Boom, match="inside the loop"):
        run_sync(fail)


def test_submitted_exception_is_the_futures() -> None:
    """submit's future carries the coroutine's exception."""

    async def fail() -> None:
        raise Boom("in the background")

    with pytest.raises(Boom, match="in the background"):
        submit(fail).result(timeout=WAIT)


def test_a_factory_that_raises_reports_through_the_future() -> None:
    """An error making the coroutine comes back like an error inside it."""

    def broken() -> Coroutine[Any, Any, int]:
        raise Boom("no coroutine")

    future = submit(broken)
    with pytest.raises(Boom, match="no coroutine"):
        future.result(timeout=WAIT)
    with pytest.raises(Boom, match="no coroutine"):
        run_sync(broken)


def _interrupt_main_thread() -> None:
    # Python runs signal handlers in the main thread, where the test waits in run_sync.
    os.kill(os.getpid(), signal.SIGINT)


def test_interrupt_cancels_and_returns_what_the_clean_up_returned() -> None:
    """Ctrl-C while waiting cancels the coroutine once; its clean-up may still await, and
    what it returns is run_sync's result."""

    async def batch() -> str:
        _interrupt_main_thread()
        try:
            await asyncio.Event().wait()  # never set: only the cancel ends it
        except asyncio.CancelledError:
            for _ in range(3):
                await asyncio.sleep(0)  # a second cancel would land on one of these
            return "cleaned up"
        return "not cancelled"

    assert run_sync(batch) == "cleaned up"


def test_interrupt_is_raised_again_when_the_coroutine_lets_the_cancel_through() -> None:
    """A coroutine that ends cancelled has no result: the interrupt goes on up."""

    async def plain() -> None:
        _interrupt_main_thread()
        await asyncio.Event().wait()

    with pytest.raises(KeyboardInterrupt):
        run_sync(plain)


def test_cancelling_a_submitted_future_cancels_the_task_once() -> None:
    """submit(...).cancel() cancels the task; its clean-up is not cancelled again."""
    started = threading.Event()
    outcome: list[str] = []
    finished = threading.Event()

    async def background() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            try:
                for _ in range(3):
                    await asyncio.sleep(0)
                outcome.append("cleaned up")
            except asyncio.CancelledError:
                outcome.append("clean-up cancelled again")
            finally:
                finished.set()
            raise

    future = submit(background)
    assert started.wait(WAIT)
    assert future.cancel()
    assert finished.wait(WAIT)
    assert outcome == ["cleaned up"]
    assert future.cancelled()


def test_works_while_a_loop_runs_in_the_calling_thread() -> None:
    """Called from code that an asyncio loop in this thread runs (a kernel's cell)."""

    async def cell() -> int:
        return run_sync(answer)

    assert asyncio.run(cell()) == 42


def test_every_call_shares_one_loop() -> None:
    """Foreground and background calls run on the same long-lived loop."""

    async def which() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    first = run_sync(which)
    assert run_sync(which) is first
    assert submit(which).result(timeout=WAIT) is first


def _python(script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


def test_the_interpreter_exits_with_the_loop_still_open() -> None:
    """A script that used the bridge ends without closing anything (the loop's thread must
    not hold up interpreter shutdown)."""
    out = _python("""
        from omni_nb._loop import run_sync
        async def answer() -> int:
            return 42
        print(run_sync(answer))
    """)
    assert (out.returncode, out.stdout.strip()) == (0, "42"), out.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_loop() -> None:
    """After fork the child has no loop thread: the bridge opens a new one there."""
    out = _python("""
        import os
        from omni_nb._loop import run_sync
        async def answer() -> int:
            return 42
        run_sync(answer)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if run_sync(answer) == 42 else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    assert (out.returncode, out.stdout.strip()) == (0, "0"), out.stderr
