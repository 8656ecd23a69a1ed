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
import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from .._loop import run_sync
from ..client import Draft, OmniClient, RetryPolicy
from ..config import Settings, resolve_settings
from ..errors import InvalidInputError, LedgerError, reduce_exception
from ..ledger import Ledger, open_ledger
from ..ratelimit import RateLimit, shared_limiter
from . import run as engine
from .background import BatchRun, start
from .keywords import BatchKeywords, SendKeywords, options_of, resolve
from .ops import CREATE_DRAFT, DiscardDraft, ListDrafts, Operation
from .plan import Plan, pairs_of, plan
from .run import BatchOptions, Progress
from .undo import undo_targets

if TYPE_CHECKING:
    import pandas as pd

    from ..table import DraftResults

__all__ = [
    "BatchInterrupted",
    "acreate_drafts",
    "adiscard_drafts",
    "alist_drafts",
    "arun_batch",
    "create_draft",
    "create_drafts",
    "discard_drafts",
    "discard_with",
    "dry_run",
    "last_result",
    "list_drafts",
    "list_with",
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

    def __init__(self, result: pd.DataFrame, where: str = "omni_nb.batch.last_result()") -> None:
        from ..table import summarize

        super().__init__(f"interrupted: {summarize(result)} — the table is {where}")
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
    try:
        table, interrupted = await engine.run(
            op, planned, settings=settings, options=options, progress=progress, cancel=cancel
        )
    except LedgerError as failed:
        if failed.result is not None:  # a write failed mid-batch: the table is still the last
            _remember(failed.result)
        raise
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
    interrupt (a Cancel through ``cancel`` just returns the table); a ledger that cannot be
    opened, or a write that fails mid-batch, raises :class:`~omni_nb.errors.LedgerError`
    (with the table as ``.result`` in the second case).

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
    labels: Sequence[str] | None = None, settings: Settings | None = None,
    options: BatchOptions | None = None, progress: Progress | None = None,
) -> pd.DataFrame:
    """What a run would send, one row per input; sends nothing but, for an operation that
    decides from a listing (a discard) and given ``settings``, the listings (GETs): then each
    row's message says what would happen ("would discard draft X", "would skip: ...").

    Example:
        >>> t = dry_run(CREATE_DRAFT, ["doc-1", "doc-1"], api_root="https://a.omniapp.co/api")
        >>> list(t["message"])
        ['', 'duplicate of item 1: sent once']
    """
    planned = plan(items, branch_id=branch_id, document_col=document_col,
                   branch_col=branch_col, labels=labels)
    return _dry_frame(op, planned, api_root, settings, options, progress)


def _dry_frame(
    op: Operation, planned: Plan, api_root: str, settings: Settings | None,
    options: BatchOptions | None, progress: Progress | None,
) -> pd.DataFrame:
    from ..table import dry_run_frame, plural

    rehearsal = op.rehearsal() if settings is not None else None
    decided: dict[str, tuple[str, str]] = {}
    if rehearsal is not None and settings is not None:
        quiet = dataclasses.replace(options or BatchOptions(), resume=False, ledger=Ledger(None))
        table, _ = run_sync(lambda: engine.run(rehearsal, planned, settings=settings,
                                               options=quiet, progress=progress))
        decided = {item.label: (str(status), str(message)) for item, status, message in zip(
            planned.distinct, table["status"], table["message"], strict=True)}
    records = []
    for i in planned.inputs:
        status, message = decided.get(i.label, ("ok", ""))
        sends = i.error is None and (i.first is not None or status == "ok")
        request = op.call(i.document_id, i.branch_id).describe(api_root) if sends else ""
        message = i.error or (f"duplicate of {i.first}: sent once" if i.first else message)
        records.append((i.label, i.document_id, i.branch_id, i.error is None, request, message))
    sent = sum(1 for i in planned.inputs if i.sent and decided.get(i.label, ("ok",))[0] == "ok")
    held = sum(1 for i in planned.inputs if i.sent) - sent
    invalid = sum(1 for i in planned.inputs if i.error is not None)
    summary = (f"dry run: {plural(sent, 'request')} would be sent to {api_root}"
               + (f", {held} not (see message)" if held else "") + f", {invalid} invalid; "
               + ("only listings (GET) were sent" if rehearsal is not None else "nothing was sent"))
    return dry_run_frame(records, summary)


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
    options = options_of(concurrency, rate_limit, resume, ledger, max_retries, retry, timeout)
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
    options = options_of(concurrency, rate_limit, resume, ledger, max_retries, retry, timeout)
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
        settings.api_root, secret.fingerprint(), rate_limit,
        budget=settings.budget).next_send_in())
    with OmniClient(
        settings=settings.for_key(key), rate_limit=rate_limit, timeout=timeout,
        on_result=store.record_outcome,
    ) as client:
        return client.create_draft(document_id, branch_id)


