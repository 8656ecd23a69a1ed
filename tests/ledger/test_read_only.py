"""Reading is always possible: ``results()`` and ``omni-nb results`` read a ledger on
read-only media, through a read-only connection that writes nothing (``immutable`` only
where no ``-wal`` file exists), with and without a ``-wal`` beside it.

Read-only media are real: a small tmpfs remounted read-only (we run as root, for whom
``chmod 0555`` changes nothing; where ``mount`` is not permitted the tests are skipped
saying so).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from omni_nb import ledger as ledger_module
from omni_nb.cli import main
from omni_nb.errors import LedgerWarning
from omni_nb.ledger import Ledger, reading, results
from omni_nb.rows import Row

ROOT = "https://a.omniapp.co/api"


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def read_only_media(where: Path, files: list[Path]) -> Iterator[Path]:
    """``files`` copied onto a tmpfs at ``where``, remounted read-only for the block."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = _run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where))
    except FileNotFoundError:
        pytest.skip("no mount command here: cannot make read-only media")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip()})")
    try:
        for file in files:
            shutil.copy2(file, where / file.name)
        os.chmod(where, 0o555)  # noqa: S103 - read-only media, as a CD
        for file in files:
            os.chmod(where / file.name, 0o444)
        assert _run("mount", "-o", "remount,ro", str(where)).returncode == 0
        yield where
    finally:
        with ledger_module._shared_lock:  # a ledger left open would keep the mount busy
            for key in [k for k in ledger_module._shared if k.startswith(str(where))]:
                ledger_module._shared.pop(key).close()
        if _run("umount", str(where)).returncode != 0:
            _run("umount", "-l", str(where))


def rows(run_id: str, count: int) -> list[Row]:
    return [Row(f"doc-{n}", None, f"d{n}", "ok", 200, "", 1, 0.1, 1_767_225_600_000_000 + n,
                ROOT, run_id) for n in range(count)]


def written(tmp_path: Path) -> Path:
    """A ledger with two runs, closed (its -wal checkpointed and gone)."""
    path = tmp_path / "src" / "ledger.sqlite3"
    led = Ledger(path)
    led.record(rows("run-a", 3))
    led.record(rows("run-b", 2))
    led.close()
    assert not Path(f"{path}-wal").exists()
    return path


def test_results_reads_a_ledger_on_read_only_media_and_writes_nothing(tmp_path: Path) -> None:
    source = written(tmp_path)
    with read_only_media(tmp_path / "ro", [source]) as ro:
        table = results(ledger=ro / source.name)
        assert sorted(os.listdir(ro)) == [source.name]  # no -wal, no -shm made
        assert table["run_id"].tolist() == ["run-a"] * 3 + ["run-b"] * 2
        assert results(run_id="run-b", ledger=str(ro / source.name))["draft_id"].tolist() == [
            "d0", "d1"]


def test_results_reads_the_rows_still_in_a_wal_file_on_read_only_media(tmp_path: Path) -> None:
    """A ledger copied while a writer had it open: its newest rows are only in the -wal."""
    path = tmp_path / "src" / "ledger.sqlite3"
    writer = Ledger(path)
    try:
        writer.record(rows("run-a", 4))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        with read_only_media(tmp_path / "ro", files) as ro:
            table = results(ledger=ro / path.name)
            assert table["document_id"].tolist() == [f"doc-{n}" for n in range(4)]
    finally:
        writer.close()


def test_a_wal_without_its_shm_on_read_only_media_reads_the_file_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """SQLite cannot read a -wal without a -shm it can make: the main file is read alone,
    with a warning that the newest rows may be missing (never an error; one line from the
    CLI)."""
    source = written(tmp_path)
    wal = Path(f"{source}-wal")
    with sqlite3.connect(source) as conn:  # a -wal beside it, with one more row in it
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("INSERT INTO calls (document_id, status, attempts, elapsed_s, "
                     "requested_at_us, api_root, run_id) VALUES "
                     "('doc-new', 'ok', 1, 0.1, 1, 'r', 'run-c')")
        shutil.copy2(wal, tmp_path / wal.name)
    (tmp_path / wal.name).rename(tmp_path / "keep")
    with read_only_media(tmp_path / "ro", [source, tmp_path / "keep"]) as ro:
        _run("mount", "-o", "remount,rw", str(ro))
        os.rename(ro / "keep", ro / wal.name)
        assert _run("mount", "-o", "remount,ro", str(ro)).returncode == 0
        with pytest.warns(LedgerWarning, match="without its -wal file"):
            table = results(ledger=ro / source.name)
        capsys.readouterr()
        assert main(["results", "--ledger", str(ro / source.name)]) == 0
        said = capsys.readouterr()
    assert set(table["run_id"]) >= {"run-a", "run-b"}
    assert "run-a" in said.out
    lines = said.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("omni-nb: warning: ledger ")


def test_an_older_schema_on_read_only_media_reads_its_missing_columns_as_defaults(
    tmp_path: Path,
) -> None:
    """Read-only, nothing is migrated: the columns a v0 ledger lacks read as their defaults."""
    path = tmp_path / "src" / "ledger.sqlite3"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.execute(ledger_module._SCHEMA[0])
        conn.execute("INSERT INTO calls (document_id, draft_id, status, attempts, elapsed_s, "
                     "requested_at_us, api_root, run_id) VALUES "
                     "('doc-1', 'd1', 'ok', 1, 0.1, 1, 'r', 'run-old')")
    conn.close()
    with read_only_media(tmp_path / "ro", [path]) as ro:
        table = results(ledger=ro / path.name)
    assert table[["document_id", "action", "queued_s"]].values.tolist() == [
        ["doc-1", "create", 0.0]]


def test_reading_a_missing_ledger_on_read_only_media_is_empty(tmp_path: Path) -> None:
    source = written(tmp_path)
    with read_only_media(tmp_path / "ro", [source]) as ro, reading(ro / "other.sqlite3") as led:
        assert led.latest_run() is None
        assert not (ro / "other.sqlite3").exists()


def test_omni_nb_results_reads_a_ledger_on_read_only_media(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = written(tmp_path)
    with read_only_media(tmp_path / "ro", [source]) as ro:
        assert main(["results", "--ledger", str(ro / source.name)]) == 0
        shown = capsys.readouterr()
        assert main(["results", "--last", "--ledger", str(ro / source.name)]) == 0
        last = capsys.readouterr()
        monkeypatch.setenv("OMNI_NB_LEDGER", str(ro / source.name))
        assert main(["results", "--run-id", "run-a"]) == 0
        by_env = capsys.readouterr()
        assert sorted(os.listdir(ro)) == [source.name]
    assert shown.err == ""
    assert "run-a" in shown.out
    assert "run-b" in shown.out
    assert "run-b" in last.out
    assert "run-a" not in last.out
    assert "run-a" in by_env.out
    assert "run-b" not in by_env.out
