"""OmniClient / AsyncOmniClient list calls against the sandbox: every page, empty lists,
and a 400 for an unknown query parameter raised as a typed error (never retried)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from omni_nb import (
    APIStatusError,
    AsyncOmniClient,
    AuthenticationError,
    NotEligibleError,
    OmniClient,
    sandbox,
)

from ..conftest import MakeSandbox

T = TypeVar("T")


def gets(sb: sandbox.Sandbox, path: str) -> list[sandbox.RequestRecord]:
    return [r for r in sb.requests() if r.method == "GET" and r.path == f"/api{path}"]


def run_async(sb: sandbox.Sandbox, call: Callable[[AsyncOmniClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AsyncOmniClient(sb.base_url, sb.token, rate_limit=None) as client:
            return await call(client)

    return asyncio.run(main())


def test_list_documents_walks_every_page(make_sandbox: MakeSandbox) -> None:
    """list_documents follows nextCursor until hasNextPage is false (30 docs, pages of 7)."""
    sb = make_sandbox(documents=30)
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as client:
        records = client.list_documents(pageSize=7, sortField="updatedAt")
    assert [r["identifier"] for r in records] == [f"doc-{i:04d}" for i in range(1, 31)]
    requests = gets(sb, "/v1/documents")
    assert len(requests) == 5  # 7+7+7+7+2
    assert "cursor=" not in requests[0].query
    assert all("cursor=" in r.query for r in requests[1:])
    assert len({r.query for r in requests}) == 5  # each page asked for once


def test_async_list_documents_walks_every_page(make_sandbox: MakeSandbox) -> None:
    """The async twin returns the same records over the same pages."""
    sb = make_sandbox(documents=30)
    records = run_async(sb, lambda c: c.list_documents(pageSize=7, sortField="updatedAt"))
    assert [r["identifier"] for r in records] == [f"doc-{i:04d}" for i in range(1, 31)]
    assert len(gets(sb, "/v1/documents")) == 5


def test_list_documents_default_page_size_is_the_maximum(sb: sandbox.Sandbox) -> None:
    """Without pageSize the client asks for 100 per page (300 docs: 3 requests)."""
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as client:
        assert len(client.list_documents()) == 300
    requests = gets(sb, "/v1/documents")
    assert len(requests) == 3
    assert all("pageSize=100" in r.query for r in requests)


def test_list_branches_walks_every_page(sb: sandbox.Sandbox) -> None:
    """list_branches asks for modelKind=BRANCH and returns every branch over 1-record pages."""
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as client:
        records = client.list_branches(pageSize=1)
    assert [r["id"] for r in records] == [b.id for b in sb.branches]
    assert {r["modelKind"] for r in records} == {"BRANCH"}
    requests = gets(sb, "/v1/models")
    assert len(requests) == 3
    assert all("modelKind=BRANCH" in r.query for r in requests)


def test_async_list_branches_walks_every_page(sb: sandbox.Sandbox) -> None:
    """The async twin lists the same branches over the same pages."""
    records = run_async(sb, lambda c: c.list_branches(pageSize=1))
    assert [r["id"] for r in records] == [b.id for b in sb.branches]
    assert len(gets(sb, "/v1/models")) == 3


def test_empty_lists_are_empty(make_sandbox: MakeSandbox) -> None:
    """No documents, or a base model without branches: [] after one request each."""
    sb = make_sandbox(documents=0)
    unknown_model = str(uuid.uuid4())
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as client:
        assert client.list_documents() == []
        assert client.list_branches(base_model_id=unknown_model) == []
    assert run_async(sb, lambda c: c.list_documents()) == []
    assert run_async(sb, lambda c: c.list_branches(base_model_id=unknown_model)) == []
    assert len(gets(sb, "/v1/documents")) == 2
    assert len(gets(sb, "/v1/models")) == 2


def test_unknown_parameter_is_a_typed_400_not_retried(sb: sandbox.Sandbox) -> None:
    """A 400 for an unknown query parameter raises NotEligibleError (an APIStatusError)
    with the server's words, after one request."""
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as client:
        with pytest.raises(NotEligibleError) as caught:
            client.list_documents(colour="blue")
        with pytest.raises(APIStatusError) as caught_branches:
            client.list_branches(colour="blue")
    for exc in (caught.value, caught_branches.value):
        assert exc.status_code == 400
        assert exc.message == "Unknown query parameter: colour"
        assert exc.attempts == 1
    assert len(gets(sb, "/v1/documents")) == 1
    assert len(gets(sb, "/v1/models")) == 1


def test_async_unknown_parameter_is_a_typed_400(sb: sandbox.Sandbox) -> None:
    """The async twins raise the same typed 400."""
    with pytest.raises(NotEligibleError, match="Unknown query parameter: colour"):
        run_async(sb, lambda c: c.list_documents(colour="blue"))
    with pytest.raises(NotEligibleError, match="Unknown query parameter: colour"):
        run_async(sb, lambda c: c.list_branches(colour="blue"))


def test_list_with_unknown_token_is_an_authentication_error(sb: sandbox.Sandbox) -> None:
    """A refused token on a list call raises AuthenticationError, like create_draft."""
    with OmniClient(sb.base_url, "omni_osk_unknown", rate_limit=None) as client, \
            pytest.raises(AuthenticationError, match="Invalid bearer token"):
        client.list_branches()
