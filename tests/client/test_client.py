"""OmniClient / AsyncOmniClient over real sockets against the sandbox."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from omni_nb import (
    APIConnectionError,
    APITimeoutError,
    AsyncOmniClient,
    AuthenticationError,
    InvalidInputError,
    NotEligibleError,
    NotFoundError,
    OmniClient,
    PermissionDeniedError,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnexpectedResponseError,
    __version__,
    sandbox,
)
from omni_nb.client import HostUnreachableError
from omni_nb.client.parse import parse_error_body, parse_retry_after
from omni_nb.ratelimit import Limiter

from ..conftest import FakeClock, MakeSandbox


def client_for(sb: sandbox.Sandbox, clock: FakeClock, **kwargs: object) -> OmniClient:
    """A client whose waits run on the fake clock (no real sleeping)."""
    kwargs.setdefault("limiter", Limiter(None, clock=clock))
    kwargs.setdefault("sleep", clock.sleep)
    return OmniClient(sb.base_url, sb.token, **kwargs)  # type: ignore[arg-type]


def test_creates_then_returns_the_same_draft(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """First call creates, a repeat returns the same identifier; headers are right."""
    with client_for(sb, clock) as c:
        first = c.create_draft("doc-0001")
        again = c.create_draft("doc-0001")
    assert first.identifier == again.identifier == sb.drafts()[("doc-0001", None)]
    assert (first.document_id, first.branch_id, first.attempts) == ("doc-0001", None, 1)
    rec = sb.requests()[0]
    assert rec.method == "POST"
    assert rec.path == "/api/v1/documents/doc-0001/draft"
    assert rec.user_agent == f"omni-nb/{__version__}"
    assert rec.role == "editor"
    assert rec.body == b"{}"


def test_branch_draft_is_separate_and_canonical(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """A branch gets its own draft; the UUID is sent lower-case in branchId."""
    branch = sb.branches[0].id
    with client_for(sb, clock) as c:
        plain = c.create_draft("doc-0002")
        on_branch = c.create_draft("doc-0002", branch.upper())
    assert on_branch.branch_id == branch
    assert on_branch.identifier != plain.identifier
    assert sb.requests()[1].branch_id == branch


@pytest.mark.parametrize(
    ("call", "error", "status", "message"),
    [
        (("doc-0010", None), NotEligibleError, 400,
         "Document is not eligible for publishing workflow"),
        (("nope", None), NotFoundError, 404, "Document with identifier nope not found"),
        (("doc-0001", str(uuid.UUID(int=7))), NotFoundError, 404, "not found"),
    ],
)
def test_documented_errors_map_to_classes(
    sb: sandbox.Sandbox, clock: FakeClock, call: tuple[str, str | None],
    error: type[Exception], status: int, message: str,
) -> None:
    """400 not eligible, 404 document and 404 branch raise their class with the server's
    words, and are not retried."""
    with client_for(sb, clock) as c, pytest.raises(error) as info:
        c.create_draft(*call)
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert message in info.value.message  # type: ignore[attr-defined]
    assert len(sb.requests()) == 1


def test_invalid_token_is_authentication_not_permission(sb: sandbox.Sandbox,
                                                        clock: FakeClock) -> None:
    """Omni's 403 'Invalid bearer token' is an AuthenticationError, sent once."""
    with OmniClient(sb.base_url, "omni_osk_not_a_real_token", limiter=Limiter(None, clock=clock),
                    sleep=clock.sleep) as c, pytest.raises(AuthenticationError) as info:
        c.create_draft("doc-0001")
    assert info.value.status_code == 403
    assert info.value.message == "Invalid bearer token"
    assert len(sb.requests()) == 1


