"""The client's discard and list calls, over real sockets against the sandbox (and a mock
transport for the paged listing shape the sandbox does not send)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from omni_nb import AsyncOmniClient, NotFoundError, OmniClient, PermissionDeniedError, sandbox
from omni_nb.client import DraftRecord


def test_discard_archives_and_the_listing_shows_it(sb: sandbox.Sandbox) -> None:
    """discard_draft archives the active draft: gone from the default listing, archived with
    include_archived; a new create then gets a new identifier."""
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as c:
        made = c.create_draft("doc-0001")
        assert [d.identifier for d in c.list_drafts("doc-0001")] == [made.identifier]
        c.discard_draft("doc-0001")
        assert c.list_drafts("doc-0001") == []
        archived = c.list_drafts("doc-0001", include_archived=True)
        assert [(d.identifier, d.status, d.active) for d in archived] == [
            (made.identifier, "archived", False)]
        assert c.create_draft("doc-0001").identifier != made.identifier


def test_discarding_twice_is_a_404_never_retried(sb: sandbox.Sandbox) -> None:
    """A second discard answers 404 "Draft with id X does not exist", sent once."""
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as c:
        c.create_draft("doc-0002")
        c.discard_draft("doc-0002")
        sb.clear_requests()
        with pytest.raises(NotFoundError, match="does not exist") as info:
            c.discard_draft("doc-0002")
    assert info.value.attempts == 1
    assert [r.method for r in sb.requests()] == ["DELETE"]


def test_discard_sends_the_branch_body(sb: sandbox.Sandbox) -> None:
    """A branch's draft is discarded with {"branchId": ...}; the no-branch draft stays."""
    branch = sb.branches[0].id
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as c:
        plain = c.create_draft("doc-0003")
        c.create_draft("doc-0003", branch)
        c.discard_draft("doc-0003", branch.upper())
        left = c.list_drafts("doc-0003")
    deletes = [r for r in sb.requests() if r.method == "DELETE"]
    assert [json.loads(r.body) for r in deletes] == [{"branchId": branch}]
    assert [(d.identifier, d.branch_id) for d in left] == [(plain.identifier, None)]


def test_listing_records_are_typed(sb: sandbox.Sandbox) -> None:
    """Every field of a listed draft is read: branch id and name, times in UTC, people."""
    branch = sb.branches[0]
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as c:
        made = c.create_draft("doc-0004", branch.id)
        (record,) = c.list_drafts("doc-0004")
    assert isinstance(record, DraftRecord)
    assert (record.identifier, record.branch_id, record.branch_name) == (
        made.identifier, branch.id, branch.name)
    assert record.created_at is not None
    assert record.created_at.utcoffset() is not None
    assert record.created_by == sb.editor_name


def test_viewer_may_list_but_not_discard(sb: sandbox.Sandbox) -> None:
    """A viewer token lists drafts; its discard is a PermissionDeniedError."""
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as editor:
        editor.create_draft("doc-0005")
    with OmniClient(sb.base_url, sb.viewer_token, rate_limit=None) as viewer:
        assert len(viewer.list_drafts("doc-0005")) == 1
        with pytest.raises(PermissionDeniedError):
            viewer.discard_draft("doc-0005")


def test_async_twin_discards_and_lists(sb: sandbox.Sandbox) -> None:
    """The async client has the same calls with the same answers."""

    async def main() -> list[DraftRecord]:
        async with AsyncOmniClient(sb.base_url, sb.token, rate_limit=None) as c:
            await c.create_draft("doc-0006")
            outcome = await c.discard_draft_outcome("doc-0006")
            assert outcome.ok
            assert outcome.http_status == 200
            return await c.list_drafts("doc-0006", include_archived=True)

    assert [d.status for d in asyncio.run(main())] == ["archived"]


def test_paged_listing_shape_is_read_too() -> None:
    """A listing that comes as {pageInfo, records} reads like a bare list."""

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params.get("include") == "archived"
        return httpx.Response(200, json={
            "pageInfo": {"hasNextPage": False},
            "records": [{"identifier": "d1", "status": "archived", "branch": None}],
        })

    with OmniClient("https://acme.omniapp.co", "omni_osk_t", rate_limit=None,
                    transport=httpx.MockTransport(answer)) as c:
        (record,) = c.list_drafts("doc-1", include_archived=True)
    assert (record.identifier, record.status, record.branch_id) == ("d1", "archived", None)
