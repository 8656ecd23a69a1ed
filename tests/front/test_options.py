"""The option table: every option reaches the magic's and the CLI's parsers under its one
spelling, old spellings parse to the same values, and each front end names its own spelling
in what it says."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import omni_nb
from omni_nb import cli
from omni_nb.magic import OmniMagics
from omni_nb.options import (
    CLI_COMMANDS,
    MAGIC,
    OPTIONS,
    Option,
    flag_of,
    in_words,
    option,
    options_for,
    spelling,
)
from omni_nb.ratelimit import RateLimit

#: A value each kind of option takes, as typed, and as the parser should give it back.
SAMPLES: dict[str, tuple[list[str], object]] = {
    "text": (["some-text"], "some-text"),
    "int": (["7"], 7),
    "float": (["0.5"], 0.5),
    "path": (["some/file.csv"], Path("some/file.csv")),
    "flag": ([], True),
    "many": (["doc-a", "doc-b"], ["doc-a", "doc-b"]),
}


def _magic_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = OmniMagics.omni_draft.parser  # type: ignore[attr-defined]
    return parser


def _cli_parse(command: str, argv: list[str]) -> argparse.Namespace:
    return cli._parser().parse_args([command, *argv])


def _parse(command: str, argv: list[str]) -> argparse.Namespace:
    if command == MAGIC:
        return _magic_parser().parse_args(argv)
    return _cli_parse(command, argv)


def _typed(opt: Option, command: str, spelled: str | None = None) -> tuple[list[str], object]:
    if opt.kind == "rate":
        expected: object = "5/10" if command == MAGIC else RateLimit(5, 10.0)
        words = ["5/10"]
    else:
        words, expected = SAMPLES[opt.kind]
    if opt.kind == "many":
        return words, expected
    return [spelled or opt.flag, *words], expected


CASES = [(o, c) for o in OPTIONS for c in o.commands]


@pytest.mark.parametrize(("opt", "command"), CASES,
                         ids=[f"{o.name}-{c}" for o, c in CASES])
def test_every_option_reaches_its_parsers_under_its_one_spelling(
    opt: Option, command: str
) -> None:
    """Each option of the table parses, in each command that takes it, from its flag (derived
    from its keyword name) to the attribute of that name."""
    argv, expected = _typed(opt, command)
    assert getattr(_parse(command, argv), opt.name) == expected
    if opt.kind != "many":
        assert opt.flag == flag_of(opt.name)


ALIASES = [(o, c, a) for o in OPTIONS for c in o.commands for a in o.aliases]


@pytest.mark.parametrize(("opt", "command", "alias"), ALIASES,
                         ids=[f"{a}-{c}" for _, c, a in ALIASES])
def test_each_old_spelling_still_parses_to_the_same_value(
    opt: Option, command: str, alias: str
) -> None:
    """--rate, --branch, --run, the CLI's --archived: the same value as the one spelling."""
    old, _ = _typed(opt, command, alias)
    new, expected = _typed(opt, command)
    assert getattr(_parse(command, old), opt.name) == getattr(_parse(command, new), opt.name)
    assert getattr(_parse(command, old), opt.name) == expected


def test_the_old_front_end_spellings_are_aliases() -> None:
    """What the front ends said before the table stays accepted."""
    assert option("include_archived").aliases == ("--archived",)
    assert option("rate_limit").aliases == ("--rate",)
    assert option("branch_id").aliases == ("--branch",)
    assert option("run_id").aliases == ("--run",)
    assert _cli_parse("drafts", ["d", "--archived"]).include_archived is True
    assert _magic_parser().parse_args(["--list", "d", "--include-archived"]).include_archived


