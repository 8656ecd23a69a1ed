"""The batch engine: a plan and an operation in, one row per distinct input out.

Workers pull pairs from one iterator (no task per item: 100k items is fine), each result is
committed to the ledger as it arrives, and whatever was not answered when the batch stops
(an interrupt, a Cancel, a refused token, a host that cannot be reached) becomes a
``cancelled`` row: every input ends as
exactly one honest row.

With several API keys (``Settings.tokens``) each request goes on the key that can send
soonest (:mod:`.pool`). A refused key leaves the pool with a warning and the item it was
refused for goes back in line for another key (its refusal is no row: the item gets one row,
from the key that answers it); only when no key is left does the batch stop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..client import HostUnreachableError, RetryPolicy
from ..config import Settings
from ..errors import APIStatusError, AuthenticationError, InvalidInputError, LedgerError
from ..ledger import Ledger, failure_cause, open_ledger, write_failed
from ..ratelimit import RateLimit
from ..rows import Row
from .ops import Operation
from .plan import Plan, Planned
from .pool import Key, KeyPool

if TYPE_CHECKING:
    from ..table import DraftResults, TableBuilder

__all__ = ["MAX_CONCURRENCY", "BatchOptions", "Progress", "ledger_of", "run"]

log = logging.getLogger("omni_nb")

#: progress(done, total, last_row): called (from the batch's event-loop thread) per result.
Progress = Callable[[int, int, Row], None]

#: Requests in flight at most. The rate limit, not the concurrency, bounds a real batch (60 a
#: minute per key); past a few dozen, more connections only add overhead on both ends.
MAX_CONCURRENCY = 64

#: Answers that could not connect at all, with no answer from the host yet, before the batch
#: stops: the first few sends failing that way say the host is down, unresolvable or not
#: speaking TLS, and the rest would only fail the same way, slowly.
UNREACHABLE_STOP = 3


def _not_answered(op: Operation) -> str:
    """Why an input the batch never got an answer for has no result, in the operation's
    terms: only a call that changes something may have done it unseen, and only a create
    is made good by ``resume`` (a listing or a dry run changed nothing)."""
    if op.rehearsal() == op:
        # A rehearsal is its own rehearsal: it lists and decides, and sends nothing else.
        return ("not checked: the dry run stopped before this document's drafts were listed "
                "(a dry run only lists: nothing was changed)")
    if not op.records:
        return "not listed: stopped before its answer came (a listing changes nothing)"
    if op.action == "discard":
        return ("not sent, or interrupted in flight (the server may have archived the draft; "
                "the document's drafts listing shows whether it did)")
    if op.action == "create":
        return ("not sent, or interrupted in flight (the server may have made the draft; "
                "rerun with resume=True)")
    return f"not sent, or interrupted in flight (the server may have done its {op.action})"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchOptions:
    """How a batch runs, resolved once by the front end and handed down.

    Example:
        >>> BatchOptions(concurrency=4).concurrency
        4
        >>> BatchOptions(concurrency=0)
        Traceback (most recent call last):
        ...
        omni_nb.errors.InvalidInputError: concurrency must be a whole number from 1 to 64, not 0
    """

    concurrency: int = 8
    rate_limit: RateLimit | None = field(default_factory=RateLimit)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0
    resume: bool = False
    ledger: str | Path | Ledger | None = None

    def __post_init__(self) -> None:
        c = self.concurrency
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_CONCURRENCY:
            raise InvalidInputError(
                f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, not {c!r}"
            )


def ledger_of(settings: Settings, options: BatchOptions) -> Ledger:
    """The ledger a batch records in: ``options.ledger`` when the caller set one there, else
    the one the settings resolved (``ledger=``, ``OMNI_NB_LEDGER``, the default).

    Example:
        >>> from omni_nb.config import resolve_settings
        >>> s = resolve_settings("https://a.omniapp.co", "t", ledger="off")
        >>> ledger_of(s, BatchOptions()).path is None
        True
    """
    return open_ledger(options.ledger if options.ledger is not None else settings)


class _Batch:
    """One run's state: the rows so far, the ledger, the progress callback.

    Rows are kept as compact columns (:class:`~omni_nb.table.TableBuilder`), never as a
    list of objects, and errors only for the rows that have one, with their tracebacks
    lightened (:func:`_lightened`): 100,000 items add well under 120 MB."""

    def __init__(
        self, op: Operation, plan: Plan, settings: Settings, options: BatchOptions,
        progress: Progress | None,
    ) -> None:
        self.op, self.settings, self.options, self.progress = op, settings, options, progress
        self.ledger = ledger_of(settings, options)
        self.run_id = uuid.uuid4().hex[:12]
        from ..table import TableBuilder  # pandas: the batch returns a table anyway

        self.inputs: list[Planned] = plan.distinct
        self.rows: TableBuilder = TableBuilder()
        self.answered_at = bytearray(len(self.inputs))  # 1: the input has its row
        self.errors: dict[int, BaseException] = {}  # by input; most rows have none
        self.stop_reason: str | None = None
        self.done = 0
        self.again: deque[int] = deque()  # items refused on a key that left the pool
        self.answered = False  # any HTTP answer yet (the host is reachable)
        self.unreachable = 0  # rows whose call never connected, while nothing answered
        self.write_failure: BaseException | None = None  # the ledger write that failed
        self.unrecorded: list[Row] = []  # rows kept in memory only, after that failure
        self.turn = asyncio.Lock()  # who takes the next item: FIFO, so first sends keep order
        self.flying: dict[int, Row | None] = {}  # rows of requests in flight at a cancel

    def finish(self, index: int, row: Row) -> None:
        """Keep a row and tell the progress display (the caller has recorded it)."""
        self.rows.add(row, index)
        self.answered_at[index] = 1
        self.done += 1
        if self.progress is not None:
            try:
                self.progress(self.done, len(self.inputs), row)
            except Exception:  # a broken progress display must not lose results
                log.exception("progress callback failed")

    def keep(self, rows: list[tuple[int, Row]]) -> None:
        """Record rows in one commit, then keep them. A write that fails (disk full, I/O
        error, locked past the timeout) stops sending but loses nothing: these rows and every
        later one stay in the table, in memory only, and the batch ends with a LedgerError."""
        if self.write_failure is None:
            try:
                self.ledger.record(row for _, row in rows)
            except Exception as exc:  # whatever the ledger raised: the rows come first
                self.write_failure = exc
                if self.stop_reason is None:
                    self.stop_reason = ("not sent: the ledger could not be written "
                                        f"({failure_cause(exc)})")
        if self.write_failure is not None:
            self.unrecorded.extend(row for _, row in rows)
        for i, row in rows:
            self.finish(i, row)

    def finish_unsent(self, indexes: list[int], status: str, why: Callable[[Planned], str]) -> None:
        """Rows for inputs that get no answer, recorded in one commit."""
        self.keep([
            (i, Row.unsent(self.inputs[i].document_id, self.inputs[i].branch_id, status,
                           why(self.inputs[i]), api_root=self.settings.api_root,
                           run_id=self.run_id, action=self.op.action))
            for i in indexes
        ])

    def write_error(self, table: DraftResults) -> LedgerError:
        """The LedgerError of a batch whose ledger write failed: the table, and the answered
        rows that are not in the ledger (unsent, invalid and copied rows hold nothing new)."""
        assert self.write_failure is not None
        lost = [row for row in self.unrecorded
                if row.status not in ("cancelled", "invalid") and not row.from_ledger]
        error = write_failed(self.ledger.path, self.write_failure, table,
                             [(r.document_id, r.branch_id, r.draft_id) for r in lost])
        error.__cause__ = self.write_failure
        return error

    def resume(self, todo: Sequence[int]) -> list[int]:
        """Copy the pairs whose latest ``ok`` row in the ledger (either action) did what this
        operation does; the copies are recorded under this run (``from_ledger``), so the
        ledger's view of a run is the table it returned. Returns the rest."""
        pairs = [(self.inputs[i].document_id, self.inputs[i].branch_id) for i in todo]
        known = self.ledger.ok_rows(self.settings.api_root, pairs)
        remaining, copied = [], []
        for i, pair in zip(todo, pairs, strict=True):
            previous = known.get(pair)
            if previous is None or previous.action != self.op.action:
                remaining.append(i)
                continue
            previous.run_id, previous.from_ledger = self.run_id, True
            copied.append((i, previous))
        self.keep(copied)
        return remaining

    def next_item(self, feed: Iterator[int]) -> int | None:
        """An item sent back by a refused key first, else the next of the feed."""
        if self.again:
            return self.again.popleft()
        return next(feed, None)

    async def worker(self, pool: KeyPool, feed: Iterator[int],
                     cancel: threading.Event | None) -> None:
        """Send pairs, each on the key that can send soonest, until the feed is empty or the
        batch stops. First sends follow input order (see :meth:`next_send`)."""
        while not self.stopped(cancel):
            nxt = await self.next_send(pool, feed, cancel)
            if nxt is None:
                return
            i, key, queued_s = nxt
            # The turn is handed on when this task first yields: perform() claims the key's
            # slot before its first await, so the next worker reads the budget with it taken.
            try:
                row, error = await self.op.perform(key.client, self.inputs[i], self.run_id)
            except BaseException as stop:  # cancelled in flight: its row says when it left
                flown = self.op.interrupted(key.client, self.inputs[i], self.run_id, stop)
                if flown is not None:
                    flown.key = key.key_id
                self.flying[i] = flown
                raise
            finally:
                key.in_flight -= 1
            key.sent += 1
            row.queued_s += queued_s  # held back by the keys' budgets before its turn
            if isinstance(error, AuthenticationError) and pool.refuse(key, error):
                self.again.append(i)  # another key answers it
                continue
            if row.key is None:
                row.key = key.key_id  # a row decided from a listing: the key that listed
            if error is not None:
                self.errors[i] = _lightened(error)
            self.keep([(i, row)])
            if isinstance(error, AuthenticationError):
                # No key is left: every other call would be refused the same way.
                self.stop_reason = self.stop_reason or self.refused_all(pool, error)
            self.check_reachable(error, row.http_status)

    @staticmethod
    def refused_all(pool: KeyPool, error: AuthenticationError) -> str:
        """The reason the unsent rows give once no key is left."""
        which = "the token was" if len(pool.keys) == 1 else "every key of the pool was"
        return f"not sent: {which} refused ({error})"

    def stopped(self, cancel: threading.Event | None) -> bool:
        """True once the batch stops sending (a stop reason, or the caller's Cancel)."""
        return bool(self.stop_reason) or (cancel is not None and cancel.is_set())

    async def next_send(self, pool: KeyPool, feed: Iterator[int],
                        cancel: threading.Event | None) -> tuple[int, Key, float] | None:
        """The next item, the key it goes on and the seconds the budget held it; None when
        the feed is empty or the batch stopped.

        One worker at a time takes the next item and waits, holding the turn, until a key
        can send it now. Workers that each took an item and then waited for a slot would
        race for it (whoever woke first), and an interrupt would leave earlier items unsent
        behind later ones sent: here the items never sent are always the input's last ones.
        The hold counts from when the worker was free to send, as it did when each worker
        waited with its own item."""
        free_at = time.monotonic()
        async with self.turn:
            if self.stopped(cancel):
                return None
            i = self.next_item(feed)
            if i is None:
                return None
            try:
                key, _ = await pool.ready()
            except AuthenticationError as exc:
                # The last key was refused while this item waited for one: it stays unsent
                # and gets its cancelled row with the others.
                self.stop_reason = self.stop_reason or self.refused_all(pool, exc)
                return None
            if self.stopped(cancel):
                return None  # stopped while waiting: the item stays unsent (its row says so)
            key.in_flight += 1
            return i, key, time.monotonic() - free_at

    def check_reachable(self, error: BaseException | None, http_status: int | None) -> None:
        """Stop the batch when its first :data:`UNREACHABLE_STOP` answers all failed to
        connect and the host has answered nothing yet (any HTTP status proves it is there)."""
        if http_status is not None or error is None:
            self.answered = True
        elif isinstance(error, HostUnreachableError) and not self.answered:
            self.unreachable += 1
            if self.unreachable >= UNREACHABLE_STOP and self.stop_reason is None:
                self.stop_reason = f"not sent: host unreachable ({error})"

    async def send(self, todo: Sequence[int], cancel: threading.Event | None) -> bool:
        """Send ``todo`` with ``concurrency`` workers; True when interrupted."""
        o = self.options
        feed = iter(todo)
        async with KeyPool.open(
            self.settings, rate_limit=o.rate_limit, retry=o.retry, timeout=o.timeout,
            max_connections=o.concurrency,
        ) as pool:
            n = min(o.concurrency, max(len(todo), 1))
            workers = [asyncio.create_task(self.worker(pool, feed, cancel)) for _ in range(n)]
            watcher = asyncio.create_task(_watch(cancel, workers)) if cancel else None
            try:
                await asyncio.gather(*workers)
            except asyncio.CancelledError:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                return True
            finally:
                if watcher is not None:
                    watcher.cancel()
        return cancel is not None and cancel.is_set()

    def table(self) -> DraftResults:
        """The results table, one row per distinct input, in input order."""
        table = self.rows.frame()
        errors = self.errors
        table.errors = [errors.get(i) for i in range(len(self.inputs)) if self.answered_at[i]]
        return table

    def unanswered(self) -> list[int]:
        """The inputs with no row yet, in input order."""
        return [i for i, done in enumerate(self.answered_at) if not done]


