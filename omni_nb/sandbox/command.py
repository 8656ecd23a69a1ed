"""The command line: ``python -m omni_nb.sandbox`` and ``omni-nb sandbox`` run :func:`main`.

It lives here rather than in ``__main__.py`` so that importing the package never
imports ``omni_nb.sandbox.__main__`` (runpy warns when ``-m`` then runs it again).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Final

from .server import Sandbox, serve
from .state import RetryAfter, Settings, rate_text

__all__ = ["DEMO_TOKEN", "main"]

#: The fixed editor token the command line prints. It is a sandbox-only value,
#: never accepted by a real Omni instance; :func:`serve` uses a random token
#: unless ``token=`` is given.
DEMO_TOKEN: Final = "omni_osk_sandbox_demo"  # noqa: S105 - public by design


def _rate_limit_arg(text: str) -> tuple[int, float] | None:
    if text.strip().lower() in ("off", "none", "0"):
        return None
    requests, sep, per = text.partition("/")
    try:
        limit = (int(requests), float(per) if sep else 60.0)
        Settings(rate_limit=limit)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected N/SECONDS (e.g. 60/60) or 'off', got {text!r}"
        ) from None
    return limit


def _grace_arg(text: str) -> float:
    try:
        return Settings(grace=float(text)).grace
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}") from None


def _retry_after_arg(text: str) -> RetryAfter | None:
    value = text.strip().lower()
    if value == "seconds":
        return "seconds"
    if value == "date":
        return "date"
    if value == "none":
        return None
    raise argparse.ArgumentTypeError(f"expected seconds, date or none, got {text!r}")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a local stand-in for Omni's Create draft API.",
    )
    parser.add_argument("--port", type=int, default=8787, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--documents", type=int, default=300, help="number of seeded documents")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    parser.add_argument("--latency-jitter", type=float, default=0.0, help="extra random 0..J s")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of 5xx answers")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of dropped requests")
    parser.add_argument("--slow-rate", type=float, default=0.0, help="share of slow answers")
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="delay of a slow answer")
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit_arg,
        default=(60, 60.0),
        metavar="N/SECONDS",
        help="per-token trailing-window limit, e.g. 60/60, or 'off'",
    )
    parser.add_argument(
        "--grace",
        type=_grace_arg,
        default=0.0,
        metavar="SECONDS",
        help="accept a request the window would refuse when it frees within SECONDS (0)",
    )
    parser.add_argument(
        "--retry-after",
        type=_retry_after_arg,
        default="seconds",
        metavar="{seconds,date,none}",
        help="Retry-After form on 429",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for faults and draft ids")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return parser


def _banner(sb: Sandbox, args: argparse.Namespace) -> str:
    limit = "off" if args.rate_limit is None else rate_text(*args.rate_limit)
    return (
        f"Omni sandbox serving {args.documents} documents at {sb.url}\n"
        f"  API root     : {sb.base_url}\n"
        f"  editor token : {sb.token}   (sandbox-only demo token)\n"
        f"  viewer token : {sb.viewer_token}\n"
        f"  branches     : "
        + ", ".join(f"{b.name}={b.id}" for b in sb.branches)
        + f"\n  rate limit   : {limit}"
        + (f" (grace {args.grace:g} s)" if args.grace else "")
        + "\n"
        "Use it from another shell:\n"
        f"  export OMNI_BASE_URL={sb.base_url}\n"
        f"  export OMNI_API_TOKEN={sb.token}\n"
        f'  curl -X POST -H "Authorization: Bearer $OMNI_API_TOKEN" '
        f"$OMNI_BASE_URL/v1/documents/doc-0001/draft\n"
        "Press Ctrl-C to stop."
    )


def main(argv: list[str] | None = None, prog: str = "python -m omni_nb.sandbox") -> int:
    """Run a sandbox in the foreground until Ctrl-C; returns the exit status.

    Uses the fixed :data:`DEMO_TOKEN` so a second terminal can reuse it.

    Example::

        $ python -m omni_nb.sandbox --port 8787 --fail-rate 0.1 --rate-limit 60/60
    """
    args = _parser(prog).parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s")
    try:
        sb = serve(
            args.port,
            args.host,
            documents=args.documents,
            latency=args.latency,
            latency_jitter=args.latency_jitter,
            rate_limit=args.rate_limit,
            retry_after=args.retry_after,
            grace=args.grace,
            fail_rate=args.fail_rate,
            drop_rate=args.drop_rate,
            slow_rate=args.slow_rate,
            slow_seconds=args.slow_seconds,
            seed=args.seed,
            token=DEMO_TOKEN,
        )
    except (OSError, ValueError) as exc:
        print(f"omni sandbox: cannot start: {exc}", file=sys.stderr)
        return 1
    with sb:
        print(_banner(sb, args), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nomni sandbox: stopped", flush=True)
    return 0
