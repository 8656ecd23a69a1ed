"""The shared vocabulary: a result row, the statuses, the actions, the column lists, the
status colours, and the clock rows are stamped with. Every layer takes these names from here.

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
from .evidence import Evidence

if TYPE_CHECKING:
    from .client import CallOutcome

__all__ = [
    "ACTIONS", "DRAFT_COLUMNS", "DRAFT_SHOWN", "DRY_RUN_COLUMNS", "RESULT_COLUMNS", "SHOWN",
    "STATUSES", "STATUS_COLOURS", "STORED_FIELDS", "TEXT_COLUMNS", "Row", "evidence_of",
    "known_actions", "message_of", "now_us", "register_action", "status_of", "to_us",
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

#: One colour per status, for every display of rows (bars, status cells, progress counts):
#: GitHub's palette, readable on light and dark themes.
STATUS_COLOURS = {
    "ok": "#2da44e", "invalid": "#8250df", "not_eligible": "#bf8700", "unauthorized": "#cf222e",
    "forbidden": "#cf222e", "not_found": "#d1242f", "rate_limited": "#fb8500",
    "server_error": "#a40e26", "network_error": "#a40e26", "cancelled": "#6e7781",
    "skipped": "#0969da",
}

#: The built-in actions: what a batch row did to its pair (the table's ``action``
#: categorical, the ledger's column). Operations defined elsewhere add theirs with
#: :func:`register_action`; :func:`known_actions` lists them all.
ACTIONS = ("create", "discard", "list")

_registered: list[str] = list(ACTIONS)


def register_action(action: str) -> str:
    """Add an operation's action word to the vocabulary (idempotent); returns it.

    The table shows registered actions as themselves, in registration order after the
    built-in ones. A word must be lower-case letters, digits and ``_`` (it is stored in the
    ledger and shown as a category).

    Example:
        >>> register_action("publish_draft")
        'publish_draft'
        >>> known_actions().index("publish_draft") > known_actions().index("list")
        True
    """
    if not (isinstance(action, str) and action and action.replace("_", "a").isalnum()
            and action == action.lower() and action.isascii()):
        raise ValueError(f"an action is a lower-case word (letters, digits, _), not {action!r}")
    if action not in _registered:
        _registered.append(action)
    return action


def known_actions() -> tuple[str, ...]:
    """Every action known in this process: :data:`ACTIONS`, then the registered ones.

    Example:
        >>> known_actions()[:3]
        ('create', 'discard', 'list')
    """
    return tuple(_registered)


#: The fields a row is stored in, in the ledger's column order: the tuples the ledger reads
#: back and the table builders take (one definition for both sides).
STORED_FIELDS = (
    "document_id", "branch_id", "draft_id", "status", "http_status", "message", "attempts",
    "elapsed_s", "requested_at_us", "api_root", "run_id", "queued_s", "key", "from_ledger",
    "action",
)

#: The results table's columns, in order (``requested_at`` is built from
#: ``requested_at_us``).
RESULT_COLUMNS = (
    "document_id", "branch_id", "draft_id", "status", "http_status", "message", "attempts",
    "queued_s", "elapsed_s", "requested_at", "key", "api_root", "run_id", "from_ledger",
    "action",
)

#: The columns an analyst reads first, and their headings in the compact display; the rest
#: stay in the DataFrame.
SHOWN = {
    "document_id": "document", "branch_id": "branch", "draft_id": "draft",
    "status": "status", "http_status": "HTTP", "message": "message",
    "attempts": "attempts", "elapsed_s": "elapsed s",
}

#: The columns a terminal shows of a results table.
TEXT_COLUMNS = ("document_id", "branch_id", "draft_id", "status", "http_status", "message")

#: The drafts listing's columns, in order.
DRAFT_COLUMNS = (
    "document_id", "draft_id", "branch_id", "branch_name", "draft_status", "out_of_date",
    "created_at", "updated_at", "created_by", "last_edited_by", "status", "message",
)

#: The listing's columns a display (the form, the CLI) shows first; the DataFrame keeps all.
DRAFT_SHOWN = ("document_id", "draft_id", "branch_name", "draft_status", "out_of_date",
               "created_at", "created_by", "status", "message")

#: A dry run's columns, in order.
DRY_RUN_COLUMNS = ("input", "document_id", "branch_id", "valid", "request", "message")


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
    evidence: Evidence | None = None

    @classmethod
    def from_outcome(cls, outcome: CallOutcome, run_id: str) -> Row:
        """The row for a finished client call.

        Example:
            >>> from datetime import UTC
            >>> from omni_nb.client import CallOutcome
            >>> when = datetime(2026, 1, 1, tzinfo=UTC)
            >>> o = CallOutcome("d", None, None, None, 200, 1, 0.1, when, "https://a/api",
            ...                 action="discard")
            >>> Row.from_outcome(o, run_id="r1").action
            'discard'
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
            action=outcome.action,
            evidence=evidence_of(outcome),
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


def evidence_of(outcome: CallOutcome) -> Evidence | None:
    """The attempts of a call as evidence (no clock bound: the batch adds the run's), or
    None when the call sent nothing.

    Example:
        >>> from datetime import UTC
        >>> from omni_nb.client import CallOutcome
        >>> o = CallOutcome("d", None, None, None, None, 0, 0.0, datetime(2026, 1, 1,
        ...                 tzinfo=UTC), "https://a/api")
        >>> evidence_of(o) is None
        True
    """
    return Evidence.of_log(outcome.attempt_log)


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
