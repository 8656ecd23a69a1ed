"""The ``omni-nb`` command.

::

    omni-nb demo [--documents 300] [--concurrency 8]
    omni-nb draft DOC... [--branch UUID] [--from-csv FILE] [--out FILE.csv|.parquet] [--resume]
                  [--instance NAME | --base-url URL] [--concurrency N] [--rate N/SECONDS|off]
    omni-nb results [--run ID] [--since ISO] [--out FILE]
    omni-nb sandbox [--port 8787]

Exit codes: 0 all rows ok, 1 some item failed (or ``results`` matched nothing), 2 bad usage
or settings, 130 interrupted. Every error is one line on stderr, never a traceback. The token
comes from ``OMNI_API_TOKEN`` / ``OMNI_API_KEY`` only: an option would leave it in the shell
history.

``--from-csv`` reads UTF-8 (with or without a byte-order mark, any line ending) with a
``document_id`` column and an optional ``branch_id`` column; anything else (another encoding,
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
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from .errors import OmniError
from .ratelimit import RateLimit

__all__ = ["main"]

log = logging.getLogger("omni_nb")


class _Usage(Exception):
    """A usage problem: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line names the problem and the help.
        raise _Usage(f"{self.prog}: {message} (see {self.prog} --help)")


def _rate(text: str) -> RateLimit | None:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="omni-nb", description="Create Omni drafts in batches, with a results ledger."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="run a batch against the embedded sandbox")
    demo.add_argument("--documents", type=int, default=300, help="how many documents (300)")
    demo.add_argument("--concurrency", type=int, default=8)
    demo.add_argument("--latency", type=float, default=0.05, help="sandbox latency, seconds")

    draft = sub.add_parser("draft", help="create drafts for documents")
    draft.add_argument("documents", nargs="*", metavar="DOC")
    draft.add_argument("--branch", help="branch UUID for every document")
    draft.add_argument("--from-csv", type=Path, help="CSV with document_id[,branch_id] columns")
    draft.add_argument("--out", type=Path, help="write the table to .csv or .parquet")
    draft.add_argument("--resume", action="store_true", help="skip pairs already ok in the ledger")
    where = draft.add_mutually_exclusive_group()
    where.add_argument("--instance", help="Omni instance name (acme -> acme.omniapp.co)")
    where.add_argument("--base-url", help="API root, e.g. https://acme.omniapp.co/api")
    draft.add_argument("--playground", action="store_true", help="instance is a playground")
    draft.add_argument("--concurrency", type=int, default=8)
    draft.add_argument("--rate", type=_rate, default=RateLimit(), help="N/SECONDS or off")

    res = sub.add_parser("results", help="read results back from the ledger")
    res.add_argument("--run", help="one batch's run id")
    res.add_argument("--since", help="ISO time, e.g. 2026-11-27T00:00")
    res.add_argument("--out", type=Path, help="write to .csv or .parquet instead of printing")

    sub.add_parser("sandbox", help="serve the local Omni stand-in", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``omni-nb``.

    Example:
        >>> # omni-nb demo
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sandbox"]:
        from .sandbox import main as sandbox_main

        return sandbox_main(args_list[1:])
    try:
        args = _parser().parse_args(args_list)
        command = {"demo": _demo, "draft": _draft, "results": _results}[args.command]
        code = command(args)
        sys.stdout.flush()  # here, so a closed pipe is caught below and not at exit
        return code
    except _Usage as exc:
        print(f"omni-nb: {exc}" if not str(exc).startswith("omni-nb") else str(exc),
              file=sys.stderr)
        return 2
    except OmniError as exc:
        print(f"omni-nb: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        result = getattr(exc, "result", None)
        if result is not None:
            print(f"\ninterrupted: {result.summary()}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `omni-nb results | head`: the reader left; end quietly, as Python's docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a command line shows one line, never a traceback
        log.debug("omni-nb: unexpected error", exc_info=True)
        print(f"omni-nb: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _progress(total: int) -> Any:
    from .progress import TextProgress

    # A bar only on a terminal: redirected output stays clean for pipes and logs.
    return TextProgress(total) if sys.stderr.isatty() else None


def _print_table(table: Any) -> None:
    from .table import text_view

    print(text_view(table))


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


def _read_csv(path: Path) -> list[tuple[object, object]]:
    """``(document_id, branch_id)`` pairs of a UTF-8 CSV; one-line usage errors otherwise.

    A short line gives a None id: the batch makes it an ``invalid`` row naming its item.
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
    if "document_id" not in header:
        raise _Usage(f"--from-csv {path}: no document_id column (header: {header})")
    doc_at = header.index("document_id")
    branch_at = header.index("branch_id") if "branch_id" in header else None
    pairs: list[tuple[object, object]] = []
    for row in rows[1:]:
        if not row:
            continue  # a blank line (a line of empty cells is an input: an invalid row)
        doc = row[doc_at] if doc_at < len(row) else None
        branch = row[branch_at].strip() if branch_at is not None and branch_at < len(row) else ""
        pairs.append((doc, branch or None))
    return pairs


def _draft(args: argparse.Namespace) -> int:
    from .batch import CREATE_DRAFT, BatchOptions, run_batch
    from .config import resolve_settings

    _check_out(args.out)
    items: list[Any] = list(args.documents)
    if args.from_csv is not None:
        items += _read_csv(args.from_csv)
    if not items:
        raise _Usage("omni-nb draft: give document ids or --from-csv FILE")
    settings = resolve_settings(
        args.base_url, None, instance=args.instance, playground=args.playground or None
    )
    options = BatchOptions(concurrency=args.concurrency, rate_limit=args.rate,
                           resume=args.resume)
    table = run_batch(CREATE_DRAFT, items, args.branch, settings=settings, options=options,
                      progress=_progress(len(items)))
    _print_table(table)
    if args.out is not None:
        _write(table, args.out)
    return 0 if (table["status"] == "ok").all() else 1


def _results(args: argparse.Namespace) -> int:
    from .ledger import results

    _check_out(args.out)
    table = results(run_id=args.run, since=_since(args.since))
    if not len(table):
        print("omni-nb results: no rows matched", file=sys.stderr)
        return 1
    if args.out is not None:
        _write(table, args.out)
    else:
        _print_table(table)
    return 0


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
    from .batch import create_drafts
    from .ledger import open_ledger
    from .sandbox import serve

    # Real Omni allows 60 requests a minute; the demo's sandbox allows 1,200 so that a few
    # hundred documents take seconds, and the client is told the same limit.
    limit = RateLimit(1200, 60.0)
    docs = [f"doc-{i:04d}" for i in range(1, args.documents + 1)]
    docs += ["doc-missing-1", "doc-missing-2", "../etc/passwd"]  # seeded failures
    with serve(
        documents=args.documents, latency=args.latency, latency_jitter=args.latency,
        rate_limit=(limit.requests, limit.per), fail_rate=0.05, drop_rate=0.01, seed=7,
    ) as sb:
        print(f"sandbox at {sb.base_url}: {len(docs)} documents "
              "(every 10th not eligible, 5% transient 5xx, 1% dropped connections)")
        table = create_drafts(
            docs, base_url=sb.base_url, token=sb.token, rate_limit=limit,
            concurrency=args.concurrency, progress=_progress(len(docs)),
        )
    _print_table(table)
    cols = ["document_id", "status", "http_status", "attempts", "message"]
    failed = table[table["status"] != "ok"]
    print(f"\nnot ok: {len(failed)} rows; the first two of each kind:")
    print(failed.groupby("status", observed=True).head(2)[cols].to_string(index=False))
    retried = int((table["attempts"] > 1).sum())
    print(f"\n{retried} rows needed a retry (transient 5xx or a dropped connection) and got "
          "their draft anyway")
    ledger = open_ledger()
    where = ledger.path if ledger.path is not None else "memory (OMNI_NB_LEDGER=off)"
    print(f"\nrun {table['run_id'].iloc[0]}: every row is in the ledger at {where}")
    print(f"read it back with: omni-nb results --run {table['run_id'].iloc[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
