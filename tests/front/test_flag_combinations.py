"""No silent flags: every combination of the magic's and the CLI's options, enumerated from
the option table (:func:`omni_nb.options.options_for`), either works as the Python functions
do or is refused in one line naming the clash.

Each combination (every option alone and every pair, in each of the magic's modes: create,
``--discard``, ``--list``; in each of the CLI's commands) runs against a real sandbox with no
rate limit. What must hold:

* refused: one line (``UsageError`` in the magic, exit code 2 and one stderr line in the
  CLI) naming the flags of the clash; nothing is sent;
* ``--dry-run``: no write reaches the sandbox, and no GET either, except the drafts listings
  a discard's check reads (of the documents given);
* ``--background``: a handle, as ``create_drafts(background=True)`` gives, whose ``wait()``
  is the table;
* otherwise: the table, and only the requests of that operation.

The refusals expected are written here, plainly, not read from the option table: the table
is what is tested. ``--instance``/``--playground`` would point the front ends at a real
Omni: they are tested where nothing is sent (a clash, a dry run).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.history import HistoryAccessor
from IPython.core.interactiveshell import InteractiveShell

from omni_nb import sandbox
from omni_nb.batch import BatchRun, create_drafts
from omni_nb.cli import main
from omni_nb.options import MAGIC, option, options_for

from ..conftest import MakeSandbox

HistoryAccessor.enabled = False

#: Options that would send to a real Omni (tested apart) and the magic's mode switches.
_ELSEWHERE = ("instance", "playground")
_MODES = {"create": "", "discard": "--discard", "list": "--list"}
_WRITES = ("POST", "DELETE", "PUT", "PATCH")


def _combinations(names: list[str]) -> list[tuple[str, ...]]:
    return [(), *((n,) for n in names), *itertools.combinations(names, 2)]


_MAGIC_NAMES = [o.name for o in options_for(MAGIC)
                if o.name not in (*_ELSEWHERE, "discard", "list")]
_MAGIC_CASES = [(mode, combo) for mode in _MODES for combo in _combinations(_MAGIC_NAMES)]
_CLI_COMMANDS = ("draft", "discard", "drafts", "results")  # demo: its own sandbox, no clash
_CLI_CASES = [(command, combo) for command in _CLI_COMMANDS for combo in _combinations(
    [o.name for o in options_for(command) if o.name not in _ELSEWHERE])]


def _flag(name: str) -> str:
    return "-o" if name == "output" else option(name).flag


def magic_refusals(mode: str, names: tuple[str, ...]) -> list[set[str]]:
    """The clashes the magic must refuse, each as the flags its one line names (any one)."""
    given = set(names)
    found: list[set[str]] = []
    if "run_id" in given and mode != "discard":
        found.append({"--run-id", "--discard"})
    if "include_archived" in given and mode != "list":
        found.append({"--include-archived", "--list"})
    if "trust_old_ledger" in given and mode != "discard":
        found.append({"--trust-old-ledger", "--discard"})
    if mode == "list":
        found += [{_flag(n), "--list"} for n in ("branch_id", "branch_col", "resume")
                  if n in given]
    if {"dry_run", "background"} <= given:
        found.append({"--dry-run", "--background"})
    if {"dry_run", "resume"} <= given:  # the dry run would show as sent what resume copies
        found.append({"--dry-run", "--resume"})
    found += [{_flag(n), "--from"} for n in ("document_col", "branch_col")
              if n in given and "from_" not in given]
    if {"from_", "items"} <= given:
        found.append({"--from"})  # documents in one place
    if "run_id" in given and given & {"items", "from_"}:
        found.append({"--run-id"})  # a whole run: no documents with it
    if {"run_id", "branch_id"} <= given:
        found.append({"--branch-id"})  # a run names each row's branch
    return found


def cli_refusals(command: str, names: tuple[str, ...]) -> list[set[str]]:
    """The clashes the CLI must refuse, each as the flags its one line names."""
    given = set(names)
    found = [{_flag(n), "--from-csv"} for n in ("document_col", "branch_col")
             if n in given and "from_csv" not in given]
    if command == "discard" and "run_id" in given and given & {"items", "from_csv"}:
        found.append({"--run-id"})
    if command == "discard" and {"run_id", "branch_id"} <= given:
        found.append({"--branch-id"})
    if command == "results" and {"run_id", "last"} <= given:
        found.append({"--run-id", "--last"})
    if command == "results" and {"limit", "out"} <= given:
        found.append({"--limit", "--out"})  # --out writes every row: nothing to limit
    return found


@pytest.fixture(scope="module")
def shared(make_module_sandbox: MakeSandbox) -> sandbox.Sandbox:
    return make_module_sandbox()


@pytest.fixture
def env(shared: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch) -> sandbox.Sandbox:
    monkeypatch.setenv("OMNI_BASE_URL", shared.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", shared.token)
    shared.clear_requests()
    return shared


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("reload_ext", "omni_nb")
    ip.run_line_magic("config", "OmniNB.rate = 'off'")
    yield ip
    ip.config.pop("OmniNB", None)


def _run_made(sb: sandbox.Sandbox) -> str:
    """A run in this test's ledger (the one ``--run-id`` names), its request log cleared."""
    made = create_drafts(["doc-0003"], base_url=sb.base_url, token=sb.token, rate_limit=None,
                         progress=False)
    sb.clear_requests()
    return str(made["run_id"].iloc[0])