async def run(
    op: Operation, plan: Plan, *, settings: Settings, options: BatchOptions,
    progress: Progress | None = None, cancel: threading.Event | None = None,
) -> tuple[DraftResults, bool]:
    """Run ``op`` over ``plan``: (the results table, whether the run was interrupted).

    Every row is in the ledger when this returns, cancelled ones included. When a ledger
    write fails, sending stops and :class:`~omni_nb.errors.LedgerError` is raised instead,
    carrying the whole table as ``.result`` and naming the rows not in the ledger.

    Example:
        >>> import asyncio
        >>> from omni_nb import sandbox
        >>> from omni_nb.batch import CREATE_DRAFT, plan
        >>> from omni_nb.config import resolve_settings
        >>> with sandbox.serve() as sb:
        ...     s = resolve_settings(sb.base_url, sb.token, ledger="off")
        ...     table, interrupted = asyncio.run(run(CREATE_DRAFT, plan(["doc-0001"]),
        ...                                          settings=s, options=BatchOptions()))
        >>> table["status"].tolist(), interrupted
        (['ok'], False)
    """
    batch = _Batch(op, plan, settings, options, progress)
    invalid = [i for i, item in enumerate(batch.inputs) if item.error is not None]
    batch.finish_unsent(invalid, "invalid", lambda item: item.error or "")
    # 8 bytes an item (a list of ints takes 36): the send order of 100,000 items.
    todo: Sequence[int] = array("q", (i for i, item in enumerate(batch.inputs)
                                       if item.error is None))
    if options.resume and todo:
        todo = batch.resume(todo)
    interrupted = await batch.send(todo, cancel)
    batch.keep([(i, row) for i, row in batch.flying.items() if row is not None])
    leftover = batch.unanswered()
    reason = batch.stop_reason or _not_answered(op)
    batch.finish_unsent(leftover, "cancelled", lambda _: reason)
    table = batch.table()
    if batch.write_failure is not None:
        raise batch.write_error(table)
    return table, interrupted


