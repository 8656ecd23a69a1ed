"""Operations: what the batch engine does to each (document, branch) pair.

An operation says which request it sends (:meth:`Operation.call`, also what a dry run
shows), sends it with the client (:meth:`Operation.send`), and turns the answer into a row
(:meth:`Operation.row`). The engine (:mod:`.run`) knows nothing else about it, so a new
endpoint in batch form (discarding drafts, say) is one small class here.

Example:
    >>> CREATE_DRAFT.call("doc-1", None).describe("https://acme.omniapp.co/api")
    'POST https://acme.omniapp.co/api/v1/documents/doc-1/draft {}'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..client import AsyncOmniClient, Call, CallOutcome, draft_call
from ..rows import Row

__all__ = ["CREATE_DRAFT", "CreateDraft", "Operation"]


class Operation(Protocol):
    """What the batch engine needs of an operation."""

    @property
    def action(self) -> str:
        """What the operation does, in a word (``create``)."""
        ...

    def call(self, document_id: str, branch_id: str | None) -> Call:
        """The request for a checked pair."""
        ...

    async def send(
        self, client: AsyncOmniClient, document_id: str, branch_id: str | None
    ) -> CallOutcome:
        """Send it (rate budget, retries and classification are the client's)."""
        ...

    def row(self, outcome: CallOutcome, run_id: str) -> Row:
        """The results row for an answered pair."""
        ...


@dataclass(frozen=True, slots=True)
class CreateDraft:
    """Create (or get back) the draft of each pair: ``POST .../documents/{id}/draft``.

    Example:
        >>> CreateDraft().action
        'create'
    """

    action: str = "create"

    def call(self, document_id: str, branch_id: str | None) -> Call:
        """``POST /v1/documents/{id}/draft`` with ``{}`` or ``{"branchId": ...}``."""
        return draft_call(document_id, branch_id)[0]

    async def send(
        self, client: AsyncOmniClient, document_id: str, branch_id: str | None
    ) -> CallOutcome:
        """One Create-draft call; failures come back in the outcome."""
        return await client.create_draft_outcome(document_id, branch_id)

    def row(self, outcome: CallOutcome, run_id: str) -> Row:
        """The row: the draft id on success, the server's words otherwise."""
        return Row.from_outcome(outcome, run_id)


CREATE_DRAFT = CreateDraft()
