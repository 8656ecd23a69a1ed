"""Operations: what the batch engine does to each (document, branch) pair.

An operation says which request it sends (:meth:`Operation.call`, also what a dry run
shows) and performs it with a client (:meth:`Operation.perform`, by default: send the call
through :meth:`AsyncOmniClient.outcome`), which gives the pair's row and the error behind
it. A row needs no request of its own kind: :class:`DiscardDraft` lists a document's drafts
first and may decide (``skipped``) without sending its DELETE. The engine (:mod:`.run`)
knows nothing else about an operation, so a new endpoint in batch form is one small
:class:`Operation` subclass (here or in the caller's own code), registered with
:func:`register`, and run with :func:`omni_nb.run_operation`.

Example:
    >>> CREATE_DRAFT.call("doc-1", None).describe("https://acme.omniapp.co/api")
    'POST https://acme.omniapp.co/api/v1/documents/doc-1/draft {}'
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from ..client import AsyncOmniClient, Call, DraftRecord, Reader, draft_request, drafts_request
from ..client import read_draft as _read_draft
from ..client.drafts import records_from
from ..errors import NotFoundError, OmniError
from ..rows import Row, message_of, now_us, register_action, status_of, to_us
from .plan import Plan, Planned

__all__ = [
    "CLOCK_SKEW_S",
    "CREATE_DRAFT",
    "CreateDraft",
    "DiscardDraft",
    "ListDrafts",
    "Operation",
    "Recorded",
    "listing",
    "operations",
    "register",
]

Pair = tuple[str, str | None]

#: How much earlier than a run's first send a draft's ``createdAt`` may be and still count as
#: made by that run. The first send is our clock, ``createdAt`` Omni's: two NTP-synced clocks
#: agree within tens of milliseconds, Omni truncates to milliseconds, and the server stamps a
#: draft after the request arrives (later than our send). 2 s covers a laptop clock that has
#: drifted for a day, at the price that a draft someone made less than 2 s before the run's
#: first send for that very document would be taken for the run's.
CLOCK_SKEW_S = 2.0


class Operation:
    """What the batch engine does to each pair: subclass it for a new operation.

    A subclass gives :attr:`action` (a lower-case word: the rows' ``action``, registered with
    :func:`register`) and :meth:`call` (the request for a checked pair: what is sent, and
    what a dry run shows). The rest has defaults: :meth:`perform` sends the call with the
    client's rate budget, retries and classification and makes the row; :meth:`reader`
    reads a draft from the answer (none by default); :meth:`rehearsal` is the operation a
    dry run performs instead (None: the request alone says what would happen);
    :meth:`result` is what the batch returns (the results table); :attr:`records` says
    whether rows go to the ledger.

    Example:
        >>> from urllib.parse import quote
        >>> class GetDrafts(Operation):
        ...     action = "get_drafts"
        ...     def call(self, document_id, branch_id):
        ...         return Call("GET", f"/v1/documents/{quote(document_id, safe='')}/drafts",
        ...                     action=self.action)
        >>> register(GetDrafts()).call("doc-1", None).describe("https://a.omniapp.co/api")
        'GET https://a.omniapp.co/api/v1/documents/doc-1/drafts'
    """

    action: str = "call"
    #: Rows of this operation go to the ledger (resume and undo read them there).
    records: ClassVar[bool] = True

    def call(self, document_id: str, branch_id: str | None) -> Call:
        """The request for a checked pair (what a dry run shows)."""
        raise NotImplementedError(f"{type(self).__name__} must define call()")

    def reader(self) -> Reader | None:
        """How a usable answer becomes the row's draft (None: the row has no draft id)."""
        return None

    async def perform(
        self, client: AsyncOmniClient, item: Planned, run_id: str
    ) -> tuple[Row, OmniError | None]:
        """Do it for one pair: its row, and the error behind the row (None: no failed
        call). Rate budget, retries and classification are the client's."""
        doc, branch = item.document_id, item.branch_id
        outcome = await client.outcome(self.call(doc, branch), doc, branch, self.reader())
        return Row.from_outcome(outcome, run_id), outcome.error

    def rehearsal(self) -> Operation | None:
        """The operation a dry run performs instead (GETs only), or None when the request
        alone (:meth:`call`) says what would happen."""
        return None

    def result(self, plan: Plan, table: Any) -> Any:
        """What the batch returns once its rows are in: the results table by default."""
        return table


OpT = TypeVar("OpT", bound=Operation)

_operations: dict[str, type[Operation]] = {}


def register(operation: OpT) -> OpT:
    """Make an operation's action part of the vocabulary (the table's ``action`` category,
    the ledger, resume); returns the operation, so it can wrap its construction. Registering
    the same action for another class is refused (two meanings for one stored word).

    Example:
        >>> register(CREATE_DRAFT) is CREATE_DRAFT
        True
        >>> {"create", "discard", "list"} <= set(operations())
        True
    """
    kind = type(operation)
    known = _operations.get(operation.action)
    if known is not None and known is not kind:
        raise ValueError(f"action {operation.action!r} is registered already, by "
                         f"{known.__qualname__}")
    register_action(operation.action)
    _operations[operation.action] = kind
    return operation