def test_viewer_gets_permission_denied(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """A valid token without the EDITOR role raises PermissionDeniedError."""
    with OmniClient(sb.base_url, sb.viewer_token, limiter=Limiter(None, clock=clock),
                    sleep=clock.sleep) as c, pytest.raises(PermissionDeniedError) as info:
        c.create_draft("doc-0001")
    assert "EDITOR role required" in info.value.message


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (401, {"error": "Unauthorized", "message": "Missing API key"}, AuthenticationError,
         "Missing API key"),
        (403, {"error": {"code": 403, "message": "Invalid bearer token"}}, AuthenticationError,
         "Invalid bearer token"),
        (404, {"detail": "Document not found", "status": 404}, NotFoundError,
         "Document not found"),
        (400, {"error": "Bad Request"}, NotEligibleError, "Bad Request"),
        (403, "<html><title>403 Forbidden</title></html>", PermissionDeniedError,
         "403 Forbidden"),
        (404, "", NotFoundError, "Not Found"),
        (418, {"message": "teapot"}, UnexpectedResponseError, "teapot"),
    ],
)
def test_every_error_body_shape_is_parsed(
    sb: sandbox.Sandbox, clock: FakeClock, status: int, body: object,
    error: type[Exception], message: str,
) -> None:
    """The documented shape, the nested shape, the detail shape, HTML and empty bodies all
    give the server's words."""
    sb.enqueue(status, body)  # type: ignore[arg-type]
    with client_for(sb, clock) as c, pytest.raises(error) as info:
        c.create_draft("doc-0001")
    assert message in info.value.message  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [({"id": "x"}, "no draft 'identifier'"), ({"identifier": ""}, "no draft 'identifier'"),
     ("not json", "not JSON"), ("[1, 2]", "no draft 'identifier'")],
)
def test_200_without_identifier_is_a_typed_error(
    sb: sandbox.Sandbox, clock: FakeClock, body: object, fragment: str
) -> None:
    """A 200 lacking an identifier is UnexpectedResponseError, never a KeyError."""
    sb.enqueue(200, body)  # type: ignore[arg-type]
    with client_for(sb, clock) as c, pytest.raises(UnexpectedResponseError) as info:
        c.create_draft("doc-0001")
    assert fragment in str(info.value)


