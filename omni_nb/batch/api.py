"""Running any operation as a batch: :func:`run_operation` and its async twin.

Every batch function (``create_drafts``, ``discard_drafts``, ``list_drafts`` and their async
twins, in :mod:`.drafts`) resolves its keywords once (:func:`.keywords.resolve`), prepares
its operation and items, and comes here: the items are planned once (checked, duplicates
folded), then the plan is shown (``dry_run=True``), started in the background
(``background=True``, sync only) or run to the end.

With no ``progress=`` a batch shows the display the magic would where a person watches (a
widget bar in a notebook, a text bar on a terminal: :func:`omni_nb.progress.live.watching`),
and nothing in a script with no terminal; ``progress=False`` shows nothing.

The sync form runs the engine on the private event-loop thread (:mod:`omni_nb._loop`), so it
works the same in a script, in a Jupyter cell (where a loop already runs in the main thread)
and after ``nest_asyncio.apply()``, without patching asyncio.

Interrupting (Ctrl-C, the kernel's Interrupt) stops sending at once: results already received
are kept (and are in the ledger), every other item gets status ``cancelled``, and
:class:`BatchInterrupted` (a ``KeyboardInterrupt``) is raised carrying the result as
``.result``, so "Run all" stops and nothing is lost; with ``cancel=`` (a Cancel button) the
result is returned instead. The async form re-raises ``CancelledError`` after recording the
same rows. A dry run interrupted while it lists (a discard's check) raises the same way,
with the listings' rows: half a check is nothing to act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

from .._loop import run_sync
from ..config import Settings
from ..errors import InvalidInputError, LedgerError, reduce_exception
from ..ledger import Ledger
from . import run as engine
from .background import BatchRun, start
from .budget import budget_for
from .keywords import BatchKeywords, Resolved, resolve
from .ops import Operation, register
from .plan import Plan, plan
from .run import BatchOptions, Progress

if TYPE_CHECKING:
    import threading

    import pandas as pd

    from ..table import DraftResults

__all__ = [
    "BatchInterrupted",
    "arun_batch",
    "arun_operation",
    "arun_resolved",
    "dry_run",
    "last_result",
    "run_batch",
    "run_operation",
    "run_resolved",
]

_last: dict[str, Any] = {}


class BatchInterrupted(KeyboardInterrupt):
    """The batch was interrupted; ``.result`` holds the table (received rows plus
    ``cancelled`` ones), already in the ledger under the run id the message names.

    Example:
        >>> from omni_nb.rows import Row
        >>> from omni_nb.table import frame_from_rows
        >>> t = frame_from_rows([Row("d", None, None, "cancelled", None, "", 0, 0.0, 0, "r",
        ...                         "3f2a9c0e1b7d")])
        >>> str(BatchInterrupted(t, "in t"))
        'interrupted: 1 row: 1 cancelled; run 3f2a9c0e1b7d — the table is in t'
    """

    def __init__(self, result: pd.DataFrame, where: str = "omni_nb.batch.last_result()") -> None:
        from ..table import summarize

        runs: list[Any] = (result["run_id"].dropna().unique().tolist() if "run_id" in result
                           else [])
        run = f"; run {runs[0]}" if len(runs) == 1 else ""  # what omni-nb results --run-id takes
        super().__init__(f"interrupted: {summarize(result)}{run} — the table is {where}")
        self.result = result

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback: an interrupt reads like every
        # other error, one line naming what was kept and where (the cell still fails).
        return [str(self)]

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_exception(self)


def last_result() -> DraftResults | None:
    """The table of the last recorded batch in this process (also after an interrupt).

    Example:
        >>> last_result() is None or len(last_result()) >= 0
        True
    """
    return _last.get("result")


def _remember(table: DraftResults) -> None:
    _last["result"] = table


def _prepared(op: Operation, resolved: Resolved) -> BatchOptions:
    """The options this operation runs with: a listing records nothing (memory ledger)."""
    register(op)  # idempotent: an operation run before it was registered still reads back
    if op.records:
        return resolved.options
    return dataclasses.replace(resolved.options, ledger=Ledger(None))


def _plan(items: Any, branch_id: object, resolved: Resolved) -> Plan:
    return plan(items, branch_id=branch_id, document_col=resolved.document_col,
                branch_col=resolved.branch_col, labels=resolved.labels)


def _callback(resolved: Resolved) -> Progress | None:
    """The caller's ``progress=`` as the engine takes it (None and False: no callback)."""
    progress = resolved.progress
    return progress if callable(progress) else None


