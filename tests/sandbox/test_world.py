"""The sandbox plays the rest of the world for the undo's tests: a clock of its own, another
user's drafts, and one answer lost or replaced. Over real sockets."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from omni_nb import sandbox
from tests.conftest import MakeSandbox


def auth(sb: sandbox.Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.token}"}


def listed(sb: sandbox.Sandbox, doc: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{sb.base_url}/v1/documents/{doc}/drafts",
                       params={"include": "archived"}, headers=auth(sb))
    return list(answer.json())


def test_a_clock_offset_moves_date_created_at_and_retry_after_together(
    make_sandbox: MakeSandbox,
) -> None:
    """At clock_offset=120 the Date header, a new draft's createdAt and an HTTP-date
    Retry-After are two minutes ahead of this machine's clock; at 0 they are not."""
    sb = make_sandbox(clock_offset=120.0, rate_limit=(2, 60.0), retry_after="date")
    before = time.time()
    made = httpx.post(f"{sb.base_url}/v1/documents/doc-0001/draft", headers=auth(sb))
    date = email.utils.parsedate_to_datetime(made.headers["date"]).timestamp()
    assert 119 <= date - before <= 122
    created = listed(sb, "doc-0001")[0]["createdAt"]
    assert isinstance(created, str)
    stamp = email.utils.parsedate_to_datetime(made.headers["date"])
    assert created.startswith(stamp.strftime("%Y-%m-%dT%H:%M"))
    refused = httpx.post(f"{sb.base_url}/v1/documents/doc-0002/draft", headers=auth(sb))
    assert refused.status_code == 429
    retry = email.utils.parsedate_to_datetime(refused.headers["retry-after"]).timestamp()
    assert retry - time.time() > 120  # the sandbox's clock, a minute's window ahead
    sb.configure(clock_offset=0.0)
    now = email.utils.parsedate_to_datetime(
        httpx.get(f"{sb.base_url}/v1/documents/doc-0001/drafts", headers=auth(sb))
        .headers["date"]).timestamp()
    assert abs(now - time.time()) < 2


def test_another_user_replaces_the_active_draft(sb: sandbox.Sandbox) -> None:
    """make_draft archives the active draft and makes a new one, listed with the other
    user's name and the creation time asked for (the sandbox's clock)."""
    mine = httpx.post(f"{sb.base_url}/v1/documents/doc-0001/draft", headers=auth(sb))
    theirs = sb.make_draft("doc-0001", created_at=1_800_000_000.25)
    records = {r["identifier"]: r for r in listed(sb, "doc-0001")}
    assert records[mine.json()["identifier"]]["status"] == "archived"
    assert records[theirs]["status"] == "active"
    assert records[theirs]["createdBy"] == {"name": "Another Editor"}
    assert records[theirs]["createdAt"] == "2027-01-15T08:00:00.250Z"
    with pytest.raises(KeyError, match="nope"):
        sb.make_draft("nope")


def test_a_replaced_answer_takes_effect_once_with_the_other_users_move_first(
    sb: sandbox.Sandbox,
) -> None:
    """replace_answer drops the next DELETE's answer after archiving (route=True), runs
    ``then`` before the answer would go out, and applies once: the next DELETE is normal."""
    httpx.post(f"{sb.base_url}/v1/documents/doc-0001/draft", headers=auth(sb))
    moves: list[str] = []
    sb.replace_answer("DELETE", "doc-0001", status=0,
                      then=lambda: moves.append(sb.make_draft("doc-0001")))
    with pytest.raises(httpx.TransportError):
        httpx.delete(f"{sb.base_url}/v1/documents/doc-0001/draft", headers=auth(sb))
    assert sb.drafts() == {("doc-0001", None): moves[0]}
    again = httpx.delete(f"{sb.base_url}/v1/documents/doc-0001/draft", headers=auth(sb))
    assert again.status_code == 200
    assert sb.drafts() == {}


def test_a_replaced_refusal_skips_the_write_and_moves_later(sb: sandbox.Sandbox) -> None:
    """A firewall 429 in place of a create (route=False) makes no draft; ``then_after`` runs
    the other user's move after the answer went out."""
    sb.replace_answer("POST", "doc-0002", status=429, route=False,
                      headers={"X-Omni-Waf-Action": "block", "Retry-After": "3"},
                      then=lambda: sb.make_draft("doc-0002"), then_after=0.05)
    refused = httpx.post(f"{sb.base_url}/v1/documents/doc-0002/draft", headers=auth(sb))
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "3")
    assert refused.headers["x-omni-waf-action"] == "block"
    assert sb.wait_idle(5.0)
    assert list(sb.drafts()) == [("doc-0002", None)]  # the other user's, made afterwards
