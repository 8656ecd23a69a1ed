"""The magic in a real Jupyter kernel: an interrupt reads as one line, keeps the table and
leaves the kernel usable; a stopped batch never draws a full bar."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from omni_nb import sandbox
from omni_nb.progress import TextProgress
from omni_nb.rows import Row

pytestmark = pytest.mark.slow


class Kernel:
    """A python3 kernel of this environment, talked to over its real channels."""

    def __init__(self, env: dict[str, str]) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 120) -> tuple[str, list[list[str]]]:
        """(stream text, the traceback lines of each error) of one cell."""
        out: list[str] = []
        errors: list[list[str]] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append(list(msg["content"]["traceback"]))

        self.kc.execute_interactive(code, output_hook=hook, timeout=timeout,
                                    allow_stdin=False)
        return "".join(out), errors

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def slow_sb() -> Iterator[sandbox.Sandbox]:
    """A sandbox slow enough that a batch is still running when it is interrupted."""
    with sandbox.serve(documents=200, rate_limit=None, latency=0.2) as sb:
        yield sb


@pytest.fixture
def kernel(slow_sb: sandbox.Sandbox, tmp_path: Path) -> Iterator[Kernel]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(IPYTHONDIR=str(tmp_path / "ipython"), OMNI_BASE_URL=slow_sb.base_url,
               OMNI_API_TOKEN=slow_sb.token, OMNI_NB_LEDGER=str(tmp_path / "l.sqlite3"),
               OMNI_NB_BUDGET=str(tmp_path / "budget.sqlite3"))
    k = Kernel(env)
    yield k
    k.close()


def test_interrupt_is_one_line_keeps_the_table_and_the_kernel(
    kernel: Kernel, slow_sb: sandbox.Sandbox
) -> None:
    """Interrupting %omni_draft: one error line naming the counts and where the table is,
    the table holds every input (received rows plus cancelled ones), the kernel answers."""
    kernel.run("docs = [f'doc-{i:04d}' for i in range(1, 201)]")
    msg_id = kernel.kc.execute("%omni_draft --from docs -o big_t --concurrency 2 --rate off")
    deadline = time.monotonic() + 60
    while not slow_sb.requests() and time.monotonic() < deadline:
        time.sleep(0.05)  # wait for the batch to be sending (a real kernel, real time)
    assert slow_sb.requests(), "the batch never started"
    kernel.km.interrupt_kernel()
    errors: list[list[str]] = []
    while True:
        msg = kernel.kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            errors.append(msg["content"]["traceback"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert len(errors) == 1
    assert len(errors[0]) == 1, errors[0]
    line = errors[0][0]
    assert line.startswith("interrupted: 200 rows: ")
    assert "cancelled" in line
    assert line.endswith("the table is in big_t")
    run_id = line.split("; run ", 1)[1].split(" ", 1)[0]  # the line names the run
    out, _ = kernel.run("print(set(big_t.run_id))")
    assert out.strip() == repr({run_id})
    out, more = kernel.run("print(len(big_t), sorted(set(big_t.status.astype(str))))")
    assert more == []
    assert out.startswith("200 ")
    assert set(eval(out.split(" ", 1)[1])) <= {"ok", "cancelled", "not_eligible"}  # noqa: S307


def test_a_stopped_batch_never_draws_a_full_bar() -> None:
    """After 1 answer and 3 cancelled rows of 4, the text bar is a quarter full, not full."""
    stream = io.StringIO()
    bar = TextProgress(4, stream=stream, width=8, carriage_return=False)
    rows = [Row(f"d{i}", None, None, status, None, "", 0, 0.0, 0, "a", "r")
            for i, status in enumerate(["ok", "cancelled", "cancelled", "cancelled"])]
    for done, row in enumerate(rows, start=1):
        bar(done, 4, row)
    last = stream.getvalue().strip().splitlines()[-1]
    assert last.startswith("[##------] 1/4")
    assert "cancelled 3" in last


def test_background_run_leaves_the_kernel_free_and_completes(
    kernel: Kernel, slow_sb: sandbox.Sandbox
) -> None:
    """--background returns at once; the kernel answers while the batch runs; the handle's
    table completes with one row per input; the rows are in the ledger."""
    kernel.run("import omni_nb\ndocs = [f'doc-{i:04d}' for i in range(1, 31)]")
    out, errors = kernel.run("%omni_draft --from docs --background -o job --concurrency 1 "
                             "--rate off\nprint('running:', not job.done)")
    assert errors == []
    assert "running: True" in out  # the cell ended while the batch (>= 6 s of latency) ran
    started = time.monotonic()
    out, errors = kernel.run("print(6 * 7)")
    assert (out.strip(), errors) == ("42", [])
    assert time.monotonic() - started < 20  # answered long before 30 x 0.2 s of sends ended
    out, errors = kernel.run(
        "t = job.wait(120)\n"
        "print(len(t), job.done, len(omni_nb.results(run_id=t.run_id.iloc[0])))",
        timeout=180,
    )
    assert errors == []
    assert out.split() == ["30", "True", "30"]


def test_background_run_can_be_cancelled(kernel: Kernel, slow_sb: sandbox.Sandbox) -> None:
    """cancel() stops sending: the table ends with cancelled rows, every input one row."""
    code = (
        "import omni_nb\n"
        "docs = [f'doc-{i:04d}' for i in range(1, 101)]\n"
        "job = omni_nb.create_drafts(docs, background=True, concurrency=1, rate_limit=None)\n"
        "import time; time.sleep(0.5)\n"
        "job.cancel()\n"
        "t = job.wait(60)\n"
        "print(len(t), (t.status == 'cancelled').sum() > 50, job.done)"
    )
    out, errors = kernel.run(code)
    assert errors == []
    assert out.split() == ["100", "True", "True"]
