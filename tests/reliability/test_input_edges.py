"""The edges of every input: the CLI's files, flags and pipes, the magic's ``-o`` and bounds,
and DataFrame ids that are missing or numeric. Each bad input gets one clear line naming it,
and nothing is sent for it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.history import HistoryAccessor
from IPython.core.interactiveshell import InteractiveShell

from omni_nb import InvalidInputError, logout, sandbox
from omni_nb.batch import plan
from omni_nb.cli import main

HistoryAccessor.enabled = False


@pytest.fixture
def env_sb(sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch) -> sandbox.Sandbox:
    """The sandbox, configured through the environment as a shell user would."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    return sb


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "Traceback" not in err
    return err


# -- the CLI's CSV input ------------------------------------------------------------------------


def test_csv_with_byte_order_mark_and_crlf_is_read(env_sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" (a byte-order mark, CRLF line ends) reads like any CSV."""
    src = tmp_path / "excel.csv"
    src.write_bytes(b"\xef\xbb\xbfdocument_id,branch_id\r\ndoc-0001,\r\ndoc-0002,\r\n")
    assert main(["draft", "--from-csv", str(src), "--rate", "off"]) == 0
    assert sorted(r.document_id or "" for r in env_sb.requests()) == ["doc-0001", "doc-0002"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("document_id\ndoc-0001\n".encode("utf-16"), "not UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not"),
        (b"document_id,document_id\ndoc-0001,doc-0002\n", "document_id more than once"),
        (b"id,branch\ndoc-0001,\n", "no document_id column"),
    ],
    ids=["utf16", "binary", "duplicate-header", "no-column"],
)
def test_unreadable_csv_is_one_line_exit_2_and_sends_nothing(
    env_sb: sandbox.Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    content: bytes, expected: str,
) -> None:
    """A CSV that is not UTF-8 text with one document_id column: exit 2, one line."""
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    assert main(["draft", "--from-csv", str(src)]) == 2
    err = _one_line_error(capsys)
    assert expected in err
    assert str(src) in err
    assert env_sb.requests() == []


