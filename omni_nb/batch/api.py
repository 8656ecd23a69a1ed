"""The batch's public functions: many documents -> one results table, every row in the ledger.

``create_drafts`` (sync) runs the engine on a private event-loop thread, so it works the same
in a script, in a Jupyter cell (where a loop already runs in the main thread) and after
``nest_asyncio.apply()``, without patching asyncio: see :mod:`omni_nb._loop`.

Interrupting (Ctrl-C, the kernel's Interrupt) stops sending at once: results already received
are kept (and are in the ledger), every other item gets status ``cancelled``, and
:class:`BatchInterrupted` (a ``KeyboardInterrupt``) is raised carrying the table as
``.result``, so "Run all" stops and nothing is lost. The async form re-raises
``CancelledError`` after recording the same rows.

Front ends (magic, form, CLI) resolve their settings and options once and call
:func:`run_batch`; the functions users call build those from their keywords.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._loop import run_sync
from ..client import Draft, OmniClient, RetryPolicy
from ..config import Settings, resolve_settings
from ..errors import reduce_exception
from ..ledger import Ledger, open_ledger
from ..ratelimit import RateLimit, shared_limiter
from . import run as engine
from .background import BatchRun, start
from .ops import CREATE_DRAFT, Operation
from .plan import plan
from .run import BatchOptions, Progress

if TYPE_CHECKING:
    import pandas as pd

    from ..table import DraftResults

__all__ = [
    "BatchInterrupted",
    "acreate_drafts",
    "arun_batch",
    "create_draft",
    "create_drafts",
    "dry_run",
    "last_result",
    "run_batch",
]

_last: dict[str, Any] = {}


class BatchInterrupted(KeyboardInterrupt):
    """The batch was interrupted; ``.result`` holds the table (received rows plus
    ``cancelled`` ones), already in the ledger.

    Example:
        >>> # try: create_drafts(docs)
        >>> # except BatchInterrupted as stop: table = stop.result
    """

    def __init__(self, result: DraftResults, where: str = "omni_nb.batch.last_result()") -> None:
        super().__init__(f"interrupted: {result.summary()} — the table is {where}")
        self.result = result

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback: an interrupt reads like every
        # other error, one line naming what was kept and where (the cell still fails).
        return [str(self)]

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_exception(self)


def last_result() -> DraftResults | None:
    """The table of the last batch in this process (also after an interrupt).

    Example:
        >>> last_result() is None or len(last_result()) >= 0
        True
    """
    return _last.get("result")


async def arun_batch(
    op: Operation, items: Any, branch_id: object = None, *, settings: Settings,
    options: BatchOptions, progress: Progress | None = None,
    cancel: threading.Event | None = None, document_col: str = "document_id",
    branch_col: str | None = None, labels: Sequence[str] | None = None,
) -> tuple[DraftResults, bool]:
    """Plan and run ``op`` over ``items``: (the table, whether it was interrupted).

    Example:
        >>> # table, stopped = await arun_batch(CREATE_DRAFT, docs, settings=s,
        >>> #                                   options=BatchOptions())
    """
    planned = plan(items, branch_id=branch_id, document_col=document_col,
                   branch_col=branch_col, labels=labels)
    table, interrupted = await engine.run(
        op, planned, settings=settings, options=options, progress=progress, cancel=cancel
    )
    _remember(table)
    return table, interrupted


def _remember(table: DraftResults) -> None:
    _last["result"] = table


def run_batch(
    op: Operation, items: Any, branch_id: object = None, *, settings: Settings,
    options: BatchOptions, progress: Progress | None = None,
    cancel: threading.Event | None = None, document_col: str = "document_id",
    branch_col: str | None = None, labels: Sequence[str] | None = None,
) -> DraftResults:
    """The front ends' entry: run on the private loop; :class:`BatchInterrupted` on an
    interrupt (a Cancel through ``cancel`` just returns the table).

    Example:
        >>> # table = run_batch(CREATE_DRAFT, docs, settings=s, options=BatchOptions())
    """

    def make() -> Any:
        return arun_batch(
            op, items, branch_id, settings=settings, options=options, progress=progress,
            cancel=cancel, document_col=document_col, branch_col=branch_col, labels=labels,
        )

    table: DraftResults
    table, interrupted = run_sync(make)
    if interrupted and cancel is None:
        raise BatchInterrupted(table)
    return table


def dry_run(
    op: Operation, items: Any, branch_id: object = None, *, api_root: str,
    document_col: str = "document_id", branch_col: str | None = None,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """What a run would send, one row per input; sends nothing.

    Example:
        >>> t = dry_run(CREATE_DRAFT, ["doc-1", "doc-1"], api_root="https://a.omniapp.co/api")
        >>> list(t["message"])
        ['', 'duplicate of item 1: sent once']
    """
    from ..table import dry_run_frame, plural

    planned = plan(items, branch_id=branch_id, document_col=document_col,
                   branch_col=branch_col, labels=labels)
    records = [
        (i.label, i.document_id, i.branch_id, i.error is None,
         "" if i.error is not None else op.call(i.document_id, i.branch_id).describe(api_root),
         i.error or (f"duplicate of {i.first}: sent once" if i.first else ""))
        for i in planned.inputs
    ]
    sent = sum(1 for i in planned.inputs if i.sent)
    invalid = sum(1 for i in planned.inputs if i.error is not None)
    summary = (f"dry run: {plural(sent, 'request')} would be sent to {api_root}, "
               f"{invalid} invalid; nothing was sent")
    return dry_run_frame(records, summary)


def _options(
    concurrency: int, rate_limit: RateLimit | None, resume: bool,
    ledger: str | Path | Ledger | None, max_retries: int | None, retry: RetryPolicy | None,
    timeout: float,
) -> BatchOptions:
    return BatchOptions(
        concurrency=concurrency, rate_limit=rate_limit, retry=RetryPolicy.of(max_retries, retry),
        timeout=timeout, resume=resume, ledger=ledger,
    )


async def acreate_drafts(
    items: Any,
    branch_id: str | None = None,
    *,
    base_url: str | None = None,
    token: str | None = None,
    tokens: Sequence[str] | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    concurrency: int = 8,
    rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, safe to share
    resume: bool = False,
    ledger: str | Path | Ledger | None = None,
    progress: Progress | None = None,
    max_retries: int | None = None,
    retry: RetryPolicy | None = None,
    timeout: float = 30.0,
    document_col: str = "document_id",
    branch_col: str | None = None,
    cancel: threading.Event | None = None,
) -> DraftResults:
    """Create drafts for many documents; returns the results table (one row per distinct
    input, in input order). See :func:`create_drafts`.

    Example:
        >>> # table = await omni_nb.acreate_drafts(["doc-a", "doc-b"], concurrency=4)
    """
    options = _options(concurrency, rate_limit, resume, ledger, max_retries, retry, timeout)
    settings = resolve_settings(base_url, token, tokens=tokens, instance=instance,
                                playground=playground)
    table, interrupted = await arun_batch(
        CREATE_DRAFT, items, branch_id, settings=settings, options=options, progress=progress,
        cancel=cancel, document_col=document_col, branch_col=branch_col,
    )
    if interrupted:
        raise asyncio.CancelledError
    return table


def create_drafts(
    items: Any,
    branch_id: str | None = None,
    *,
    base_url: str | None = None,
    token: str | None = None,
    tokens: Sequence[str] | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    concurrency: int = 8,
    rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, safe to share
    resume: bool = False,
    ledger: str | Path | Ledger | None = None,
    progress: Progress | None = None,
    max_retries: int | None = None,
    retry: RetryPolicy | None = None,
    timeout: float = 30.0,
    document_col: str = "document_id",
    branch_col: str | None = None,
    cancel: threading.Event | None = None,
    background: bool = False,
) -> DraftResults | BatchRun:
    """Create drafts for many documents; returns the results table.

    ``items``: document ids, ``(document_id, branch_id)`` pairs, or a DataFrame with a
    ``document_id`` column (``document_col=``) and optionally a ``branch_id`` column
    (``branch_col=``). A pair's missing branch means ``branch_id`` (default: no branch).
    Duplicate pairs are sent once. Per-item failures are rows, never exceptions; settings
    errors (no token, unsafe URL) raise before anything is sent.

    Columns: ``document_id``, ``branch_id``, ``draft_id``, ``status``, ``http_status``,
    ``message``, ``attempts``, ``queued_s``, ``elapsed_s``, ``requested_at``, ``key``,
    ``api_root``, ``run_id``, ``from_ledger``. ``resume=True`` copies ``ok`` rows from the
    ledger instead of sending. ``retry=`` takes an :class:`omni_nb.RetryPolicy` (instead of
    ``max_retries=``).

    ``tokens=[...]`` (or ``login(tokens=...)``, or ``OMNI_API_TOKENS``) gives a pool of API
    keys, each with its own rate budget (``rate_limit`` is per key): each request goes on the
    key that can send soonest, ``key`` names it (a short digest, never the token). A key the
    server refuses leaves the pool with a :class:`omni_nb.KeyRefusedWarning`; the batch
    stops only when no key is left.
    ``background=True`` returns a :class:`~omni_nb.batch.background.BatchRun` at once (the
    kernel stays free; ``.wait()`` gives the table, ``.cancel()`` stops it).

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     t = create_drafts(["doc-0001", "doc-0010", "nope"], base_url=sb.base_url,
        ...                       token=sb.token, ledger="off")
        >>> list(t["status"])
        ['ok', 'not_eligible', 'not_found']
    """
    options = _options(concurrency, rate_limit, resume, ledger, max_retries, retry, timeout)
    settings = resolve_settings(base_url, token, tokens=tokens, instance=instance,
                                playground=playground)
    if background:
        planned = plan(items, branch_id=branch_id, document_col=document_col,
                       branch_col=branch_col)  # bad input raises here, not in the background
        return start(CREATE_DRAFT, planned, settings=settings, options=options,
                     progress=progress, on_table=_remember)
    return run_batch(
        CREATE_DRAFT, items, branch_id, settings=settings, options=options, progress=progress,
        cancel=cancel, document_col=document_col, branch_col=branch_col,
    )


def create_draft(
    document_id: str,
    branch_id: str | None = None,
    *,
    base_url: str | None = None,
    token: str | None = None,
    tokens: Sequence[str] | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, safe to share
    ledger: str | Path | Ledger | None = None,
    timeout: float = 30.0,
) -> Draft:
    """One draft, recorded in the ledger; raises the typed error on failure. With a pool
    (``tokens=``), it is sent on the key that can send soonest.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     create_draft("doc-0001", base_url=sb.base_url, token=sb.token,
        ...                  ledger="off").document_id
        'doc-0001'
    """
    store = open_ledger(ledger)
    settings = resolve_settings(base_url, token, tokens=tokens, instance=instance,
                                playground=playground)
    key = min(settings.tokens, key=lambda secret: shared_limiter(
        settings.api_root, secret.fingerprint(), rate_limit).next_send_in())
    with OmniClient(
        settings=settings.for_key(key), rate_limit=rate_limit, timeout=timeout,
        on_result=store.record_outcome,
    ) as client:
        return client.create_draft(document_id, branch_id)
