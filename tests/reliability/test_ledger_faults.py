"""The ledger's place failing under a real batch: a disk that fills mid-batch, a read-only
location, a ledger locked past its busy timeout.

Real file systems, not mocks: each test mounts a small tmpfs (we run as root in CI; where
``mount`` is not permitted the test is skipped saying so) and unmounts it in a ``finally``.
The batch talks to a real sandbox over loopback sockets. What must hold: every input has
exactly one row in the table the error carries, every draft the server handed out is in that
table, the rows that are not in the ledger are named, and nothing is sent once a write failed
or when the ledger is refused at opening.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from omni_nb import AsyncOmniClient, Draft, OmniClient, create_draft, create_drafts, sandbox
from omni_nb import ledger as ledger_module
from omni_nb.batch import acreate_drafts, last_result
from omni_nb.cli import main
from omni_nb.errors import LedgerError, LedgerWarning
from omni_nb.ledger import Ledger

from ..conftest import MakeSandbox

DOCS = [f"doc-{i:04d}" for i in range(1, 301)]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def tmpfs(where: Path, options: str = "size=1m") -> Iterator[Path]:
    """A tmpfs mounted at ``where`` for the block; unmounted after, whatever happened (the
    ledgers opened on it are closed first, or the unmount would find it busy)."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where))
    except FileNotFoundError:
        pytest.skip("no mount command here: cannot make a small file system to fill")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip()})")
    try:
        yield where
    finally:
        _forget_ledgers_under(where)
        if _run("umount", str(where)).returncode != 0:
            _run("umount", "-l", str(where))  # lazily, rather than leave it mounted


def _forget_ledgers_under(where: Path) -> None:
    # open_ledger() keeps one Ledger per path for the process: close the ones on this mount.
    with ledger_module._shared_lock:
        for key in [k for k in ledger_module._shared if k.startswith(str(where))]:
            ledger_module._shared.pop(key).close()


def fill(where: Path) -> None:
    """Take every free byte of the file system at ``where``."""
    fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError, match="No space left") as info:  # noqa: PT012 - a loop
            while True:
                os.write(fd, b"\0" * 4096)
        assert info.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


def in_ledger(path: Path) -> set[tuple[str, str | None, str | None]]:
    """What the ledger file holds, read by another connection, read-only."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return set(conn.execute("SELECT document_id, branch_id, draft_id FROM calls"))
    finally:
        conn.close()


def test_a_disk_that_fills_mid_batch_loses_no_answer(
    make_sandbox: MakeSandbox, tmp_path: Path,
) -> None:
    """300 documents, the ledger on a 1 MB tmpfs that fills mid-batch: sending stops, the
    LedgerError carries the table (one row per input, in order), every draft the server made
    is in it, and the rows that did not reach the ledger are named, no more, no less."""
    sb = make_sandbox(documents=300)
    with tmpfs(tmp_path / "mnt") as mnt:
        path = mnt / "ledger.sqlite3"
        with pytest.raises(LedgerError) as info:
            create_drafts(DOCS, base_url=sb.base_url, token=sb.token, ledger=str(path),
                          rate_limit=None, concurrency=8)
        stored = in_ledger(path)
    failed = info.value
    table = failed.result
    assert list(table["document_id"]) == DOCS
    assert last_result() is table
    made = sb.drafts()
    assert made, "the server made no draft: the disk filled before the batch began"
    by_doc = dict(zip(table["document_id"], table["draft_id"], strict=True))
    assert {doc: by_doc[doc] for (doc, _), _draft in made.items()} == {
        doc: draft for (doc, _), draft in made.items()}
    answered = {(d, None, x if isinstance(x, str) else None) for d, x, s in
                zip(table["document_id"], table["draft_id"], table["status"], strict=True)
                if s != "cancelled"}
    assert set(failed.unrecorded) == answered - stored
    assert failed.unrecorded
    assert not set(failed.unrecorded) & stored
    doc, _, draft = failed.unrecorded[0]
    message = str(failed)
    assert str(path) in message
    assert "database or disk is full" in message
    assert (f"{doc} (draft {draft})" if draft else f"{doc} (no draft)") in message
    assert "OMNI_NB_LEDGER=off" in message
    # Sending stopped: every request sent is an answered row, and the rest were cancelled
    # saying why.
    assert len(sb.requests()) == len(answered)
    cancelled = table[table["status"] == "cancelled"]
    assert len(cancelled) > 0
    assert cancelled["message"].str.contains("ledger could not be written").all()


def three_calls(sb: sandbox.Sandbox, led: Ledger) -> list[Draft]:
    """create_draft, then each client twin with the ledger as its hook: one draft each."""
    made = [create_draft("doc-0001", base_url=sb.base_url, token=sb.token, ledger=led,
                         rate_limit=None)]
    with OmniClient(sb.base_url, sb.token, rate_limit=None,
                    on_result=led.record_outcome) as client:
        made.append(client.create_draft("doc-0002"))

    async def twin() -> None:
        async with AsyncOmniClient(sb.base_url, sb.token, rate_limit=None,
                                   on_result=led.record_outcome) as client:
            made.append(await client.create_draft("doc-0003"))

    asyncio.run(twin())
    return made


def test_a_single_call_on_a_full_disk_still_returns_its_draft(
    sb: sandbox.Sandbox, tmp_path: Path,
) -> None:
    """create_draft, and both client twins with the ledger as their hook, on a full disk: the
    Draft comes back, with a LedgerWarning naming its id (the draft exists on the server)."""
    with tmpfs(tmp_path / "mnt") as mnt:
        led = Ledger(mnt / "ledger.sqlite3")
        fill(mnt)
        with pytest.warns(LedgerWarning) as caught:
            made = three_calls(sb, led)
        assert led.rows() == []
        led.close()
    drafts = sb.drafts()
    assert [d.identifier for d in made] == [drafts[(f"doc-000{i}", None)] for i in (1, 2, 3)]
    messages = [str(w.message) for w in caught if w.category is LedgerWarning]
    assert len(messages) == 3
    for draft, message in zip(made, messages, strict=True):
        assert f"draft {draft.identifier} of {draft.document_id}" in message
        assert "database or disk is full" in message


def test_a_read_only_location_is_refused_before_anything_is_sent(
    sb: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a read-only file system, an existing ledger and a new one are both refused with a
    LedgerError naming the path and the ways out; the CLI says so in one line, exit code 2,
    and nothing is sent."""
    with tmpfs(tmp_path / "ro", "size=1m,ro") as ro:
        new = ro / "ledger.sqlite3"
        with pytest.raises(LedgerError, match="OMNI_NB_LEDGER=off") as info:
            Ledger(new)
        assert info.value.path == str(new)
        assert "read-only" in str(info.value)
    with tmpfs(tmp_path / "rw") as rw:
        existing = rw / "ledger.sqlite3"
        Ledger(existing).close()
        assert _run("mount", "-o", "remount,ro", str(rw)).returncode == 0
        with pytest.raises(LedgerError, match="OMNI_NB_LEDGER=off"):
            Ledger(existing)
        monkeypatch.setenv("OMNI_NB_LEDGER", str(existing))
        monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
        monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
        capsys.readouterr()
        assert main(["draft", "doc-0001", "doc-0002", "--rate", "off"]) == 2
        out = capsys.readouterr()
    lines = out.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("omni-nb: LedgerError: ledger ")
    assert str(existing) in lines[0]
    assert "OMNI_NB_LEDGER=off" in lines[0]
    assert sb.requests() == []


