"""Ctrl-C stops a command: a real SIGINT to ``omni-nb`` in a child process, once the sandbox
has seen its first request; then no new request, exit code 130, one line on stderr with the
run id where a run was recorded, and rows that say what an interrupt left undone.

These run in real time on a busy machine: every wait is for a condition, with generous
timeouts, and nothing asserts a speed.
"""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from omni_nb import create_drafts, results, sandbox
from omni_nb.batch import DiscardDraft, ListDrafts, Operation, plan
from omni_nb.batch.run import BatchOptions, run
from omni_nb.config import Settings, resolve_settings
from omni_nb.ledger import open_ledger
from omni_nb.rows import Row

from ..conftest import MakeSandbox

#: Long enough for a child process to start (pandas, httpx) on a loaded 2-core machine.
PATIENCE_S = 90.0
#: One request a minute: after the first, the budget holds every other one back.
HELD_BACK = ["--rate-limit", "1/60", "--concurrency", "1"]


def _omni_nb() -> list[str]:
    """The installed ``omni-nb`` command (its module when the script is not beside Python)."""
    script = Path(sys.executable).with_name("omni-nb")
    return [str(script)] if script.exists() else [sys.executable, "-m", "omni_nb.cli"]


def _await(condition: Callable[[], object], what: str, timeout: float = PATIENCE_S) -> None:
    """Poll ``condition`` until it holds (a short poll, never a fixed wait for an event)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


#: read(2) and write(2) as /proc/PID/syscall numbers them, by machine.
SYSCALLS = {"x86_64": {"read": "0", "write": "1"}, "aarch64": {"read": "63", "write": "64"}}
needs_proc = pytest.mark.skipif(
    platform.machine() not in SYSCALLS or not Path("/proc/self/syscall").exists(),
    reason="needs /proc/PID/syscall to see where the child waits")


def _blocked_in(pid: int, call: str, fd: int) -> bool:
    """Whether the process's main thread is in ``call`` (read or write) on ``fd``: a signal
    that lands just before such a call is held until it returns (CPython runs handlers
    between bytecodes), so a test signals once the child waits inside it."""
    fields = Path(f"/proc/{pid}/syscall").read_text().split()
    return fields[:2] == [SYSCALLS[platform.machine()][call], hex(fd)]


@pytest.fixture
def env_sb(sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch) -> sandbox.Sandbox:
    """The sandbox configured through the environment, as a shell user would (the child
    inherits it, with the test's private ledger and rate budget)."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    return sb


class Child:
    """``omni-nb ARGS`` in a child process, interrupted with a real SIGINT."""

    def __init__(self, args: list[str], budget: Path, *,
                 stdin: int | None = subprocess.DEVNULL) -> None:
        self.process = subprocess.Popen(
            [*_omni_nb(), *args], stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMNI_NB_BUDGET": str(budget)})
        self.out = ""
        self.err = ""

    def interrupt(self) -> None:
        """Send SIGINT once (the child must still be running: it was waiting on something)."""
        assert self.process.poll() is None, self.process.communicate()
        self.process.send_signal(signal.SIGINT)

    def end(self, timeout: float = PATIENCE_S) -> int:
        """Wait for the exit code, reading everything the child wrote."""
        try:
            self.out, self.err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.out, self.err = self.process.communicate()
            raise AssertionError(f"still running {timeout:.0f} s after SIGINT: {self.out}"
                                 f"{self.err}") from None
        return self.process.returncode

    def one_line(self) -> str:
        """The one line on stderr (asserted to be exactly one)."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        return lines[0]


Start = Callable[..., Child]


@pytest.fixture
def start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Start]:
    """``start(args, stdin=...)``: a child with a rate budget of its own (the test's setup
    sends on the same key, and must not use up the child's budget); any child still running
    when the test ends is killed."""
    started: list[Child] = []

    def child(args: list[str], **kw: Any) -> Child:
        budget = tmp_path_factory.mktemp("child-budget") / "budget.sqlite3"
        started.append(Child(args, budget, **kw))
        return started[-1]

    yield child
    for child_process in started:
        if child_process.process.poll() is None:
            child_process.process.kill()
            child_process.process.communicate()


def _interrupted_after_first(sb: sandbox.Sandbox, child: Child,
                             seen: Callable[[], int] | None = None) -> int:
    """SIGINT once the sandbox answered the child's first request; how many it had seen."""
    count = seen or (lambda: len(sb.requests()))
    _await(lambda: count() >= 1 or child.process.poll() is not None, "the first request")
    at_signal = count()
    child.interrupt()
    return at_signal


def test_an_interrupted_draft_exits_130_with_its_run_id_and_sends_nothing_more(
        env_sb: sandbox.Sandbox, start: Start, tmp_path: Path) -> None:
    """`omni-nb draft` held back by its budget, interrupted: exit 130, one line naming the
    run (which the ledger holds, every row with it), and no request after the signal."""
    docs = [f"doc-{i:04d}" for i in range(1, 21)]
    ledger = tmp_path / "given.sqlite3"
    child = start(["draft", *docs, *HELD_BACK, "--ledger", str(ledger)])
    at_signal = _interrupted_after_first(env_sb, child)
    assert child.end() == 130, child.err
    line = child.one_line()
    # The first answer may still be on its way when the signal lands: then it is cancelled too.
    assert re.match(r"omni-nb: interrupted: 20 rows: (1 ok, 19|20) cancelled; run \w+ is in "
                    r"the ledger: omni-nb results --run-id \w+ --ledger ", line), line
    assert line.endswith(f" --ledger {ledger}")  # the read-back names the ledger given
    run_id = line.split("--run-id ", 1)[1].split()[0]
    assert len(results(run_id=run_id, ledger=ledger)) == 20
    assert env_sb.wait_idle(PATIENCE_S)
    assert len(env_sb.requests()) <= at_signal + 1  # the one in flight at most


@pytest.mark.parametrize("asking", [False, True], ids=["yes", "with-a-terminal"])
def test_an_interrupted_check_before_a_discard_discards_nothing_and_asks_nothing(
        env_sb: sandbox.Sandbox, start: Start, asking: bool) -> None:
    """`omni-nb discard --run-id RID` interrupted while it lists the run's drafts (the budget
    used up): no DELETE ever, no question, exit 130 and one line naming the run."""
    made = create_drafts([f"doc-{i:04d}" for i in range(1, 7)], rate_limit=None)
    run_id = made["run_id"].iloc[0]
    env_sb.clear_requests()
    args = ["discard", "--run-id", run_id, *HELD_BACK]
    if asking:  # a terminal to ask on: the check must not go on to a question
        controller, terminal = os.openpty()
        child = start(args, stdin=terminal)
        os.close(terminal)
    else:
        controller, child = -1, start([*args, "--yes"])
    try:
        at_signal = _interrupted_after_first(env_sb, child)
        code = child.end()
    finally:
        if controller >= 0:
            os.close(controller)
    assert code == 130, child.out + child.err
    assert child.one_line() == (f"omni-nb: interrupted while checking the drafts of run "
                                f"{run_id}: nothing was discarded")
    assert "[y/N]" not in child.out
    assert env_sb.wait_idle(PATIENCE_S)
    assert [r.method for r in env_sb.requests()] == ["GET"] * len(env_sb.requests())
    assert len(env_sb.requests()) <= at_signal + 1
    assert env_sb.archived_drafts() == []


def test_an_interrupted_discard_names_its_run(env_sb: sandbox.Sandbox,
                                              start: Start) -> None:
    """Interrupted once the DELETEs have begun: exit 130, one line naming the discard's own
    run (in the ledger), no request after the signal."""
    made = create_drafts([f"doc-{i:04d}" for i in range(1, 5)], rate_limit=None)
    env_sb.clear_requests()
    child = start(["discard", "--run-id", made["run_id"].iloc[0], "--yes",
                   "--rate-limit", "6/60", "--concurrency", "1"])  # 4 GETs to check, 1 pair

    def deletes() -> int:
        return sum(r.method == "DELETE" for r in env_sb.requests())

    _interrupted_after_first(env_sb, child, deletes)
    at_signal = len(env_sb.requests())
    assert child.end() == 130, child.err
    line = child.one_line()
    assert re.match(r"omni-nb: interrupted: 4 rows: (1 ok, 3|4) cancelled; run ", line), line
    discard_run = line.rsplit("--run-id ", 1)[1]
    assert set(results(run_id=discard_run)["action"]) == {"discard"}
    assert env_sb.wait_idle(PATIENCE_S)
    assert len(env_sb.requests()) <= at_signal + 1


def test_an_interrupted_listing_is_one_line_and_exit_130(
        make_sandbox: MakeSandbox, monkeypatch: pytest.MonkeyPatch,
        start: Start) -> None:
    """`omni-nb drafts doc-0001 ... doc-0200` interrupted (slow answers): no AttributeError,
    exit 130, one line; nothing sent after the signal but what was in flight."""
    sb = make_sandbox(latency=0.5)
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    docs = [f"doc-{i:04d}" for i in range(1, 201)]
    child = start(["drafts", *docs])
    at_signal = _interrupted_after_first(sb, child)
    assert child.end() == 130, child.err
    line = child.one_line()
    assert line.startswith("omni-nb: interrupted: "), line
    assert "not listed (a listing changes nothing)" in line
    assert sb.wait_idle(PATIENCE_S)
    assert len(sb.requests()) <= at_signal + 8  # the default concurrency: those in flight


@needs_proc
def test_interrupted_results_is_one_line_and_exit_130(env_sb: sandbox.Sandbox,
                                                      start: Start) -> None:
    """`omni-nb results` interrupted while it prints (its reader stopped reading, so the
    pipe is full and it waits): exit 130 and one line."""
    api_root = resolve_settings(env_sb.base_url, env_sb.token).api_root
    rows = [Row.unsent(f"doc-{i:05d}", None, "cancelled", "not sent", api_root=api_root,
                       run_id="r" * 12) for i in range(5000)]
    open_ledger(None).record(rows)
    child = start(["results", "--limit", "5000"])
    assert child.process.stdout is not None
    child.process.stdout.readline()  # it prints: the rest fills the pipe, then it waits
    _await(lambda: _blocked_in(child.process.pid, "write", 1), "a write to the full pipe")
    child.interrupt()
    assert child.end() == 130, child.err
    assert child.one_line() == "omni-nb: interrupted"


def test_an_interrupted_dry_run_of_a_discard_says_it_changed_nothing(
        sb: sandbox.Sandbox) -> None:
    """A discard's rehearsal (GETs only) stopped part-way: its unchecked rows say the dry run
    only lists, never that the server may have archived a draft or to resume."""
    settings = resolve_settings(sb.base_url, sb.token, ledger="off")
    stop = threading.Event()
    rehearsal = DiscardDraft().rehearsal()
    assert rehearsal is not None
    docs = [f"doc-{i:04d}" for i in range(1, 11)]
    table, interrupted = _run(rehearsal, docs, settings, stop)
    assert interrupted
    unchecked = table[table["status"] == "cancelled"]["message"].tolist()
    assert unchecked, "the rehearsal was not interrupted part-way"
    for message in unchecked:
        assert "archived" not in message, message
        assert "resume" not in message, message
        assert "dry run" in message, message


def test_an_interrupted_listing_says_it_changed_nothing(sb: sandbox.Sandbox) -> None:
    """A listing stopped part-way: its rows say they were not listed, not that a draft may
    have been made."""
    settings = resolve_settings(sb.base_url, sb.token, ledger="off")
    table, _ = _run(ListDrafts(), [f"doc-{i:04d}" for i in range(1, 11)], settings,
                    threading.Event())
    for message in table[table["status"] == "cancelled"]["message"]:
        assert message.startswith("not listed"), message
        assert "made the draft" not in message


def _run(op: Operation, docs: list[str], settings: Settings,
         stop: threading.Event) -> tuple[Any, bool]:
    """Run ``op`` one request at a time, stopped (as a Cancel does) after the first row."""
    import asyncio

    def first_row(done: int, total: int, row: Row) -> None:
        stop.set()

    return asyncio.run(run(op, plan(docs), settings=settings,
                           options=BatchOptions(concurrency=1, rate_limit=None),
                           progress=first_row, cancel=stop))


def test_an_interrupted_dry_run_of_a_discard_fails_the_magics_cell(
        env_sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """%omni_draft --discard --dry-run interrupted (a real SIGINT, the kernel's Interrupt)
    while it lists: the cell fails with BatchInterrupted, so "Run all" stops before a real
    discard; nothing but listings was sent, none after the signal but the one in flight."""
    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell

    from omni_nb.batch import BatchInterrupted

    HistoryAccessor.enabled = False
    made = create_drafts([f"doc-{i:04d}" for i in range(1, 7)], rate_limit=None)
    budget = tmp_path_factory.mktemp("magic-budget") / "budget.sqlite3"
    monkeypatch.setenv("OMNI_NB_BUDGET", str(budget))  # the setup's sends are not the magic's
    shell = InteractiveShell.instance()
    shell.run_line_magic("reload_ext", "omni_nb")
    shell.user_ns["made"] = made
    env_sb.clear_requests()
    at_signal: list[int] = []

    def interrupt() -> None:  # the main thread waits in the batch: the signal lands there
        _await(lambda: len(env_sb.requests()) >= 1, "the first listing")
        at_signal.append(len(env_sb.requests()))
        os.kill(os.getpid(), signal.SIGINT)

    interrupter = threading.Thread(target=interrupt, daemon=True)
    interrupter.start()
    with pytest.raises(BatchInterrupted):
        shell.run_line_magic("omni_draft", "--discard --from made --dry-run "
                                           "--rate-limit 1/60 --concurrency 1")
    interrupter.join()
    assert env_sb.wait_idle(PATIENCE_S)
    assert {r.method for r in env_sb.requests()} == {"GET"}
    assert len(env_sb.requests()) <= at_signal[0] + 1
    assert env_sb.archived_drafts() == []


@needs_proc
def test_an_interrupt_at_the_question_discards_nothing(
        env_sb: sandbox.Sandbox, start: Start) -> None:
    """Ctrl-C at "Discard 3 drafts? [y/N]": exit 130, one line, and no DELETE."""
    made = create_drafts([f"doc-{i:04d}" for i in range(1, 4)], rate_limit=None)
    controller, terminal = os.openpty()
    try:
        child = start(["discard", "--run-id", made["run_id"].iloc[0], "--rate-limit", "off"],
                      stdin=terminal)
        os.close(terminal)
        assert child.process.stdout is not None
        shown = b""
        while b"[y/N]" not in shown:  # the check is done and the question is asked
            chunk = os.read(child.process.stdout.fileno(), 4096)
            assert chunk, f"no question asked: {shown.decode()}"
            shown += chunk
        _await(lambda: _blocked_in(child.process.pid, "read", 0), "the read of the answer")
        child.interrupt()
        assert child.end() == 130, child.err
    finally:
        os.close(controller)
    assert child.one_line() == "omni-nb: interrupted: nothing was discarded"
    assert env_sb.wait_idle(PATIENCE_S)
    assert [r.method for r in env_sb.requests() if r.method == "DELETE"] == []
    assert env_sb.archived_drafts() == []
