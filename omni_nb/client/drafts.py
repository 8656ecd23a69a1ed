"""The rest of a draft's life: the requests that discard a draft and list a document's drafts,
and the typed records a listing becomes.

``DELETE /v1/documents/{id}/draft`` (optional ``{"branchId"}``) archives the active draft;
``GET /v1/documents/{id}/drafts[?include=archived]`` lists them, as a bare JSON list or a
paged ``{pageInfo, records}`` object (both are read).

Example:
    >>> discard_call("doc-1", None)[0].describe("https://acme.omniapp.co/api")
    'DELETE https://acme.omniapp.co/api/v1/documents/doc-1/draft {}'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ..errors import UnexpectedResponseError
from ._core import Call, document_call
from .validate import check_document_id

__all__ = ["DraftRecord", "discard_call", "drafts_call", "drafts_request", "records_from"]


@dataclass(frozen=True, slots=True)
class DraftRecord:
    """One draft of a document, as Omni lists it.

    ``status`` is Omni's (``active``, ``archived``); times are UTC.

    Example:
        >>> r = records_from([{"identifier": "d1", "status": "active",
        ...                    "createdAt": "2026-12-01T10:00:00.123Z"}], "doc-1")[0]
        >>> (r.identifier, r.status, r.created_at.isoformat())
        ('d1', 'active', '2026-12-01T10:00:00.123000+00:00')
    """

    document_id: str
    identifier: str
    published_identifier: str | None
    branch_id: str | None
    branch_name: str | None
    status: str | None
    out_of_date: bool | None
    created_at: datetime | None
    updated_at: datetime | None
    created_by: str | None
    last_edited_by: str | None

    @property
    def active(self) -> bool:
        """True for the document's (or branch's) current draft."""
        return self.status == "active"


def discard_call(document_id: object, branch_id: object = None) -> tuple[Call, str, str | None]:
    """The Discard-draft request for checked input: (call, document id, branch id).

    Example:
        >>> discard_call("doc-1", "7C9E6679-7425-40DE-944B-E07FC1F90AE7")[0].body
        {'branchId': '7c9e6679-7425-40de-944b-e07fc1f90ae7'}
    """
    return document_call("DELETE", document_id, branch_id)


def drafts_call(document_id: object, include_archived: bool = False) -> tuple[Call, str]:
    """The list-drafts request for input checked here: (call, document id).

    Example:
        >>> drafts_call("doc-1", include_archived=True)[0].describe("https://a.omniapp.co/api")
        'GET https://a.omniapp.co/api/v1/documents/doc-1/drafts?include=archived'
    """
    doc = check_document_id(document_id)
    return drafts_request(doc, include_archived), doc


def drafts_request(document_id: str, include_archived: bool = False) -> Call:
    """The list-drafts request for an id already checked (by the batch planner).

    Example:
        >>> drafts_request("doc-1").action
        'list'
    """
    params = {"include": "archived"} if include_archived else {}
    return Call("GET", f"/v1/documents/{quote(document_id, safe='')}/drafts", params=params,
                action="list")


def records_from(payload: Any, document_id: str) -> list[DraftRecord]:
    """Draft records from a listing (a bare list, or a page's ``records``).

    Example:
        >>> records_from({"records": [], "pageInfo": {"hasNextPage": False}}, "doc-1")
        []
    """
    items = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise UnexpectedResponseError(200, f"{document_id}: drafts listing is not a list",
                                      body=payload)
    return [_record(item, document_id) for item in items if isinstance(item, dict)]


def _record(item: dict[str, Any], document_id: str) -> DraftRecord:
    identifier = item.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise UnexpectedResponseError(200, f"{document_id}: a listed draft has no identifier",
                                      body=item)
    branch = item.get("branch") if isinstance(item.get("branch"), dict) else {}
    return DraftRecord(
        document_id=document_id, identifier=identifier,
        published_identifier=_text(item.get("publishedIdentifier")),
        branch_id=_text(branch.get("id")) if branch else _text(item.get("branchId")),
        branch_name=_text(branch.get("name")) if branch else None,
        status=_text(item.get("status")),
        out_of_date=item.get("draftOutOfDate") if isinstance(item.get("draftOutOfDate"), bool)
        else None,
        created_at=_when(item.get("createdAt")), updated_at=_when(item.get("updatedAt")),
        created_by=_name(item.get("createdBy")), last_edited_by=_name(item.get("lastEditedBy")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(value: object) -> str | None:
    return _text(value.get("name")) if isinstance(value, dict) else _text(value)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