def _lightened(error: BaseException) -> BaseException:
    """``error`` as a table keeps it: the same exception (type, message, ``.body``,
    ``.retry_after``, its chain), without what its traceback's frames held.

    An exception raised in the client keeps every frame it went through, and with them
    their locals: the request, the response, its headers and body, the connection pool's
    waiters, about 9 KB an error, so 10,000 refused documents kept 90 MB until the table
    went. An answer's error (:class:`~omni_nb.errors.APIStatusError`) says all there is in
    its status, message and body: it keeps no traceback. Any other (a connection that
    failed, an answer the client could not read) keeps its traceback, the place it was
    raised, with the frames' locals cleared.

    Example:
        >>> from omni_nb.errors import NotFoundError
        >>> try:
        ...     raise NotFoundError(404, "Document with identifier x not found")
        ... except NotFoundError as exc:
        ...     kept = _lightened(exc)
        >>> kept.__traceback__ is None, kept.status_code
        (True, 404)
    """
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:  # the error and what it chains to
        seen.add(id(link))
        if isinstance(link, APIStatusError):
            link.__traceback__ = None
        elif link.__traceback__ is not None:
            traceback.clear_frames(link.__traceback__)
        link = link.__cause__ or link.__context__
    return error


async def _watch(cancel: threading.Event, workers: list[asyncio.Task[None]]) -> None:
    # A threading.Event (the widget's Cancel button, another thread) polled cheaply.
    while not cancel.is_set():
        await asyncio.sleep(0.05)
    for w in workers:
        w.cancel()
