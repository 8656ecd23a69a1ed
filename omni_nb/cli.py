"""The ``omni-nb`` command.

::

    omni-nb demo [--documents 300] [--concurrency 8]
    omni-nb draft DOC... [--branch-id UUID] [--from-csv FILE [--document-col COL]
                  [--branch-col COL]] [--out FILE.csv|.parquet] [--resume]
                  [--instance NAME | --base-url URL] [--concurrency N]
                  [--rate-limit N/SECONDS|off] [--ledger PATH]
    omni-nb discard (DOC... | --from-csv FILE | --run-id ID) [--yes] [--ledger PATH] [...]
    omni-nb drafts DOC... [--include-archived] [...]
    omni-nb results [--run-id ID | --last] [--since ISO] [--out FILE]
    omni-nb sandbox [--port 8787]

Every option is defined once, in :mod:`omni_nb.options`, with the magic's: one spelling
derived from the Python keyword (``--document-col`` for ``document_col=``); older spellings
(``--branch``, ``--run``, ``--rate``, ``--archived``) still work. No option is silently
ignored: one that means nothing with the others given (``--document-col`` without
``--from-csv``, ``--playground`` without ``--instance``) is refused in one line naming the
clash, exit code 2.

Exit codes: 0 all rows ok, 1 some item failed (or ``results`` matched nothing, or a ledger
write failed mid-batch: the rows not in the ledger are printed), 2 bad usage or settings (a
ledger that cannot be used is refused before anything is sent), 130 interrupted. Every error
is one line on stderr, never a traceback, and so is an interrupt (Ctrl-C, SIGINT): nothing more
is sent, no question is asked, and the line names the run and how to read it back when rows
were recorded; the check before a discard, interrupted, discards nothing. Messages name this
command's options (``--base-url``, ``--resume``), never the Python keywords. The token
comes from ``OMNI_API_TOKENS`` (several keys, comma-separated: each has its own rate budget,
``--rate-limit`` is per key), else ``OMNI_API_TOKEN`` / ``OMNI_API_KEY``, only: an option would
leave it in the shell history.

``--from-csv`` reads UTF-8 (with or without a byte-order mark, any line ending) with a
``document_id`` column and an optional ``branch_id`` column (``--document-col`` and
``--branch-col`` name others: ``--document-col identifier`` reads a CSV of
``omni_nb.list_documents()``); anything else (another encoding,
a binary file, a header naming a column twice) is refused before anything is sent, as is an
``--out`` that cannot be written.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import logging
import os
import signal
import sys
import textwrap
import threading
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from .errors import ConfigError, LedgerError, LedgerWarning, OmniError
from .options import add_options, clash, in_words
from .ratelimit import RateLimit

__all__ = ["main"]

log = logging.getLogger("omni_nb")


class _Usage(Exception):
    """A usage problem: one line on stderr, exit code 2."""


class _Stopped(KeyboardInterrupt):
    """An interrupt the command has already said in one line (exit code 130)."""


class _Sigint:
    """Ctrl-C while a command runs: a KeyboardInterrupt, as Python raises it, and noted.

    The batch catches the interrupt to stop sending, then raises its own or hands back what
    it has; the note is what tells the command, whichever it was, not to go on to ask or to
    send after an interrupted check. A SIGINT ignored by whoever
    started the command (``nohup``) stays ignored; off the main thread (``main`` called from
    a worker thread) nothing can be installed, and the batch's own handling is all there is.
    """

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _Sigint:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            # None: a handler set outside Python; Python's own is the sane one to leave.
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line names the problem and the help.
        raise _Usage(f"{self.prog}: {message} (see {self.prog} --help)")


def _rate(text: str) -> RateLimit | None:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_ENVIRONMENT = """\
environment:
  OMNI_API_TOKEN   the API token (or OMNI_API_KEY); never an option, so it stays out of
                   your shell history
  OMNI_API_TOKENS  several keys, comma-separated: each has its own rate budget (--rate-limit
                   is per key), and a batch sends each request on the key free soonest
  OMNI_BASE_URL    the API root, e.g. https://acme.omniapp.co/api (or OMNI_INSTANCE=acme,
                   with OMNI_PLAYGROUND=1 for a playground instance)
  OMNI_NB_LEDGER   the results ledger: a path, or off (default: ledger.sqlite3 in your data
                   directory)
  OMNI_NB_BUDGET   where each key's rate budget is shared: a path (this machine), a Redis
                   address redis://[user:password@]host:port/db (a team's machines), or off
