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
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from ..client import (
    AsyncOmniClient,
    Call,
    CallOutcome,
    DraftRecord,
    HostUnreachableError,
    Reader,
    attempt_log_of,
    draft_request,
    drafts_request,
)
from ..client import read_draft as _read_draft
from ..client.drafts import records_from
from ..errors import APIConnectionError, OmniError, ServerError
from ..evidence import ALLOWANCE_S, Evidence, judge
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

#: The clock allowance an undo uses when no bound on Omni's clock was measured (no ``Date``
#: header, or bounds that disagree): :data:`omni_nb.evidence.ALLOWANCE_S`. Kept under its
#: older name; the measured bound replaces it whenever there is one.
CLOCK_SKEW_S = ALLOWANCE_S


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
        row = Row.from_outcome(outcome, run_id)
        if row.evidence is not None:  # kept with the clock bound Omni's answers gave so far
            row.evidence = row.evidence.with_clock(client.server_clock.bound())
        return row, outcome.error

    def rehearsal(self) -> Operation | None:
        """The operation a dry run performs instead (GETs only), or None when the request
        alone (:meth:`call`) says what would happen."""
        return None

    def interrupted(
        self, client: AsyncOmniClient, item: Planned, run_id: str, stop: BaseException,
    ) -> Row | None:
        """The ``cancelled`` row of a pair whose request was in flight when the run stopped
        (``stop``: the cancel or interrupt, carrying the call's attempts), with its send time
        and its evidence: a later undo weighs it. None when nothing had left.

        Example:
            >>> CREATE_DRAFT.interrupted(None, None, "r1", KeyboardInterrupt()) is None
            True
        """
        evidence = Evidence.of_log(attempt_log_of(stop))
        if evidence is None:
            return None
        sent = evidence.attempts[0].sent_us
        row = Row(item.document_id, item.branch_id, None, "cancelled", None,
                  f"interrupted in flight: sent {_iso(sent)}; the server may have done its "
                  f"{self.action} (an undo of this run, or of the run that resumes it, "
                  "weighs it by its interval)", len(evidence.attempts), 0.0, sent,
                  client.api_root, run_id, action=self.action)
        row.evidence = evidence.with_clock(client.server_clock.bound())
        return row

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
    """What the ledger holds for a pair to undo: the draft its run got back (None for a
    request that was in flight when its run stopped), the pair's first send (microseconds,
    UTC; None when unknown), the evidence of each request that may have made the draft (see
    :mod:`omni_nb.evidence`), ``unknown``: why there is none (the skipped row's message),
    and ``note``: what to say of the clocks in an archived row's message.

    Example:
        >>> Recorded("d1", 0).draft_id
        'd1'
    """

    draft_id: str | None
    first_send_us: int | None
    evidence: tuple[Evidence, ...] = ()
    unknown: str | None = None
    note: str = ""


class _Clock:
    """An item's start (wall time, for ``requested_at``) and its elapsed time."""

    def __init__(self) -> None:
        self.start_us = now_us()
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0