def operations() -> dict[str, type[Operation]]:
    """The registered operations by action.

    Example:
        >>> operations()["create"].__name__
        'CreateDraft'
    """
    return dict(_operations)


@dataclass(frozen=True, slots=True)
class CreateDraft(Operation):
    """Create (or get back) the draft of each pair: ``POST .../documents/{id}/draft``.

    Example:
        >>> CreateDraft().action
        'create'
    """

    action: str = "create"

    def call(self, document_id: str, branch_id: str | None) -> Call:
        """``POST /v1/documents/{id}/draft`` with ``{}`` or ``{"branchId": ...}``."""
        return draft_request("POST", document_id, branch_id)

    def reader(self) -> Reader:
        """The draft id on success (an answer without a usable one is an error)."""
        return _read_draft


CREATE_DRAFT = register(CreateDraft())


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a run recorded for a pair it created: the draft it got back and the pair's first
    send (microseconds since the epoch, UTC; None when unknown).

    Example:
        >>> Recorded("d1", 0).draft_id
        'd1'
    """

    draft_id: str
    first_send_us: int | None


class _Clock:
    """An item's start (wall time, for ``requested_at``) and its elapsed time."""

    def __init__(self) -> None:
        self.start_us = now_us()
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0


@dataclass(frozen=True, slots=True)
class DiscardDraft(Operation):
    """Discard (archive) the active draft of each pair: ``DELETE .../documents/{id}/draft``.

    Each pair's drafts are listed first (a GET). A pair in ``recorded`` (from a run or a
    results table) is undone carefully: its DELETE is sent only when the active draft is the
    recorded one *and* was created at or after the pair's first send (less
    :data:`CLOCK_SKEW_S`); otherwise the row is ``skipped`` ("existed before the run",
    "replaced since") or ``not_found`` (no active draft), and nothing is sent. Any other pair
    is discarded as asked. ``draft_id`` of an ``ok`` row is the draft that was archived (the
    active one the listing showed). A DELETE whose retry (after a dropped connection)
    answers 404 is checked against a new listing: archived now means the first one worked.
    ``dry_run`` lists and decides but sends no DELETE.

    Example:
        >>> DiscardDraft().call("doc-1", None).method
        'DELETE'
    """

    recorded: Mapping[Pair, Recorded] = field(default_factory=dict)
    dry_run: bool = False
    skew_s: float = CLOCK_SKEW_S
    action: str = "discard"

    def call(self, document_id: str, branch_id: str | None) -> Call:
        """``DELETE /v1/documents/{id}/draft`` with ``{}`` or ``{"branchId": ...}``."""
        return draft_request("DELETE", document_id, branch_id)

    def rehearsal(self) -> DiscardDraft:
        """The same undo, listing and deciding, with no DELETE."""
        return dataclasses.replace(self, dry_run=True)

    async def perform(
        self, client: AsyncOmniClient, item: Planned, run_id: str
    ) -> tuple[Row, OmniError | None]:
        """List the pair's drafts, decide, and (unless decided or a dry run) DELETE."""
        clock, doc, branch = _Clock(), item.document_id, item.branch_id
        try:
            listed = await listing(client, doc)
        except OmniError as exc:
            return self._decided(client, item, run_id, clock, status_of(exc),
                                 f"listing its drafts: {message_of(exc)}",
                                 getattr(exc, "status_code", None)), exc
        active = _active(listed, branch)
        recorded = self.recorded.get((doc, branch))
        verdict = None if recorded is None else _verdict(recorded, active, listed, self.skew_s)
        if verdict is not None:
            status, why = verdict
            if self.dry_run:
                why = ("would skip: " if status == "skipped" else "would not send: ") + why
            return self._decided(client, item, run_id, clock, status, why), None
        target = None if active is None else active.identifier
        if self.dry_run:
            why = (f"would discard draft {target}" if target else
                   "no active draft is listed: Omni would answer 404")
            return self._decided(client, item, run_id, clock, "ok", why), None
        return await self._discard(client, item, run_id, clock, target)

    async def _discard(
        self, client: AsyncOmniClient, item: Planned, run_id: str, clock: _Clock,
        target: str | None,
    ) -> tuple[Row, OmniError | None]:
        doc, branch = item.document_id, item.branch_id
        outcome = await client.outcome(self.call(doc, branch), doc, branch)
        row = Row.from_outcome(outcome, run_id)
        error = outcome.error
        if (isinstance(error, NotFoundError) and outcome.attempts > 1 and target is not None
                and await _archived_now(client, item.document_id, target)):
            row.status, row.message = "ok", (
                f"a retry answered 404 ({message_of(error)}) after an earlier attempt "
                f"got no answer; the listing shows draft {target} archived: that attempt "
                "archived it")
            error = None
        row.draft_id = target if error is None else None
        row.requested_at_us = clock.start_us
        row.elapsed_s = max(0.0, clock.elapsed() - outcome.queued_s)
        return row, error

    def _decided(
        self, client: AsyncOmniClient, item: Planned, run_id: str, clock: _Clock,
        status: str, message: str, http_status: int | None = None,
    ) -> Row:
        """A row decided from the listing: no DELETE was sent (``attempts`` 0)."""
        return Row(item.document_id, item.branch_id, None, status, http_status, message, 0,
                   clock.elapsed(), clock.start_us, client.api_root, run_id, action=self.action)