@contextlib.contextmanager
def _watched(resolved: Resolved, planned: Plan, sends: bool = True) -> Iterator[Resolved]:
    """``resolved`` with a progress display when the caller gave none (``progress=None``,
    or ``True`` to have it even with no terminal) and the batch sends something: the
    display a person watching expects (:func:`~omni_nb.progress.live.watching`), closed
    when the batch ends, interrupted or not."""
    if callable(resolved.progress) or resolved.progress is False or not sends:
        yield resolved
        return
    from ..progress.live import watching

    display = watching(len(planned.distinct), force=resolved.progress is True,
                       budget=budget_for(resolved.settings, resolved.options.rate_limit))
    status = None
    try:
        yield dataclasses.replace(resolved, progress=display)
    except BaseException as stop:
        interrupted = isinstance(stop, KeyboardInterrupt | asyncio.CancelledError)
        status = "interrupted" if interrupted else "failed"
        raise
    finally:
        if display is not None:
            display.close(status)


async def _run(op: Operation, planned: Plan, resolved: Resolved,
               options: BatchOptions) -> tuple[Any, bool]:
    """Run the plan: (what the operation returns, whether it was interrupted)."""
    try:
        table, interrupted = await engine.run(
            op, planned, settings=resolved.settings, options=options,
            progress=_callback(resolved), cancel=resolved.cancel,
        )
    except LedgerError as failed:
        if op.records and failed.result is not None:  # a write failed: still the last table
            _remember(failed.result)
        raise
    if op.records:
        _remember(table)
    return op.result(planned, table), interrupted


def run_resolved(
    op: Operation, items: Any, branch_id: object, resolved: Resolved, *,
    dry_run: bool = False, background: bool = False,
) -> Any:
    """:func:`run_operation` for keywords already resolved (the families' common end).

    Example:
        >>> r = resolve({"base_url": "https://a.omniapp.co", "token": "t"})
        >>> from omni_nb.batch import CREATE_DRAFT
        >>> run_resolved(CREATE_DRAFT, ["doc-1"], None, r, dry_run=True)["request"].iloc[0]
        'POST https://a.omniapp.co/api/v1/documents/doc-1/draft {}'
    """
    if dry_run and background:
        raise InvalidInputError("dry_run=True and background=True: choose one")
    options = _prepared(op, resolved)
    planned = _plan(items, branch_id, resolved)  # bad input raises here, before anything
    if background:  # the handle's own live view is its display
        return start(op, planned, settings=resolved.settings, options=options,
                     progress=_callback(resolved),
                     on_table=_remember if op.records else None,
                     shape=lambda table: op.result(planned, table))
    with _watched(resolved, planned, sends=not dry_run or op.rehearsal() is not None) as shown:
        if dry_run:
            return _rehearse(op, planned, shown, options)
        result, interrupted = run_sync(lambda: _run(op, planned, shown, options))
        if interrupted and resolved.cancel is None:  # (inside: the display ends interrupted)
            where = "omni_nb.batch.last_result()" if op.records else "this exception's .result"
            raise BatchInterrupted(result, where)
    return result


async def arun_resolved(
    op: Operation, items: Any, branch_id: object, resolved: Resolved, *,
    dry_run: bool = False,
) -> Any:
    """The async twin of :func:`run_resolved` (no ``background``: an await is already free).

    Example:
        >>> import asyncio
        >>> from omni_nb.batch import CREATE_DRAFT
        >>> r = resolve({"base_url": "https://a.omniapp.co", "token": "t"})
        >>> len(asyncio.run(arun_resolved(CREATE_DRAFT, ["a", "a"], None, r, dry_run=True)))
        2
    """
    options = _prepared(op, resolved)
    planned = _plan(items, branch_id, resolved)
    rehearsal = op.rehearsal() if dry_run else None
    if dry_run and rehearsal is None:
        return _rehearsal_frame(op, planned, resolved.settings.api_root, {}, False)
    with _watched(resolved, planned) as shown:
        if rehearsal is not None:
            table, interrupted = await engine.run(
                rehearsal, planned, settings=shown.settings, options=_quiet(options),
                progress=_callback(shown), cancel=resolved.cancel)
            if interrupted and resolved.cancel is None:
                raise asyncio.CancelledError
            return _rehearsal_frame(op, planned, shown.settings.api_root,
                                    _decided(planned, table), True)
        result, interrupted = await _run(op, planned, shown, options)
        if interrupted and resolved.cancel is None:
            raise asyncio.CancelledError
    return result


