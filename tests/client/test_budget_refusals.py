"""No item is lost to a 429 the rate budget should have prevented: a near miss at the edge of a
window, under a limit the client and the server agree on, is the budget's own timing error.
The item goes again when the budget allows and the refusal is not one of its retries (within
the call's bound: ``probe_retries`` such refusals at most). A refusal the budget cannot
explain still counts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from omni_nb import AsyncOmniClient, OmniClient, RateLimit, RateLimitError, RetryPolicy
from omni_nb.client import CallOutcome
from omni_nb.ratelimit import Limiter

from ..conftest import FakeClock, MakeSandbox

ROOT = "https://acme.omniapp.co/api"
LIMIT = RateLimit(2, 10.0)


def _answers(statuses: list[int]) -> httpx.MockTransport:
    """A server that answers the create calls with ``statuses`` in turn (a 429 from the
    firewall, as Omni's), then 200s."""
    script: Iterator[int] = iter(statuses)

    def answer(request: httpx.Request) -> httpx.Response:
        status = next(script, 200)
        if status == 429:
            return httpx.Response(429, json={"error": "Too Many Requests", "message": "slow"},
                                  headers={"X-Omni-Waf-Action": "block"})
        return httpx.Response(200, json={"identifier": "93874a87"})

    return httpx.MockTransport(answer)


def _near_miss_client(clock: FakeClock, statuses: list[int], retry: RetryPolicy) -> OmniClient:
    """A client at 2 per 10 s whose budget runs on ``clock``; its third send goes exactly as
    the first leaves the window, and the server refuses it with ``statuses``."""
    limiter = Limiter(LIMIT, clock=clock, margin=0.0)
    return OmniClient(ROOT, "tok", rate_limit=LIMIT, limiter=limiter, retry=retry,
                      sleep=clock.sleep, transport=_answers([200, 200, *statuses]))


def test_a_near_miss_at_the_window_edge_uses_up_no_retry(clock: FakeClock) -> None:
    """max_retries=0, three near-miss 429s in a row to the third item: it is sent again when
    the budget allows and ends ok, after 4 attempts (none of them a retry of its own)."""
    with _near_miss_client(clock, [429, 429, 429], RetryPolicy(max_retries=0)) as c:
        first = [c.create_draft_outcome(d) for d in ("doc-1", "doc-2")]
        edge = c.create_draft_outcome("doc-3")
        lesson_waits = list(clock.sleeps)
    assert all(o.ok for o in first)
    assert edge.ok, edge.error
    assert edge.attempts == 4
    assert lesson_waits[0] == pytest.approx(10.0)  # the third went at the window's edge
    assert [a.status for a in edge.attempt_log] == [429, 429, 429, 200]


def test_near_misses_stay_within_the_calls_bound(clock: FakeClock) -> None:
    """Past ``probe_retries`` such refusals they count as retries again: the call's bound
    holds however often the server refuses."""
    retry = RetryPolicy(max_retries=0, probe_retries=2)
    with _near_miss_client(clock, [429] * 5, retry) as c:
        for d in ("doc-1", "doc-2"):
            c.create_draft_outcome(d)
        edge = c.create_draft_outcome("doc-3")
    assert isinstance(edge.error, RateLimitError)
    assert edge.attempts == 3


def test_a_refusal_the_budget_cannot_explain_still_counts(clock: FakeClock) -> None:
    """A 429 to the first send of a fresh budget (nothing of ours in the window: another tool,
    a storm) is the item's failure: with max_retries=0 it ends rate limited."""
    with OmniClient(ROOT, "tok", rate_limit=None, limiter=Limiter(None, clock=clock),
                    sleep=clock.sleep, transport=_answers([429]), max_retries=0) as c:
        outcome = c.create_draft_outcome("doc-1")
    assert isinstance(outcome.error, RateLimitError)
    assert outcome.attempts == 1


def test_async_a_near_miss_uses_up_no_retry(clock: FakeClock) -> None:
    """The async twin retries a near miss the same way."""

    async def main() -> CallOutcome:
        limiter = Limiter(LIMIT, clock=clock, margin=0.0)
        async with AsyncOmniClient(ROOT, "tok", rate_limit=LIMIT, limiter=limiter,
                                   sleep=clock.asleep, max_retries=0,
                                   transport=_answers([200, 200, 429, 429])) as c:
            for d in ("doc-1", "doc-2"):
                await c.create_draft_outcome(d)
            return await c.create_draft_outcome("doc-3")

    edge = asyncio.run(main())
    assert edge.ok, edge.error
    assert edge.attempts == 3


def test_over_sockets_a_server_whose_window_ends_a_little_later_loses_no_item(
    make_sandbox: MakeSandbox,
) -> None:
    """A server at 2 per 1.1 s, a client at 2 per 1 s (arrivals spaced 0.1 s closer than the
    sends, as a slow first connection does), max_retries=0: the refusals at each window's edge
    are the budget's timing error, and every item ends ok."""
    sb = make_sandbox(rate_limit=(2, 1.1), retry_after=None)
    docs = [f"doc-{i:04d}" for i in range(1, 6)]
    with OmniClient(sb.base_url, sb.token, rate_limit=RateLimit(2, 1.0),
                    limiter=Limiter(RateLimit(2, 1.0)), max_retries=0) as c:
        outcomes = [c.create_draft_outcome(d) for d in docs]
    assert [o.error for o in outcomes] == [None] * len(docs)
    assert any(r.status == 429 for r in sb.requests())  # the edge was met