def _careful_discard(
    items: Any, run_id: str | None, branch_id: str | None, settings: Settings,
    options: BatchOptions,
) -> tuple[DiscardDraft, Any, list[str] | None]:
    """The discard operation and its items for ``discard_drafts``' input."""
    targets = undo_targets(items, run_id, ledger=open_ledger(options.ledger),
                           api_root=settings.api_root)
    if branch_id is not None and (run_id is not None or targets.labels is not None):
        raise InvalidInputError(
            "branch_id= applies to document ids and pairs; a run or a results table names "
            "each row's branch")
    return DiscardDraft(targets.recorded), targets.items, targets.labels


async def adiscard_drafts(
    items: Any = None,
    *,
    run_id: str | None = None,
    branch_id: str | None = None,
    dry_run: bool = False,
    **keywords: Unpack[BatchKeywords],
) -> DraftResults:
    """Discard drafts; returns the results table. See :func:`discard_drafts` (a dry run is
    its synchronous form's).

    Example:
        >>> # table = await omni_nb.adiscard_drafts(run_id="3f2a9c0e1b7d")
    """
    if dry_run:
        raise InvalidInputError("adiscard_drafts() has no dry run: use discard_drafts("
                                "..., dry_run=True)")
    settings, options, passed = resolve(keywords)
    op, todo, labels = _careful_discard(items, run_id, branch_id, settings, options)
    table, interrupted = await arun_batch(
        op, todo, branch_id, settings=settings, options=options, labels=labels, **passed,
    )
    if interrupted:
        raise asyncio.CancelledError
    return table


def discard_drafts(
    items: Any = None,
    *,
    run_id: str | None = None,
    branch_id: str | None = None,
    dry_run: bool = False,
    background: bool = False,
    **keywords: Unpack[BatchKeywords],
) -> DraftResults | BatchRun | pd.DataFrame:
    """Discard (archive) drafts; returns the results table, ``action`` ``discard``.

    ``items``: document ids or ``(document_id, branch_id)`` pairs (or a DataFrame of them,
    as for :func:`create_drafts`): each pair's active draft is discarded, as asked. Or a
    results table (any DataFrame with ``document_id``, ``status`` and ``draft_id`` columns,
    filtered or not), or ``run_id=`` (a run in the ledger): their ``ok`` creates are undone
    carefully: a pair's drafts are listed first, and its DELETE is sent only when the active
    draft is the one recorded and was created by that run (``createdAt`` at or after the
    pair's first send, less :data:`omni_nb.batch.ops.CLOCK_SKEW_S`); otherwise the row is
    ``skipped`` with the reason ("existed before the run", "replaced since"), or
    ``not_found`` when no draft is active. Rows that were not ``ok`` creates send nothing.
    ``draft_id`` of an ``ok`` row is the draft that was archived.

    ``dry_run=True`` lists and decides, sends no DELETE, and returns the dry-run table (what
    each input would do). ``resume=True`` copies the pairs whose latest ``ok`` row in the
    ledger is a discard. The other keywords are :func:`create_drafts`'.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     kw = dict(base_url=sb.base_url, token=sb.token, ledger="off")
        ...     made = create_drafts(["doc-0001", "nope"], **kw)
        ...     t = discard_drafts(made, **kw)
        >>> list(t["status"]), list(t["action"])
        (['ok'], ['discard'])
    """
    settings, options, passed = resolve(keywords)
    return discard_with(items, run_id=run_id, branch_id=branch_id, dry_run=dry_run,
                        settings=settings, options=options, background=background, **passed)


def discard_with(
    items: Any = None, *, run_id: str | None = None, branch_id: str | None = None,
    dry_run: bool = False, settings: Settings, options: BatchOptions,
    progress: Progress | None = None, document_col: str = "document_id",
    branch_col: str | None = None, cancel: threading.Event | None = None,
    background: bool = False, labels: Sequence[str] | None = None,
) -> DraftResults | BatchRun | pd.DataFrame:
    """The front ends' entry to :func:`discard_drafts`: settings and options resolved once
    (``labels`` name typed inputs in messages).

    Example:
        >>> # table = discard_with(run_id="3f2a9c0e1b7d", settings=s, options=BatchOptions())
    """
    op, todo, careful_labels = _careful_discard(items, run_id, branch_id, settings, options)
    planned = plan(todo, branch_id=branch_id, document_col=document_col,
                   branch_col=branch_col,
                   labels=careful_labels or labels)  # bad input raises here
    if dry_run:
        if background:
            raise InvalidInputError("dry_run=True and background=True: choose one")
        return _dry_frame(op, planned, settings.api_root, settings, options, progress)
    if background:
        return start(op, planned, settings=settings, options=options, progress=progress,
                     on_table=_remember)
    return run_batch(
        op, todo, branch_id, settings=settings, options=options, progress=progress,
        cancel=cancel, document_col=document_col, branch_col=branch_col, labels=labels,
    )


