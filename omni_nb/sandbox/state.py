"""Every answer the sandbox gives, decided without sockets.

:meth:`State.dispatch` turns one request (method, raw target, Authorization
header, body) into a :class:`Reply`; :mod:`.server` reads the request and writes
the reply. Here live the tokens and roles, scripted answers, the request log and
the routes (drafts are kept by :class:`.drafts.DraftStore`, the settings by
:mod:`.settings`).

Example:

    >>> from omni_nb.sandbox.data import seed_documents
    >>> state = State(seed_documents(3), Settings(), seed=0, token=None)
    >>> state.dispatch("GET", "/api/v1/nowhere", None, b"").status
    404
    >>> reply = state.dispatch("POST", "/api/v1/documents/doc-0001/draft",
    ...                        f"Bearer {state.editor_token}", b"")
    >>> reply.status, reply.draft_id == state.drafts.ids()[("doc-0001", None)]
    (200, True)
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import email.utils
import http
import json
import math
import random
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from .data import JSON, Catalog, RequestRecord, Role, SandboxDocument, folder_id, owner_id
from .drafts import DraftStore
from .settings import UNSET, RetryAfter, Settings, Unset

__all__ = [
    "DOC_PARAMS",
    "MODEL_PARAMS",
    "UNSET",
    "BadRequest",
    "Caller",
    "DraftStore",
    "RateLimiter",
    "Replacement",
    "Reply",
    "RequestLog",
    "RetryAfter",
    "Scripted",
    "Settings",
    "State",
    "Unset",
    "error",
    "rate_text",
    "split_target",
]

_TOKEN_PREFIX: Final = "omni_osk_sandbox_"  # noqa: S105 - a prefix, not a secret
_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_DIGITS_RE: Final = re.compile(r"[0-9]{1,18}")


# --------------------------------------------------------------------------
# Scripted answers (the settings: .settings)


@dataclasses.dataclass(frozen=True, slots=True)
class Scripted:
    """A create-draft answer given verbatim, queued by :meth:`Sandbox.enqueue`.

    Example:

        >>> [s.headers for s in Scripted.build(200, {"identifier": "abcdef12"}, None, times=2)]
        [(('Content-Type', 'application/json'),), (('Content-Type', 'application/json'),)]
    """

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def build(
        cls,
        status: int,
        body: bytes | str | Mapping[str, object],
        headers: Mapping[str, str] | None,
        times: int,
    ) -> list[Scripted]:
        """``times`` copies of one answer, arguments checked, body encoded (JSON for a mapping)."""
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"status must be an int in 200..599, got {status!r}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be an int >= 1, got {times!r}")
        header_list = list((headers or {}).items())
        for name, value in header_list:
            text = f"{name}{value}"
            if "\r" in text or "\n" in text or not text.isprintable():
                raise ValueError(f"header {name!r} contains control characters")
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(f"header {name!r} is not latin-1 encodable") from None
        if isinstance(body, Mapping):
            payload, content_type = json.dumps(dict(body)).encode(), "application/json"
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = bytes(body), "application/octet-stream"
        if payload and not any(name.lower() == "content-type" for name, _ in header_list):
            header_list.append(("Content-Type", content_type))
        return [cls(status, payload, tuple(header_list))] * times

    def reply(self) -> Reply:
        """The answer, with the draft id it carries (for the request log)."""
        draft_id = _string_field(self.body, "identifier") if self.status == 200 else None
        return Reply(self.status, self.body, list(self.headers), draft_id=draft_id)


# --------------------------------------------------------------------------
# Replies


@dataclasses.dataclass(slots=True)
class Reply:
    """One answer, decided by the state and written by the handler."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    delay: float = 0.0
    drop: bool = False
    close: bool = False
    role: Role = "missing"
    document_id: str | None = None
    branch_id: str | None = None
    draft_id: str | None = None
    #: Run by the handler before the answer is written (``then_after`` None) or that many
    #: seconds after it (:meth:`Sandbox.replace_answer`).
    then: Callable[[], object] | None = None
    then_after: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Replacement:
    """The answer to give instead of the next write (``method``) on ``document_id`` (None:
    any): ``status`` 0 drops the connection, 502 is a proxy's HTML page, any other status
    Omni's error shape with ``headers``; ``route`` runs the write first (it takes effect);
    ``then`` runs before the answer goes out, or ``then_after`` seconds after it.

    Example:

        >>> Replacement("DELETE", "doc-0001", 0).reply().drop
        True
    """

    method: str
    document_id: str | None
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    route: bool = True
    then: Callable[[], object] | None = None
    then_after: float | None = None

    def reply(self) -> Reply:
        """The answer given instead."""
        if self.status == 0:
            reply = Reply(0, drop=True)
        elif self.status == 502:
            reply = _fault_reply(502)
        else:
            words = {429: "Rate limit exceeded", **_FAULT_MESSAGES}
            reply = error(self.status, words.get(self.status, "Replaced answer"))
        reply.headers.extend(self.headers)
        reply.then, reply.then_after = self.then, self.then_after
        return reply




