"""The shared vocabulary: a result row, the statuses, and the clock they are stamped with.

Standard library only. The ledger stores rows, the table shows them, the batch makes them and
the progress displays count them: every layer imports this module, and it imports none of
them (nor the package root), so no cycle can form through it.

Example:
    >>> Row("doc-1", None, "d1", "ok", 200, "", 1, 0.1, 0, "https://a/api", "r1").status
    'ok'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import (
    APIConnectionError,
    AuthenticationError,
    InvalidInputError,
    NotEligibleError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)

if TYPE_CHECKING:
    from .client import CallOutcome

__all__ = [
    "ACTIONS", "STATUSES", "STORED_FIELDS", "Row", "message_of", "now_us", "status_of", "to_us",
]

#: Every status a row can have, in the order tables and summaries list them.
STATUSES = (
    "ok",
    "invalid",
    "not_eligible",
    "unauthorized",
    "forbidden",
    "not_found",
    "rate_limited",
    "server_error",
    "network_error",
    "cancelled",
    "skipped",
)

#: What a batch row did to its pair (the table's ``action`` categorical, the ledger's column).
ACTIONS = ("create", "discard")

#: The fields a row is stored in, in the ledger's column order: the tuples the ledger reads
#: back and the table builders take (one definition for both sides).
STORED_FIELDS = (
    "document_id", "branch_id", "draft_id", "status", "http_status", "message", "attempts",
    "elapsed_s", "requested_at_us", "api_root", "run_id", "queued_s", "key", "from_ledger",
    "action",
)


@dataclass(slots=True)
class Row:
    """One input's outcome: the ledger's record and one row of the results table.

    ``requested_at_us`` is microseconds since the epoch, UTC (an int loads fast): the first
    send. ``queued_s`` is the time the rate budget held the item back (before its first send,
    between attempts, 429 pauses), ``elapsed_s`` the rest, from the first send to the answer.
    ``key`` is the short name of the API key that answered (:meth:`Secret.key_id`), None
    for rows never sent. ``action`` is what the row did (:data:`ACTIONS`): ``create``, or
    ``discard`` (then ``draft_id`` is the draft it archived). The fields added later have
    defaults, so positional construction with the first eleven keeps working. A ``skipped``
    row is a discard decided without a DELETE (the draft was not the run's to undo).

    Example:
        >>> Row("doc-1", None, "d1", "ok", 200, "", 1, 0.1, 0, "https://a/api", "r1").draft_id
        'd1'
    """

    document_id: str
    branch_id: str | None
    draft_id: str | None
    status: str
    http_status: int | None
    message: str
    attempts: int
    elapsed_s: float
    requested_at_us: int
    api_root: str
    run_id: str
    from_ledger: bool = False
    queued_s: float = 0.0
    key: str | None = None
    action: str = "create"

    @classmethod
    def from_outcome(cls, outcome: CallOutcome, run_id: str) -> Row:
        """The row for a finished client call.

        Example:
            >>> # Row.from_outcome(outcome, run_id="r1")
        """
        error = outcome.error
        return cls(
            document_id=outcome.document_id,
            branch_id=outcome.branch_id,
            draft_id=outcome.draft.identifier if outcome.draft else None,
            status="ok" if error is None else status_of(error),
            http_status=outcome.http_status,
            message="" if error is None else message_of(error),
            attempts=outcome.attempts,
            elapsed_s=outcome.elapsed_s,
            requested_at_us=to_us(outcome.requested_at),
            api_root=outcome.api_root,
            run_id=run_id,
            queued_s=outcome.queued_s,
            key=outcome.key,
        )

    @classmethod
    def unsent(
        cls, document_id: str, branch_id: str | None, status: str, message: str, *,
        api_root: str, run_id: str, action: str = "create",
    ) -> Row:
        """A row for an input that was never answered (``invalid``, ``cancelled``).

        Example:
            >>> Row.unsent("d", None, "cancelled", "not sent", api_root="a", run_id="r").attempts
            0
        """
        return cls(document_id, branch_id, None, status, None, message, 0, 0.0, now_us(),
                   api_root, run_id, action=action)


def status_of(error: BaseException) -> str:
    """The table status for an error.

    Example:
        >>> from omni_nb import NotFoundError
        >>> status_of(NotFoundError(404, "x"))
        'not_found'
    """
    for cls, status in _STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return "server_error"  # an answer outside the contract (e.g. a 200 without identifier)


_STATUS_BY_ERROR: tuple[tuple[type[BaseException], str], ...] = (
    (InvalidInputError, "invalid"),
    (NotEligibleError, "not_eligible"),
    (AuthenticationError, "unauthorized"),
    (PermissionDeniedError, "forbidden"),
    (NotFoundError, "not_found"),
    (RateLimitError, "rate_limited"),
    (ServerError, "server_error"),
    (APIConnectionError, "network_error"),
)


def message_of(error: BaseException) -> str:
    """The words a row keeps for an error: the server's message when there is one.

    Example:
        >>> from omni_nb import NotFoundError
        >>> message_of(NotFoundError(404, "Document with identifier x not found"))
        'Document with identifier x not found'
    """
    return str(getattr(error, "message", None) or error)


def to_us(when: datetime) -> int:
    """Microseconds since the epoch for an aware datetime.

    Example:
        >>> from datetime import UTC
        >>> to_us(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
        1000000
    """
    return int(when.timestamp() * 1_000_000)


def now_us() -> int:
    """Microseconds since the epoch, now (UTC).

    Example:
        >>> now_us() > 0
        True
    """
    return time.time_ns() // 1000
