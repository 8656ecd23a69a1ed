"""The rest of a draft's life from the front ends: %omni_draft --discard / --list and
omni-nb discard / drafts, over real sockets against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.history import HistoryAccessor
from IPython.core.interactiveshell import InteractiveShell

from omni_nb import sandbox
from omni_nb.cli import main

HistoryAccessor.enabled = False


@pytest.fixture
def env_sb(sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch) -> sandbox.Sandbox:
    """The sandbox, configured through the environment as a notebook or shell user would."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    return sb


@pytest.fixture
def ip(env_sb: sandbox.Sandbox) -> Iterator[InteractiveShell]:
    """A real InteractiveShell with the extension loaded, pointed at the sandbox."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("reload_ext", "omni_nb")
    shell.run_line_magic("config", "OmniNB.rate = 'off'")
    yield shell
    shell.config.pop("OmniNB", None)


def _deletes(sb: sandbox.Sandbox) -> list[str | None]:
    return [r.document_id for r in sb.requests() if r.method == "DELETE"]


def test_magic_undoes_a_results_table(ip: InteractiveShell, env_sb: sandbox.Sandbox) -> None:
    """%omni_draft --discard --from TABLE archives the drafts that run made."""
    ip.run_line_magic("omni_draft", "doc-0001 doc-0002 doc-0010 -o made")
    undone = ip.run_line_magic("omni_draft", "--discard --from made")
    assert list(undone["status"]) == ["ok", "ok"]
    assert list(undone["action"]) == ["discard", "discard"]
    assert sorted(_deletes(env_sb)) == ["doc-0001", "doc-0002"]  # not the failed row
    assert env_sb.drafts() == {}


def test_magic_dry_run_discard_sends_no_delete(
    ip: InteractiveShell, env_sb: sandbox.Sandbox
) -> None:
    """--discard --dry-run shows what would happen and sends no DELETE."""
    made = ip.run_line_magic("omni_draft", "doc-0003 doc-0004")
    run_id = made["run_id"].iloc[0]
    shown = ip.run_line_magic("omni_draft", f"--discard --run {run_id} --dry-run")
    assert all(m.startswith("would discard draft") for m in shown["message"])
    assert _deletes(env_sb) == []
    undone = ip.run_line_magic("omni_draft", f"--discard --run {run_id}")
    assert list(undone["status"]) == ["ok", "ok"]


def test_magic_lists_drafts(ip: InteractiveShell, env_sb: sandbox.Sandbox) -> None:
    """--list gives one row per draft; --include-archived adds the archived ones."""
    ip.run_line_magic("omni_draft", "doc-0005")
    ip.run_line_magic("omni_draft", "--discard doc-0005")
    ip.run_line_magic("omni_draft", "doc-0005")
    active = ip.run_line_magic("omni_draft", "--list doc-0005")
    every = ip.run_line_magic("omni_draft", "--list doc-0005 --include-archived")
    assert list(active["draft_status"]) == ["active"]
    assert sorted(every["draft_status"]) == ["active", "archived"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [("--run abc", "--run-id goes with --discard"),
     ("--discard --list doc-0001", "not both"),
     ("--discard --run abc doc-0001", "no documents with it"),
     ("--discard --run nonexistent", "nonexistent")],
)
def test_magic_lifecycle_usage_errors(
    ip: InteractiveShell, env_sb: sandbox.Sandbox, line: str, expected: str
) -> None:
    """Bad combinations and an unknown run are one UsageError line; nothing is sent."""
    with pytest.raises(UsageError, match=expected):
        ip.run_line_magic("omni_draft", line)
    assert _deletes(env_sb) == []


def test_cli_discard_asks_and_refuses_without_a_terminal(
    env_sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --yes and without a terminal, omni-nb discard shows what it would do and
    refuses (exit 2); with --yes it discards (exit 0)."""
    assert main(["draft", "doc-0006", "doc-0007", "--rate", "off"]) == 0
    run_id = capsys.readouterr().out.split("\nrun ", 1)[1].split(":", 1)[0]
    assert main(["discard", "--run", run_id]) == 2
    out = capsys.readouterr()
    assert "Will archive 2 drafts: " in out.out  # a short list, no requests
    assert "doc-0006 (draft " in out.out
    assert "doc-0007 (draft " in out.out
    assert "DELETE" not in out.out
    assert "add --yes" in out.err
    assert _deletes(env_sb) == []
    assert main(["discard", "--run", run_id, "--yes", "--rate", "off"]) == 0
    assert sorted(_deletes(env_sb)) == ["doc-0006", "doc-0007"]


def test_cli_discard_needs_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    """No documents and no --run (or both): a usage error, exit 2."""
    assert main(["discard"]) == 2
    assert "one of them" in capsys.readouterr().err


def test_cli_lists_drafts(env_sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """omni-nb drafts prints each document's drafts; exit 1 when a listing failed."""
    main(["draft", "doc-0008", "--rate", "off"])
    draft_id = env_sb.drafts()[("doc-0008", None)]
    capsys.readouterr()
    assert main(["drafts", "doc-0008"]) == 0
    assert draft_id in capsys.readouterr().out
    assert main(["drafts", "doc-0008", "nope"]) == 1


def test_listing_records_nothing_and_typos_are_refused(env_sb: sandbox.Sandbox) -> None:
    """list_drafts writes no ledger row; a misspelt keyword is a TypeError, not ignored."""
    import omni_nb

    omni_nb.list_drafts(["doc-0009"])
    assert len(omni_nb.results()) == 0
    with pytest.raises(TypeError, match="ledgr"):
        omni_nb.discard_drafts(["doc-0009"], ledgr="off")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="resume"):
        omni_nb.list_drafts(["doc-0009"], resume=True)  # type: ignore[call-arg]


def test_magic_list_and_discard_read_the_document_col(
        ip: InteractiveShell, env_sb: sandbox.Sandbox) -> None:
    """--list and --discard --from a frame use --document-col as a create does (a listing
    of documents has "identifier", not "document_id")."""
    ip.user_ns["docs"] = pd.DataFrame({"identifier": ["doc-0001", "doc-0002"]})
    ip.run_line_magic("omni_draft", "--from docs --document-col identifier -o made")
    listed = ip.run_line_magic("omni_draft", "--list --from docs --document-col identifier")
    assert sorted(listed["document_id"]) == ["doc-0001", "doc-0002"]
    ip.run_line_magic("omni_draft", "--discard --from docs --document-col identifier -o gone")
    assert list(ip.user_ns["gone"]["status"]) == ["ok", "ok"]
    assert sorted(_deletes(env_sb)) == ["doc-0001", "doc-0002"]