@overload
def run_operation(
    op: Operation, items: Any, branch_id: str | None = None, *,
    dry_run: Literal[False] = False, background: Literal[False] = False,
    **keywords: Unpack[BatchKeywords],
) -> Any: ...
@overload
def run_operation(
    op: Operation, items: Any, branch_id: str | None = None, *,
    dry_run: Literal[False] = False, background: Literal[True],
    **keywords: Unpack[BatchKeywords],
) -> BatchRun: ...
@overload
def run_operation(
    op: Operation, items: Any, branch_id: str | None = None, *,
    dry_run: Literal[True], background: Literal[False] = False,
    **keywords: Unpack[BatchKeywords],
) -> pd.DataFrame: ...
@overload
def run_operation(
    op: Operation, items: Any, branch_id: str | None = None, *, dry_run: bool = False,
    background: bool = False, **keywords: Unpack[BatchKeywords],
) -> Any: ...
def run_operation(
    op: Operation, items: Any, branch_id: str | None = None, *, dry_run: bool = False,
    background: bool = False, **keywords: Unpack[BatchKeywords],
) -> Any:
    """Run any :class:`~omni_nb.batch.Operation` over many documents: what the operation
    returns (the results table, one row per distinct input, every row in the ledger).

    ``items`` and the keywords are :func:`omni_nb.create_drafts`' (connection, rate budget,
    retries, ledger, ``resume``, ``progress``, ``cancel``, columns). ``dry_run=True``
    returns what would be sent, one row per input, sending nothing (an operation with a
    :meth:`~omni_nb.batch.Operation.rehearsal` sends its GETs only); ``background=True``
    returns a :class:`~omni_nb.batch.BatchRun` at once.

    Example:
        >>> from urllib.parse import quote
        >>> from omni_nb import sandbox
        >>> from omni_nb.batch import Operation, register
        >>> from omni_nb.client import Call
        >>> class Drafts(Operation):
        ...     action = "drafts_get"
        ...     def call(self, document_id, branch_id):
        ...         path = f"/v1/documents/{quote(document_id, safe='')}/drafts"
        ...         return Call("GET", path, action=self.action)
        >>> with sandbox.serve() as sb:
        ...     t = run_operation(register(Drafts()), ["doc-0001", "nope"],
        ...                       base_url=sb.base_url, token=sb.token, ledger="off")
        >>> t[["status", "action"]].values.tolist()
        [['ok', 'drafts_get'], ['not_found', 'drafts_get']]
    """
    return run_resolved(op, items, branch_id, resolve(keywords), dry_run=dry_run,
                        background=background)


async def arun_operation(
    op: Operation, items: Any, branch_id: str | None = None, *, dry_run: bool = False,
    **keywords: Unpack[BatchKeywords],
) -> Any:
    """Async :func:`run_operation`.

    Example:
        >>> import asyncio
        >>> from omni_nb import sandbox
        >>> from omni_nb.batch import CREATE_DRAFT
        >>> with sandbox.serve() as sb:
        ...     t = asyncio.run(arun_operation(CREATE_DRAFT, ["doc-0001"], ledger="off",
        ...                                    base_url=sb.base_url, token=sb.token))
        >>> t["status"].tolist()
        ['ok']
    """
    return await arun_resolved(op, items, branch_id, resolve(keywords), dry_run=dry_run)


# -- dry runs ---------------------------------------------------------------------------------


def _quiet(options: BatchOptions) -> BatchOptions:
    """A rehearsal records nothing and resumes nothing."""
    return dataclasses.replace(options, resume=False, ledger=Ledger(None))


def _decided(planned: Plan, table: Any) -> dict[str, tuple[str, str]]:
    return {item.label: (str(status), str(message)) for item, status, message in zip(
        planned.distinct, table["status"], table["message"], strict=True)}


def _rehearse(op: Operation, planned: Plan, resolved: Resolved,
              options: BatchOptions) -> pd.DataFrame:
    """The dry-run table; an operation that decides from GETs (a discard) sends those."""
    rehearsal = op.rehearsal()
    decided: dict[str, tuple[str, str]] = {}
    if rehearsal is not None:
        table, interrupted = run_sync(lambda: engine.run(
            rehearsal, planned, settings=resolved.settings, options=_quiet(options),
            progress=_callback(resolved), cancel=resolved.cancel))
        if interrupted and resolved.cancel is None:
            # Half a check is no basis for what follows it ("Run all" stops); a Cancel
            # (cancel=) returns it, for the caller to say so.
            raise BatchInterrupted(table, "this exception's .result")
        decided = _decided(planned, table)
    return _rehearsal_frame(op, planned, resolved.settings.api_root, decided,
                            rehearsal is not None)