def _documents_plan(documents: Any, document_col: str) -> Plan:
    """One listing per document: branches in the input are dropped, documents folded."""
    pairs = pairs_of(documents, document_col, None)
    return plan([(doc, None) for doc, _ in pairs])


def _drafts_table(op: ListDrafts, planned: Plan, table: DraftResults) -> pd.DataFrame:
    from ..table import drafts_frame

    rows: list[tuple[Any, ...]] = []
    for item, status, message in zip(planned.distinct, table["status"], table["message"],
                                     strict=True):
        found = op.found.get(item.document_id) if status == "ok" else None
        if found is None:
            rows.append((item.document_id, *[None] * 9, str(status), str(message)))
            continue
        rows.extend(
            (r.document_id, r.identifier, r.branch_id, r.branch_name, r.status, r.out_of_date,
             r.created_at, r.updated_at, r.created_by, r.last_edited_by, "ok", "")
            for r in found
        )
    return drafts_frame(rows)


async def alist_drafts(
    documents: Any,
    *,
    include_archived: bool = False,
    **keywords: Unpack[SendKeywords],
) -> pd.DataFrame:
    """The drafts of many documents, one row per draft. See :func:`list_drafts`.

    Example:
        >>> # drafts = await omni_nb.alist_drafts(["doc-a", "doc-b"])
    """
    settings, options, passed = resolve(keywords, SendKeywords)
    planned = _documents_plan(documents, passed.get("document_col", "document_id"))
    frame, interrupted = await _listing(planned, include_archived, settings, options,
                                        passed.get("progress"), passed.get("cancel"))
    if interrupted:
        raise asyncio.CancelledError
    return frame


async def _listing(
    planned: Plan, include_archived: bool, settings: Settings, options: BatchOptions,
    progress: Progress | None, cancel: threading.Event | None,
) -> tuple[pd.DataFrame, bool]:
    # A listing records nothing: its rows go to a memory ledger, whatever the options say.
    options = dataclasses.replace(options, ledger=Ledger(None))
    op = ListDrafts(include_archived)
    table, interrupted = await engine.run(op, planned, settings=settings, options=options,
                                          progress=progress, cancel=cancel)
    return _drafts_table(op, planned, table), interrupted


def list_drafts(
    documents: Any,
    *,
    include_archived: bool = False,
    **keywords: Unpack[SendKeywords],
) -> pd.DataFrame:
    """The drafts of many documents: a DataFrame, one row per draft.

    ``documents``: ids, or a DataFrame with a ``document_id`` column (``document_col=``; a
    results table works: its branches are ignored, every draft of the document is listed).
    Columns: ``document_id``, ``draft_id``, ``branch_id``, ``branch_name``, ``draft_status``
    (Omni's: active, archived), ``out_of_date``, ``created_at``, ``updated_at`` (UTC),
    ``created_by``, ``last_edited_by``, and the listing's ``status`` and ``message``: a
    document whose listing failed (or an invalid id) is one row with its outcome and no
    draft; a document with no draft has no row. ``include_archived=True`` lists archived
    drafts too. Requests share the batch's rate budget (``rate_limit`` per key, ``tokens=``)
    and report to ``progress`` per document; nothing is recorded in the ledger. One
    document's drafts: ``OmniClient().list_drafts(document_id)``.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     kw = dict(base_url=sb.base_url, token=sb.token)
        ...     _ = create_drafts(["doc-0001"], ledger="off", **kw)
        ...     d = list_drafts(["doc-0001", "nope"], **kw)
        >>> list(d["status"]), d["draft_status"].tolist()[0], d["message"].iloc[1]
        (['ok', 'not_found'], 'active', 'Document with identifier nope not found')
    """

    settings, options, passed = resolve(keywords, SendKeywords)
    return list_with(documents, include_archived=include_archived, settings=settings,
                     options=options, **passed)


def list_with(
    documents: Any, *, include_archived: bool = False, settings: Settings,
    options: BatchOptions, progress: Progress | None = None,
    document_col: str = "document_id", cancel: threading.Event | None = None,
) -> pd.DataFrame:
    """The front ends' entry to :func:`list_drafts` (settings and options resolved once;
    ``options.ledger`` is not used: a listing records nothing).

    Example:
        >>> # drafts = list_with(["doc-1"], settings=s, options=BatchOptions())
    """
    planned = _documents_plan(documents, document_col)  # bad input raises here

    def make() -> Any:
        return _listing(planned, include_archived, settings, options, progress, cancel)

    frame: pd.DataFrame
    frame, interrupted = run_sync(make)
    if interrupted and cancel is None:
        raise BatchInterrupted(frame, "this exception's .result")
    return frame