"""


#: A missing setting, said in the command line's words (config's own words speak Python).
_MISSING = {
    "api_root": "no Omni API root: give --instance NAME (--playground for a playground "
                "instance) or --base-url URL, or set OMNI_INSTANCE or OMNI_BASE_URL",
    "token": "no Omni API token: set OMNI_API_TOKEN (or OMNI_API_KEY); the command line "
             "takes no token option, so it never lands in your shell history",
}


#: Each command's summary, description and example (its options are in omni_nb.options).
_COMMANDS = {
    "demo": ("run a batch against the embedded sandbox",
             "Start the embedded sandbox (an offline stand-in for Omni), create drafts for its "
             "documents with seeded failures, and show the table. Its rows go to a ledger of "
             "their own, never to your real one.", "omni-nb demo --documents 60"),
    "draft": ("create drafts for documents",
              "Create (or get back) the draft of each document, on a branch if given. Every "
              "result is kept in the ledger; the table is printed at the end with its run id. "
              "Exit code 0 when every row is ok, 1 when any item failed.",
              "omni-nb draft doc-a doc-b --branch-id 7c9e6679-7425-40de-944b-e07fc1f90ae7"),
    "discard": ("discard (archive) drafts, or undo a whole run",
                "Discard the active draft of each document given (as asked), or undo a run "
                "(--run-id): only the drafts that run made are discarded; a draft that existed "
                "before it or was replaced since is skipped. Shows what it will discard and "
                "asks first; --yes skips the question (needed without a terminal). Exit code 0 "
                "when every row is ok, 1 otherwise.", "omni-nb discard --run-id 3f2a9c0e1b7d"),
    "drafts": ("list the drafts of documents",
               "List each document's drafts (active ones; --include-archived adds archived "
               "ones). Exit code 1 when a listing failed.",
               "omni-nb drafts doc-a doc-b --include-archived"),
    "results": ("read results back from the ledger",
                "Show the ledger's rows, newest first, or write them to a file. Exit code 1 "
                "when nothing matched.", "omni-nb results --last --limit 50"),
    "budget": ("show (or clear) each key's shared rate budget",
               "Show each key's rate budget in the shared store: the explicit limits in force "
               "and who holds them, a learned limit, a pause, the sends in the window, by the "
               "key's short name (never the token). --clear drops a key's stale state first.",
               "omni-nb budget --clear"),
}


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="omni-nb", description="Create Omni drafts in batches, with a results ledger.",
        epilog=f"{_ENVIRONMENT}\nexample:\n  omni-nb demo\n  omni-nb draft doc-a doc-b",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="{demo,draft,discard,drafts,results,budget,sandbox}")
    for name, (summary, description, example) in _COMMANDS.items():
        command: _Parser = sub.add_parser(
            name, help=summary, description=textwrap.fill(description, 88),
            epilog=f"{_ENVIRONMENT}\nexample:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_options(command, name, {"rate": _rate})
    sub.add_parser("sandbox", help="serve the local Omni stand-in (see omni-nb sandbox --help)",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``omni-nb``: the exit code (see the module docstring).

    Example:
        >>> main(["results", "--limit", "0"])
        2
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sandbox"]:
        from .sandbox import main as sandbox_main

        return sandbox_main(args_list[1:], prog="omni-nb sandbox")
    with _Sigint() as sigint:
        return _main(args_list, sigint)


def _main(args_list: list[str], sigint: _Sigint) -> int:
    """Run one command; every way it ends is one exit code, and any error one line."""
    ledger: Path | None = None  # the ledger the command was told to use, for the read-back
    try:
        args = _parser().parse_args(args_list)
        problem = clash(args.command, vars(args))  # no flag is silently ignored
        if problem is not None:
            raise _Usage(f"omni-nb {args.command}: {problem}")
        ledger = getattr(args, "ledger", None)
        commands: dict[str, Any] = {
            "demo": _demo, "draft": _draft, "results": _results, "drafts": _drafts,
            "discard": lambda a: _discard(a, sigint), "budget": _budget}
        code: int = commands[args.command](args)
        sys.stdout.flush()  # here, so a closed pipe is caught below and not at exit
        return code
    except _Usage as exc:
        print(f"omni-nb: {exc}" if not str(exc).startswith("omni-nb") else str(exc),
              file=sys.stderr)
        return 2
    except ConfigError as exc:
        said = _MISSING.get(exc.missing or "", in_words(str(exc), "cli"))
        print(f"omni-nb: {said}", file=sys.stderr)
        return 2
    except LedgerError as exc:
        # Refused before anything was sent: a settings problem (2). A write that failed
        # mid-batch stopped items that were due (1); the table was printed first.
        print(f"omni-nb: LedgerError: {in_words(str(exc), 'cli')}", file=sys.stderr)
        return 2 if exc.result is None else 1
    except OmniError as exc:  # the Python layer's keyword= said as this command's options
        print(f"omni-nb: {type(exc).__name__}: {in_words(str(exc), 'cli')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # A terminal echoed "^C" on the current line: the one line starts on its own.
        lead = "\n" if sys.stderr.isatty() else ""
        print(f"{lead}omni-nb: {_interrupted(exc, ledger)}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `omni-nb results | head`: the reader left; end quietly, as Python's docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a command line shows one line, never a traceback
        log.debug("omni-nb: unexpected error", exc_info=True)
        print(f"omni-nb: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _interrupted(exc: KeyboardInterrupt, ledger: Path | None) -> str:
    """The one line an interrupted command ends with: what was kept, and the command that
    reads the run back where it was recorded (``ledger``: one the command was given)."""
    result: Any = getattr(exc, "result", None)
    if isinstance(exc, _Stopped) or result is None:
        return str(exc) or "interrupted"
    from .table import plural, summarize

    if "run_id" not in result.columns:  # a listing: it records nothing and changes nothing
        missing = int((result["status"] == "cancelled").sum())
        return (f"interrupted: {plural(missing, 'document')} not listed "
                "(a listing changes nothing)")
    said = f"interrupted: {summarize(result)}"
    if not len(result):
        return said
    from .ledger import open_ledger

    run_id = result["run_id"].iloc[0]
    path = open_ledger(ledger).path
    if path is None:
        return f"{said}; run {run_id} is in memory only (OMNI_NB_LEDGER=off)"
    again = f" --ledger {path}" if ledger is not None else ""
    return f"{said}; run {run_id} is in the ledger: omni-nb results --run-id {run_id}{again}"


def _run_with_bar(items: list[Any], branch: str | None, settings: Any, options: Any) -> Any:
    """The batch, with a text bar on a terminal (redirected output stays clean for pipes and
    logs) that says when the budget holds sending back, for how long, and the ETA."""
    from .batch import create_drafts
    from .batch.budget import budget_for
    from .progress import TextProgress

    bar = None
    if sys.stderr.isatty():
        bar = TextProgress(len(items), budget=budget_for(settings, options.rate_limit),
                           tick=1.0)
    try:
        return create_drafts(items, branch, settings=settings, options=options, progress=bar)
    finally:
        if bar is not None:
            bar.finish()


def _print_table(table: Any, limit: int = 15, *, newest_first: bool = False) -> None:
    from .table import text_view

    print(text_view(_in_cli_words(table), limit, newest_first=newest_first,
                    hint=" (--limit N shows more; --out FILE writes them all)"))


def _in_cli_words(table: Any) -> Any:
    """The table with its messages in this command's words (``rerun with --resume``): rows
    keep the Python layer's words in the ledger, where every front end reads them."""
    if "message" not in table.columns or not len(table):
        return table
    return table.assign(message=table["message"].map(lambda m: in_words(m, "cli"),
                                                      na_action="ignore"))