#: How many times a discard lists again and resends after its DELETE's answer was lost.
LOST_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class DiscardDraft(Operation):
    """Discard (archive) the active draft of each pair: ``DELETE .../documents/{id}/draft``.

    Each pair's drafts are listed first (a GET), and the listing and its DELETE take their
    two slots of the rate budget at once (``limiter.paired()``), so the DELETE follows the
    listing's answer within a round trip. A pair in ``recorded`` (from a run or a results
    table) is undone carefully: its DELETE is sent only when the active draft is the
    recorded one (any, for a request in flight at a cancel) *and* its ``createdAt`` falls
    inside one of the recorded requests' intervals, in Omni's time (:func:`~omni_nb.
    evidence.judge`); otherwise the row is ``skipped`` (why: "made before the run", "made
    while the run waited out a 429", "replaced since", ...) or ``not_found`` (no active
    draft), and nothing is sent. Any other pair is discarded as asked. ``draft_id`` of an
    ``ok`` row is the draft that was archived. A DELETE whose answer was lost is never
    resent blindly: the pair is listed again, and the row is ``ok`` when the draft is
    archived now (a draft made since stays), or the DELETE is sent again while it is still
    active. ``dry_run`` lists and decides but sends no DELETE.

    Example:
        >>> DiscardDraft().call("doc-1", None).method
        'DELETE'
    """

    recorded: Mapping[Pair, Recorded] = field(default_factory=dict)
    dry_run: bool = False
    skew_s: float = CLOCK_SKEW_S
    action: str = "discard"

    def __post_init__(self) -> None:
        if self.skew_s != CLOCK_SKEW_S:
            warnings.warn(
                "DiscardDraft(skew_s=...) has no effect: an undo compares createdAt in Omni's "
                "time, with the clock bound measured from answers' Date headers "
                "(omni_nb.evidence)", DeprecationWarning, stacklevel=3)

    def call(self, document_id: str, branch_id: str | None) -> Call:
        """``DELETE /v1/documents/{id}/draft`` with ``{}`` or ``{"branchId": ...}``, never
        resent blindly after a lost answer (see the class docstring)."""
        return dataclasses.replace(draft_request("DELETE", document_id, branch_id),
                                   resend_lost=False)

    def rehearsal(self) -> DiscardDraft:
        """The same undo, listing and deciding, with no DELETE."""
        return dataclasses.replace(self, dry_run=True)

    async def perform(
        self, client: AsyncOmniClient, item: Planned, run_id: str
    ) -> tuple[Row, OmniError | None]:
        """List the pair's drafts, decide, and (unless decided or a dry run) DELETE."""
        clock, doc, branch = _Clock(), item.document_id, item.branch_id
        recorded = self.recorded.get((doc, branch))
        with client.limiter.paired():  # the listing and its DELETE: one claim of two slots
            try:
                listed = await listing(client, doc)
            except OmniError as exc:
                return self._decided(client, item, run_id, clock, status_of(exc),
                                     f"listing its drafts: {message_of(exc)}",
                                     getattr(exc, "status_code", None)), exc
            active = _active(listed, branch)
            verdict = None if recorded is None else _verdict(recorded, active, listed)
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
            outcome = await client.outcome(self.call(doc, branch), doc, branch)
        row, error = await self._settle(client, item, run_id, outcome, target)
        if error is None and recorded is not None and recorded.note:
            row.message = "; ".join(filter(None, [row.message, recorded.note]))
        row.requested_at_us = clock.start_us
        row.elapsed_s = max(0.0, clock.elapsed() - row.queued_s)
        return row, error

    async def _settle(
        self, client: AsyncOmniClient, item: Planned, run_id: str, outcome: CallOutcome,
        target: str | None,
    ) -> tuple[Row, OmniError | None]:
        """The row of a DELETE; after a lost answer, list again: archived now is done (a
        draft made since stays), still active is sent again (:data:`LOST_ROUNDS` times)."""
        doc, branch = item.document_id, item.branch_id
        attempts, queued, rounds, now = outcome.attempts, outcome.queued_s, 0, ""
        while target is not None and _lost(outcome.error):
            with client.limiter.paired():
                now = await _fresh(client, doc, target)
                if now != "active" or rounds == LOST_ROUNDS:
                    break
                outcome = await client.outcome(self.call(doc, branch), doc, branch)
            rounds += 1
            attempts, queued = attempts + outcome.attempts, queued + outcome.queued_s
        row, error = Row.from_outcome(outcome, run_id), outcome.error
        if error is not None and _lost(error) and now == "archived":
            row.message = (f"the DELETE's answer was lost ({message_of(error)}); listed "
                           f"again, draft {target} is archived: that DELETE archived it "
                           "(nothing was resent; a draft made since stays)")
            row.status, row.http_status, error = "ok", None, None
        row.attempts, row.queued_s = attempts, queued
        row.draft_id = target if error is None else None
        return row, error

    def _decided(
        self, client: AsyncOmniClient, item: Planned, run_id: str, clock: _Clock,
        status: str, message: str, http_status: int | None = None,
    ) -> Row:
        """A row decided from the listing: no DELETE was sent (``attempts`` 0)."""
        return Row(item.document_id, item.branch_id, None, status, http_status, message, 0,
                   clock.elapsed(), clock.start_us, client.api_root, run_id, action=self.action)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds")


def _lost(error: OmniError | None) -> bool:
    """A DELETE's answer that says nothing of what it did (dropped, timed out, a 5xx) after
    it may have reached Omni (not a connection that was never made)."""
    return (isinstance(error, APIConnectionError | ServerError)
            and not isinstance(error, HostUnreachableError))


async def _fresh(client: AsyncOmniClient, document_id: str, draft_id: str) -> str:
    """Where ``draft_id`` stands now: ``active``, ``archived``, or ``unknown`` (not listed,
    or the listing failed)."""
    try:
        listed = await listing(client, document_id)
    except OmniError:
        return "unknown"
    for record in listed:
        if record.identifier == draft_id:
            return "active" if record.active else "archived"
    return "unknown"


def _active(listed: list[DraftRecord], branch: str | None) -> DraftRecord | None:
    """The pair's active draft in a listing (branch ids compared without case)."""
    want = None if branch is None else branch.lower()
    for record in listed:
        mine = None if record.branch_id is None else record.branch_id.lower()
        if record.active and mine == want:
            return record
    return None


def _verdict(
    recorded: Recorded, active: DraftRecord | None, listed: list[DraftRecord],
) -> tuple[str, str] | None:
    """Why a recorded pair must not be discarded, as (status, reason); None: discard it."""
    mine = recorded.draft_id
    if active is None:
        if mine is None:
            return "not_found", "no active draft (the request in flight made none that stayed)"
        gone = any(r.identifier == mine and r.status == "archived" for r in listed)
        return "not_found", (f"no active draft: draft {mine} is already archived" if gone
                             else f"no active draft (draft {mine} is not listed)")
    if mine is not None and active.identifier != mine:
        return "skipped", (f"replaced since: the active draft is {active.identifier}, not "
                           f"{mine} (the run's)")
    if active.created_at is None:
        return "skipped", (f"cannot tell when draft {active.identifier} was created (no "
                           "createdAt listed)")
    if not recorded.evidence:
        return "skipped", recorded.unknown or (
            f"cannot tell whose draft: the ledger holds no request that got draft "
            f"{active.identifier} back")
    created_us = to_us(active.created_at)
    judged = [judge(created_us, evidence) for evidence in recorded.evidence]
    if any(j is None for j in judged):
        return None
    first = judged[0]
    assert first is not None
    return "skipped", first.message(active.identifier)


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