def test_the_parsers_take_no_option_outside_the_table() -> None:
    """Both front ends' parsers are the table: no option string the table does not give."""
    def strings(parser: argparse.ArgumentParser) -> set[str]:
        return {s for a in parser._actions for s in a.option_strings} - {"-h", "--help"}

    def table(command: str) -> set[str]:
        return {s for o in options_for(command) if o.kind != "many"
                for s in (o.short, o.flag, *o.aliases) if s}

    assert strings(_magic_parser()) == table(MAGIC)
    subparsers = next(a for a in cli._parser()._actions
                      if isinstance(a, argparse._SubParsersAction))
    for command in CLI_COMMANDS:
        assert strings(subparsers.choices[command]) == table(command)


def test_the_magic_help_lists_every_spelling() -> None:
    """%omni_draft? shows every flag of the magic's options and their old spellings."""
    doc = OmniMagics.omni_draft.__doc__ or ""
    for opt in options_for(MAGIC):
        for text in (opt.flag, *opt.aliases):
            assert text in doc


def test_magic_defaults_of_settings_are_none_so_omninb_decides() -> None:
    """--concurrency and --rate-limit default to None in the magic (OmniNB's settings fill
    them), to the table's default in the CLI."""
    args = _magic_parser().parse_args([])
    assert (args.concurrency, args.rate_limit) == (None, None)
    args = _cli_parse("draft", [])
    assert (args.concurrency, args.rate_limit) == (8, RateLimit())


def test_keyword_names_are_the_public_functions_keywords() -> None:
    """An option named for a Python keyword is spelled as create_drafts & co. spell it."""
    from omni_nb.batch import BatchKeywords

    keywords = {name for f in (omni_nb.create_drafts, omni_nb.discard_drafts,
                               omni_nb.list_drafts, omni_nb.results)
                for name in inspect.signature(f).parameters} | set(BatchKeywords.__annotations__)
    for name in ("branch_id", "document_col", "branch_col", "include_archived", "base_url",
                 "instance", "playground", "concurrency", "rate_limit", "max_retries",
                 "resume", "dry_run", "background", "run_id", "ledger", "since"):
        assert option(name).name in keywords, name


def test_spelling_names_a_keyword_in_each_front_ends_words() -> None:
    """spelling(): ``name=`` in Python, the flag in the magic and the CLI."""
    assert spelling("document_col", "python") == "document_col="
    assert spelling("document_col", "magic") == "--document-col"
    assert spelling("include_archived", "cli") == "--include-archived"
    assert spelling("from_", "magic") == "--from"
    assert spelling("not_in_table", "cli") == "--not-in-table"


def test_in_words_rewrites_the_python_layers_keywords() -> None:
    """A message from the batch says ``keyword=``; a front end says its own spelling."""
    message = "the DataFrame has no 'x' column (columns: ['a']); pass document_col="
    assert in_words(message, "magic").endswith("pass --document-col")
    assert in_words("run_id='r1': no such run", "cli") == "--run-id 'r1': no such run"
    assert in_words("(branch_col=)", "cli") == "(--branch-col)"
    assert in_words("pass document_col=", "python") == "pass document_col="
    assert in_words("my_document_col=1", "cli") == "my_document_col=1"  # not a keyword


@pytest.fixture
def magic_shell() -> Any:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "omni_nb")
    return ip


def test_the_magic_names_its_own_spelling_in_a_column_error(magic_shell: Any) -> None:
    """--from a DataFrame without the column: the message says --document-col."""
    magic_shell.user_ns["frame"] = pd.DataFrame({"identifier": ["doc-a"]})
    with pytest.raises(UsageError) as info:
        magic_shell.run_line_magic("omni_draft", "--from frame")
    assert "--document-col" in str(info.value)
    assert "document_col=" not in str(info.value)


def test_the_cli_names_its_own_spelling_in_a_column_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from-csv without the column: one line naming --document-col; nothing is sent."""
    src = tmp_path / "docs.csv"
    src.write_text("identifier\ndoc-a\n", encoding="utf-8")
    assert cli.main(["draft", "--from-csv", str(src)]) == 2
    err = capsys.readouterr().err
    assert "--document-col" in err
    assert "document_col=" not in err