def _check_out(out: Path | None) -> None:
    """Refuse an ``--out`` that cannot be written, before anything is sent."""
    if out is None:
        return
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise _Usage(f"--out must end in .csv or .parquet, not {out.name!r}")
    if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise _Usage("--out .parquet needs pyarrow (pip install 'omni-nb[parquet]'); use .csv")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise _Usage(f"--out {out}: the directory {str(parent)!r} does not exist")
    if out.is_dir():
        raise _Usage(f"--out {out}: a directory, not a file")


def _write(table: Any, out: Path) -> None:
    try:
        if out.suffix.lower() == ".parquet":
            table.to_parquet(out, index=False)
        else:
            table.to_csv(out, index=False)
    except OSError as exc:
        raise _Usage(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
    print(f"wrote {len(table)} rows to {out}")


def _read_csv(path: Path, document_col: str = "document_id",
              branch_col: str | None = None) -> list[tuple[object, object]]:
    """``(document_id, branch_id)`` pairs of a UTF-8 CSV, from its ``document_col`` column
    and its ``branch_col`` one (default ``branch_id``, if present); one-line usage errors
    otherwise. A short line gives a None id: the batch makes it an ``invalid`` row naming
    its item.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")  # -sig: Excel's byte-order mark
    except IsADirectoryError:
        raise _Usage(f"--from-csv {path}: a directory, not a CSV file") from None
    except FileNotFoundError:
        raise _Usage(f"--from-csv {path}: no such file") from None
    except OSError as exc:
        raise _Usage(f"--from-csv {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise _Usage(f"--from-csv {path}: not UTF-8 text (save it as CSV UTF-8)") from None
    if "\x00" in text:
        raise _Usage(f"--from-csv {path}: not a text file")
    rows = list(csv.reader(io.StringIO(text, newline="")))  # any line ending
    header = [name.strip() for name in rows[0]] if rows else []
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise _Usage(f"--from-csv {path}: the header names {', '.join(twice)} more than once")
    for column, flag in ((document_col, "--document-col"), (branch_col, "--branch-col")):
        if column is not None and column not in header:
            raise _Usage(f"--from-csv {path}: no {column} column (header: {header}; "
                         f"{flag} COL names another)")
    doc_at = header.index(document_col)
    if branch_col is None and "branch_id" in header:
        branch_col = "branch_id"
    branch_at = header.index(branch_col) if branch_col is not None else None
    pairs: list[tuple[object, object]] = []
    for row in rows[1:]:
        if not row:
            continue  # a blank line (a line of empty cells is an input: an invalid row)
        doc = row[doc_at] if doc_at < len(row) else None
        branch = row[branch_at].strip() if branch_at is not None and branch_at < len(row) else ""
        pairs.append((doc, branch or None))
    return pairs


def _draft(args: argparse.Namespace) -> int:
    from .batch import BatchOptions

    _check_out(args.out)
    items = _items(args)
    if not items:
        raise _Usage("omni-nb draft: give document ids or --from-csv FILE")
    settings = _cli_settings(args)
    options = BatchOptions(concurrency=args.concurrency, rate_limit=args.rate_limit,
                           resume=args.resume, ledger=args.ledger)
    try:
        table = _run_with_bar(items, args.branch_id, settings, options)
    except LedgerError as failed:
        raise _unrecorded(failed, args.out) from failed.__cause__
    _print_table(table)
    if args.out is not None:
        _write(table, args.out)
    _print_run(table, args.ledger)
    return 0 if (table["status"] == "ok").all() else 1


def _unrecorded(failed: LedgerError, out: Path | None) -> LedgerError:
    """A ledger write failed mid-batch: print every answered row that is not in the ledger
    (its draft id is nowhere else once the command ends), write ``--out`` if asked, and say
    where the table went in the error (the Python layer names a variable)."""
    table = failed.result
    if table is None:
        return failed
    lost = {(doc, branch) for doc, branch, _ in failed.unrecorded}
    branches = table["branch_id"].astype(object).where(table["branch_id"].notna(), None)
    shown = table[[pair in lost for pair in zip(table["document_id"], branches, strict=True)]]
    if len(shown):
        print("not in the ledger:")
        _print_table(shown, len(shown))
    if out is not None:
        _write(table, out)
    return failed.kept_in(f"in {out}" if out is not None else
                          "gone when omni-nb ends (--out FILE keeps it)")


def _print_run(table: Any, ledger: Path | None) -> None:
    """The run id and where its rows are: what the user needs to read them back."""
    from .ledger import open_ledger

    if not len(table):
        return
    run_id = table["run_id"].iloc[0]
    path = open_ledger(ledger).path
    where = str(path) if path is not None else "memory only (OMNI_NB_LEDGER=off)"
    again = f" --ledger {path}" if ledger is not None and path is not None else ""
    print(f"\nrun {run_id}: every row is in the ledger at {where}")
    if path is not None:
        print(f"read it back with: omni-nb results --run-id {run_id}{again}")


def _results(args: argparse.Namespace) -> int:
    from .ledger import reading

    _check_out(args.out)
    if args.limit < 1:
        raise _Usage(f"--limit must be at least 1, not {args.limit}")
    if args.ledger is not None and not args.ledger.is_file():
        raise _Usage(f"--ledger {args.ledger}: no such file")
    run_id = args.run_id
    since = _since(args.since)
    # Read-only where the ledger cannot be written (read-only media): reading writes nothing.
    # What the read warns of (a -wal it cannot read there) is one line, as errors are.
    with warnings.catch_warnings(record=True) as said, reading(args.ledger) as ledger:
        warnings.simplefilter("always", LedgerWarning)
        if args.last:
            run_id = ledger.latest_run()
        table = None if args.last and run_id is None else ledger.results(run_id, since)
    for warning in said:
        print(f"omni-nb: warning: {warning.message}", file=sys.stderr)
    if table is None:
        print("omni-nb results: the ledger holds no batch yet", file=sys.stderr)
        return 1
    if not len(table):
        print("omni-nb results: no rows matched", file=sys.stderr)
        return 1
    if args.out is not None:
        _write(table, args.out)
    else:
        _print_table(table, args.limit, newest_first=True)
    return 0


def _items(args: argparse.Namespace) -> list[Any]:
    items: list[Any] = list(args.items)
    if args.from_csv is not None:
        items += _read_csv(args.from_csv, args.document_col, args.branch_col)
    return items


def _discard(args: argparse.Namespace, sigint: _Sigint) -> int:
    from .batch import BatchOptions
    from .batch.preview import DiscardPreview
    from .table import plural

    _check_out(args.out)
    items = _items(args)
    if bool(items) == (args.run_id is not None):
        raise _Usage("omni-nb discard: give document ids, --from-csv FILE, or --run-id RUN_ID "
                      "(one of them)")
    settings = _cli_settings(args)
    options = BatchOptions(concurrency=args.concurrency, rate_limit=args.rate_limit,
                           ledger=args.ledger)
    kw: dict[str, Any] = dict(run_id=args.run_id, branch_id=args.branch_id, settings=settings,
                              options=options, trust_old_ledger=args.trust_old_ledger)
    try:
        plan: Any = _discarding(items, kw, dry_run=True)
    except KeyboardInterrupt:  # the check stopped and said so (BatchInterrupted)
        sigint.seen = True
    if sigint.seen:  # the check stopped part-way: what it found is no basis to discard
        whose = f" of run {args.run_id}" if args.run_id is not None else ""
        raise _Stopped(f"interrupted while checking the drafts{whose}: nothing was discarded")
    # What will be archived and what skipped and why: a short list, not the requests.
    preview = DiscardPreview.of(plan)
    going = len(preview.archive)
    print(preview.text())
    if going and not args.yes and not _confirmed(f"Discard {plural(going, 'draft')}?"):
        print("nothing discarded")
        return 1
    try:
        table: Any = _discarding(items, kw, dry_run=False)
    except LedgerError as failed:
        raise _unrecorded(failed, args.out) from failed.__cause__
    _print_table(table)
    if args.out is not None:
        _write(table, args.out)
    _print_run(table, args.ledger)
    return 0 if (table["status"] == "ok").all() else 1


def _confirmed(question: str) -> bool:
    """The user's yes on the terminal (none: a usage error naming --yes)."""
    if not sys.stdin.isatty():
        raise _Usage("omni-nb discard: no terminal to ask on: add --yes to discard "
                     "without asking")
    try:
        answer = input(f"{question} [y/N] ")
    except KeyboardInterrupt:
        raise _Stopped("interrupted: nothing was discarded") from None
    except EOFError:  # Ctrl-D: no answer is a no
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def _discarding(items: list[Any], kw: dict[str, Any], *, dry_run: bool) -> Any:
    """The one call of the batch's discard (the rehearsal and the real one)."""
    from .batch import discard_drafts

    return discard_drafts(items or None, dry_run=dry_run, **kw)


def _drafts(args: argparse.Namespace) -> int:
    from .batch import list_drafts
    from .rows import DRAFT_SHOWN

    _check_out(args.out)
    items = _items(args)
    if not items:
        raise _Usage("omni-nb drafts: give document ids or --from-csv FILE")
    listing = list_drafts(items, include_archived=args.include_archived,
                          settings=_cli_settings(args))
    print(_in_cli_words(listing[list(DRAFT_SHOWN)]).to_string(index=False, na_rep="")
          if len(listing) else "no drafts")
    if args.out is not None:
        _write(listing, args.out)
    return 0 if (listing["status"] == "ok").all() else 1


def _budget(args: argparse.Namespace) -> int:
    """Print each key's shared budget (after clearing, with --clear)."""
    from .config import resolve_settings
    from .ratelimit.report import rate_budget

    try:
        settings = resolve_settings(args.base_url, None, instance=args.instance,
                                    playground=args.playground or None, budget=args.budget)
    except ConfigError:
        if args.base_url or args.instance:
            raise
        settings = None  # no key configured: every key is shown by digest
    print(rate_budget(settings, clear=args.clear, every_key=args.all_keys,
                      path=args.budget))
    return 0


def _cli_settings(args: argparse.Namespace) -> Any:
    from .config import resolve_settings

    return resolve_settings(args.base_url, None, instance=args.instance,
                            playground=args.playground or None)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _Usage(
            f"--since {text!r} is not an ISO time (like 2026-11-27 or 2026-11-27T09:30)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _demo(args: argparse.Namespace) -> int:
    from .batch import BatchOptions
    from .config import default_ledger_path, resolve_settings
    from .sandbox import serve
    from .table import plural

    # Real Omni allows 60 requests a minute; the demo's sandbox allows 1,200 so that a few
    # hundred documents take seconds, and the client is told the same limit.
    limit = RateLimit(1200, 60.0)
    docs = [f"doc-{i:04d}" for i in range(1, args.documents + 1)]
    docs += ["doc-missing-1", "doc-missing-2", "../etc/passwd"]  # seeded failures
    # Sandbox rows never mix with real ones: the demo keeps a ledger of its own.
    ledger = args.ledger or default_ledger_path().with_name("demo.sqlite3")
    with serve(
        documents=args.documents, latency=args.latency, latency_jitter=args.latency,
        rate_limit=(limit.requests, limit.per), fail_rate=0.05, drop_rate=0.01, seed=7,
    ) as sb:
        print(f"sandbox at {sb.base_url}: {len(docs)} documents "
              "(every 10th not eligible, 5% transient 5xx, 1% dropped connections)")
        settings = resolve_settings(sb.base_url, sb.token)
        options = BatchOptions(concurrency=args.concurrency, rate_limit=limit, ledger=ledger)
        try:
            table = _run_with_bar(docs, None, settings, options)
        except KeyboardInterrupt as stop:  # its rows are in the demo's ledger, not the usual
            raise _Stopped(_interrupted(stop, ledger)) from None
    _print_table(table)
    cols = ["document_id", "status", "http_status", "attempts", "message"]
    failed = table[table["status"] != "ok"]
    print(f"\nnot ok: {plural(len(failed), 'row')}; the first two of each kind:")
    print(failed.groupby("status", observed=True).head(2)[cols].to_string(index=False))
    retried = int((table["attempts"] > 1).sum())
    print(f"\n{plural(retried, 'row')} needed a retry (transient 5xx or a dropped connection) "
          "and got their draft anyway")
    _print_run(table, ledger)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
