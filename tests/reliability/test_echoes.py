"""What the server sends back is never trusted: a token it echoes is redacted before it is
kept anywhere, and a draft identifier that is not one is refused, naming the document."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_nb import OmniClient, UnexpectedResponseError, create_drafts, sandbox
from omni_nb.ledger import open_ledger


@pytest.mark.parametrize("status", [400, 401, 403, 500])
def test_echoed_token_is_redacted_everywhere(
    sb: sandbox.Sandbox, tmp_path: Path, status: int
) -> None:
    """A server whose error message and body repeat the Authorization header: the token is
    in neither the exception, the table's message, the error's body, nor the ledger file."""
    echo = {"error": f"Bearer {sb.token}", "message": f"bad Authorization: Bearer {sb.token}"}
    sb.enqueue(status, echo, times=2)
    ledger = tmp_path / "echo.sqlite3"
    table = create_drafts(["doc-0001"], base_url=sb.base_url, token=sb.token, ledger=ledger,
                          rate_limit=None, max_retries=0)
    error = table.errors[0]
    assert error is not None
    with OmniClient(sb.base_url, sb.token, rate_limit=None, max_retries=0) as client:
        raised = client.create_draft_outcome("doc-0002").error
    assert raised is not None
    seen = [str(error), repr(error), str(getattr(error, "body", "")), table["message"].iloc[0],
            str(raised), str(getattr(raised, "body", ""))]
    assert all(sb.token not in text for text in seen), seen
    assert "[redacted]" in table["message"].iloc[0]
    open_ledger(ledger).close()
    assert sb.token.encode() not in ledger.read_bytes()


@pytest.mark.parametrize(
    "identifier",
    ["x" * 100_000, "abc\ndef", "abc\x00", "abc\u200f", "has space", "é123"],
    ids=["huge", "newline", "nul", "rtl-mark", "space", "non-ascii"],
)
def test_identifier_that_is_not_one_is_refused(sb: sandbox.Sandbox, identifier: str) -> None:
    """A 200 whose identifier is huge or holds a newline, NUL, RTL mark or space is an
    UnexpectedResponseError naming the document, and a server_error row in a batch."""
    sb.enqueue(200, {"identifier": identifier}, times=2)
    with OmniClient(sb.base_url, sb.token, rate_limit=None) as client, \
            pytest.raises(UnexpectedResponseError, match="doc-0003: the answer's draft") as info:
        client.create_draft("doc-0003")
    assert len(str(info.value)) < 1000
    table = create_drafts(["doc-0004"], base_url=sb.base_url, token=sb.token, ledger="off",
                          rate_limit=None)
    assert list(table["status"]) == ["server_error"]
    assert table["draft_id"].isna().all()