def test_the_cli_on_a_full_disk_prints_what_is_not_in_the_ledger(
    make_sandbox: MakeSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """omni-nb draft with its ledger filling up: one error line on stderr, exit code 1, and
    every draft the server made is either in the ledger or printed on stdout."""
    sb = make_sandbox(documents=300)
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    with tmpfs(tmp_path / "mnt") as mnt:
        path = mnt / "ledger.sqlite3"
        monkeypatch.setenv("OMNI_NB_LEDGER", str(path))
        capsys.readouterr()
        code = main(["draft", *DOCS, "--rate", "off"])
        out = capsys.readouterr()
        stored = {draft for _, _, draft in in_ledger(path)}
    assert code == 1
    lines = out.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("omni-nb: LedgerError: ledger ")
    assert "database or disk is full" in lines[0]
    missing = [d for d in sb.drafts().values() if d not in stored]
    assert missing, "every draft reached the ledger: the disk did not fill mid-batch"
    assert "not in the ledger:" in out.out
    assert all(draft in out.out for draft in missing)


@pytest.mark.parametrize("how", ["background", "async"])
def test_a_ledger_locked_past_its_timeout_stops_the_batch_with_its_table(
    sb: sandbox.Sandbox, tmp_path: Path, how: str,
) -> None:
    """Another connection holds the ledger's write lock past the busy timeout: the background
    run and the async batch stop the same way, the table in the error (and in the run's
    .table), every answered row named as not in the ledger."""
    path = tmp_path / "l.sqlite3"
    led = Ledger(path, busy_timeout_s=0.01)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    docs = DOCS[:40]
    kw = {"base_url": sb.base_url, "token": sb.token, "ledger": led, "rate_limit": None,
          "concurrency": 4}
    try:
        if how == "background":
            run = create_drafts(docs, background=True, **kw)
            with pytest.raises(LedgerError) as info:
                run.wait(timeout=120)  # type: ignore[union-attr]
            assert run.table is info.value.result  # type: ignore[union-attr]
        else:
            with pytest.raises(LedgerError) as info:
                asyncio.run(acreate_drafts(docs, **kw))  # type: ignore[arg-type]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    table = info.value.result
    assert list(table["document_id"]) == docs
    assert "database is locked" in str(info.value)
    answered = table[table["status"] != "cancelled"]
    assert 1 <= len(answered) <= 4 + 1  # what was in flight when the first write failed
    assert sorted(info.value.unrecorded) == sorted(
        (d, None, x) for d, x in zip(answered["document_id"], answered["draft_id"], strict=True))
    assert len(sb.requests()) == len(answered)
    assert led.rows() == []
    led.close()
    assert os.path.exists(path)
