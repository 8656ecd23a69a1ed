"""The ``omni-nb`` command.

::

    omni-nb demo [--documents 300] [--concurrency 8]
    omni-nb draft DOC... [--branch UUID] [--from-csv FILE] [--out FILE.csv|.parquet] [--resume]
                  [--instance NAME | --base-url URL] [--concurrency N] [--rate N/SECONDS|off]
    omni-nb results [--run ID] [--since ISO] [--out FILE]
    omni-nb sandbox [--port 8787]

Exit codes: 0 all rows ok, 1 some item failed, 2 bad usage or settings, 130 interrupted.
The token comes from ``OMNI_API_TOKENS`` (several keys, comma-separated: each has its own
rate budget, ``--rate`` is per key), else ``OMNI_API_TOKEN`` / ``OMNI_API_KEY``, only: an
option would leave it in the shell history.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import OmniError
from .ratelimit import RateLimit

__all__ = ["main"]


def _rate(text: str) -> RateLimit | None:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omni-nb", description="Create Omni drafts in batches, with a results ledger."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a batch against the embedded sandbox")
    demo.add_argument("--documents", type=int, default=300, help="how many documents (300)")
    demo.add_argument("--concurrency", type=int, default=8)
    demo.add_argument("--latency", type=float, default=0.05, help="sandbox latency, seconds")

    draft = sub.add_parser(
        "draft", help="create drafts for documents",
        epilog="The API key comes from the environment, never an option: OMNI_API_TOKENS "
        "(several keys, comma-separated; each has its own rate budget and --rate is per key), "
        "else OMNI_API_TOKEN or OMNI_API_KEY.",
    )
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
    args = _parser().parse_args(args_list)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "draft":
            return _draft(args)
        return _results(args)
    except OmniError as exc:
        print(f"omni-nb: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        # SystemExit("message") would exit with status 1, which means "an item failed":
        # a usage problem (bad CSV, bad --out) is 2, as documented.
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt as exc:
        result = getattr(exc, "result", None)
        if result is not None:
            print(f"\ninterrupted: {result.summary()}", file=sys.stderr)
        return 130


def _progress(total: int) -> Any:
    from .progress import TextProgress

    # A bar only on a terminal: redirected output stays clean for pipes and logs.
    return TextProgress(total) if sys.stderr.isatty() else None


def _show(table: Any) -> None:
    from .table import text_view

    print(text_view(table))


def _write(table: Any, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        try:
            table.to_parquet(out, index=False)
        except ImportError as exc:
            raise SystemExit(f"omni-nb: writing parquet needs pyarrow: {exc}") from None
    elif suffix == ".csv":
        table.to_csv(out, index=False)
    else:
        raise SystemExit(f"omni-nb: --out must end in .csv or .parquet, not {out.name!r}")
    print(f"wrote {len(table)} rows to {out}")


def _draft(args: argparse.Namespace) -> int:
    from .batch import CREATE_DRAFT, BatchOptions, run_batch
    from .config import resolve_settings

    items: list[Any] = list(args.documents)
    if args.from_csv is not None:
        with args.from_csv.open(newline="", encoding="utf-8") as handle:
            for record in csv.DictReader(handle):
                if "document_id" not in record:
                    raise SystemExit(f"omni-nb: {args.from_csv}: no document_id column")
                branch = (record.get("branch_id") or "").strip() or None
                # A short line gives None: the batch makes it an `invalid` row naming its item.
                items.append((record.get("document_id"), branch))
    if not items:
        print("omni-nb draft: give document ids or --from-csv FILE", file=sys.stderr)
        return 2
    settings = resolve_settings(
        args.base_url, None, instance=args.instance, playground=args.playground or None
    )
    options = BatchOptions(concurrency=args.concurrency, rate_limit=args.rate,
                           resume=args.resume)
    table = run_batch(CREATE_DRAFT, items, args.branch, settings=settings, options=options,
                      progress=_progress(len(items)))
    _show(table)
    if args.out is not None:
        _write(table, args.out)
    return 0 if (table["status"] == "ok").all() else 1


def _results(args: argparse.Namespace) -> int:
    from .ledger import results

    table = results(run_id=args.run, since=args.since)
    if args.out is not None:
        _write(table, args.out)
    else:
        _show(table)
    return 0


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
    _show(table)
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
