"""The omni-nb command: draft, results, demo, sandbox; exit codes and outputs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from omni_nb import sandbox
from omni_nb.cli import main


@pytest.fixture
def env_sb(sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch) -> sandbox.Sandbox:
    """The sandbox configured through the environment, as a shell user would."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    return sb


def test_draft_all_ok_exits_0_and_writes_csv(env_sb: sandbox.Sandbox, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """All rows ok: exit 0, the summary printed, the table written to --out."""
    out = tmp_path / "t.csv"
    code = main(["draft", "doc-0001", "doc-0002", "--rate", "off", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 rows: 2 ok" in printed
    assert env_sb.token not in printed
    table = pd.read_csv(out)
    assert list(table["status"]) == ["ok", "ok"]


def test_draft_with_a_failure_exits_1(env_sb: sandbox.Sandbox,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Any failed item makes the exit code 1."""
    assert main(["draft", "doc-0001", "doc-0010", "--rate", "off"]) == 1
    assert "1 not_eligible" in capsys.readouterr().out


def test_draft_from_csv_with_branches(env_sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """--from-csv reads document_id and branch_id columns; a blank branch means none."""
    branch = env_sb.branches[0].id
    src = tmp_path / "in.csv"
    src.write_text(f"document_id,branch_id\ndoc-0003,{branch}\ndoc-0004,\n", encoding="utf-8")
    assert main(["draft", "--from-csv", str(src), "--rate", "off"]) == 0
    sent = sorted((r.document_id, r.branch_id or "") for r in env_sb.requests())
    assert sent == [("doc-0003", branch), ("doc-0004", "")]


def test_settings_error_exits_2(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """No token: exit 2 with one line naming the ways to give one."""
    monkeypatch.setenv("OMNI_INSTANCE", "acme")
    assert main(["draft", "doc-0001"]) == 2
    assert "OMNI_API_TOKEN" in capsys.readouterr().err


def test_results_reads_the_ledger_back(env_sb: sandbox.Sandbox, tmp_path: Path) -> None:
    """omni-nb results --out writes what the ledger holds."""
    main(["draft", "doc-0005", "--rate", "off"])
    out = tmp_path / "r.csv"
    assert main(["results", "--out", str(out)]) == 0
    assert list(pd.read_csv(out)["document_id"]) == ["doc-0005"]


def test_demo_runs_end_to_end_and_keeps_its_rows_apart(tmp_path: Path) -> None:
    """omni-nb demo, as the README's first command runs it, in a child process: its rows go
    to its own ledger (never the user's), and the command it suggests works."""
    real, demo = tmp_path / "real.sqlite3", tmp_path / "demo.sqlite3"
    env = {"OMNI_NB_LEDGER": str(real), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "omni_nb.cli"]
    out = subprocess.run([*cli, "demo", "--documents", "40", "--ledger", str(demo)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "43 rows:" in out.stdout
    assert "not_eligible" in out.stdout
    assert str(demo) in out.stdout
    assert not real.exists()
    suggested = out.stdout.rsplit("read it back with: ", 1)[1].split()
    assert suggested[:3] == ["omni-nb", "results", "--run-id"]
    again = subprocess.run([*cli, *suggested[1:]], capture_output=True, text=True,
                           timeout=120, env=env)
    assert again.returncode == 0, again.stderr
    assert "43 rows:" in again.stdout


def test_draft_ends_with_the_run_id_and_the_ledger(
    env_sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """draft prints its run id and where the rows are; results --last reads that run."""
    assert main(["draft", "doc-0011", "doc-0012", "--rate", "off"]) == 0
    printed = capsys.readouterr().out
    run_id = printed.split("\nrun ", 1)[1].split(":", 1)[0]
    assert str(tmp_path / "ledger.sqlite3") in printed
    assert main(["results", "--last"]) == 0
    shown = capsys.readouterr().out
    assert "2 rows: 2 ok" in shown
    assert run_id in shown


def test_results_show_newest_first_and_count_what_is_hidden(
    env_sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """results prints the newest rows first and says how many --limit left out."""
    main(["draft", "doc-0013", "doc-0014", "doc-0015", "--rate", "off", "--concurrency", "1"])
    capsys.readouterr()
    assert main(["results", "--limit", "1"]) == 0
    shown = capsys.readouterr().out
    assert "doc-0015" in shown
    assert "doc-0013" not in shown
    assert "2 more rows not shown" in shown


def test_help_describes_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """Each --help has a description, the environment variables and an example."""
    for command in ("draft", "results", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "OMNI_API_TOKEN" in text
        assert "OMNI_BASE_URL" in text
        assert "example:" in text
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    assert capsys.readouterr().out.startswith("usage: omni-nb sandbox")


def test_missing_settings_are_named_in_the_cli_words(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No API root: the error names --instance/--base-url and the variables, not Python."""
    monkeypatch.setenv("OMNI_API_TOKEN", "omni_osk_x")
    assert main(["draft", "doc-0001"]) == 2
    err = capsys.readouterr().err
    assert "--instance NAME" in err
    assert "OMNI_BASE_URL" in err
    assert "base_url=" not in err


@pytest.mark.parametrize("command", [["draft", "doc-0001", "--rate", "off"],
                                     ["discard", "doc-0001", "--yes"],
                                     ["results", "--last"]])
def test_a_ledger_that_is_not_ours_is_one_line_and_exit_2(
    env_sb: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], command: list[str],
) -> None:
    """OMNI_NB_LEDGER naming a file that is not a ledger: one line on stderr naming the path
    and OMNI_NB_LEDGER=off, exit code 2 (a settings problem), nothing sent, the file as it
    was."""
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"\x00\x01not sqlite" * 50)
    monkeypatch.setenv("OMNI_NB_LEDGER", str(path))
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"omni-nb: LedgerError: ledger {path}: not an SQLite database")
    assert "OMNI_NB_LEDGER=off" in err
    assert env_sb.requests() == []
    assert path.read_bytes() == b"\x00\x01not sqlite" * 50


def test_draft_reads_a_listing_csv_with_document_col(env_sb: sandbox.Sandbox,
                                                     tmp_path: Path) -> None:
    """A CSV of list_documents() (an ``identifier`` column) works with --document-col
    identifier; --branch-col names the branch column; the old --branch spelling works too."""
    branch = env_sb.branches[0].id
    src = tmp_path / "docs.csv"
    src.write_text(f"identifier,name,on\ndoc-0016,A,{branch}\ndoc-0017,B,\n", encoding="utf-8")
    assert main(["draft", "--from-csv", str(src), "--document-col", "identifier",
                 "--branch-col", "on", "--rate", "off"]) == 0
    sent = sorted((r.document_id, r.branch_id or "") for r in env_sb.requests())
    assert sent == [("doc-0016", branch), ("doc-0017", "")]


def test_a_missing_branch_col_is_one_usage_line(env_sb: sandbox.Sandbox, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """--branch-col naming no column: exit 2, one line naming it and --branch-col."""
    src = tmp_path / "docs.csv"
    src.write_text("document_id\ndoc-0018\n", encoding="utf-8")
    assert main(["draft", "--from-csv", str(src), "--branch-col", "on"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no on column" in err
    assert "--branch-col" in err
    assert env_sb.requests() == []


def test_an_unknown_run_is_named_in_the_cli_spelling(
    env_sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """The batch says run_id=; the command line says --run-id (its own spelling)."""
    assert main(["discard", "--run", "nonexistent", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "--run-id 'nonexistent'" in err
    assert "run_id=" not in err
    assert env_sb.requests() == []


# -- messages in the command line's own words -------------------------------------------------


def test_an_instance_that_looks_like_a_url_names_the_base_url_option(
        env_sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """--instance acme.omniapp.co: exit 2 and one line saying --base-url, never base_url."""
    assert main(["draft", "doc-0001", "--instance", "acme.omniapp.co"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("omni-nb: --instance 'acme.omniapp.co' is not an instance name")
    assert "pass it as --base-url" in err
    assert "base_url" not in err
    assert env_sb.requests() == []


def test_tables_the_cli_prints_say_resume_as_its_flag(
        env_sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """Rows an interrupt left unsent say "rerun with resume=True" in the ledger (Python's
    words); omni-nb results shows them as "rerun with --resume"."""
    from omni_nb.batch import CREATE_DRAFT, plan
    from omni_nb.batch.run import BatchOptions, run
    from omni_nb.config import resolve_settings

    settings = resolve_settings(env_sb.base_url, env_sb.token)
    stop = threading.Event()
    stop.set()  # cancelled before the first send: every row is unsent
    asyncio.run(run(CREATE_DRAFT, plan(["doc-0007"]), settings=settings,
                    options=BatchOptions(rate_limit=None), cancel=stop))
    assert main(["results", "--last"]) == 0
    out = capsys.readouterr().out
    assert "rerun with --resume" in out
    assert "resume=True" not in out


def test_a_ledger_refused_names_the_ledger_option_draft_takes(
        env_sb: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A ledger that is not ours: the way out is said as --ledger PATH, an option draft
    takes (and records in)."""
    stranger = tmp_path / "stranger.sqlite3"
    stranger.write_bytes(b"not a database at all")
    monkeypatch.setenv("OMNI_NB_LEDGER", str(stranger))
    assert main(["draft", "doc-0008", "--rate", "off"]) == 2
    err = capsys.readouterr().err
    assert "--ledger PATH" in err
    assert "ledger=PATH" not in err
    mine = tmp_path / "mine.sqlite3"
    assert main(["draft", "doc-0008", "--rate", "off", "--ledger", str(mine)]) == 0
    assert f"--ledger {mine}" in capsys.readouterr().out  # the read-back command names it
    assert main(["results", "--ledger", str(mine), "--out", str(tmp_path / "r.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "r.csv")["document_id"]) == ["doc-0008"]
