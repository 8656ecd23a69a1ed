"""First-send stamps and attempt intervals: what each attempt tells the rate budget (written to
the wire at, never sent) and what it leaves on the call's outcome (sent, answered), in both
twins over real sockets against the sandbox, and through a transport without trace support."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from omni_nb import AsyncOmniClient, OmniClient, sandbox
from omni_nb.client import CallOutcome, HostUnreachableError
from omni_nb.client._core import AttemptInterval, Deadline
from omni_nb.client.stamps import WireTrace, attempt_log_of
from omni_nb.ratelimit import Limiter

from ..conftest import FakeClock, MakeSandbox


class Wire:
    """What the clients told their rate budget: the wall-clock stamps of ``sent(at)`` and
    the number of ``unsent()`` (patched on the limiter's class, whatever object the client
    holds, so a test sees the calls themselves)."""

    def __init__(self) -> None:
        self.sent: list[float] = []
        self.unsent = 0
        self.lock = threading.Lock()
        self.on_sent: list[Any] = []


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    """Record every ``sent``/``unsent`` a client makes on its limiter."""
    seen = Wire()
    with OmniClient("http://127.0.0.1:9/api", "tok") as probe:
        # An injected Limiter, and whatever object a client holds of the key's limiter.
        kinds = {Limiter, type(probe.limiter)}

    def sent(self: object, at: float | None = None) -> None:
        with seen.lock:
            seen.sent.append(time.time() if at is None else at)
        for hook in seen.on_sent:
            hook()

    def unsent(self: object) -> None:
        with seen.lock:
            seen.unsent += 1

    for kind in kinds:
        monkeypatch.setattr(kind, "sent", sent)
        monkeypatch.setattr(kind, "unsent", unsent)
    return seen


def _closed_url() -> str:
    gone = sandbox.serve(rate_limit=None)
    gone.close()  # its port is free again: nothing listens there
    return gone.base_url


# -- stamps over real sockets ------------------------------------------------------------


def _check_pool_wait(outcomes: list[CallOutcome], sb: sandbox.Sandbox, wire: Wire,
                     claimed: float) -> None:
    """Two calls claimed together on a one-connection pool: the second's request is written
    only once the first has its answer, and each stamp lies between its claim and its answer
    (and before the server received it)."""
    assert all(o.ok for o in outcomes)
    first, second = sorted((o.attempt_log[0] for o in outcomes), key=lambda a: a.sent_at)
    assert claimed <= first.sent_at < first.answered_at
    # The pool wait: the second went after the first's answer, not at its claim.
    assert first.answered_at <= second.sent_at < second.answered_at
    assert second.sent_at - claimed >= 0.3  # the first call's latency
    received = sorted(r.received_at for r in sb.requests())
    assert first.sent_at <= received[0]
    assert second.sent_at <= received[1]
    # The budget heard of each write once, after the pool wait and before the answer.
    assert len(wire.sent) == 2
    stamps = sorted(wire.sent)
    assert first.sent_at <= stamps[0] < first.answered_at
    assert second.sent_at <= stamps[1] < second.answered_at


def test_sync_stamps_come_after_the_pool_wait_and_before_the_answer(
    make_sandbox: MakeSandbox, wire: Wire
) -> None:
    """Sync client, one connection, two threads: the second send is stamped when its headers
    are written, after the first's answer freed the connection (not when it was claimed)."""
    sb = make_sandbox(latency=0.3)
    with OmniClient(sb.base_url, sb.token, limiter=Limiter(None), max_connections=1) as c:
        claimed = time.time()
        results: list[CallOutcome] = []
        threads = [threading.Thread(target=lambda d=d: results.append(
            c.create_draft_outcome(d))) for d in ("doc-0001", "doc-0002")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    _check_pool_wait(results, sb, wire, claimed)


def test_async_stamps_come_after_the_pool_wait_and_before_the_answer(
    make_sandbox: MakeSandbox, wire: Wire
) -> None:
    """The async twin stamps the same moments (its trace callback is awaited by httpx)."""
    sb = make_sandbox(latency=0.3)

    async def main() -> tuple[list[CallOutcome], float]:
        async with AsyncOmniClient(sb.base_url, sb.token, limiter=Limiter(None),
                                   max_connections=1) as c:
            claimed = time.time()
            done = await asyncio.gather(c.create_draft_outcome("doc-0001"),
                                        c.create_draft_outcome("doc-0002"))
            return list(done), claimed

    outcomes, claimed = asyncio.run(main())
    _check_pool_wait(outcomes, sb, wire, claimed)


def test_a_connect_failure_gives_the_claim_back(wire: Wire) -> None:
    """Nothing listening: each attempt tells the budget its claim never left, none is
    stamped as sent, and no attempt is on the record (none could have acted)."""
    with OmniClient(_closed_url(), "tok", limiter=Limiter(None),
                    sleep=lambda _s: None) as c:
        outcome = c.create_draft_outcome("doc-0001")
    assert isinstance(outcome.error, HostUnreachableError)
    assert (wire.unsent, wire.sent, outcome.attempt_log) == (outcome.attempts, [], ())


def test_async_a_connect_failure_gives_the_claim_back(wire: Wire) -> None:
    """The async twin gives its claims back the same way."""

    async def main() -> CallOutcome:
        async with AsyncOmniClient(_closed_url(), "tok", limiter=Limiter(None)) as c:
            return await c.create_draft_outcome("doc-0001")

    outcome = asyncio.run(main())
    assert isinstance(outcome.error, HostUnreachableError)
    assert (wire.unsent, wire.sent, outcome.attempt_log) == (outcome.attempts, [], ())


# -- attempt intervals -------------------------------------------------------------------


def _check_503_then_200(outcome: CallOutcome, started: float) -> None:
    assert outcome.ok
    assert outcome.attempts == 2
    failed, done = outcome.attempt_log
    assert (failed.status, failed.answered, failed.reached_app) == (503, True, True)
    assert (done.status, done.answered, done.reached_app) == (200, True, True)
    assert started <= failed.sent_at <= failed.answered_at <= done.sent_at <= done.answered_at


def test_a_503_then_200_call_keeps_both_intervals(sb: sandbox.Sandbox, clock: FakeClock,
                                                  wire: Wire) -> None:
    """Each answered attempt is on the outcome, in order: (sent, answered, status)."""
    sb.enqueue(503, {"error": "x", "message": "busy"})
    started = time.time()
    with OmniClient(sb.base_url, sb.token, limiter=Limiter(None, clock=clock),
                    sleep=clock.sleep) as c:
        outcome = c.create_draft_outcome("doc-0001")
    _check_503_then_200(outcome, started)
    assert len(wire.sent) == 2


def test_async_a_503_then_200_call_keeps_both_intervals(sb: sandbox.Sandbox,
                                                        clock: FakeClock) -> None:
    """The async twin keeps the same log."""
    sb.enqueue(503, {"error": "x", "message": "busy"})

    async def main() -> CallOutcome:
        async with AsyncOmniClient(sb.base_url, sb.token, limiter=Limiter(None, clock=clock),
                                   sleep=clock.asleep) as c:
            return await c.create_draft_outcome("doc-0001")

    started = time.time()
    _check_503_then_200(asyncio.run(main()), started)


def test_a_firewall_429_is_flagged_as_never_reaching_the_application(
    sb: sandbox.Sandbox, clock: FakeClock
) -> None:
    """A 429 with X-Omni-Waf-Action: block stays in the log, flagged reached_app=False; one
    without the header may have come from the application and is not flagged."""
    sb.enqueue(429, {"error": "x", "message": "slow"}, headers={"X-Omni-Waf-Action": "block"})
    sb.enqueue(429, {"error": "x", "message": "slow"})
    with OmniClient(sb.base_url, sb.token, limiter=Limiter(None, clock=clock),
                    sleep=clock.sleep) as c:
        outcome = c.create_draft_outcome("doc-0001")
    assert outcome.ok
    assert [(a.status, a.reached_app) for a in outcome.attempt_log] == [
        (429, False), (429, True), (200, True)]


def test_an_attempt_never_answered_lasts_until_its_deadline(make_sandbox: MakeSandbox) -> None:
    """A stalled answer: the attempt is on the record as unanswered, up to its deadline (the
    moment after which it cannot have done anything more)."""
    sb = make_sandbox(slow_rate=1.0, slow_seconds=3.0)
    with OmniClient(sb.base_url, sb.token, limiter=Limiter(None), timeout=0.5,
                    max_retries=0) as c:
        started = time.time()
        outcome = c.create_draft_outcome("doc-0001")
    (stalled,) = outcome.attempt_log
    assert (stalled.answered, stalled.status, stalled.reached_app) == (False, None, True)
    assert started + 0.5 <= stalled.answered_at <= started + 0.5 + 5.0  # a busy machine
    assert stalled.sent_at < stalled.answered_at


def test_a_cancelled_call_leaves_its_attempt_on_the_exception(make_sandbox: MakeSandbox,
                                                              wire: Wire) -> None:
    """A task cancelled while its request is at the server raises CancelledError as ever,
    carrying the attempt in flight (unanswered, until its deadline)."""
    sb = make_sandbox(latency=5.0)

    async def main() -> BaseException:
        async with AsyncOmniClient(sb.base_url, sb.token, limiter=Limiter(None),
                                   timeout=20) as c:
            written = asyncio.Event()
            wire.on_sent.append(written.set)
            task = asyncio.create_task(c.create_draft_outcome("doc-0001"))
            await asyncio.wait_for(written.wait(), 30)  # a failure, not a hang, if never
            task.cancel()
            try:
                await task
            except asyncio.CancelledError as exc:
                return exc
        raise AssertionError("the call was not cancelled")

    started = time.time()
    stop = asyncio.run(main())
    (flying,) = attempt_log_of(stop)
    assert (flying.answered, flying.status) == (False, None)
    assert started <= flying.sent_at
    assert flying.answered_at >= started + 20


class _WrittenThenInterrupted(httpx.BaseTransport):
    """Reports the request headers as being written, then the user presses Ctrl-C."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["trace"]("http11.send_request_headers.started", {})
        raise KeyboardInterrupt


def test_an_interrupted_call_leaves_its_attempt_on_the_exception() -> None:
    """KeyboardInterrupt mid-request: raised as ever, carrying the attempt in flight."""
    with OmniClient("https://acme.omniapp.co/api", "tok", limiter=Limiter(None),
                    transport=_WrittenThenInterrupted()) as c, \
            pytest.raises(KeyboardInterrupt) as info:
        c.create_draft_outcome("doc-0001")
    (flying,) = attempt_log_of(info.value)
    assert (flying.answered, flying.reached_app) == (False, True)


# -- the trace itself --------------------------------------------------------------------


class _Budget:
    """A rate budget that only notes what an attempt tells it."""

    def __init__(self) -> None:
        self.stamps: list[float | None] = []
        self.unsent_calls = 0
        self.observed: list[int | None] = []

    def sent(self, at: float | None = None) -> None:
        self.stamps.append(at)

    def unsent(self) -> None:
        self.unsent_calls += 1

    def observe(self, round_trip_s: float, status: int | None = None) -> None:
        assert round_trip_s >= 0
        self.observed.append(status)


class _Request:
    def __init__(self, method: bytes) -> None:
        self.method = method


def _log() -> list[AttemptInterval]:
    return []


def _trace(budget: _Budget, log: list[AttemptInterval], traced: bool = False,
           at: list[float] | None = None) -> WireTrace:
    clock = at or [100.0]
    return WireTrace(budget, Deadline(30.0), log, traced=traced, clock=lambda: clock[0])


def test_a_proxy_tunnel_is_not_taken_for_the_request() -> None:
    """Through an HTTPS proxy the CONNECT shares the request's trace: only the request's own
    headers are stamped, and the budget hears of one write."""
    budget, log, now = _Budget(), _log(), [100.0]
    with _trace(budget, log, at=now) as wire:
        tunnel = {"request": _Request(b"CONNECT")}
        wire.event("http11.send_request_headers.started", tunnel)
        wire.event("http11.send_request_headers.complete", tunnel)
        now[0] = 100.5
        mine = {"request": _Request(b"POST")}
        wire.event("http11.send_request_headers.started", mine)
        wire.event("http11.send_request_headers.complete", mine)
        now[0] = 101.0
        wire.event("http11.receive_response_headers.complete", mine)
        wire.answered(200, httpx.Headers())
    assert budget.stamps == [100.5]
    assert (log[0].sent_at, log[0].answered_at) == (100.5, 101.0)


def test_http2_writes_are_stamped_too() -> None:
    """The HTTP/2 events stamp the same moments as HTTP/1.1's."""
    budget, log, now = _Budget(), _log(), [7.0]
    with _trace(budget, log, at=now) as wire:
        wire.event("http2.send_request_headers.started", {})
        now[0] = 7.25
        wire.event("http2.send_request_headers.complete", {})
        wire.answered(201, httpx.Headers())
    assert budget.stamps == [7.25]
    assert (log[0].sent_at, log[0].status, budget.observed) == (7.0, 201, [201])


def test_without_trace_events_the_attempt_counts_from_just_before_the_send() -> None:
    """A transport that reports no trace (MockTransport): nothing is stamped (the budget
    keeps its claim time) and the interval runs from just before the send to the answer."""
    budget, log, now = _Budget(), _log(), [50.0]
    with _trace(budget, log, at=now) as wire:
        now[0] = 50.75
        wire.answered(429, httpx.Headers({"X-Omni-Waf-Action": "Block"}))
    assert budget.stamps == []
    assert budget.unsent_calls == 0
    assert log == [AttemptInterval(50.0, 50.75, 429, reached_app=False, answered=True)]


@pytest.mark.parametrize(
    ("error", "traced", "kept"),
    [
        (httpx.ConnectError("refused"), False, False),  # raised before any write
        (httpx.PoolTimeout("no connection"), False, False),
        (httpx.ReadTimeout("stalled"), False, True),  # no trace: it may have been written
        (TimeoutError(), True, False),  # a tracing transport never began to write it
        (KeyboardInterrupt(), True, False),
    ],
)
def test_an_attempt_that_never_left_gives_its_claim_back(
    error: BaseException, traced: bool, kept: bool
) -> None:
    """Ending without its headers written: the claim goes back to the budget when it surely
    never left; when the transport cannot say, the attempt is kept as possibly sent."""
    budget, log = _Budget(), _log()
    with pytest.raises(type(error)), _trace(budget, log, traced=traced):
        raise error
    assert (budget.unsent_calls, len(log)) == ((0, 1) if kept else (1, 0))
    if kept:
        assert (log[0].answered, log[0].status) == (False, None)


def test_an_attempt_whose_headers_were_begun_is_kept_as_possibly_sent() -> None:
    """Dropped after the headers began: the claim stays, the attempt is on the record until
    its deadline."""
    budget, log = _Budget(), _log()

    def dropped(wire: WireTrace) -> None:
        wire.event("http11.send_request_headers.started", {})
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with pytest.raises(httpx.RemoteProtocolError), _trace(budget, log, traced=True) as wire:
        dropped(wire)
    assert budget.unsent_calls == 0
    assert log[0].answered is False
    assert log[0].answered_at > log[0].sent_at


def test_the_async_callback_is_awaitable() -> None:
    """httpx awaits the async client's trace callback: it stamps as the sync one does."""
    budget, log = _Budget(), _log()
    with _trace(budget, log) as wire:
        asyncio.run(wire.aevent("http11.send_request_headers.complete", {}))
    assert budget.stamps == [100.0]