def _rehearsal_frame(op: Operation, planned: Plan, api_root: str,
                     decided: dict[str, tuple[str, str]], listed: bool) -> pd.DataFrame:
    from ..table import dry_run_frame, plural

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
               + ("only listings (GET) were sent" if listed else "nothing was sent"))
    return dry_run_frame(records, summary)


# -- the entries front ends used before every family took settings= and options= -----------


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated: call {new} (it takes settings= and options=)",
                  DeprecationWarning, stacklevel=3)


def _legacy(settings: Settings, options: BatchOptions, progress: Progress | None,
            cancel: threading.Event | None, document_col: str, branch_col: str | None,
            labels: Sequence[str] | None) -> Resolved:
    return Resolved(settings, options, progress, cancel, document_col, branch_col, labels)


async def arun_batch(
    op: Operation, items: Any, branch_id: object = None, *, settings: Settings,
    options: BatchOptions, progress: Progress | None = None,
    cancel: threading.Event | None = None, document_col: str = "document_id",
    branch_col: str | None = None, labels: Sequence[str] | None = None,
) -> tuple[DraftResults, bool]:
    """Deprecated: :func:`arun_operation` with ``settings=`` and ``options=``. Returns
    (the table, whether it was interrupted).

    Example:
        >>> import asyncio, warnings
        >>> from omni_nb.batch import CREATE_DRAFT
        >>> from omni_nb.config import resolve_settings
        >>> s = resolve_settings("https://a.omniapp.co", "t", environ={})
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     t, _ = asyncio.run(arun_batch(CREATE_DRAFT, [None], settings=s,
        ...                                   options=BatchOptions(ledger="off")))
        >>> t["status"].tolist(), seen[0].category.__name__
        (['invalid'], 'DeprecationWarning')
    """
    _deprecated("arun_batch()", "arun_operation()")
    resolved = _legacy(settings, options, progress, cancel, document_col, branch_col, labels)
    return await _run(op, _plan(items, branch_id, resolved), resolved,
                      _prepared(op, resolved))


def run_batch(
    op: Operation, items: Any, branch_id: object = None, *, settings: Settings,
    options: BatchOptions, progress: Progress | None = None,
    cancel: threading.Event | None = None, document_col: str = "document_id",
    branch_col: str | None = None, labels: Sequence[str] | None = None,
) -> DraftResults:
    """Deprecated: :func:`run_operation` with ``settings=`` and ``options=``.

    Example:
        >>> import warnings
        >>> from omni_nb.batch import CREATE_DRAFT
        >>> from omni_nb.config import resolve_settings
        >>> s = resolve_settings("https://a.omniapp.co", "t", environ={})
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     t = run_batch(CREATE_DRAFT, [None], settings=s, options=BatchOptions(ledger="off"))
        >>> t["status"].tolist()
        ['invalid']
    """
    _deprecated("run_batch()", "run_operation()")
    resolved = _legacy(settings, options, progress, cancel, document_col, branch_col, labels)
    result: DraftResults = run_resolved(op, items, branch_id, resolved)
    return result


def dry_run(
    op: Operation, items: Any, branch_id: object = None, *, api_root: str,
    document_col: str = "document_id", branch_col: str | None = None,
    labels: Sequence[str] | None = None, settings: Settings | None = None,
    options: BatchOptions | None = None, progress: Progress | None = None,
) -> pd.DataFrame:
    """What a run would send, one row per input; sends nothing but, for an operation that
    decides from a listing (a discard) and given ``settings``, the listings (GETs). Each
    family's ``dry_run=True`` does the same.

    Example:
        >>> from omni_nb.batch import CREATE_DRAFT
        >>> t = dry_run(CREATE_DRAFT, ["doc-1", "doc-1"], api_root="https://a.omniapp.co/api")
        >>> list(t["message"])
        ['', 'duplicate of item 1: sent once']
    """
    resolved = Resolved(
        settings if settings is not None else _placeholder(api_root),
        options or BatchOptions(), progress, None, document_col, branch_col, labels)
    planned = _plan(items, branch_id, resolved)
    if settings is None:  # nothing can be listed without a token: the requests say it all
        return _rehearsal_frame(op, planned, api_root, {}, False)
    return _rehearse(op, planned, resolved, _prepared(op, resolved))


def _placeholder(api_root: str) -> Settings:
    """Settings for a dry run given only an API root: never used to send (no token)."""
    from ..config import Secret

    return Settings(api_root=api_root, token=Secret("dry-run"))