class BadRequest(Exception):
    """Raised inside a route to answer 400 (or another status) with a message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _json_reply(status: int, payload: object, draft_id: str | None = None) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Reply(status, body, [("Content-Type", "application/json")], draft_id=draft_id)


def error(status: int, message: str) -> Reply:
    """The documented error shape: ``{"error": "<reason phrase>", "message": "..."}``.

    Example:

        >>> error(404, "Document with identifier ghost not found").body
        b'{"error":"Not Found","message":"Document with identifier ghost not found"}'
    """
    return _json_reply(status, {"error": http.HTTPStatus(status).phrase, "message": message})


def _not_found_route() -> Reply:
    # The third error shape Omni uses, for paths it has no route for.
    return _json_reply(404, {"detail": "Not Found", "status": 404})


_PROXY_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_FAULT_MESSAGES: Final = {
    500: "An unexpected error occurred",
    503: "The service is temporarily unavailable",
    504: "The upstream server timed out",
}


def _fault_reply(status: int) -> Reply:
    if status == 502:
        # What a load balancer in front of Omni sends: HTML, not JSON.
        return Reply(502, _PROXY_502, [("Content-Type", "text/html")])
    return error(status, _FAULT_MESSAGES[status])


def rate_text(requests: int, per: float) -> str:
    """A rate limit as the 429 message (and the command line's banner) words it.

    Example:

        >>> rate_text(60, 60.0), rate_text(5, 1.0), rate_text(10, 2.5)
        ('60 requests/minute', '5 requests/second', '10 requests/2.5 seconds')
    """
    if per == 60:
        return f"{requests} requests/minute"
    if per == 1:
        return f"{requests} requests/second"
    return f"{requests} requests/{per:g} seconds"


# --------------------------------------------------------------------------
# Stores: rate-limit windows, the request log (each behind its own lock; drafts: .drafts)


class RateLimiter:
    """Omni's per-token limit: a trailing window of ``requests`` per ``per`` seconds.

    It also keeps the arrival time (its clock) of each request it accepted, per token (the
    last :data:`ACCEPTED_KEPT`), so that a benchmark or a test can ask what the server let
    through: :meth:`busiest_window`.

    Example:

        >>> now = [0.0]
        >>> limiter = RateLimiter(clock=lambda: now[0])
        >>> def accepted(at: float) -> bool:
        ...     now[0] = at
        ...     return limiter.check("t", Settings(rate_limit=(2, 1.0), grace=0.25)) is None
        >>> [accepted(at) for at in (0.0, 0.5, 0.7, 0.8)]
        [True, True, False, True]
        >>> limiter.busiest_window(1.0), limiter.busiest_window(0.5)
        (3, 2)
    """

    #: How many accepted arrivals are kept per token (older ones are forgotten first).
    ACCEPTED_KEPT: Final = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, collections.deque[float]] = {}
        self._accepted: dict[str, collections.deque[float]] = {}
        self._clock = clock

    def check(self, token: str, settings: Settings) -> Reply | None:
        """None when ``token`` may make one more request now, else the 429 to answer."""
        if settings.rate_limit is None:
            self._accept(token)
            return None
        requests, per = settings.rate_limit
        with self._lock:
            # Read under the lock, so that each token's accepted arrivals stay in order.
            now = self._clock()
            window = self._windows.setdefault(token, collections.deque())
            # A trailing window, not a bucket: a bucket that bursts N and
            # refills lets nearly 2N through in one window, Omni's WAF does not.
            while window and window[0] <= now - per:
                window.popleft()
            # The arrival that must leave the window before one more fits.
            wait = window[-requests] + per - now if len(window) >= requests else 0.0
            if wait <= settings.grace:
                window.append(now)
                self._accepted_of(token).append(now)
                return None
            wait -= settings.grace
            if settings.count_refused:
                window.append(now)
        reply = error(429, f"Rate limit exceeded ({rate_text(requests, per)})")
        reply.headers.append(("X-Omni-Waf-Action", "block"))
        if settings.retry_after == "seconds":
            reply.headers.append(("Retry-After", str(max(1, math.ceil(wait)))))
        elif settings.retry_after == "date":
            # HTTP-dates have whole seconds: round up so the date is never early.
            when = math.ceil(time.time() + settings.clock_offset + max(wait, 1.0))
            reply.headers.append(("Retry-After", email.utils.formatdate(when, usegmt=True)))
        return reply

    def _accept(self, token: str) -> None:
        with self._lock:
            self._accepted_of(token).append(self._clock())

    def _accepted_of(self, token: str) -> collections.deque[float]:
        # Called with the lock held.
        accepted = self._accepted.get(token)
        if accepted is None:
            accepted = self._accepted[token] = collections.deque(maxlen=self.ACCEPTED_KEPT)
        return accepted

    def busiest_window(self, per: float, token: str | None = None) -> int:
        """The most accepted arrivals of ``token`` in any trailing ``per``-second window.

        ``token=None``: the busiest of every token's (each counted on its own, as the server
        counts them). Two arrivals exactly ``per`` apart are not in one window, as the
        window is ``(now - per, now]``.

        Example:

            >>> now = [0.0]
            >>> limiter = RateLimiter(clock=lambda: now[0])
            >>> for at in (0.0, 0.5, 1.0, 1.2):
            ...     now[0] = at
            ...     _ = limiter.check("t", Settings(rate_limit=None))
            >>> limiter.busiest_window(1.0), limiter.busiest_window(1.0, "other")
            (3, 0)
        """
        if not (math.isfinite(per) and per > 0):
            raise ValueError(f"per must be a finite number > 0, got {per!r}")
        with self._lock:
            if token is not None:
                runs = [list(self._accepted.get(token, ()))]
            else:
                runs = [list(times) for times in self._accepted.values()]
        return max((_busiest(times, per) for times in runs), default=0)


def _busiest(times: Sequence[float], per: float) -> int:
    """The most of ``times`` (ascending) within any half-open span shorter than ``per``."""
    most = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= per:
            start += 1
        most = max(most, end - start + 1)
    return most


class RequestLog:
    """Requests received, in flight and answered.

    Example:

        >>> log = RequestLog()
        >>> seq = log.begin(); log.wait_idle(0.0)
        False
        >>> log.end(); log.wait_idle(0.0), log.received
        (True, 1)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._records: list[tuple[int, RequestRecord]] = []
        self._seq = 0
        # Requests being handled right now; close() waits (briefly) for them
        # so that every request that arrived is in the log once close() returns.
        self._inflight = 0

    @property
    def received(self) -> int:
        """How many requests arrived (answered or not), cleared log or not."""
        return self._seq

    def begin(self) -> int:
        """Count a request in; returns its arrival number."""
        with self._lock:
            self._seq += 1
            self._inflight += 1
            return self._seq

    def end(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled; False if ``timeout`` ran out first."""
        with self._lock:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)

    def record(self, seq: int, record: RequestRecord) -> None:
        with self._lock:
            self._records.append((seq, record))

    def snapshot(self) -> list[RequestRecord]:
        """The answered requests in arrival order (they are logged in answer order)."""
        with self._lock:
            records = list(self._records)
        records.sort(key=lambda pair: pair[0])
        return [record for _, record in records]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


# --------------------------------------------------------------------------
# State: every decision, no sockets


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the role, and the token when it is a valid one."""

    role: Role
    token: str | None = None


class State:
    """The sandbox's data and every answer it gives; thread-safe."""

    def __init__(
        self,
        documents: Sequence[SandboxDocument],
        settings: Settings,
        seed: int,
        token: str | None,
    ) -> None:
        # Guards settings and rng swaps, the token table and the scripted queue.
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.origin = ""
        self.settings = settings
        self.rng = random.Random(seed)
        self.catalog = Catalog(documents)
        self.tokens: dict[str, Role] = {}
        self.editor_token = self.add_token("editor", token)
        self.viewer_token = self.add_token("viewer")
        self.limiter = RateLimiter()
        self.drafts = DraftStore(seed, clock=self.now)
        self.scripted: collections.deque[Scripted] = collections.deque()
        self.replacements: list[Replacement] = []
        self.log = RequestLog()

    # -- control ----------------------------------------------------------

    def add_token(self, role: Role, token: str | None = None) -> str:
        if role not in ("editor", "viewer"):
            raise ValueError(f"role must be 'editor' or 'viewer', got {role!r}")
        if token is None:
            token = _TOKEN_PREFIX + secrets.token_hex(16)
        elif not token or not token.isascii() or not token.isprintable() or " " in token:
            raise ValueError("token must be non-empty printable ASCII without spaces")
        with self.lock:
            self.tokens[token] = role
        return token

    def configure(self, changes: Mapping[str, Any], seed: int | Unset) -> None:
        """Replace some settings (and restart the fault sequence on a new seed)."""
        with self.lock:
            # Validate before touching anything: a bad value changes nothing.
            self.settings = dataclasses.replace(self.settings, **changes)
            if not isinstance(seed, Unset):
                self.rng = random.Random(seed)

    def enqueue(self, answers: Sequence[Scripted]) -> None:
        with self.lock:
            self.scripted.extend(answers)

    def now(self) -> float:
        """The sandbox's clock: this machine's, moved by ``clock_offset``."""
        return time.time() + self.settings.clock_offset

    def replace(self, replacement: Replacement) -> None:
        with self.lock:
            self.replacements.append(replacement)

    def _replacement(self, method: str, document_id: str) -> Replacement | None:
        """The first queued replacement for this write, taken off the queue."""
        with self.lock:
            for i, r in enumerate(self.replacements):
                if r.method == method and r.document_id in (None, document_id):
                    return self.replacements.pop(i)
        return None

    def take_scripted(self) -> Scripted | None:
        with self.lock:
            return self.scripted.popleft() if self.scripted else None

    def delay(self) -> float:
        """The configured latency, jitter included."""
        settings = self.settings
        if settings.latency_jitter <= 0:
            return settings.latency
        with self.lock:
            return settings.latency + self.rng.uniform(0.0, settings.latency_jitter)

    def authenticate(self, auth: str | None) -> Caller:
        """The caller's role, and its token when the token is valid."""
        if auth is None:
            return Caller("missing")
        scheme, _, credential = auth.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer":
            return Caller("invalid")
        with self.lock:
            role = self.tokens.get(credential)
        if role is None:
            return Caller("invalid")
        return Caller(role, credential)

    # -- routes -----------------------------------------------------------

    def dispatch(self, method: str, target: str, auth: str | None, body: bytes) -> Reply:
        """Answer one request; the handler adds latency and does the I/O."""
        path, query = split_target(target)
        caller = self.authenticate(auth)
        segments = path.split("/")
        reply: Reply
        if segments[:3] != ["", "api", "v1"] or len(segments) < 4:
            reply = _not_found_route()
        elif segments[3:] == ["documents"] and method in ("GET", "HEAD"):
            reply = self._guarded(caller, lambda: _list_documents(self.catalog, self.origin, query))
        elif segments[3:] == ["models"] and method in ("GET", "HEAD"):
            reply = self._guarded(caller, lambda: _list_models(self.catalog, query))
        elif (len(segments) == 5 and segments[3] == "documents" and segments[4]
              and method in ("GET", "HEAD")):
            document_id = _decode_segment(segments[4])
            reply = self._guarded(caller, lambda: self._get_document(document_id))
            reply.document_id = document_id
        elif len(segments) == 6 and segments[3] == "documents" and segments[4]:
            reply = self._document_route(
                method, segments[5], _decode_segment(segments[4]), caller, body, query
            )
        else:
            reply = _not_found_route()
        reply.role = caller.role
        if not reply.drop:
            reply.delay += self.delay()
        return reply

    def _document_route(
        self, method: str, action: str, document_id: str, caller: Caller, body: bytes, query: str
    ) -> Reply:
        """``/api/v1/documents/{documentId}/{action}``: the draft routes."""
        replaced = (self._replacement(method, document_id)
                    if action == "draft" and method in ("POST", "DELETE") else None)
        if replaced is not None:
            if replaced.route:  # the write takes effect; only its answer is replaced
                write = self._draft if method == "POST" else self._discard
                _answer(lambda: write(caller, document_id, body))
            reply = replaced.reply()
        elif (method, action) == ("POST", "draft"):
            scripted = self.take_scripted()
            if scripted is not None:
                reply = scripted.reply()
            else:
                reply = self._faulted(caller, lambda: self._draft(caller, document_id, body))
        elif (method, action) == ("DELETE", "draft"):
            reply = self._faulted(caller, lambda: self._discard(caller, document_id, body))
        elif action == "drafts" and method in ("GET", "HEAD"):
            reply = self._guarded(caller, lambda: self._list_drafts(document_id, query))
        else:
            return _not_found_route()
        # Log which document (and branch) the draft request was for.
        reply.document_id = document_id
        reply.branch_id = _string_field(body, "branchId")
        return reply

    def _gate(self, caller: Caller) -> Reply | None:
        """Auth then rate limit; None when the request may go on."""
        if caller.role == "missing":
            return _json_reply(401, {"error": "Unauthorized", "message": "Missing API key"})
        if caller.token is None:
            # Omni answers an unknown token with 403 and a nested error object.
            return _json_reply(403, {"error": {"code": 403, "message": "Invalid bearer token"}})
        return self.limiter.check(caller.token, self.settings)

    def _guarded(self, caller: Caller, route: Callable[[], Reply]) -> Reply:
        refused = self._gate(caller)
        return refused if refused is not None else _answer(route)

    def _faulted(self, caller: Caller, route: Callable[[], Reply]) -> Reply:
        """A write (create or discard a draft): auth, rate limit, then the injected faults."""
        refused = self._gate(caller)
        if refused is not None:
            return refused
        settings = self.settings
        with self.lock:
            # Always draw the same four numbers so the n-th write's fate
            # depends only on the seed and n, whatever the rates are.
            r_drop, r_fail, r_slow = self.rng.random(), self.rng.random(), self.rng.random()
            fail_status = self.rng.choice((500, 502, 503, 504))
        # A dropped or failed write did nothing: the route is not run.
        if r_drop < settings.drop_rate:
            return Reply(0, drop=True)
        if r_fail < settings.fail_rate:
            return _fault_reply(fail_status)
        reply = _answer(route)
        if r_slow < settings.slow_rate:
            reply.delay += settings.slow_seconds
        return reply

    def _document(self, document_id: str) -> SandboxDocument:
        doc = self.catalog.doc_by_id.get(document_id)
        if doc is None:
            raise BadRequest(f"Document with identifier {document_id} not found", 404)
        return doc

    def _editable(
        self, caller: Caller, document_id: str, body: bytes
    ) -> tuple[SandboxDocument, str | None]:
        """The document and (canonical) branch a draft request is about, for an editor."""
        branch_id = _parse_draft_body(body)
        doc = self._document(document_id)
        if branch_id is not None:
            canonical = branch_id.lower()
            if canonical not in self.catalog.branch_by_id:
                raise BadRequest(f"Branch {branch_id} not found", 404)
            branch_id = canonical
        if caller.role != "editor":
            raise BadRequest("Permission denied - EDITOR role required", 403)
        return doc, branch_id

    def _draft(self, caller: Caller, document_id: str, body: bytes) -> Reply:
        doc, branch_id = self._editable(caller, document_id, body)
        if not doc.eligible:
            raise BadRequest("Document is not eligible for publishing workflow")
        draft = self.drafts.get_or_create(doc.identifier, branch_id)
        return _json_reply(200, {"identifier": draft.identifier}, draft_id=draft.identifier)

    def _discard(self, caller: Caller, document_id: str, body: bytes) -> Reply:
        doc, branch_id = self._editable(caller, document_id, body)
        draft = self.drafts.archive(doc.identifier, branch_id)
        if draft is None:
            # Omni names a draft id; the document identifier is all the caller sent.
            raise BadRequest(f"Draft with id {document_id} does not exist", 404)
        message = {"message": "Draft discarded successfully"}
        return _json_reply(200, message, draft_id=draft.identifier)

    def _get_document(self, document_id: str) -> Reply:
        """``GET /v1/documents/{id}``: the document's record (as the listing shows it)."""
        doc = self._document(document_id)
        return _json_reply(200, self.catalog.document_record(doc, set(), self.origin))

    def _list_drafts(self, document_id: str, query: str) -> Reply:
        include = _query_params(query, frozenset({"include"})).get("include")
        if include not in (None, "archived"):
            raise BadRequest("include must be: archived")
        doc = self._document(document_id)
        drafts = self.drafts.of_document(doc.identifier, archived=include == "archived")
        # A bare list, not a page: that is how Omni answers this one.
        return _json_reply(200, [self.catalog.draft_record(d) for d in drafts])


def _answer(route: Callable[[], Reply]) -> Reply:
    try:
        return route()
    except BadRequest as exc:
        return error(exc.status, str(exc))


# --------------------------------------------------------------------------
# Request parsing


def split_target(target: str) -> tuple[str, str]:
    """The path and query of a request target, origin-form or absolute-form.

    Example:

        >>> split_target("/api/v1/models?pageSize=2")
        ('/api/v1/models', 'pageSize=2')
        >>> split_target("http://host/api/v1/models")
        ('/api/v1/models', '')
    """
    if not target.startswith("/"):
        # absolute-form ("POST http://host/api/... HTTP/1.1"), as proxies send
        parts = urllib.parse.urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path, query


def _decode_segment(segment: str) -> str:
    # http.server decodes the request line as latin-1, which maps bytes 1:1;
    # going back to bytes first keeps raw (non percent-encoded) UTF-8 intact.
    raw = urllib.parse.unquote_to_bytes(segment.encode("latin-1"))
    return raw.decode("utf-8", errors="replace")


def _parse_draft_body(body: bytes) -> str | None:
    """The branchId of a draft body, or raise BadRequest."""
    if not body.strip():
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Request body must be valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object")
    if "branchId" not in payload:
        return None
    branch_id = payload["branchId"]
    if not isinstance(branch_id, str) or not _UUID_RE.fullmatch(branch_id):
        raise BadRequest("branchId must be a UUID string")
    return branch_id


def _string_field(body: bytes, key: str) -> str | None:
    """A string field of a JSON object body, or None whatever else is wrong with it."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = payload.get(key) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------
# List endpoints: GET /documents and GET /models

#: The query parameters Omni documents for each list (tests compare them with the spec).
DOC_PARAMS: Final = frozenset(
    {
        "creatorId",
        "cursor",
        "folderId",
        "include",
        "labels",
        "pageSize",
        "sortDirection",
        "sortField",
        "userId",
    }
)
MODEL_PARAMS: Final = frozenset(
    {
        "baseModelId",
        "connectionId",
        "cursor",
        "include",
        "includeDeleted",
        "modelId",
        "modelKind",
        "name",
        "pageSize",
        "sortDirection",
        "sortField",
    }
)
_MODEL_KINDS: Final = ("SCHEMA", "SHARED", "SHARED_EXTENSION", "BRANCH", "WORKBOOK", "QUERY")
_MODEL_SORT: Final = ("name", "modelKind", "connectionId", "baseModelId", "createdAt", "updatedAt")
_DOC_SORT: Final = ("name", "favorites", "updatedAt", "visits")


def _list_documents(catalog: Catalog, origin: str, query: str) -> Reply:
    params = _query_params(query, DOC_PARAMS)
    page_size = _page_size(params.get("pageSize"), 50)
    for name in ("creatorId", "folderId", "userId"):
        _check_uuid(params, name)
    sort_field = _choice(params, "sortField", _DOC_SORT, "name")
    descending = _choice(params, "sortDirection", ("asc", "desc"), "asc") == "desc"
    include = set(filter(None, params.get("include", "").split(",")))
    labels = [x for x in params.get("labels", "").split(",") if x]
    docs: list[SandboxDocument] = list(catalog.documents)
    if "folderId" in params:
        docs = [d for d in docs if folder_id(d.folder) == params["folderId"].lower()]
    if "creatorId" in params:
        docs = [d for d in docs if owner_id(d.owner) == params["creatorId"].lower()]
    if labels or "onlyFavorites" in include:
        docs = []  # sandbox documents carry no labels and nobody favourites them
    # favorites/visits are all zero here, so they fall back to name order.
    key = "updatedAt" if sort_field == "updatedAt" else "name"
    records = [catalog.document_record(d, include, origin) for d in docs]
    records.sort(key=lambda r: (str(r[key] or ""), str(r["identifier"])), reverse=descending)
    return _page("documents", records, params.get("cursor"), page_size)


def _list_models(catalog: Catalog, query: str) -> Reply:
    params = _query_params(query, MODEL_PARAMS)
    page_size = _page_size(params.get("pageSize"), 20)
    for name in ("baseModelId", "connectionId", "modelId"):
        _check_uuid(params, name)
    kind = _choice(params, "modelKind", _MODEL_KINDS, None)
    _choice(params, "includeDeleted", ("0", "1", "true", "false"), None)
    sort_field = _choice(params, "sortField", _MODEL_SORT, None)
    descending = _choice(params, "sortDirection", ("asc", "desc"), "asc") == "desc"
    include = set(filter(None, params.get("include", "").split(",")))
    records = catalog.model_records("activeBranches" in include)
    filters = {
        "modelKind": kind,
        "baseModelId": params.get("baseModelId", "").lower() or None,
        "connectionId": params.get("connectionId", "").lower() or None,
        "id": params.get("modelId", "").lower() or None,
        "name": params.get("name"),
    }
    for field, wanted in filters.items():
        if wanted is not None:
            records = [r for r in records if r[field] == wanted]
    if sort_field is not None or descending:
        field = sort_field or "name"
        records.sort(key=lambda r: str(r[field] or ""), reverse=descending)
    return _page("models", records, params.get("cursor"), page_size)


def _query_params(query: str, known: frozenset[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name not in known:
            raise BadRequest(f"Unknown query parameter: {name}")
        params.setdefault(name, value)
    return params


def _page_size(value: str | None, default: int) -> int:
    if value is None:
        return default
    if not _DIGITS_RE.fullmatch(value) or not 1 <= int(value) <= 100:
        raise BadRequest("pageSize must be an integer between 1 and 100")
    return int(value)


def _check_uuid(params: Mapping[str, str], name: str) -> None:
    if name in params and not _UUID_RE.fullmatch(params[name]):
        raise BadRequest(f"{name} must be a UUID")


def _choice(
    params: Mapping[str, str], name: str, allowed: Sequence[str], default: str | None
) -> str | None:
    value = params.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise BadRequest(f"{name} must be one of: {', '.join(allowed)}")
    return value


def _encode_cursor(kind: str, offset: int) -> str:
    raw = f"{kind}:{offset}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        cursor_kind, _, offset = raw.partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("Invalid cursor") from None
    if cursor_kind != kind or not _DIGITS_RE.fullmatch(offset):
        raise BadRequest("Invalid cursor")
    return int(offset)


def _page(kind: str, records: list[JSON], cursor: str | None, page_size: int) -> Reply:
    offset = 0 if cursor is None else _decode_cursor(kind, cursor)
    chunk = records[offset : offset + page_size]
    has_next = offset + page_size < len(records)
    page_info = {
        "hasNextPage": has_next,
        "nextCursor": _encode_cursor(kind, offset + page_size) if has_next else None,
        "pageSize": page_size,
        "totalRecords": len(records),
    }
    return _json_reply(200, {"pageInfo": page_info, "records": chunk})
