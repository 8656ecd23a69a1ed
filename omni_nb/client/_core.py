"""What both clients share: the records they return, request building, classification, waits.

The twins (:mod:`._sync`, :mod:`._async`) only do I/O; every decision is made here once (the
httpx pattern), so the two cannot drift apart in what they send or how they read an answer.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from .._text import quoted, redact, redact_bytes
from .._version import __version__
from ..config import Settings
from ..errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    HostUnreachableError,
    InvalidInputError,
    NotEligibleError,
    NotFoundError,
    OmniError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from ..evidence import ServerClock
from ..ratelimit import Caller, Limiter, RateLimit, pause_key, shared_limiter
from .parse import (
    body_text,
    host_not_found,
    name_not_resolved,
    origin,
    parse_error_body,
    parse_retry_after,
    snippet,
)
from .validate import check_branch_id, check_document_id

__all__ = [
    "AttemptInterval",
    "Call",
    "CallOutcome",
    "ClientOptions",
    "Deadline",
    "Draft",
    "HostUnreachableError",
    "Reader",
    "RetryPolicy",
    "draft_call",
    "draft_request",
    "read_draft",
    "read_nothing",
]

MAX_BODY = 1 << 20  # bytes read from any answer; a larger body is cut, never buffered whole
MAX_PAGES = 10_000  # a server that never ends its pages must not hang a listing
# A draft identifier: printable ASCII, no spaces, a sane length (Omni's are 8 hex digits).
_IDENTIFIER = re.compile(r"^[!-~]{1,256}$")


@dataclass(frozen=True, slots=True)
class Draft:
    """A draft the API returned: new or already existing (the API does not say which).

    Example:
        >>> Draft("93874a87", "doc-0001", None, 1)
        Draft(identifier='93874a87', document_id='doc-0001', branch_id=None, attempts=1)
    """

    identifier: str
    document_id: str
    branch_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class AttemptInterval:
    """One attempt of a call that could have reached the application, in wall-clock seconds
    (``time.time()``): from ``sent_at``, when its request headers began to be written (httpx's
    ``trace`` extension; just before the send when the transport reports no trace), to
    ``answered_at``, when the answer's headers arrived, or, for an attempt never answered
    (dropped, timed out, cancelled in flight), its deadline: after that it cannot have done
    anything more.

    ``status`` is the answer's HTTP status (None: never answered). ``reached_app`` is False
    for a 429 Omni's firewall answered (``X-Omni-Waf-Action: block``): the request stopped
    there (such attempts stay in the log, flagged). An attempt that never left (no
    connection, its headers never written) is not in the log at all.

    Example:
        >>> a = AttemptInterval(100.0, 100.25, 429, reached_app=False, answered=True)
        >>> a.answered_at - a.sent_at, a.reached_app
        (0.25, False)
    """

    sent_at: float
    answered_at: float
    status: int | None
    reached_app: bool
    answered: bool


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One finished call, success or failure, as handed to an ``on_result`` hook.

    ``requested_at`` is the wall time of the first send (when it never left, the time it
    gave up). ``queued_s`` is all the time the rate budget held the call back: before its
    first send, between attempts, and in pauses after a 429. ``elapsed_s`` is the rest:
    requests in flight and backoff sleeps after errors. Their sum is the call's whole time.
    ``key`` is the short name of the API key it was sent on (:meth:`Secret.key_id`).
    ``action`` is what the call did (its :attr:`Call.action`: ``create``, ``discard``,
    ``list``...), so whoever records it never has to guess; ``payload`` is the decoded
    answer of a successful call (None after a failure). ``attempt_log`` holds each attempt
    that could have reached the application, in order (:class:`AttemptInterval`).

    Example:
        >>> o = CallOutcome("d", None, Draft("x", "d", None, 1), None, 200, 1, 0.1,
        ...                 datetime(2026, 1, 1, tzinfo=UTC), "https://a.omniapp.co/api")
        >>> o.ok
        True
    """

    document_id: str
    branch_id: str | None
    draft: Draft | None
    error: OmniError | None
    http_status: int | None
    attempts: int
    elapsed_s: float
    requested_at: datetime
    api_root: str
    queued_s: float = 0.0
    key: str | None = None
    action: str = "create"
    payload: Any = None
    attempt_log: tuple[AttemptInterval, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the call succeeded (for a create: a draft identifier came back)."""
        return self.error is None


class Deadline:
    """One attempt's deadline: ``seconds`` from now for looking the host up, connecting,
    sending, the headers and the body together.

    The sync client holds each attempt to it through its transport
    (:func:`omni_nb.client.transport.attempt_deadline`), the async client with
    ``asyncio.timeout``; :meth:`check` is also called between body chunks, where a trickling
    server would otherwise keep each read short and the body endless.

    Example:
        >>> d = Deadline(5.0)
        >>> 4.0 < d.remaining() <= 5.0
        True
        >>> 4.0 < d.timeouts()["read"] <= 5.0
        True
    """

    __slots__ = ("at", "seconds", "wall_at")

    #: Never hand a socket 0 (non-blocking: an OS error, not a timeout): the smallest wait.
    FLOOR = 0.001

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.wall_at = time.time() + seconds  # the same moment on the wall clock

    def remaining(self) -> float:
        """Seconds left (at least :data:`FLOOR`)."""
        return max(self.FLOOR, self.at - time.monotonic())

    def passed(self) -> bool:
        """True once the deadline is behind."""
        return time.monotonic() >= self.at

    def check(self) -> None:
        """Raise :class:`httpx.ReadTimeout` once the deadline has passed."""
        if self.passed():
            raise httpx.ReadTimeout(f"attempt deadline of {self.seconds:g} s passed")

    def timeouts(self) -> dict[str, float | None]:
        """The request's ``timeout`` extension (httpx's documented per-phase timeouts): the
        time left now, for each phase. A cap only: a phase that starts later would get the
        same figure, so the deadline itself is kept by the client (see above)."""
        left = self.remaining()
        return {"connect": left, "read": left, "write": left, "pool": left}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How 429, 5xx, timeouts and dropped connections are retried (the call is idempotent).

    ``max_retries`` retries at most; waits are capped exponential backoff with jitter
    (``backoff`` * 2**n, at most ``backoff_cap``), or the server's ``Retry-After`` when it
    is between 0 and ``max_retry_after``; the sum of waits never passes ``max_wait``.

    A failure to connect at all (connection refused, a name that does not resolve, a TLS
    handshake that fails: :class:`HostUnreachableError`)
    is retried at most ``connect_retries`` times (within ``max_retries``), after waits of
    ``connect_backoff`` * 2**n: a dead host fails in about a second, not in minutes.

    A 429 that is the rate budget's doing is not the item's failure: to a send the limiter
    made to learn the server's window (a probe of a block or a trial of a learned window,
    see :mod:`omni_nb.ratelimit.log`), into a window its refusals filled, or a near miss at
    the edge of a window under a limit the client and the server agree on (the budget's
    own timing error). Up to ``probe_retries`` of them do not count against
    ``max_retries``: the item is sent again when the budget allows, within the bound below,
    and never ends ``rate_limited`` for them.

    **Bound.** Each attempt has one deadline, the client's ``timeout``, for connecting,
    sending, the headers and the whole body together. A call therefore ends within
    ``(max_retries + probe_retries + 1) * timeout + max_wait`` seconds (Retry-After waits
    included), plus the time the shared rate budget holds it back before a send (its
    ``queued_s``). A dead
    host: ``(connect_retries + 1) * timeout + connect_backoff * (2**connect_retries - 1)`` at
    most; under a second when the connection is refused (0.25 + 0.5 s of waits).

    Example:
        >>> RetryPolicy(max_retries=0).max_retries
        0
        >>> p = RetryPolicy()
        >>> (p.max_retries + p.probe_retries + 1) * 30.0 + p.max_wait  # timeout=30
        630.0
    """

    max_retries: int = 6
    backoff: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0
    max_wait: float = 180.0
    connect_retries: int = 2
    connect_backoff: float = 0.25
    probe_retries: int = 8

    def __post_init__(self) -> None:
        for name in ("max_retries", "connect_retries", "probe_retries"):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int):
                raise TypeError(f"{name} must be an int")
            if count < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("backoff", "backoff_cap", "max_retry_after", "max_wait",
                     "connect_backoff"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0 or math.isinf(value):
                raise ValueError(f"{name} must be a finite number >= 0")

    @classmethod
    def of(cls, max_retries: int | None = None, retry: RetryPolicy | None = None) -> RetryPolicy:
        """The policy for the ``max_retries=`` / ``retry=`` keywords (one of them, or neither).

        Example:
            >>> RetryPolicy.of(max_retries=2).max_retries
            2
        """
        if retry is None:
            return cls() if max_retries is None else cls(max_retries=max_retries)
        if max_retries is not None:
            raise TypeError("give max_retries or retry, not both")
        return retry


@dataclass(frozen=True, slots=True)
class Call:
    """One request below the API root: what an operation asks the client to send.

    ``path`` is already percent-encoded; ``body`` is sent as JSON when not None; ``action``
    is the word rows and the ledger use for what the call does (``create``, ``discard``...).
    ``resend_lost=False`` gives up, instead of sending again, after an attempt whose answer
    was lost (dropped, timed out, a 5xx) once it may have reached the server: for a call
    that is not safe to repeat blindly (a discard), whose caller looks before it resends.

    Example:
        >>> Call("POST", "/v1/documents/doc-1/draft", {}).describe("https://a.omniapp.co/api")
        'POST https://a.omniapp.co/api/v1/documents/doc-1/draft {}'
    """

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    action: str = "call"
    resend_lost: bool = True

    def describe(self, api_root: str) -> str:
        """The request as one line (for dry runs): method, URL, JSON body."""
        query = f"?{urlencode(self.params)}" if self.params else ""
        text = f"{self.method} {api_root}{self.path}{query}"
        return text if self.body is None else f"{text} {json.dumps(self.body)}"


def draft_call(document_id: object, branch_id: object = None) -> tuple[Call, str, str | None]:
    """The Create-draft request for checked input: (call, document id, branch id).

    Raises :class:`InvalidInputError` for input that must not be sent.

    Example:
        >>> draft_call("doc-1", "7C9E6679-7425-40DE-944B-E07FC1F90AE7")[0].body
        {'branchId': '7c9e6679-7425-40de-944b-e07fc1f90ae7'}
    """
    return document_call("POST", document_id, branch_id)


def document_call(
    method: str, document_id: object, branch_id: object
) -> tuple[Call, str, str | None]:
    """``{method} /v1/documents/{id}/draft`` with ``{}`` or ``{"branchId": ...}``: the shape
    Create draft (POST) and Discard draft (DELETE) share, for input checked here.

    Example:
        >>> document_call("DELETE", "doc-1", None)[0].method
        'DELETE'
    """
    doc = check_document_id(document_id)
    branch = check_branch_id(branch_id)
    return draft_request(method, doc, branch), doc, branch


#: The action word of each method on a document's draft.
_DRAFT_ACTIONS = {"POST": "create", "DELETE": "discard"}


def draft_request(method: str, document_id: str, branch_id: str | None) -> Call:
    """``{method} /v1/documents/{id}/draft`` for ids already checked (the batch planner
    checked them: each id is checked once, where the plan is made).

    Example:
        >>> draft_request("POST", "a/b", None).path
        '/v1/documents/a%2Fb/draft'
    """
    # quote(safe="") encodes everything but unreserved characters: the id stays one path
    # segment whatever it holds.
    path = f"/v1/documents/{quote(document_id, safe='')}/draft"
    body = {} if branch_id is None else {"branchId": branch_id}
    return Call(method, path, body, action=_DRAFT_ACTIONS.get(method, "call"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """How a client sends, checked once: rate limit, retries, timeout, hooks, test seams.

    Example:
        >>> ClientOptions(timeout=0)
        Traceback (most recent call last):
        ...
        ValueError: timeout must be a positive number of seconds
    """

    rate_limit: RateLimit | None = field(default_factory=RateLimit)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0
    on_result: Callable[[CallOutcome], None] | None = None
    limiter: Limiter | None = None
    rng: random.Random | None = None

    def __post_init__(self) -> None:
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise TypeError("rate_limit must be an omni_nb.RateLimit or None")
        t = self.timeout
        if isinstance(t, bool) or not isinstance(t, int | float) or not t > 0 or math.isinf(t):
            raise ValueError("timeout must be a positive number of seconds")
        object.__setattr__(self, "timeout", float(t))


@dataclass(slots=True)
class Attempts:
    """Where one call's retry loop stands: attempts made, seconds waited (retry budget), and
    its clock: when it started, the time the limiter held it, its first send; and how many
    attempts could not connect at all (their own, shorter schedule)."""

    attempt: int = 0
    waited: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    queued: float = 0.0
    first_sent: datetime | None = None
    unreachable: int = 0  # attempts that could not connect at all
    probed: int = 0  # 429s that are the budget's doing (not counted as retries)
    log: list[AttemptInterval] = field(default_factory=list)  # attempts that may have acted

    def held(self, since: float, waited: float) -> None:
        """Count the time since ``since`` (a perf_counter reading) as held by the budget: the
        wall time, or what the limiter says it waited when that is more (an injected clock
        and sleep move time the wall clock never sees)."""
        self.queued += max(time.perf_counter() - since, waited)

    def sending(self) -> None:
        """Stamp the first send's wall time (later attempts keep it)."""
        if self.first_sent is None:
            self.first_sent = now()


Sent = tuple[Any, int, int]  # (parsed JSON, attempts, HTTP status) of a usable answer
#: Reads a usable answer into the call's draft: (payload, document, branch, attempts).
Reader = Callable[[Any, str, "str | None", int], "Draft | None"]


def read_nothing(payload: Any, doc: str, branch: str | None, attempts: int) -> Draft | None:
    """A reader for answers that carry no draft (a discard's ``{"message"}``).

    Example:
        >>> read_nothing({"message": "archived"}, "doc-1", None, 1) is None
        True
    """
    return None


def read_draft(payload: Any, doc: str, branch: str | None, attempts: int) -> Draft:
    """The reader of a Create-draft answer: its :class:`Draft`, or
    :class:`UnexpectedResponseError` when it holds no usable identifier.

    Example:
        >>> read_draft({"identifier": "93874a87"}, "doc-1", None, 1).identifier
        '93874a87'
    """
    return Core.draft_from(payload, doc, branch, attempts)


class Core:
    """Everything both clients share: settings, request building, classification, waits."""

    def __init__(self, *, settings: Settings, options: ClientOptions) -> None:
        self.settings = settings
        self.rate_limit = options.rate_limit
        self.retry = options.retry
        self.timeout = options.timeout
        self.on_result = options.on_result
        # The client's own caller of the key's limiter: its limit is a lease every caller
        # of the key obeys while it is explicit (see omni_nb.ratelimit.limiter); an injected
        # limiter is used through its own (anonymous) caller.
        self.limiter: Caller | Limiter = options.limiter or shared_limiter(
            settings.api_root, settings.token.fingerprint(), options.rate_limit,
            budget=settings.budget,
        ).caller(options.rate_limit, timeout=options.timeout)
        self.rng = options.rng or random.Random()
        self.clock = ServerClock()  # Omni's clock against ours, from answers' Date headers
        self.origin = settings.origin
        self.key_id = settings.token.key_id()

    def http_options(self) -> dict[str, Any]:
        """Keyword arguments both twins give their httpx client."""
        return {
            "timeout": httpx.Timeout(self.timeout),
            # Redirects are never followed: a Location elsewhere must not receive the token,
            # and Omni's API does not redirect.
            "follow_redirects": False,
        }

    # -- requests ----------------------------------------------------------------------------

    def build(self, call: Call, deadline: Deadline | None = None) -> httpx.Request:
        """The httpx request for ``call``, with the token, to the configured origin only;
        each of its phases times out by ``deadline`` when given."""
        headers = {
            "Authorization": f"Bearer {self.settings.token.get_secret_value()}",
            "User-Agent": f"omni-nb/{__version__}",
            "Accept": "application/json",
        }
        content = None
        if call.body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(call.body).encode()
        request = httpx.Request(
            call.method, f"{self.settings.api_root}{call.path}", params=call.params or None,
            headers=headers, content=content,
        )
        if deadline is not None:
            request.extensions["timeout"] = deadline.timeouts()
        # Belt and braces: the token only ever goes to the configured origin.
        if origin(str(request.url)) != self.origin:
            raise InvalidInputError("request would leave the configured API root; not sent")
        return request

    @staticmethod
    def list_call(path: str, params: dict[str, str | int]) -> Call:
        """The first page of a paged listing."""
        return Call("GET", path, params={k: str(v) for k, v in params.items()})

    def branches_call(self, base_model_id: str | None, params: dict[str, str | int]) -> Call:
        """The first page of the branch listing (``GET /v1/models?modelKind=BRANCH``)."""
        query: dict[str, str | int] = {"modelKind": "BRANCH", "pageSize": 100, **params}
        if base_model_id is not None:
            query["baseModelId"] = base_model_id
        return self.list_call("/v1/models", query)

    @staticmethod
    def next_page(call: Call, payload: Any) -> tuple[list[dict[str, Any]], Call | None]:
        """A page's records and the call for the next page (None after the last)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            raise UnexpectedResponseError(200, "list answer has no 'records'", body=payload)
        info = payload.get("pageInfo") or {}
        cursor = info.get("nextCursor") if isinstance(info, dict) else None
        more = isinstance(info, dict) and bool(info.get("hasNextPage"))
        records = [r for r in payload["records"] if isinstance(r, dict)]
        if not (more and cursor):
            return records, None
        return records, Call("GET", call.path, params={**call.params, "cursor": str(cursor)})

    # -- answers -----------------------------------------------------------------------------

    def interpret(self, response: httpx.Response, body: bytes) -> Any:
        """The parsed JSON of a usable 2xx, or raise the classified error.

        Every key of the pool is redacted from the body first, read as JSON reads it and
        in its escaped forms (:func:`omni_nb._text.redact`): a server that echoes the
        request's Authorization header must not put it in a message, a table or the ledger."""
        body = self.redacted(body)
        status = response.status_code
        if 200 <= status < 300:
            try:
                return json.loads(body) if body else None
            except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
                raise UnexpectedResponseError(
                    status, f"answer is not JSON: {snippet(body)}", body=body_text(body)
                ) from None
        raise self.classify_error(response, body)

    def classify_error(self, response: httpx.Response, body: bytes) -> APIStatusError:
        """The typed error for a non-2xx answer (every shape of error body Omni sends)."""
        status = response.status_code
        # The reason phrase is the server's text too (the body was redacted by interpret).
        reason = redact(response.reason_phrase or "", self.secrets())
        message, parsed = parse_error_body(body, reason)
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            target = (redact(origin(str(response.url.join(location))), self.secrets())
                      if location else "(no Location)")
            return UnexpectedResponseError(
                status,
                f"redirected to {target}; not followed: the token is only sent to "
                f"{self.settings.api_root}",
                body=parsed,
            )
        if status == 403 and _is_bad_token(message):
            # Omni answers a bad token with 403, not 401: authentication, not a missing role.
            return AuthenticationError(status, message, body=parsed)
        if status == 429:
            return RateLimitError(
                status, message, body=parsed,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        cls = _ERROR_BY_STATUS.get(status)
        if cls is None:
            cls = ServerError if status >= 500 else UnexpectedResponseError
        return cls(status, message, body=parsed)

    def redacted(self, body: bytes) -> bytes:
        """An answer's body as the client keeps it: every key of the pool redacted, also in
        its escaped forms. The twins read answers through this, so no frame of theirs holds
        the raw bytes (a traceback that shows locals shows none); idempotent.

        Example:
            >>> from omni_nb.config import resolve_settings
            >>> pool = ["omni_osk_k1", "omni_osk_k2"]
            >>> s = resolve_settings("https://a.omniapp.co", tokens=pool, environ={})
            >>> core = Core(settings=s, options=ClientOptions(limiter=Limiter(None)))
            >>> core.redacted(b'{"message": "bad key \\\\u006fmni_osk_k2"}')
            b'{"message": "bad key [redacted]"}'
        """
        return redact_bytes(body, self.secrets())

    def secrets(self) -> list[str]:
        """Every token this client may send (what must never come back into an output)."""
        return [secret.get_secret_value() for secret in self.settings.tokens]

    def dated(self, headers: httpx.Headers, attempt: AttemptInterval) -> None:
        """Let :attr:`clock` bound Omni's clock by an answer's ``Date``, stamped by Omni
        between the attempt's send and its answer."""
        self.clock.saw(headers.get("date"), attempt.sent_at, attempt.answered_at)

    def transport_error(self, exc: httpx.HTTPError) -> APIConnectionError:
        """The typed error for no answer at all: :class:`HostUnreachableError` when no
        connection was made (refused, DNS, TLS handshake: httpx raises ``ConnectError`` for
        each), :class:`APITimeoutError` when the attempt's deadline passed (connecting
        included), else :class:`APIConnectionError`."""
        if isinstance(exc, httpx.TimeoutException):
            # A connect that timed out included: on a busy machine or network that is not a
            # dead host, and it keeps the normal schedule (the call's bound holds anyway).
            return self.timed_out()
        # httpx messages name the host and the OS error, never headers (redacted anyway).
        text = redact(str(exc), self.secrets()) or "(no detail)"
        if not isinstance(exc, httpx.ConnectError):
            return APIConnectionError(f"{type(exc).__name__} talking to {self.origin}: {text}")
        if name_not_resolved(exc):
            # A misspelt instance is the usual cause: say so in the user's terms (the host,
            # the instance it names, what to check) before the resolver's own words.
            return HostUnreachableError(host_not_found(self.origin, text))
        return HostUnreachableError(f"ConnectError talking to {self.origin}: {text}")

    def timed_out(self) -> APITimeoutError:
        """The error for an attempt whose deadline passed (connected, no whole answer)."""
        return APITimeoutError(f"no answer from {self.origin} within {self.timeout:g} s")

    def deadline(self) -> Deadline:
        """A new attempt's deadline (the client's ``timeout`` from now)."""
        return Deadline(self.timeout)

    @staticmethod
    def draft_from(payload: Any, doc: str, branch: str | None, attempts: int) -> Draft:
        """The draft in a Create-draft answer, or raise when it has none."""
        identifier = payload.get("identifier") if isinstance(payload, dict) else None
        if not isinstance(identifier, str) or not identifier.strip():
            raise UnexpectedResponseError(
                200, f"answer has no draft 'identifier': {snippet(json.dumps(payload).encode())}",
                body=payload,
            )
        if not _IDENTIFIER.match(identifier):
            # An id that would corrupt a table, a terminal or a later request (a newline, a
            # NUL, a right-to-left mark, 100,000 characters) is not an id: name the document.
            raise UnexpectedResponseError(
                200, f"{doc}: the answer's draft identifier is not one ({len(identifier)} "
                f"characters, printable ASCII without spaces expected): "
                f"{quoted(identifier)}", body=payload,
            )
        return Draft(identifier, doc, branch, attempts)

    # -- retries -----------------------------------------------------------------------------

    def after_failure(self, error: OmniError, state: Attempts, call: Call | None = None,
                      ) -> float:
        """Seconds to sleep before the next attempt (0 after a 429: the limiter holds
        everyone instead), or raise ``error`` when the call gives up (at once after a lost
        answer of a call that must not be resent blindly, :attr:`Call.resend_lost`)."""
        if call is not None and not call.resend_lost and _lost(error):
            error.attempts = state.attempt
            raise error
        if isinstance(error, HostUnreachableError):
            state.unreachable += 1
        # The limiter learns from every 429 (a near miss widens the allowance, a tighter
        # server starts probing, Retry-After says when), even one the call gives up on.
        lesson = self._learn(error) if isinstance(error, RateLimitError) else None
        if lesson in _BUDGETS_DOING and state.probed < self.retry.probe_retries:
            # The limiter sent this attempt to learn where the server's window ends (a probe
            # of a block, a trial of a learned window), into a window its refusals filled
            # (a server that counts them), or a hair too early under a limit both sides
            # agree on (noise: the budget's own timing error, its allowance now wider): the
            # refusal is the budget's doing, not the item's failure, so it does not use up
            # a retry, and the item goes again when the budget says.
            state.probed += 1
            return 0.0
        wait = self.next_wait(error, state.attempt - state.probed, state.waited,
                              state.unreachable)
        if wait is None:
            error.attempts = state.attempt
            raise error
        state.waited += wait  # the call's own wait (its turn in the budget is not one)
        if isinstance(error, RateLimitError):
            # The next acquire() waits as the limiter now says, with every caller of the
            # key in every process; a refusal that taught nothing is backed off. An injected
            # limiter is not the key's shared one: hold that one for the backoff too.
            if lesson in ("blind", "unknown"):
                self.limiter.pause_for(wait)
            pause_key(self.settings.api_root, self.settings.token.fingerprint(), wait,
                      unless=self.limiter)
            return 0.0
        return wait

    def _learn(self, error: RateLimitError) -> str:
        hint = error.retry_after
        if hint is not None and not 0 <= hint <= self.retry.max_retry_after:
            hint = None  # not sane: the limiter's own schedule (or the backoff) instead
        return self.limiter.rejected(hint)

    def next_wait(
        self, error: OmniError, attempt: int, waited: float, unreachable: int = 0
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up.

        ``unreachable`` counts the call's attempts that could not connect (this one
        included when ``error`` is a :class:`HostUnreachableError`): those follow the short
        ``connect_retries`` / ``connect_backoff`` schedule."""
        if not isinstance(error, RateLimitError | ServerError | APIConnectionError):
            return None
        if attempt > self.retry.max_retries:
            return None
        if isinstance(error, HostUnreachableError):
            unreachable = max(unreachable, 1)
            if unreachable > self.retry.connect_retries:
                return None
            wait = self.retry.connect_backoff * float(2 ** (unreachable - 1))
            return None if waited + wait > self.retry.max_wait else wait
        hint = error.retry_after if isinstance(error, RateLimitError) else None
        if hint is not None and 0 <= hint <= self.retry.max_retry_after:
            wait = hint
        else:
            ceiling = min(self.retry.backoff_cap, self.retry.backoff * 2 ** (attempt - 1))
            wait = ceiling * (0.5 + 0.5 * self.rng.random())  # jitter spreads retries out
        if waited + wait > self.retry.max_wait:
            return None
        return wait

    def report(
        self, doc: str, branch: str | None, sent: Sent | OmniError, state: Attempts,
        read: Reader | None = None, action: str = "create",
    ) -> CallOutcome:
        """Turn what a twin's ``_send`` gave (or raised) into an outcome for the hook.

        ``read`` turns a usable answer into the call's :class:`Draft` (default: a Create
        draft answer); None reads nothing (a discard answers only a message)."""
        result: Draft | OmniError | None
        payload: Any = None
        if isinstance(sent, OmniError):
            result, attempts, status = sent, sent.attempts, getattr(sent, "status_code", None)
        else:
            payload, attempts, status = sent
            reader = self.draft_from if read is None else read
            try:
                result = reader(payload, doc, branch, attempts)
            except OmniError as exc:
                exc.attempts = attempts
                result = exc
        outcome = CallOutcome(
            document_id=doc, branch_id=branch,
            draft=result if isinstance(result, Draft) else None,
            error=result if isinstance(result, OmniError) else None,
            http_status=status, attempts=attempts,
            elapsed_s=max(0.0, time.perf_counter() - state.started - state.queued),
            requested_at=state.first_sent or now(), api_root=self.settings.api_root,
            queued_s=state.queued, key=self.key_id, action=action,
            payload=None if isinstance(result, OmniError) else payload,
            attempt_log=tuple(state.log),
        )
        if self.on_result is not None:
            self.on_result(outcome)
        return outcome


#: The limiter's lessons from a 429 that are its own doing (:meth:`Core.after_failure`).
_BUDGETS_DOING = frozenset({"probe", "counted", "noise"})

_ERROR_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: NotEligibleError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
}


def _lost(error: OmniError) -> bool:
    """An attempt that may have reached the server whose answer says nothing of what it did
    (a dropped connection, a timeout, a 5xx): not one that never connected."""
    return (isinstance(error, APIConnectionError | ServerError)
            and not isinstance(error, HostUnreachableError))


def _is_bad_token(message: str) -> bool:
    lowered = message.lower()
    return "invalid bearer token" in lowered or "invalid api key" in lowered


def first_page_size(limit: int | None) -> int:
    """The ``pageSize`` of a listing's first request: 100 (Omni's most), or ``limit`` if less.

    Example:
        >>> first_page_size(None), first_page_size(1)
        (100, 1)
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"limit must be a whole number >= 1, not {limit!r}")
    return 100 if limit is None else min(limit, 100)


def now() -> datetime:
    """The wall-clock time a request is stamped with (UTC)."""
    return datetime.now(UTC)


def read_capped(chunks: Iterator[bytes], deadline: Deadline | None = None) -> bytes:
    """At most :data:`MAX_BODY` bytes of a streamed body, by ``deadline`` (checked between
    chunks: a body trickled a byte at a time must not outlive the attempt)."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if deadline is not None:
            deadline.check()
        if len(buf) >= MAX_BODY:
            break
    return bytes(buf[:MAX_BODY])


async def aread_capped(
    chunks: AsyncIterator[bytes], deadline: Deadline | None = None
) -> bytes:
    """Async :func:`read_capped`."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if deadline is not None:
            deadline.check()
        if len(buf) >= MAX_BODY:
            break
    return bytes(buf[:MAX_BODY])