def _active(listed: list[DraftRecord], branch: str | None) -> DraftRecord | None:
    """The pair's active draft in a listing (branch ids compared without case)."""
    want = None if branch is None else branch.lower()
    for record in listed:
        mine = None if record.branch_id is None else record.branch_id.lower()
        if record.active and mine == want:
            return record
    return None


def _verdict(
    recorded: Recorded, active: DraftRecord | None, listed: list[DraftRecord], skew_s: float,
) -> tuple[str, str] | None:
    """Why a recorded pair must not be discarded, as (status, reason); None: discard it."""
    mine = recorded.draft_id
    if active is None:
        gone = any(r.identifier == mine and r.status == "archived" for r in listed)
        return "not_found", (f"no active draft: draft {mine} is already archived" if gone
                             else f"no active draft (draft {mine} is not listed)")
    if active.identifier != mine:
        return "skipped", (f"replaced since: the active draft is {active.identifier}, not "
                           f"{mine} (the run's)")
    if active.created_at is None:
        return "skipped", f"cannot tell when draft {mine} was created (no createdAt listed)"
    if recorded.first_send_us is None:
        return "skipped", f"cannot tell when the run first asked for draft {mine}"
    created_us = to_us(active.created_at)
    if created_us < recorded.first_send_us - int(skew_s * 1_000_000):
        first = _iso(recorded.first_send_us)
        return "skipped", (f"existed before the run: draft {mine} was created "
                           f"{_iso(created_us)}, the run first asked {first}")
    return None


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="milliseconds")


async def _archived_now(client: AsyncOmniClient, document_id: str, draft_id: str) -> bool:
    """True when a fresh listing shows ``draft_id`` archived (a failed listing: False)."""
    try:
        listed = await listing(client, document_id)
    except OmniError:
        return False
    return any(r.identifier == draft_id and r.status == "archived" for r in listed)


@dataclass(frozen=True, slots=True)
class ListDrafts(Operation):
    """List each document's drafts (``GET .../documents/{id}/drafts``); the records land in
    :attr:`found` by document, the row is the listing's outcome (never recorded: a listing
    changes nothing). The batch returns the drafts table (:meth:`result`), one row per
    draft.

    Example:
        >>> ListDrafts(include_archived=True).call("doc-1", None).params
        {'include': 'archived'}
    """

    include_archived: bool = False
    found: dict[str, list[DraftRecord]] = field(default_factory=dict)
    action: str = "list"
    records: ClassVar[bool] = False

    def call(self, document_id: str, branch_id: str | None) -> Call:
        """``GET /v1/documents/{id}/drafts[?include=archived]``."""
        return drafts_request(document_id, self.include_archived)

    def result(self, plan: Plan, table: Any) -> Any:
        """The drafts table: one row per draft; a document whose listing failed is one row
        with its outcome and no draft; a document with no draft has no row."""
        from ..table import drafts_frame

        rows: list[tuple[Any, ...]] = []
        for item, status, message in zip(plan.distinct, table["status"], table["message"],
                                         strict=True):
            found = self.found.get(item.document_id) if status == "ok" else None
            if found is None:
                rows.append((item.document_id, *[None] * 9, str(status), str(message)))
                continue
            rows.extend(
                (r.document_id, r.identifier, r.branch_id, r.branch_name, r.status,
                 r.out_of_date, r.created_at, r.updated_at, r.created_by, r.last_edited_by,
                 "ok", "")
                for r in found
            )
        return drafts_frame(rows)

    async def perform(
        self, client: AsyncOmniClient, item: Planned, run_id: str
    ) -> tuple[Row, OmniError | None]:
        """One listing; its records are kept in :attr:`found`."""
        doc = item.document_id
        outcome = await client.outcome(self.call(doc, None), doc)
        row, error = Row.from_outcome(outcome, run_id), outcome.error
        if error is None:
            try:
                self.found[doc] = records_from(outcome.payload, doc)
            except OmniError as exc:  # an answer outside the listing's shape
                row.status, row.message, error = status_of(exc), message_of(exc), exc
        return row, error


async def listing(client: AsyncOmniClient, document_id: str) -> list[DraftRecord]:
    """Every draft of a checked document, archived ones included; raises the call's error.

    Example:
        >>> import asyncio
        >>> from omni_nb import sandbox
        >>> async def main(sb):
        ...     async with AsyncOmniClient(sb.base_url, sb.token) as c:
        ...         return await listing(c, "doc-0001")
        >>> with sandbox.serve() as sb:
        ...     asyncio.run(main(sb))
        []
    """
    outcome = await client.outcome(drafts_request(document_id, include_archived=True),
                                   document_id)
    if outcome.error is not None:
        raise outcome.error
    return records_from(outcome.payload, document_id)


# The built-in operations' actions, in the vocabulary's order (create is registered above).
register(DiscardDraft())
register(ListDrafts())