def test_429_with_retry_after_seconds_is_honoured(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """Retry-After: 7 makes the client wait 7 s, then the retry succeeds."""
    sb.enqueue(429, {"error": "Too Many Requests", "message": "slow"},
               headers={"Retry-After": "7", "X-Omni-Waf-Action": "block"})
    with client_for(sb, clock) as c:
        draft = c.create_draft("doc-0001")
    assert draft.attempts == 2
    assert sum(clock.sleeps) == pytest.approx(7.0, abs=0.01)


def test_429_with_retry_after_http_date_is_honoured(sb: sandbox.Sandbox,
                                                    clock: FakeClock) -> None:
    """An HTTP-date Retry-After 30 s ahead makes the client wait about 30 s."""
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    sb.enqueue(429, {"error": "Too Many Requests", "message": "slow"},
               headers={"Retry-After": when})
    with client_for(sb, clock) as c:
        assert c.create_draft("doc-0001").attempts == 2
    assert 27.0 <= sum(clock.sleeps) <= 31.0


def test_429_without_retry_after_backs_off_exponentially(sb: sandbox.Sandbox,
                                                         clock: FakeClock) -> None:
    """No Retry-After: jittered waits within [b*2^n/2, b*2^n] for each retry."""
    sb.enqueue(429, {"error": "Too Many Requests", "message": "slow"}, times=3)
    with client_for(sb, clock, retry=RetryPolicy(backoff=1.0)) as c:
        assert c.create_draft("doc-0001").attempts == 4
    assert len(clock.sleeps) == 3
    for n, wait in enumerate(clock.sleeps):
        assert 2**n / 2 <= wait <= 2**n


def test_retries_stop_at_the_bound(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """With max_retries=2 a lasting 429 is sent 3 times, then RateLimitError with the hint."""
    sb.enqueue(429, {"error": "Too Many Requests", "message": "slow"},
               headers={"Retry-After": "1"}, times=10)
    with client_for(sb, clock, max_retries=2) as c, pytest.raises(RateLimitError) as info:
        c.create_draft("doc-0001")
    assert info.value.retry_after == 1.0
    assert info.value.attempts == 3
    assert len(sb.requests()) == 3


def test_total_wait_is_bounded(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """A Retry-After beyond max_wait is not waited out: the error comes back at once."""
    sb.enqueue(429, {"error": "x", "message": "later"}, headers={"Retry-After": "100"})
    with client_for(sb, clock, retry=RetryPolicy(max_wait=50)) as c, \
            pytest.raises(RateLimitError):
        c.create_draft("doc-0001")
    assert clock.sleeps == []
    assert len(sb.requests()) == 1


def test_time_queued_for_the_budget_does_not_use_up_max_wait(
    sb: sandbox.Sandbox, clock: FakeClock
) -> None:
    """max_wait bounds the waits a call's failures cause, not its turn in the rate budget:
    a call held 100 s for a free slot still retries the 429 it then gets (max_wait=50)."""
    limiter = Limiter(RateLimit(1, 100.0), clock=clock)
    retry = RetryPolicy(max_wait=50, backoff=1.0, backoff_cap=1.0)
    with client_for(sb, clock, limiter=limiter, retry=retry) as c:
        c.create_draft("doc-0001")  # takes the window's one slot
        sb.enqueue(429, {"error": "Too Many Requests", "message": "slow"})
        draft = c.create_draft("doc-0002")  # queued ~100 s, then a 429, then its answer
    assert draft.attempts == 2
    assert sum(clock.sleeps) >= 100


def test_async_time_queued_does_not_use_up_max_wait(
    sb: sandbox.Sandbox, clock: FakeClock
) -> None:
    """The async twin too: 100 s held for a slot, then a 429, and the call still retries."""
    limiter = Limiter(RateLimit(1, 100.0), clock=clock)
    retry = RetryPolicy(max_wait=50, backoff=1.0, backoff_cap=1.0)

    async def main() -> int:
        async with AsyncOmniClient(sb.base_url, sb.token, limiter=limiter, retry=retry,
                                   sleep=clock.asleep) as c:
            await c.create_draft("doc-0001")
            sb.enqueue(429, {"error": "Too Many Requests", "message": "slow"})
            return (await c.create_draft("doc-0002")).attempts

    assert asyncio.run(main()) == 2
    assert sum(clock.sleeps) >= 100


def test_retry_after_waits_add_up_to_max_wait(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """Retry-After waits count against max_wait: 20 s + 20 s fit in 50 s, a third does not."""
    sb.enqueue(429, {"error": "x", "message": "later"}, headers={"Retry-After": "20"}, times=5)
    with client_for(sb, clock, retry=RetryPolicy(max_wait=50)) as c, \
            pytest.raises(RateLimitError) as info:
        c.create_draft("doc-0001")
    assert info.value.attempts == 3
    assert len(sb.requests()) == 3


def test_absurd_retry_after_falls_back_to_backoff(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """Retry-After of a day is not sane: the capped backoff is used instead."""
    sb.enqueue(429, {"error": "x", "message": "later"}, headers={"Retry-After": "86400"})
    with client_for(sb, clock) as c:
        c.create_draft("doc-0001")
    assert sum(clock.sleeps) <= RetryPolicy().backoff


def test_5xx_is_retried_then_raised(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """Injected 5xx (HTML 502 included) are retried max_retries times, then ServerError."""
    sb.configure(fail_rate=1.0)
    with client_for(sb, clock, max_retries=3) as c, pytest.raises(ServerError) as info:
        c.create_draft("doc-0001")
    assert info.value.attempts == 4
    assert 500 <= info.value.status_code <= 504
    assert len(sb.requests()) == 4


def test_transient_5xx_then_success(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """One 503 then success: the draft comes back with attempts=2."""
    sb.enqueue(503, {"error": "Service Unavailable", "message": "try again"})
    with client_for(sb, clock) as c:
        assert c.create_draft("doc-0001").attempts == 2


def test_timeout_is_retried_then_typed(make_sandbox: MakeSandbox, clock: FakeClock) -> None:
    """A server slower than the timeout gives APITimeoutError after the retries."""
    slow = make_sandbox(slow_rate=1.0, slow_seconds=1.0)
    with OmniClient(
        slow.base_url, slow.token, timeout=0.2, max_retries=1,
        limiter=Limiter(None, clock=clock), sleep=clock.sleep,
    ) as c, pytest.raises(APITimeoutError) as info:
        c.create_draft("doc-0001")
    assert info.value.attempts == 2


def test_dropped_connection_is_a_connection_error(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """A connection closed without an answer is retried, then APIConnectionError."""
    sb.configure(drop_rate=1.0)
    with client_for(sb, clock, max_retries=2) as c, pytest.raises(APIConnectionError) as info:
        c.create_draft("doc-0001")
    assert not isinstance(info.value, APITimeoutError)
    assert info.value.attempts == 3


def test_refused_connection(make_sandbox: MakeSandbox, clock: FakeClock) -> None:
    """Nothing listening: APIConnectionError naming the origin."""
    gone = make_sandbox()
    gone.close()  # its port is free again: nothing listens there
    url, token = gone.base_url, gone.token
    with OmniClient(url, token, max_retries=1, limiter=Limiter(None, clock=clock),
                    sleep=clock.sleep) as c, pytest.raises(APIConnectionError) as info:
        c.create_draft("doc-0001")
    assert url.rsplit("/api", 1)[0] in str(info.value)


def test_cross_origin_redirect_never_gets_the_token(sb: sandbox.Sandbox,
                                                    make_sandbox: MakeSandbox,
                                                    clock: FakeClock) -> None:
    """A 307 to another origin is not followed: the other server sees nothing."""
    other = make_sandbox()
    sb.enqueue(307, headers={"Location": f"{other.base_url}/v1/documents/doc-0001/draft"})
    with client_for(sb, clock) as c, pytest.raises(UnexpectedResponseError) as info:
        c.create_draft("doc-0001")
    assert other.wait_idle()
    assert other.requests() == []
    assert "not followed" in str(info.value)
    assert other.url in str(info.value)


def test_same_origin_redirect_is_not_followed_either(sb: sandbox.Sandbox,
                                                     clock: FakeClock) -> None:
    """Omni's API does not redirect; any redirect is reported, not followed."""
    sb.enqueue(308, headers={"Location": "/api/v1/documents/doc-0002/draft"})
    with client_for(sb, clock) as c, pytest.raises(UnexpectedResponseError):
        c.create_draft("doc-0001")
    assert len(sb.requests()) == 1


BAD_DOCUMENTS = ["", "   ", "../x", "a/b", "a?b=c", "a#b", "%2F", "..", ".", "dоc",  # Cyrillic о
                 "a\x00b", "a\nb", "x" * 257, "a b", 42, None, b"doc", ["doc"]]
BAD_BRANCHES = ["main", "7c9e6679742540de944be07fc1f90ae7x",
                "{7c9e6679-7425-40de-944b-e07fc1f90ae7}", "7c9e6679-7425-40de-944b-e07fc1f90ae",
                7, ""]


@pytest.mark.parametrize("doc", BAD_DOCUMENTS)
def test_invalid_document_ids_send_nothing(sb: sandbox.Sandbox, clock: FakeClock,
                                           doc: object) -> None:
    """Path tricks, control characters, look-alikes, absurd lengths and wrong types raise
    InvalidInputError (a ValueError) naming the id, and nothing reaches the server."""
    with client_for(sb, clock) as c, pytest.raises(InvalidInputError) as info:
        c.create_draft(doc)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert "document id" in str(info.value)
    assert sb.requests() == []


@pytest.mark.parametrize("branch", BAD_BRANCHES)
def test_invalid_branch_ids_send_nothing(sb: sandbox.Sandbox, clock: FakeClock,
                                         branch: object) -> None:
    """A branch that is not a UUID raises InvalidInputError and nothing is sent."""
    with client_for(sb, clock) as c, pytest.raises(InvalidInputError, match="branch id"):
        c.create_draft("doc-0001", branch)  # type: ignore[arg-type]
    assert sb.requests() == []


def test_allowed_punctuation_stays_one_path_segment(sb: sandbox.Sandbox,
                                                    clock: FakeClock) -> None:
    """Ids with - . _ ~ are sent as exactly one segment."""
    with client_for(sb, clock) as c, pytest.raises(NotFoundError):
        c.create_draft("a.b~c_d-e")
    assert sb.requests()[0].path == "/api/v1/documents/a.b~c_d-e/draft"


def test_client_side_limit_keeps_the_server_happy(make_sandbox: MakeSandbox) -> None:
    """Four threads sharing one client at 5/s against a 5/s server: no 429 at all, and no
    trailing second at the server holds more than 5 requests."""
    sb = make_sandbox(rate_limit=(5, 1.0))
    with OmniClient(sb.base_url, sb.token, rate_limit=RateLimit(5, 1.0)) as c:
        docs = [f"doc-{i:04d}" for i in range(1, 13) if i % 10]

        def run(part: list[str]) -> None:
            for d in part:
                c.create_draft(d)

        threads = [threading.Thread(target=run, args=(docs[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        recs = sb.requests()
    assert [r.status for r in recs].count(429) == 0
    times = sorted(r.received_at for r in recs)
    assert all(times[i + 5] - times[i] >= 1.0 for i in range(len(times) - 5))


def test_probes_that_learn_a_tighter_server_use_up_no_retry(make_sandbox: MakeSandbox) -> None:
    """No limit of ours, a server at 3 per second, max_retries=1: the limiter probes the
    block one send at a time (several 429s to one item), and still every document is
    drafted: its experiments are not the item's retries. The server's bound holds after it."""
    sb = make_sandbox(rate_limit=(3, 1.0), retry_after=None)
    docs = [f"doc-{i:04d}" for i in range(1, 14) if i % 10]
    with OmniClient(sb.base_url, sb.token, rate_limit=None, max_retries=1) as c:
        drafts = [c.create_draft(d) for d in docs[:3]]  # a full window, then a block
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            drafts += list(pool.map(c.create_draft, docs[3:]))
        assert c.limiter.learned_limit is not None
    assert sorted(d.document_id for d in drafts) == sorted(docs)
    recs = sb.requests()
    assert sum(r.status == 429 for r in recs) >= 2  # it did learn from refusals
    accepted = sorted(r.received_at for r in recs if r.status != 429)
    assert all(accepted[i + 3] - accepted[i] >= 1.0 for i in range(len(accepted) - 3))


def test_a_429_pauses_every_client_sharing_the_token(sb: sandbox.Sandbox,
                                                     clock: FakeClock) -> None:
    """After one client's 429, another client with the same root and token is paused too
    (and a client with another token is not)."""
    other_token = sb.add_token("editor")
    with OmniClient(sb.base_url, sb.token) as bystander, \
            OmniClient(sb.base_url, other_token) as stranger:
        sb.enqueue(429, {"error": "x", "message": "slow"}, headers={"Retry-After": "5"})
        with client_for(sb, clock) as c:
            c.create_draft("doc-0001")
        assert bystander.limiter.paused_until > time.monotonic() + 3
        assert stranger.limiter.paused_until == float("-inf")


def test_async_twin_behaves_the_same(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """AsyncOmniClient: success, a retried 429 and a typed 404, concurrently."""
    sb.enqueue(429, {"error": "x", "message": "slow"}, headers={"Retry-After": "3"})

    async def main() -> list[object]:
        async with AsyncOmniClient(sb.base_url, sb.token, limiter=Limiter(None, clock=clock),
                                   sleep=clock.asleep) as c:
            return await asyncio.gather(
                c.create_draft("doc-0001"), c.create_draft("nope"), c.create_draft("doc-0003"),
                return_exceptions=True,
            )

    first, missing, third = asyncio.run(main())
    assert isinstance(missing, NotFoundError)
    docs = {first.document_id, third.document_id}  # type: ignore[union-attr]
    assert docs == {"doc-0001", "doc-0003"}
    assert sum(clock.sleeps) == pytest.approx(3.0, abs=0.01)


def test_reprs_hide_the_token(sb: sandbox.Sandbox) -> None:
    """Client reprs and error texts never include the token."""
    with OmniClient(sb.base_url, sb.token) as c:
        assert sb.token not in repr(c)
        with pytest.raises(NotFoundError) as info:
            c.create_draft("nope")
    exc = info.value
    assert sb.token not in repr(exc) + str(exc) + repr(exc.body)


def test_on_result_hook_sees_every_call(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """The on_result hook gets an outcome for successes and failures alike."""
    seen = []
    with client_for(sb, clock, on_result=seen.append) as c:
        c.create_draft("doc-0001")
        with pytest.raises(NotFoundError):
            c.create_draft("nope")
    assert [(o.document_id, o.ok, o.http_status) for o in seen] == [
        ("doc-0001", True, 200), ("nope", False, 404)]


def test_mock_transport_classifies_without_a_server() -> None:
    """Pure classification through httpx.MockTransport: a 403 with the nested shape."""
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer omni_osk_x"
        return httpx.Response(403, json={"error": {"code": 403, "message": "Invalid bearer token"}})

    with OmniClient("https://acme.omniapp.co", "omni_osk_x",
                    transport=httpx.MockTransport(handler)) as c, \
            pytest.raises(AuthenticationError):
        c.create_draft("doc-0001")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("2.5", 2.5), ("-1", None), ("nan", None), ("", None), (None, None),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0), ("garbage", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Delta-seconds and HTTP-date forms parse; negatives and garbage are ignored."""
    assert parse_retry_after(value, now=lambda: 1445412470.0) == expected


def test_parse_error_body_cuts_long_messages() -> None:
    """A huge error message is cut to one bounded line."""
    message, _ = parse_error_body(b'{"message": "' + b"x\\n" * 5000 + b'"}', "")
    assert len(message) <= 500
    assert "\n" not in message


# -- deadlines and dead hosts (issue 11, items 3 and 4), over real sockets ----------------

TRICKLE_INTERVAL = 0.5
TRICKLE_BYTES = 80  # 40 s of body at most: the server stops by itself


class _Trickle(socketserver.BaseRequestHandler):
    """Answers headers at once (Content-Length: 1000), then one byte every 0.5 s."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5.0)
        seen = b""
        try:
            while b"\r\n\r\n" not in seen:
                data = sock.recv(4096)
                if not data:
                    return
                seen += data
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n")
            for _ in range(TRICKLE_BYTES):
                sock.sendall(b" ")
                time.sleep(TRICKLE_INTERVAL)
        except OSError:
            return  # the client gave up: good


class _TrickleServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


@pytest.fixture
def trickle() -> Iterator[str]:
    """The base URL of a server that trickles its body (a byte every 0.5 s)."""
    server = _TrickleServer(("127.0.0.1", 0), _Trickle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


QUICK = RetryPolicy(max_retries=1, backoff=0.01, backoff_cap=0.01)


def test_trickled_body_ends_at_the_attempt_deadline(trickle: str) -> None:
    """Headers at once, then a byte every 0.5 s: each read is quick, but the attempt ends
    at its deadline, and the call within (max_retries + 1) x timeout + the waits."""
    timeout = 1.5
    started = time.perf_counter()
    with OmniClient(trickle, "tok", timeout=timeout, retry=QUICK,
                    limiter=Limiter(None)) as c, pytest.raises(APITimeoutError) as info:
        c.create_draft("doc-0001")
    took = time.perf_counter() - started
    assert info.value.attempts == 2
    assert "within 1.5 s" in str(info.value)
    # Without the deadline one attempt would take 40 s (the whole trickle).
    assert 2 * timeout <= took < 2 * (timeout + TRICKLE_INTERVAL) + 3.0, took


def test_trickled_body_async_twin(trickle: str) -> None:
    """The async twin puts each attempt under the same deadline."""
    timeout = 1.5

    async def main() -> float:
        started = time.perf_counter()
        async with AsyncOmniClient(trickle, "tok", timeout=timeout, retry=QUICK,
                                   limiter=Limiter(None)) as c:
            with pytest.raises(APITimeoutError) as info:
                await c.create_draft("doc-0001")
        assert info.value.attempts == 2
        return time.perf_counter() - started

    took = asyncio.run(main())
    assert 2 * timeout <= took < 2 * timeout + 3.0, took


def test_slow_headers_time_out_within_the_deadline(make_sandbox: MakeSandbox) -> None:
    """A server that holds its answer past the timeout: one attempt, one timeout."""
    slow = make_sandbox(slow_rate=1.0, slow_seconds=5.0)
    started = time.perf_counter()
    with OmniClient(slow.base_url, slow.token, timeout=0.5, max_retries=0,
                    limiter=Limiter(None)) as c, pytest.raises(APITimeoutError):
        c.create_draft("doc-0001")
    assert time.perf_counter() - started < 0.5 + 2.5


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dead_hosts(make_sandbox: MakeSandbox) -> dict[str, str]:
    plain = make_sandbox()  # speaks plain HTTP: a TLS handshake with it fails
    return {
        "closed port": f"http://127.0.0.1:{_closed_port()}/api",
        "https to a plain-http port": plain.base_url.replace("http://", "https://"),
        "no such name": "https://omni-nb-test.invalid/api",
    }


@pytest.mark.parametrize("which", ["closed port", "https to a plain-http port", "no such name"])
def test_a_dead_host_fails_fast(make_sandbox: MakeSandbox, which: str) -> None:
    """Refused, a TLS handshake that fails, a name that does not resolve: HostUnreachableError
    after connect_retries (2) short retries, in about a second, not 7 attempts in 25 s."""
    url = _dead_hosts(make_sandbox)[which]
    started = time.perf_counter()
    with OmniClient(url, "tok", timeout=5, limiter=Limiter(None)) as c, \
            pytest.raises(HostUnreachableError) as info:
        c.create_draft("doc-0001")
    took = time.perf_counter() - started
    assert info.value.attempts == 3
    assert isinstance(info.value, APIConnectionError)
    assert not isinstance(info.value, APITimeoutError)
    assert 0.25 + 0.5 <= took < 0.75 + 4.0, took  # the waits, and 3 quick failures


def test_a_dead_host_fails_fast_async(make_sandbox: MakeSandbox) -> None:
    """The async twin classifies and schedules the same way."""
    urls = _dead_hosts(make_sandbox)

    async def main(url: str) -> HostUnreachableError:
        async with AsyncOmniClient(url, "tok", timeout=5, limiter=Limiter(None)) as c:
            with pytest.raises(HostUnreachableError) as info:
                await c.create_draft("doc-0001")
        return info.value

    for url in urls.values():
        started = time.perf_counter()
        assert asyncio.run(main(url)).attempts == 3
        assert time.perf_counter() - started < 0.75 + 4.0


def test_connect_failures_keep_their_schedule_after_other_errors() -> None:
    """The short schedule counts connect failures, not attempts; a timeout after connecting
    keeps the normal backoff; connect_retries=0 gives up at once."""
    with OmniClient("http://127.0.0.1:9/api", "tok", limiter=Limiter(None)) as c:
        core = c._core
    dead = HostUnreachableError("refused")
    assert core.next_wait(dead, 4, 0.0, 1) == 0.25
    assert core.next_wait(dead, 5, 0.0, 2) == 0.5
    assert core.next_wait(dead, 6, 0.0, 3) is None
    wait = core.next_wait(APITimeoutError("no answer"), 3, 0.0, 0)
    assert wait is not None
    assert wait >= 0.5 * 4 * 0.5  # backoff * 2**2, jitter at least halves it
    with OmniClient("http://127.0.0.1:9/api", "tok", limiter=Limiter(None),
                    retry=RetryPolicy(connect_retries=0)) as c:
        assert c._core.next_wait(dead, 1, 0.0, 1) is None
    with pytest.raises(ValueError, match="connect_retries"):
        RetryPolicy(connect_retries=-1)


def _failing_connect(cause: OSError) -> httpx.MockTransport:
    """A transport whose every connect fails as httpx reports it: a ConnectError raised from
    the operating system's error."""

    def connect(request: httpx.Request) -> httpx.Response:
        try:
            raise cause
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    return httpx.MockTransport(connect)


def test_a_misspelt_instance_is_named_with_what_to_check() -> None:
    """A name that does not resolve: the message says the host was not found, names the
    instance and says to check its name, then keeps the resolver's words."""
    dns = socket.gaierror(-2, "Name or service not known")
    with OmniClient("https://acme-typo.omniapp.co/api", "tok", limiter=Limiter(None),
                    transport=_failing_connect(dns), sleep=lambda _s: None) as c, \
            pytest.raises(HostUnreachableError) as info:
        c.create_draft("doc-0001")
    message = str(info.value)
    assert message.startswith("host acme-typo.omniapp.co not found: check the instance name "
                              "'acme-typo'")
    assert "Name or service not known" in message
    assert "ConnectError" not in message


def test_an_unresolvable_base_url_says_to_check_its_host(make_sandbox: MakeSandbox) -> None:
    """A base URL (not an Omni instance) whose name does not resolve, over a real resolver:
    the message names the host and says to check the base URL, not an instance."""
    url = _dead_hosts(make_sandbox)["no such name"]
    with OmniClient(url, "tok", timeout=5, limiter=Limiter(None),
                    sleep=lambda _s: None) as c, pytest.raises(HostUnreachableError) as info:
        c.create_draft("doc-0001")
    assert str(info.value).startswith(
        "host omni-nb-test.invalid not found: check the host in the base URL (")


def test_a_refused_connection_keeps_its_own_words() -> None:
    """Refused is not "not found": the message stays the transport's, naming the origin."""
    refused = ConnectionRefusedError(111, "Connection refused")
    with OmniClient("https://acme.omniapp.co/api", "tok", limiter=Limiter(None),
                    transport=_failing_connect(refused), sleep=lambda _s: None) as c, \
            pytest.raises(HostUnreachableError) as info:
        c.create_draft("doc-0001")
    assert str(info.value).startswith("ConnectError talking to https://acme.omniapp.co: ")
    assert "not found" not in str(info.value)
