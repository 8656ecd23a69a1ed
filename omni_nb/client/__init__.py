"""The HTTP client room: the only package that talks to Omni (and the only httpx importer).

* :mod:`.validate`: what may be sent (document ids, branch UUIDs), checked before sending.
* :mod:`.parse`: reading answers (error-body shapes, ``Retry-After``), standard library only.
* :mod:`.drafts`: discarding and listing drafts (requests, typed records).
* :mod:`._core`: everything the twins share (records, request building, classification,
  retry waits); :mod:`._sync` and :mod:`._async` do the I/O only.
* :mod:`.stamps`: when each attempt was written to the wire and answered (httpx's ``trace``
  extension), for the rate budget and the call's :class:`AttemptInterval` log.

Example:
    >>> from omni_nb.client import OmniClient, check_document_id
    >>> check_document_id("doc-0001")
    'doc-0001'
"""

from ._async import AsyncOmniClient
from ._core import (
    AttemptInterval,
    Call,
    CallOutcome,
    Draft,
    HostUnreachableError,
    Reader,
    RetryPolicy,
    draft_call,
    draft_request,
    read_draft,
    read_nothing,
)
from ._sync import OmniClient
from .drafts import DraftRecord, drafts_request
from .stamps import attempt_log_of
from .validate import check_branch_id, check_document_id

__all__ = [
    "AsyncOmniClient",
    "AttemptInterval",
    "Call",
    "CallOutcome",
    "Draft",
    "DraftRecord",
    "HostUnreachableError",
    "OmniClient",
    "Reader",
    "RetryPolicy",
    "attempt_log_of",
    "check_branch_id",
    "check_document_id",
    "draft_call",
    "draft_request",
    "drafts_request",
    "read_draft",
    "read_nothing",
]