def _magic_line(mode: str, names: tuple[str, ...], sb: sandbox.Sandbox) -> str:
    values = {
        "items": "doc-0001 doc-0002", "branch_id": f"--branch-id {sb.branches[0].id}",
        "output": "-o out", "from_": "--from docs", "document_col": "--document-col ident",
        "branch_col": "--branch-col br", "base_url": f"--base-url {sb.base_url}",
        "concurrency": "--concurrency 2", "rate_limit": "--rate-limit off",
        "max_retries": "--max-retries 0", "resume": "--resume", "dry_run": "--dry-run",
        "include_archived": "--include-archived", "background": "--background",
        "trust_old_ledger": "--trust-old-ledger",
    }
    parts = [_MODES[mode]]
    if not set(names) & {"items", "from_", "run_id"}:
        parts.append(values["items"])
    for name in names:
        parts.append(f"--run-id {_run_made(sb)}" if name == "run_id" else values[name])
    return " ".join(p for p in parts if p)


def _check_requests(sb: sandbox.Sandbox, operation: str, dry_run: bool) -> None:
    """Only the requests the operation sends (none but a discard check's GETs in a dry run),
    and only for the documents given."""
    assert sb.wait_idle()
    sent = sb.requests()
    assert {r.document_id for r in sent} <= {"doc-0001", "doc-0002", "doc-0003", "doc-0004"}
    methods = {r.method for r in sent}
    if dry_run:
        assert not methods & set(_WRITES), sent
        allowed = {"GET"} if operation == "discard" else set()
        assert methods <= allowed, sent
        assert all(r.path.endswith("/drafts") for r in sent)
    else:
        allowed = {"create": {"POST"}, "discard": {"GET", "DELETE"}, "list": {"GET"},
                   "draft": {"POST"}, "drafts": {"GET"}, "results": set()}[operation]
        assert methods <= allowed, sent


@pytest.mark.parametrize(("mode", "names"), _MAGIC_CASES,
                         ids=[f"{m}:{'+'.join(c) or 'ids'}" for m, c in _MAGIC_CASES])
def test_every_magic_flag_combination_works_or_is_refused_in_one_line(
    shell: InteractiveShell, env: sandbox.Sandbox, mode: str, names: tuple[str, ...],
) -> None:
    shell.user_ns.pop("out", None)
    shell.user_ns["docs"] = pd.DataFrame({"document_id": ["doc-0001", "doc-0002"],
                                          "ident": ["doc-0004", "doc-0002"], "br": [None, None]})
    line = _magic_line(mode, names, env)
    refusals = magic_refusals(mode, names)
    if refusals:
        with pytest.raises(UsageError) as info:
            shell.run_line_magic(MAGIC, line)
        said = str(info.value)
        assert "\n" not in said
        assert any(all(flag in said for flag in flags) for flags in refusals), (line, said)
        assert env.requests() == []
        return
    result = shell.run_line_magic(MAGIC, line)
    if "output" in names:
        assert result is None
        result = shell.user_ns["out"]
    if "background" in names:
        assert isinstance(result, BatchRun), line
        result = result.wait(timeout=30)
    assert isinstance(result, pd.DataFrame), line
    _check_requests(env, mode, "dry_run" in names)


def _cli_argv(command: str, names: tuple[str, ...], sb: sandbox.Sandbox,
              tmp_path: Path) -> list[str]:
    csv = tmp_path / "docs.csv"
    csv.write_text("document_id,ident,br\ndoc-0001,doc-0004,\ndoc-0002,doc-0002,\n")
    values: dict[str, list[str]] = {
        "items": ["doc-0001"], "branch_id": ["--branch-id", sb.branches[0].id],
        "from_csv": ["--from-csv", str(csv)], "document_col": ["--document-col", "ident"],
        "branch_col": ["--branch-col", "br"], "base_url": ["--base-url", sb.base_url],
        "concurrency": ["--concurrency", "2"], "rate_limit": ["--rate-limit", "off"],
        "resume": ["--resume"], "include_archived": ["--include-archived"],
        "out": ["--out", str(tmp_path / "out.csv")], "yes": ["--yes"], "last": ["--last"],
        "since": ["--since", "2020-01-01"], "limit": ["--limit", "3"],
        "ledger": ["--ledger", str(tmp_path / "ledger.sqlite3")],
        "trust_old_ledger": ["--trust-old-ledger"],
    }
    argv = [command]
    if command != "results" and not set(names) & {"items", "from_csv", "run_id"}:
        argv += values["items"]
    if command == "discard":
        argv.append("--yes")  # no terminal to ask on: without it every discard is refused
    run_id = _run_made(sb) if "run_id" in names or command == "results" else None
    for name in names:
        argv += ["--run-id", str(run_id)] if name == "run_id" else values[name]
    if "rate_limit" not in names and command in option("rate_limit").commands:
        argv += values["rate_limit"]
    return argv


