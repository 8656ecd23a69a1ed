"""Many documents -> one results table, every row in the ledger as it arrives.

``create_drafts`` (sync) runs ``acreate_drafts`` on a private event-loop thread, so it works
the same in a script, in a Jupyter cell (where a loop already runs in the main thread) and
after ``nest_asyncio.apply()``, without patching asyncio: see :mod:`omni_nb._loop`.

Interrupting (Ctrl-C, the kernel's Interrupt) stops sending at once: results already received
are kept (and are in the ledger), every other item gets status ``cancelled``, and
:class:`BatchInterrupted` (a ``KeyboardInterrupt``) is raised carrying the table as
``.result``, so "Run all" stops and nothing is lost. The async form re-raises
``CancelledError`` after recording the same rows.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._client import (
    _DEFAULT,
    AsyncOmniClient,
    Draft,
    OmniClient,
    RetryPolicy,
    check_branch_id,
    check_document_id,
)
from ._config import resolve_settings
from ._errors import AuthenticationError, InvalidInputError
from ._loop import run_sync
from ._ratelimit import RateLimit
from .ledger import Ledger, Row, now_us, open_ledger, status_of

if TYPE_CHECKING:
    from ._frames import DraftResults

__all__ = [
    "BatchInterrupted",
    "Progress",
    "acreate_drafts",
    "create_draft",
    "create_drafts",
    "last_result",
]

log = logging.getLogger("omni_nb")

#: progress(done, total, last_row): called (from the batch's event-loop thread) per result.
Progress = Callable[[int, int, Row], None]

_last: dict[str, Any] = {}


class BatchInterrupted(KeyboardInterrupt):
    """The batch was interrupted; ``.result`` holds the table (received rows plus
    ``cancelled`` ones), already in the ledger.

    Example:
        >>> # try: create_drafts(docs)
        >>> # except BatchInterrupted as stop: table = stop.result
    """

    def __init__(self, result: DraftResults) -> None:
        super().__init__(f"batch interrupted: {result.summary()}")
        self.result = result


def last_result() -> DraftResults | None:
    """The table of the last batch in this process (also after an interrupt).

    Example:
        >>> last_result() is None or len(last_result()) >= 0
        True
    """
    return _last.get("result")


@dataclass(slots=True)
class _Plan:
    """Distinct inputs in input order; ``send[i]`` is None for an invalid input."""

    rows: list[Row | None]
    send: list[tuple[str, str | None] | None]


def _plan(
    items: Any, branch_id: object, document_col: str, branch_col: str | None, api_root: str,
    run_id: str,
) -> _Plan:
    default_branch = check_branch_id(branch_id)  # a bad batch-wide branch is the caller's error
    pairs = _pairs(items, document_col, branch_col)
    rows: list[Row | None] = []
    send: list[tuple[str, str | None] | None] = []
    seen: set[object] = set()
    for position, (raw_doc, raw_branch) in enumerate(pairs, start=1):
        try:
            doc = check_document_id(raw_doc)
            branch = check_branch_id(raw_branch) if raw_branch is not None else default_branch
        except InvalidInputError as exc:
            key: object = ("invalid", repr(raw_doc), repr(raw_branch))
            if key in seen:
                continue
            seen.add(key)
            rows.append(_row(str(raw_doc)[:300], _text_or_none(raw_branch), "invalid", None,
                             f"item {position}: {exc}", api_root, run_id))
            send.append(None)
            continue
        if (doc, branch) in seen:
            continue  # the same pair is sent once: the API would answer the same draft
        seen.add((doc, branch))
        rows.append(None)
        send.append((doc, branch))
    return _Plan(rows, send)


def _pairs(items: Any, document_col: str, branch_col: str | None) -> list[tuple[object, object]]:
    if isinstance(items, str | bytes):
        raise InvalidInputError(
            "items must be a list of document ids, of (document_id, branch_id) pairs, or a "
            "DataFrame; got a single string (wrap it in a list)"
        )
    if type(items).__module__.startswith("pandas"):
        from ._frames import items_from_frame

        framed = items_from_frame(items, document_col, branch_col)
        if framed is not None:
            return framed
    if not isinstance(items, Iterable):
        raise InvalidInputError(
            f"items must be a list of document ids, pairs or a DataFrame, not "
            f"{type(items).__name__}"
        )
    out: list[tuple[object, object]] = []
    for item in items:
        if isinstance(item, tuple | list) and len(item) == 2:
            out.append((item[0], item[1]))
        else:
            out.append((item, None))
    return out


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)[:300]


def _row(
    doc: str, branch: str | None, status: str, http_status: int | None, message: str,
    api_root: str, run_id: str, attempts: int = 0,
) -> Row:
    return Row(doc, branch, None, status, http_status, message, attempts, 0.0, now_us(),
               api_root, run_id)


async def acreate_drafts(
    items: Any,
    branch_id: str | None = None,
    *,
    base_url: str | None = None,
    token: str | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    concurrency: int = 8,
    rate_limit: RateLimit | None = _DEFAULT,  # type: ignore[assignment]
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
    return await _run(
        items, branch_id, base_url=base_url, token=token, instance=instance,
        playground=playground, concurrency=concurrency, rate_limit=rate_limit, resume=resume,
        ledger=ledger, progress=progress, max_retries=max_retries, retry=retry,
        timeout=timeout, document_col=document_col, branch_col=branch_col, cancel=cancel,
        reraise=True,
    )


async def _run(
    items: Any,
    branch_id: str | None,
    *,
    base_url: str | None,
    token: str | None,
    instance: str | None,
    playground: bool | None,
    concurrency: int,
    rate_limit: RateLimit | None,
    resume: bool,
    ledger: str | Path | Ledger | None,
    progress: Progress | None,
    max_retries: int | None,
    retry: RetryPolicy | None,
    timeout: float,
    document_col: str,
    branch_col: str | None,
    cancel: threading.Event | None,
    reraise: bool,
) -> DraftResults:
    from ._frames import frame_from_rows

    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidInputError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
    # Everything that can be wrong with the call itself raises here, before any request.
    settings = resolve_settings(base_url, token, instance=instance, playground=playground)
    store = open_ledger(ledger)
    run_id = uuid.uuid4().hex[:12]
    plan = _plan(items, branch_id, document_col, branch_col, settings.api_root, run_id)
    total = len(plan.rows)
    errors: list[BaseException | None] = [None] * total  # the exception behind each row
    done = 0
    stop_reason: list[str] = []

    def finish(index: int, row: Row, *, record: bool = True) -> None:
        nonlocal done
        plan.rows[index] = row
        if record:
            store.record([row])
        done += 1
        if progress is not None:
            try:
                progress(done, total, row)
            except Exception:  # a broken progress display must not lose results
                log.exception("progress callback failed")

    invalid = [(i, r) for i, r in enumerate(plan.rows) if r is not None]
    store.record([r for _, r in invalid])
    for i, r in invalid:
        finish(i, r, record=False)

    todo = [i for i, pair in enumerate(plan.send) if pair is not None]
    if resume and todo:
        pairs = [plan.send[i] for i in todo]
        known = store.ok_rows(settings.api_root, [p for p in pairs if p is not None])
        remaining = []
        for i in todo:
            pair = plan.send[i]
            assert pair is not None
            previous = known.get(pair)
            if previous is None:
                remaining.append(i)
                continue
            previous.run_id, previous.from_ledger = run_id, True
            finish(i, previous, record=False)  # not a call: it is already in the ledger
        todo = remaining

    feed = iter(todo)  # workers pull from one iterator: no task per item (100k items is fine)

    async with AsyncOmniClient(
        settings.api_root, settings.token.get_secret_value(), rate_limit=rate_limit,
        max_retries=max_retries, retry=retry, timeout=timeout, max_connections=concurrency,
    ) as client:

        async def worker() -> None:
            for i in feed:
                if stop_reason or (cancel is not None and cancel.is_set()):
                    return
                pair = plan.send[i]
                assert pair is not None
                outcome = await client.create_draft_outcome(*pair)
                status = "ok" if outcome.error is None else status_of(outcome.error)
                errors[i] = outcome.error
                finish(i, Row.from_outcome(outcome, run_id, status))
                if isinstance(outcome.error, AuthenticationError):
                    # Every other call would be refused the same way and spend the budget.
                    stop_reason.append(f"not sent: the token was refused ({outcome.error})")

        n_workers = min(concurrency, max(len(todo), 1))
        workers = [asyncio.create_task(worker()) for _ in range(n_workers)]
        watcher = asyncio.create_task(_watch(cancel, workers)) if cancel is not None else None
        interrupted = False
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            interrupted = True
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        finally:
            if watcher is not None:
                watcher.cancel()

    if cancel is not None and cancel.is_set():
        interrupted = True
    leftover = [i for i, r in enumerate(plan.rows) if r is None]
    if leftover:
        reason = stop_reason[0] if stop_reason else (
            "not sent, or interrupted in flight (the server may have made the draft; "
            "rerun with resume=True)"
        )
        rows = []
        for i in leftover:
            pair = plan.send[i]
            assert pair is not None
            rows.append((i, _row(pair[0], pair[1], "cancelled", None, reason,
                                 settings.api_root, run_id)))
        store.record([r for _, r in rows])
        for i, r in rows:
            finish(i, r, record=False)

    table = frame_from_rows([r for r in plan.rows if r is not None])
    table.errors = errors
    _last["result"] = table
    if interrupted and reraise:
        raise asyncio.CancelledError
    if interrupted:
        table.attrs["interrupted"] = True
    return table


async def _watch(cancel: threading.Event, workers: list[asyncio.Task[None]]) -> None:
    # A threading.Event (the widget's Cancel button, another thread) polled cheaply.
    while not cancel.is_set():
        await asyncio.sleep(0.05)
    for w in workers:
        w.cancel()


def create_drafts(
    items: Any,
    branch_id: str | None = None,
    *,
    base_url: str | None = None,
    token: str | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    concurrency: int = 8,
    rate_limit: RateLimit | None = _DEFAULT,  # type: ignore[assignment]
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
    """Create drafts for many documents; returns the results table.

    ``items``: document ids, ``(document_id, branch_id)`` pairs, or a DataFrame with a
    ``document_id`` column (``document_col=``) and optionally a ``branch_id`` column
    (``branch_col=``). A pair's missing branch means ``branch_id`` (default: no branch).
    Duplicate pairs are sent once. Per-item failures are rows, never exceptions; settings
    errors (no token, unsafe URL) raise before anything is sent.

    Columns: ``document_id``, ``branch_id``, ``draft_id``, ``status``, ``http_status``,
    ``message``, ``attempts``, ``elapsed_s``, ``requested_at``, ``api_root``, ``run_id``,
    ``from_ledger``. ``resume=True`` copies ``ok`` rows from the ledger instead of sending.
    ``retry=`` takes an :class:`omni_nb.RetryPolicy` (instead of ``max_retries=``).

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     t = create_drafts(["doc-0001", "doc-0010", "nope"], base_url=sb.base_url,
        ...                       token=sb.token, ledger="off")
        >>> list(t["status"])
        ['ok', 'not_eligible', 'not_found']
    """

    def make() -> Any:
        return _run(
            items, branch_id, base_url=base_url, token=token, instance=instance,
            playground=playground, concurrency=concurrency, rate_limit=rate_limit,
            resume=resume, ledger=ledger, progress=progress, max_retries=max_retries,
            retry=retry, timeout=timeout, document_col=document_col, branch_col=branch_col,
            cancel=cancel, reraise=False,
        )

    table: DraftResults = run_sync(make)
    if table.attrs.get("interrupted") and cancel is None:
        raise BatchInterrupted(table)
    return table


def create_draft(
    document_id: str,
    branch_id: str | None = None,
    *,
    base_url: str | None = None,
    token: str | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    rate_limit: RateLimit | None = _DEFAULT,  # type: ignore[assignment]
    ledger: str | Path | Ledger | None = None,
    timeout: float = 30.0,
) -> Draft:
    """One draft, recorded in the ledger; raises the typed error on failure.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     create_draft("doc-0001", base_url=sb.base_url, token=sb.token,
        ...                  ledger="off").document_id
        'doc-0001'
    """
    store = open_ledger(ledger)
    with OmniClient(
        base_url, token, instance=instance, playground=playground, rate_limit=rate_limit,
        timeout=timeout, on_result=store.record_outcome,
    ) as client:
        return client.create_draft(document_id, branch_id)