@pytest.mark.parametrize("where", ["missing", "directory"])
def test_missing_file_or_directory_is_one_line_exit_2(
    env_sb: sandbox.Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """--from-csv naming no file, or a directory: exit 2, one line naming it."""
    path = tmp_path / "nope.csv" if where == "missing" else tmp_path
    assert main(["draft", "--from-csv", str(path)]) == 2
    assert ("no such file" if where == "missing" else "a directory") in _one_line_error(capsys)
    assert env_sb.requests() == []


# -- the CLI's other edges ----------------------------------------------------------------------


@pytest.mark.parametrize("out", ["missing-dir/t.csv", "t.txt"])
def test_bad_out_is_refused_before_anything_is_sent(
    env_sb: sandbox.Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    """--out into a missing directory or with an unknown suffix fails before the batch."""
    assert main(["draft", "doc-0001", "--out", str(tmp_path / out)]) == 2
    assert "--out" in _one_line_error(capsys)
    assert env_sb.requests() == []


def test_results_since_not_a_time_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """results --since yesterday: exit 2, one line showing the expected form."""
    assert main(["results", "--since", "yesterday"]) == 2
    assert "not an ISO time" in _one_line_error(capsys)


def test_results_matching_nothing_says_so_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """results for an unknown run: 'no rows matched' on stderr, exit 1, no empty frame."""
    assert main(["results", "--run", "nonexist"]) == 1
    out = capsys.readouterr()
    assert "no rows matched" in out.err
    assert "Empty DataFrame" not in out.out


def test_argparse_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown flag or a bad --rate: one line naming it and the help, exit 2."""
    assert main(["draft", "--no-such-flag"]) == 2
    assert "--no-such-flag" in _one_line_error(capsys)
    assert main(["draft", "doc-1", "--rate", "fast"]) == 2
    assert "--rate" in _one_line_error(capsys)


def test_closed_pipe_ends_quietly(env_sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """`omni-nb results | head -1`: no BrokenPipeError traceback."""
    ledger = tmp_path / "pipe.sqlite3"
    env = {"OMNI_NB_LEDGER": str(ledger), "OMNI_BASE_URL": env_sb.base_url,
           "OMNI_API_TOKEN": env_sb.token, "PATH": "/usr/bin:/bin"}
    docs = [f"doc-{i:04d}" for i in range(1, 41)]
    cli = [sys.executable, "-m", "omni_nb.cli"]
    drafted = subprocess.run([*cli, "draft", *docs, "--rate", "off"], env=env,
                             capture_output=True, timeout=120, check=False)
    assert drafted.returncode == 1  # every 10th sandbox document is not eligible
    results = subprocess.Popen([*cli, "results"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert results.stdout is not None
    results.stdout.close()  # the reader is gone before anything is written, as `| head` can be
    _, err = results.communicate(timeout=120)
    assert b"Traceback" not in err
    assert b"BrokenPipe" not in err
    assert results.returncode == 0


# -- the magic ----------------------------------------------------------------------------------


@pytest.fixture
def ip(env_sb: sandbox.Sandbox) -> Iterator[InteractiveShell]:
    """A real InteractiveShell with the extension loaded, pointed at the sandbox."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("reload_ext", "omni_nb")
    shell.run_line_magic("config", "OmniNB.rate = 'off'")
    logout()
    yield shell
    shell.config.pop("OmniNB", None)
    for name in ("résultat", "file", "print", "taken"):
        shell.user_ns.pop(name, None)


@pytest.mark.parametrize("name", ["class", "None", "1x", "a-b"])
def test_output_must_be_a_variable_name(
    ip: InteractiveShell, env_sb: sandbox.Sandbox, name: str
) -> None:
    """-o with a keyword or a non-identifier is a UsageError; nothing is sent."""
    with pytest.raises(UsageError, match="-o needs a Python variable name"):
        ip.run_line_magic("omni_draft", f"doc-0001 -o {name}")
    assert env_sb.requests() == []


def test_output_takes_unicode_names_normalised(ip: InteractiveShell) -> None:
    """-o résultat is a valid name; -o ﬁle is stored as `file`, as Python reads it."""
    ip.run_line_magic("omni_draft", "doc-0001 -o résultat")
    assert list(ip.user_ns["résultat"]["status"]) == ["ok"]
    ip.run_line_magic("omni_draft", "doc-0002 -o \ufb01le")
    assert list(ip.user_ns["file"]["document_id"]) == ["doc-0002"]


def test_output_warns_before_hiding_a_builtin_or_a_value(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o print warns that it hides the builtin; -o over a list warns it replaces it."""
    ip.run_line_magic("omni_draft", "doc-0003 -o print")
    assert "hides the builtin print()" in capsys.readouterr().err
    ip.user_ns["taken"] = [1, 2]
    ip.run_line_magic("omni_draft", "doc-0004 -o taken")
    assert "replaces taken, a list" in capsys.readouterr().err
    ip.run_line_magic("omni_draft", "doc-0005 -o taken")  # a table over a table: no warning
    assert "Warning" not in capsys.readouterr().err


def test_concurrency_outside_its_bounds_is_a_usage_error(
    ip: InteractiveShell, env_sb: sandbox.Sandbox
) -> None:
    """--concurrency 10000 is refused with one line giving the bound."""
    with pytest.raises(UsageError, match="from 1 to 64"):
        ip.run_line_magic("omni_draft", "doc-0001 doc-0002 --concurrency 10000")
    assert env_sb.requests() == []


def test_missing_ids_are_each_their_own_invalid_row(
    ip: InteractiveShell, env_sb: sandbox.Sandbox
) -> None:
    """NaN, None and pd.NA ids in a DataFrame: one invalid row each, naming the position."""
    ip.user_ns["frame"] = pd.DataFrame(
        {"document_id": pd.array(["doc-0006", None, pd.NA, "doc-0007"], dtype="object")}
    )
    ip.user_ns["frame"].loc[1, "document_id"] = float("nan")
    table = ip.run_line_magic("omni_draft", "--from frame")
    assert list(table["status"]) == ["ok", "invalid", "invalid", "ok"]
    assert list(table["message"][1:3]) == ["item 2: no document id (a missing value)",
                                          "item 3: no document id (a missing value)"]


def test_integer_id_column_is_refused_with_the_fix(
    ip: InteractiveShell, env_sb: sandbox.Sandbox
) -> None:
    """A column of numbers names the column and suggests astype(str); nothing is sent."""
    ip.user_ns["numbers"] = pd.DataFrame({"document_id": [123, 456]})
    with pytest.raises(UsageError, match=r"'document_id' column holds numbers.*astype"):
        ip.run_line_magic("omni_draft", "--from numbers")
    assert env_sb.requests() == []


# -- the planner --------------------------------------------------------------------------------


def test_planner_never_folds_missing_ids_but_folds_identical_bad_ones() -> None:
    """Two missing ids are two rows; two identical malformed ids are one."""
    p = plan([None, None, "a/b", "a/b"])
    assert [(i.label, i.first) for i in p.inputs] == [
        ("item 1", None), ("item 2", None), ("item 3", None), ("item 4", "item 3")]


def test_integer_column_is_refused_for_every_entry_point() -> None:
    """The batch itself refuses a numeric id column (the same rule behind every front end)."""
    with pytest.raises(InvalidInputError, match="astype"):
        plan(pd.DataFrame({"document_id": [1.0, float("nan")]}))