@pytest.mark.parametrize(("command", "names"), _CLI_CASES,
                         ids=[f"{c}:{'+'.join(n) or 'ids'}" for c, n in _CLI_CASES])
def test_every_cli_flag_combination_works_or_is_refused_in_one_line(
    env: sandbox.Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    command: str, names: tuple[str, ...],
) -> None:
    argv = _cli_argv(command, names, env, tmp_path)
    refusals = cli_refusals(command, names)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    if refusals:
        assert code == 2, (argv, err)
        assert len(err.splitlines()) == 1
        assert any(all(flag in err for flag in flags) for flags in refusals), (argv, err)
        assert env.requests() == []
        return
    assert code in (0, 1), (argv, err)
    assert "usage" not in err.lower()
    _check_requests(env, command, dry_run=False)


# -- the rows, and what the enumeration leaves out -----------------------------------


def test_discard_from_a_table_in_the_background_returns_a_handle(
    shell: InteractiveShell, env: sandbox.Sandbox,
) -> None:
    """``--discard --from made --background`` returns at once with a handle (it blocked the
    kernel and returned a table); its table is the undo's."""
    shell.run_line_magic(MAGIC, "doc-0011 doc-0012 -o made")
    run = shell.run_line_magic(MAGIC, "--discard --from made --background")
    assert isinstance(run, BatchRun)
    table = run.wait(timeout=30)
    assert table["status"].tolist() == ["ok", "ok"]
    assert table["action"].tolist() == ["discard", "discard"]


def test_list_in_the_background_returns_a_handle_whose_table_is_the_listing(
    shell: InteractiveShell, env: sandbox.Sandbox,
) -> None:
    shell.run_line_magic(MAGIC, "doc-0013")
    run = shell.run_line_magic(MAGIC, "--list doc-0013 --background")
    assert isinstance(run, BatchRun)
    assert run.wait(timeout=30)["draft_status"].tolist() == ["active"]


def test_list_dry_run_sends_nothing_and_shows_the_gets(
    shell: InteractiveShell, env: sandbox.Sandbox,
) -> None:
    shown = shell.run_line_magic(MAGIC, "--list doc-0014 doc-0015 --dry-run")
    assert env.requests() == []
    assert shown["request"].tolist() == [
        f"GET {env.base_url}/v1/documents/{doc}/drafts" for doc in ("doc-0014", "doc-0015")]


@pytest.mark.parametrize("mode", ["", "--discard ", "--list "])
def test_dry_run_and_background_together_are_refused_naming_both(
    shell: InteractiveShell, env: sandbox.Sandbox, mode: str,
) -> None:
    """As the Python functions say "choose one", the magic refuses the pair (it ran the dry
    run with --discard, and ignored --background)."""
    with pytest.raises(UsageError, match="give --dry-run or --background, not both"):
        shell.run_line_magic(MAGIC, f"{mode}doc-0016 --dry-run --background")
    assert env.requests() == []


def test_instance_and_playground_clashes_are_refused_before_anything(
    shell: InteractiveShell, env: sandbox.Sandbox, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(UsageError, match="--playground goes with --instance"):
        shell.run_line_magic(MAGIC, "--list doc-0001 --playground")
    with pytest.raises(UsageError, match="give --instance or --base-url, not both"):
        shell.run_line_magic(MAGIC, f"doc-0001 --instance acme --base-url {env.base_url}")
    assert main(["drafts", "doc-0001", "--playground"]) == 2
    assert "--playground goes with --instance" in capsys.readouterr().err


def test_instance_with_playground_works_in_a_dry_run(
    shell: InteractiveShell, env: sandbox.Sandbox,
) -> None:
    shown = shell.run_line_magic(MAGIC, "--list doc-0001 --instance acme --playground --dry-run")
    assert shown["request"].str.contains("acme.playground.exploreomni.dev").all()


def test_the_listing_command_takes_no_branch_column(
    env: sandbox.Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A listing folds branches: ``omni-nb drafts --branch-col`` had no effect; it is no
    option of that command now."""
    csv = tmp_path / "docs.csv"
    csv.write_text("document_id,br\ndoc-0001,\n")
    assert main(["drafts", "--from-csv", str(csv), "--branch-col", "br"]) == 2
    err = capsys.readouterr().err
    assert "--branch-col" in err
    assert len(err.splitlines()) == 1
