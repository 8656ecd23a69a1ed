"""A local stand-in for Omni's REST API: a real HTTP server on loopback.

The sandbox answers the Create draft endpoint (and the few neighbouring
endpoints the project uses) the way Omni does, including the awkward parts:
three error-body shapes, 403 for an unknown token, a per-token rate limit with
an optional ``Retry-After``, and injected faults (5xx, dropped connections,
slow answers). Tests, the demo command, benchmarks and example notebooks use it
instead of a real Omni instance. It is standard library only and imports
nothing else from ``omni_nb``, so it can never share a bug with the client it
is meant to check.

Example::

    from omni_nb import sandbox
    import httpx

    with sandbox.serve(documents=20, rate_limit=(5, 1.0)) as sb:
        r = httpx.post(
            f"{sb.base_url}/v1/documents/doc-0001/draft",
            headers={"Authorization": f"Bearer {sb.token}"},
            json={"branchId": sb.branches[0].id},
        )
        assert r.status_code == 200 and len(r.json()["identifier"]) == 8

Routes (the API root is ``{sb.url}/api``):

``POST /api/v1/documents/{documentId}/draft``
    Checked in this order: scripted answers (:meth:`Sandbox.enqueue`), auth
    (401 no header, 403 unknown token), rate limit (429), faults (drop, 5xx,
    slow), body (400), document (404), branch (404), viewer role (403),
    eligibility (400); then 200 ``{"identifier": "<8 hex>"}``, one draft per
    (document, branch).
``GET /api/v1/documents``
    Paged (``pageSize`` 1..100, default 50; ``cursor``), filters ``folderId``,
    ``creatorId``, ``labels``; ``sortField``/``sortDirection``; other
    documented parameters accepted; unknown ones give 400.
``GET /api/v1/models``
    Paged (``pageSize`` 1..100, default 20), filters ``modelKind``,
    ``baseModelId``, ``modelId``, ``connectionId``, ``name``; one SCHEMA
    model, one SHARED model and the branches (``modelKind=BRANCH``).
``DELETE /api/v1/documents/{documentId}/draft``
    Discards the draft (optional ``{"branchId"}``); 404 when there is none.
``GET /api/v1/documents/{documentId}/drafts``
    The document's drafts.

Anything else is 404 ``{"detail": "Not Found", "status": 404}``.

Seeded data: ``documents=N`` gives ``doc-0001`` .. ``doc-{N:04d}``; every 10th
(``doc-0010``, ``doc-0020``, ...) is not eligible for the publishing workflow
(400). Branches are fixed: ``feature-a`` ``081c8cec-a997-5c87-9f41-00dd4e31bc04``,
``feature-b`` ``11c0f8c9-7e50-523f-9be0-f7de1104f2b5``, ``feature-c``
``9bd33108-f31c-5418-94dc-c9637db659f1``, all on the SHARED model
``Sandbox model``.

Tokens never appear in request records, reprs or log lines: records keep the
caller's *role* only.

Command line: ``python -m omni_nb.sandbox --port 8787`` (see :func:`main`).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import contextlib
import dataclasses
import datetime
import email.utils
import enum
import http
import http.server
import json
import logging
import math
import random
import re
import secrets
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Literal, cast

__all__ = [
    "DEMO_TOKEN",
    "MAX_BODY_BYTES",
    "RequestRecord",
    "Sandbox",
    "SandboxBranch",
    "SandboxDocument",
    "main",
    "seed_documents",
    "serve",
]

logger = logging.getLogger(__name__)

#: The fixed editor token the command line prints. It is a sandbox-only value,
#: never accepted by a real Omni instance; :func:`serve` uses a random token
#: unless ``token=`` is given.
DEMO_TOKEN: Final = "omni_osk_sandbox_demo"  # noqa: S105 - public by design

#: Request bodies above this size are refused with 413 without being read.
MAX_BODY_BYTES: Final = 64 * 1024

_TOKEN_PREFIX: Final = "omni_osk_sandbox_"  # noqa: S105 - a prefix, not a secret
# Every seeded ID is a uuid5 in this namespace, so branch ids are the same in
# every run, on every machine, and notebooks can hard-code them.
_NAMESPACE: Final = uuid.UUID("e4b152d4-80ca-58ba-9dc0-4581ce98831d")
_EPOCH: Final = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_DIGITS_RE: Final = re.compile(r"[0-9]{1,18}")
_HEX_RE: Final = re.compile(rb"[0-9a-fA-F]{1,16}")

Role = Literal["editor", "viewer", "invalid", "missing"]
RetryAfter = Literal["seconds", "date"]
_JSON = dict[str, object]


# --------------------------------------------------------------------------
# Public data


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxDocument:
    """A document the sandbox knows; ``folder`` is a path, ``owner`` a name.

    Example::

        doc = SandboxDocument("q3-revenue", "Q3 revenue", eligible=False)
        with serve(documents=[doc]) as sb:
            ...  # creating a draft of "q3-revenue" gives 400
    """

    identifier: str
    name: str
    eligible: bool = True
    folder: str = "Shared"
    owner: str = "Sandbox Owner"
    updated_at: str = "2025-01-01T00:00:00.000Z"
    has_dashboard: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxBranch:
    """A model branch; ``id`` is the ``branchId`` to send.

    Example::

        with serve() as sb:
            body = {"branchId": sb.branches[0].id}
    """

    id: str
    name: str
    base_model_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class RequestRecord:
    """What one request brought and what it got; never holds the token.

    ``path`` is the raw request target path (still percent-encoded), ``query``
    the raw query string, ``status`` is 0 for a dropped connection, and
    ``document_id`` is the decoded ``{documentId}`` segment on the draft
    routes (None elsewhere).

    Example::

        with serve() as sb:
            ...
            [r.status for r in sb.requests() if r.method == "POST"]
    """

    method: str
    path: str
    query: str
    document_id: str | None
    branch_id: str | None
    body: bytes
    role: Role
    has_authorization: bool
    user_agent: str | None
    status: int
    draft_id: str | None
    received_at: float
    answered_at: float
    thread: str | None = None


def seed_documents(count: int) -> list[SandboxDocument]:
    """Return the deterministic documents ``serve(documents=count)`` seeds.

    Every 10th document is not eligible; names, folders and owners cycle with
    the index.

    Example::

        >>> [d.identifier for d in seed_documents(3)]
        ['doc-0001', 'doc-0002', 'doc-0003']
        >>> seed_documents(10)[-1].eligible
        False
    """
    if count < 0:
        raise ValueError(f"documents must be >= 0, got {count}")
    topics = ("Revenue", "Pipeline", "Churn", "Marketing", "Inventory", "Support", "Finance")
    folders = ("Shared/Sales", "Shared/Marketing", "Shared/Finance", "Personal/Analyst")
    owners = ("Ada Lovelace", "Grace Hopper", "Katherine Johnson", "Barbara Liskov", "Alan Turing")
    docs = []
    for i in range(1, count + 1):
        updated = _EPOCH + datetime.timedelta(hours=i)
        docs.append(
            SandboxDocument(
                identifier=f"doc-{i:04d}",
                name=f"{topics[(i - 1) % len(topics)]} overview {i:04d}",
                eligible=i % 10 != 0,
                folder=folders[(i - 1) % len(folders)],
                owner=owners[(i - 1) % len(owners)],
                updated_at=_iso(updated),
                has_dashboard=i % 3 != 0,
            )
        )
    return docs


# --------------------------------------------------------------------------
# Settings


class _Unset(enum.Enum):
    # A sentinel that mypy can narrow, because ``None`` is a meaningful value
    # for rate_limit and retry_after in Sandbox.configure().
    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET


@dataclasses.dataclass(frozen=True, slots=True)
class _Settings:
    """Fault/latency/rate options; replaced as a whole so readers never see half an update."""

    latency: float = 0.0
    latency_jitter: float = 0.0
    rate_limit: tuple[int, float] | None = (60, 60.0)
    retry_after: RetryAfter | None = "seconds"
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name in ("latency", "latency_jitter", "slow_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in ("fail_rate", "drop_rate", "slow_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.rate_limit is not None:
            try:
                requests, per = self.rate_limit
            except (TypeError, ValueError):
                raise ValueError(
                    f"rate_limit must be (requests, per_seconds) or None, got {self.rate_limit!r}"
                ) from None
            if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
                raise ValueError(f"rate_limit requests must be an int >= 1, got {requests!r}")
            if not (isinstance(per, (int, float)) and math.isfinite(per) and per > 0):
                raise ValueError(f"rate_limit seconds must be > 0, got {per!r}")
            object.__setattr__(self, "rate_limit", (requests, float(per)))
        if self.retry_after not in ("seconds", "date", None):
            raise ValueError(
                f"retry_after must be 'seconds', 'date' or None, got {self.retry_after!r}"
            )


@dataclasses.dataclass(frozen=True, slots=True)
class _Scripted:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclasses.dataclass(slots=True)
class _Reply:
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


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _json_reply(status: int, payload: object, draft_id: str | None = None) -> _Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _Reply(status, body, [("Content-Type", "application/json")], draft_id=draft_id)


def _error(status: int, message: str) -> _Reply:
    # The documented shape: {"error": "<reason phrase>", "message": "..."}.
    return _json_reply(status, {"error": http.HTTPStatus(status).phrase, "message": message})


def _not_found_route() -> _Reply:
    # The third error shape Omni uses, for paths it has no route for.
    return _json_reply(404, {"detail": "Not Found", "status": 404})


def _rate_text(requests: int, per: float) -> str:
    if per == 60:
        return f"{requests} requests/minute"
    if per == 1:
        return f"{requests} requests/second"
    return f"{requests} requests/{per:g} seconds"


_PROXY_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def _fault_reply(status: int) -> _Reply:
    if status == 502:
        # What a load balancer in front of Omni sends: HTML, not JSON.
        return _Reply(502, _PROXY_502, [("Content-Type", "text/html")])
    messages = {
        500: "An unexpected error occurred",
        503: "The service is temporarily unavailable",
        504: "The upstream server timed out",
    }
    return _error(status, messages[status])


# --------------------------------------------------------------------------
# State: every decision, no sockets


_DOC_PARAMS: Final = frozenset(
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
_MODEL_PARAMS: Final = frozenset(
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


class _BadRequest(Exception):
    """Raised inside a route to answer 400 (or another status) with a message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _State:
    """The sandbox's data and every answer it gives; thread-safe behind one lock."""

    def __init__(
        self,
        documents: Sequence[SandboxDocument],
        settings: _Settings,
        seed: int,
        token: str | None,
    ) -> None:
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.origin = ""
        self.settings = settings
        self.rng = random.Random(seed)
        # Draft ids come from their own stream so that creating drafts does
        # not shift the fault sequence a seed is meant to reproduce.
        self.draft_rng = random.Random(f"omni_nb.sandbox drafts {seed}")
        self.documents = tuple(documents)
        self.doc_by_id = {d.identifier: d for d in self.documents}
        if len(self.doc_by_id) != len(self.documents):
            raise ValueError("document identifiers must be unique")
        self.connection_id = str(uuid.uuid5(_NAMESPACE, "connection/sandbox"))
        self.schema_model_id = str(uuid.uuid5(_NAMESPACE, "model/sandbox_schema"))
        self.shared_model_id = str(uuid.uuid5(_NAMESPACE, "model/sandbox"))
        self.branches = tuple(
            SandboxBranch(str(uuid.uuid5(_NAMESPACE, f"branch/{name}")), name, self.shared_model_id)
            for name in ("feature-a", "feature-b", "feature-c")
        )
        self.branch_by_id = {b.id: b for b in self.branches}
        self.tokens: dict[str, Role] = {}
        self.editor_token = self.add_token("editor", token)
        self.viewer_token = self.add_token("viewer")
        self.drafts: dict[tuple[str, str | None], str] = {}
        self.issued_drafts: set[str] = set()
        self.windows: dict[str, collections.deque[float]] = {}
        self.scripted: collections.deque[_Scripted] = collections.deque()
        self.records: list[tuple[int, RequestRecord]] = []
        self.seq = 0
        # Requests being handled right now; close() waits (briefly) for them
        # so that every request that arrived is in the log once close() returns.
        self.inflight = 0
        self.idle = threading.Condition(self.lock)

    # -- bookkeeping ------------------------------------------------------

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

    def begin(self) -> int:
        """Count a request in; returns its arrival number."""
        with self.lock:
            self.seq += 1
            self.inflight += 1
            return self.seq

    def end(self) -> None:
        with self.lock:
            self.inflight -= 1
            if self.inflight == 0:
                self.idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self.lock:
            self.idle.wait_for(lambda: self.inflight == 0, timeout)

    def record(self, seq: int, rec: RequestRecord) -> None:
        with self.lock:
            self.records.append((seq, rec))

    def delay(self) -> float:
        settings = self.settings
        if settings.latency_jitter <= 0:
            return settings.latency
        with self.lock:
            return settings.latency + self.rng.uniform(0.0, settings.latency_jitter)

    # -- dispatch ---------------------------------------------------------

    def dispatch(self, method: str, target: str, auth: str | None, body: bytes) -> _Reply:
        """Answer one request; the handler adds latency and does the I/O."""
        path, query = _split_target(target)
        role, token = self.authenticate(auth)
        segments = path.split("/")
        reply: _Reply
        if segments[:3] != ["", "api", "v1"] or len(segments) < 4:
            reply = _not_found_route()
        elif segments[3:] == ["documents"] and method in ("GET", "HEAD"):
            reply = self._guarded(role, token, lambda: self._list_documents(query))
        elif segments[3:] == ["models"] and method in ("GET", "HEAD"):
            reply = self._guarded(role, token, lambda: self._list_models(query))
        elif len(segments) == 6 and segments[3] == "documents" and segments[4]:
            document_id = _decode_segment(segments[4])
            action = (method, segments[5])
            matched = True
            if action == ("POST", "draft"):
                reply = self._create_draft(role, token, document_id, body)
            elif action == ("DELETE", "draft"):
                reply = self._guarded(role, token, lambda: self._discard(role, document_id, body))
            elif action in (("GET", "drafts"), ("HEAD", "drafts")):
                reply = self._guarded(role, token, lambda: self._list_drafts(document_id))
            else:
                matched = False
                reply = _not_found_route()
            if matched:
                # Log which document (and branch) the draft request was for.
                reply.document_id = document_id
                reply.branch_id = _branch_of(body)
        else:
            reply = _not_found_route()
        reply.role = role
        if not reply.drop:
            reply.delay += self.delay()
        return reply

    def authenticate(self, auth: str | None) -> tuple[Role, str | None]:
        """The caller's role, and its token when the token is valid."""
        if auth is None:
            return "missing", None
        scheme, _, credential = auth.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer":
            return "invalid", None
        with self.lock:
            role = self.tokens.get(credential)
        if role is None:
            return "invalid", None
        return role, credential

    def _gate(self, role: Role, token: str | None) -> _Reply | None:
        """Auth then rate limit; None when the request may go on."""
        if role == "missing":
            return _json_reply(401, {"error": "Unauthorized", "message": "Missing API key"})
        if token is None:
            # Omni answers an unknown token with 403 and a nested error object.
            return _json_reply(403, {"error": {"code": 403, "message": "Invalid bearer token"}})
        return self._rate_limit(token)

    def _guarded(self, role: Role, token: str | None, route: Callable[[], _Reply]) -> _Reply:
        refused = self._gate(role, token)
        if refused is not None:
            return refused
        try:
            return route()
        except _BadRequest as exc:
            return _error(exc.status, str(exc))

    def _rate_limit(self, token: str) -> _Reply | None:
        settings = self.settings
        if settings.rate_limit is None:
            return None
        requests, per = settings.rate_limit
        now = time.monotonic()
        with self.lock:
            window = self.windows.setdefault(token, collections.deque())
            # A trailing window, not a bucket: a bucket that bursts N and
            # refills lets nearly 2N through in one window, Omni's WAF does not.
            while window and window[0] <= now - per:
                window.popleft()
            if len(window) < requests:
                window.append(now)
                return None
            wait = window[0] + per - now
        reply = _error(429, f"Rate limit exceeded ({_rate_text(requests, per)})")
        reply.headers.append(("X-Omni-Waf-Action", "block"))
        if settings.retry_after == "seconds":
            reply.headers.append(("Retry-After", str(max(1, math.ceil(wait)))))
        elif settings.retry_after == "date":
            # HTTP-dates have whole seconds: round up so the date is never early.
            when = math.ceil(time.time() + max(wait, 1.0))
            reply.headers.append(("Retry-After", email.utils.formatdate(when, usegmt=True)))
        return reply

    def take_scripted(self) -> _Scripted | None:
        with self.lock:
            return self.scripted.popleft() if self.scripted else None

    # -- create draft -----------------------------------------------------

    def _create_draft(self, role: Role, token: str | None, document_id: str, body: bytes) -> _Reply:
        scripted = self.take_scripted()
        if scripted is not None:
            reply = _Reply(scripted.status, scripted.body, list(scripted.headers))
            reply.draft_id = _identifier_of(scripted.status, scripted.body)
            return reply
        refused = self._gate(role, token)
        if refused is not None:
            return refused
        settings = self.settings
        with self.lock:
            # Always draw the same four numbers so the n-th request's fate
            # depends only on the seed and n, whatever the rates are.
            r_drop, r_fail, r_slow = self.rng.random(), self.rng.random(), self.rng.random()
            fail_status = self.rng.choice((500, 502, 503, 504))
        if r_drop < settings.drop_rate:
            return _Reply(0, drop=True)
        if r_fail < settings.fail_rate:
            return _fault_reply(fail_status)
        slow = settings.slow_seconds if r_slow < settings.slow_rate else 0.0
        try:
            reply = self._draft(role, document_id, body)
        except _BadRequest as exc:
            reply = _error(exc.status, str(exc))
        reply.delay += slow
        return reply

    def _lookup(self, document_id: str, body: bytes) -> tuple[SandboxDocument, str | None]:
        branch_id = _parse_draft_body(body)
        doc = self.doc_by_id.get(document_id)
        if doc is None:
            raise _BadRequest(f"Document with identifier {document_id} not found", 404)
        if branch_id is not None:
            canonical = branch_id.lower()
            if canonical not in self.branch_by_id:
                raise _BadRequest(f"Branch {branch_id} not found", 404)
            branch_id = canonical
        return doc, branch_id

    def _draft(self, role: Role, document_id: str, body: bytes) -> _Reply:
        doc, branch_id = self._lookup(document_id, body)
        if role != "editor":
            raise _BadRequest("Permission denied - EDITOR role required", 403)
        if not doc.eligible:
            raise _BadRequest("Document is not eligible for publishing workflow")
        key = (doc.identifier, branch_id)
        with self.lock:
            draft = self.drafts.get(key)
            if draft is None:
                draft = self._new_draft_id()
                self.drafts[key] = draft
        return _json_reply(200, {"identifier": draft}, draft_id=draft)

    def _new_draft_id(self) -> str:
        # Called with the lock held.
        while True:
            draft = f"{self.draft_rng.getrandbits(32):08x}"
            if draft not in self.issued_drafts:
                self.issued_drafts.add(draft)
                return draft

    def _discard(self, role: Role, document_id: str, body: bytes) -> _Reply:
        doc, branch_id = self._lookup(document_id, body)
        if role != "editor":
            raise _BadRequest("Permission denied - EDITOR role required", 403)
        with self.lock:
            draft = self.drafts.pop((doc.identifier, branch_id), None)
        if draft is None:
            raise _BadRequest("Draft not found", 404)
        return _json_reply(200, {"message": "Draft discarded successfully"}, draft_id=draft)

    def _list_drafts(self, document_id: str) -> _Reply:
        doc = self.doc_by_id.get(document_id)
        if doc is None:
            raise _BadRequest(f"Document with identifier {document_id} not found", 404)
        with self.lock:
            mine = [(b, d) for (i, b), d in self.drafts.items() if i == doc.identifier]
        records = [
            {"identifier": d, "documentIdentifier": doc.identifier, "branchId": b} for b, d in mine
        ]
        page_info = {
            "hasNextPage": False,
            "nextCursor": None,
            "pageSize": max(1, len(records)),
            "totalRecords": len(records),
        }
        return _json_reply(200, {"pageInfo": page_info, "records": records})

    # -- list endpoints ---------------------------------------------------

    def _list_documents(self, query: str) -> _Reply:
        params = _query_params(query, _DOC_PARAMS)
        page_size = _page_size(params.get("pageSize"), 50)
        for name in ("creatorId", "folderId", "userId"):
            _check_uuid(params, name)
        sort_field = _choice(params, "sortField", _DOC_SORT, "name")
        descending = _choice(params, "sortDirection", ("asc", "desc"), "asc") == "desc"
        include = set(filter(None, params.get("include", "").split(",")))
        labels = [x for x in params.get("labels", "").split(",") if x]
        docs: list[SandboxDocument] = list(self.documents)
        if "folderId" in params:
            docs = [d for d in docs if _folder_id(d.folder) == params["folderId"].lower()]
        if "creatorId" in params:
            docs = [d for d in docs if _owner_id(d.owner) == params["creatorId"].lower()]
        if labels or "onlyFavorites" in include:
            docs = []  # sandbox documents carry no labels and nobody favourites them
        # favorites/visits are all zero here, so they fall back to name order.
        key = "updatedAt" if sort_field == "updatedAt" else "name"
        records = [self._document_record(d, include) for d in docs]
        records.sort(key=lambda r: (str(r[key] or ""), str(r["identifier"])), reverse=descending)
        return _page("documents", records, params.get("cursor"), page_size)

    def _document_record(self, doc: SandboxDocument, include: set[str]) -> _JSON:
        folder: _JSON | None = None
        if doc.folder:
            folder = {
                "id": _folder_id(doc.folder),
                "name": doc.folder.rstrip("/").rsplit("/", 1)[-1],
                "path": doc.folder,
                "scope": "organization",
            }
        kind = "dashboards" if doc.has_dashboard else "w"
        record: _JSON = {
            "identifier": doc.identifier,
            "name": doc.name,
            "type": "document",
            "scope": "organization",
            "deleted": False,
            "hasDashboard": doc.has_dashboard,
            "connectionId": self.connection_id,
            "description": None,
            "folder": folder,
            "owner": {"id": _owner_id(doc.owner), "name": doc.owner},
            "updatedAt": doc.updated_at,
            "url": f"{self.origin}/{kind}/{urllib.parse.quote(doc.identifier, safe='')}",
        }
        if "_count" in include:
            record["_count"] = {"favorites": 0, "views": 0}
        if "labels" in include:
            record["labels"] = []
        return record

    def _list_models(self, query: str) -> _Reply:
        params = _query_params(query, _MODEL_PARAMS)
        page_size = _page_size(params.get("pageSize"), 20)
        for name in ("baseModelId", "connectionId", "modelId"):
            _check_uuid(params, name)
        kind = _choice(params, "modelKind", _MODEL_KINDS, None)
        _choice(params, "includeDeleted", ("0", "1", "true", "false"), None)
        sort_field = _choice(params, "sortField", _MODEL_SORT, None)
        descending = _choice(params, "sortDirection", ("asc", "desc"), "asc") == "desc"
        include = set(filter(None, params.get("include", "").split(",")))
        records = self._model_records("activeBranches" in include)
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

    def _model_records(self, with_branches: bool) -> list[_JSON]:
        created = _iso(_EPOCH)
        base = {"connectionId": self.connection_id, "createdAt": created, "updatedAt": created}
        records: list[_JSON] = [
            {
                "id": self.schema_model_id,
                "name": "sandbox_connection",
                "modelKind": "SCHEMA",
                "baseModelId": None,
                "deletedAt": None,
                **base,
            },
            {
                "id": self.shared_model_id,
                "name": "Sandbox model",
                "modelKind": "SHARED",
                "baseModelId": self.schema_model_id,
                "deletedAt": None,
                **base,
            },
        ]
        records += [
            {
                "id": b.id,
                "name": b.name,
                "modelKind": "BRANCH",
                "baseModelId": b.base_model_id,
                "deletedAt": None,
                **base,
            }
            for b in self.branches
        ]
        if with_branches:
            for record in records:
                record["branches"] = [
                    {"id": b.id, "name": b.name}
                    for b in self.branches
                    if b.base_model_id == record["id"]
                ]
        return records


# --------------------------------------------------------------------------
# Small pure helpers


def _split_target(target: str) -> tuple[str, str]:
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
    """The branchId of a draft body, or raise _BadRequest."""
    if not body.strip():
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("Request body must be valid JSON") from None
    if not isinstance(payload, dict):
        raise _BadRequest("Request body must be a JSON object")
    if "branchId" not in payload:
        return None
    branch_id = payload["branchId"]
    if not isinstance(branch_id, str) or not _UUID_RE.fullmatch(branch_id):
        raise _BadRequest("branchId must be a UUID string")
    return branch_id


def _string_field(body: bytes, key: str) -> str | None:
    """A string field of a JSON object body, or None whatever else is wrong with it."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = payload.get(key) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def _branch_of(body: bytes) -> str | None:
    """branchId for the request log, whatever else is wrong with the body."""
    return _string_field(body, "branchId")


def _identifier_of(status: int, body: bytes) -> str | None:
    return _string_field(body, "identifier") if status == 200 else None


def _query_params(query: str, known: frozenset[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name not in known:
            raise _BadRequest(f"Unknown query parameter: {name}")
        params.setdefault(name, value)
    return params


def _page_size(value: str | None, default: int) -> int:
    if value is None:
        return default
    if not _DIGITS_RE.fullmatch(value) or not 1 <= int(value) <= 100:
        raise _BadRequest("pageSize must be an integer between 1 and 100")
    return int(value)


def _check_uuid(params: Mapping[str, str], name: str) -> None:
    if name in params and not _UUID_RE.fullmatch(params[name]):
        raise _BadRequest(f"{name} must be a UUID")


def _choice(
    params: Mapping[str, str], name: str, allowed: Sequence[str], default: str | None
) -> str | None:
    value = params.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise _BadRequest(f"{name} must be one of: {', '.join(allowed)}")
    return value


def _folder_id(path: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"folder/{path}"))


def _owner_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"owner/{name}"))


def _encode_cursor(kind: str, offset: int) -> str:
    raw = f"{kind}:{offset}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        cursor_kind, _, offset = raw.partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _BadRequest("Invalid cursor") from None
    if cursor_kind != kind or not _DIGITS_RE.fullmatch(offset):
        raise _BadRequest("Invalid cursor")
    return int(offset)


def _page(kind: str, records: list[_JSON], cursor: str | None, page_size: int) -> _Reply:
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


# --------------------------------------------------------------------------
# HTTP layer


class _Server(http.server.ThreadingHTTPServer):
    # Handler threads must not delay close(): a kept-alive idle connection or
    # a "slow" request would otherwise block server_close() until it ends.
    daemon_threads = True
    block_on_close = False
    # socketserver's default listen backlog is 5: a client opening 16 connections at once
    # would see SYNs dropped and a 1 s retransmit, i.e. spurious connect timeouts.
    request_queue_size = 128
    # Bounds handle_request()'s own select, should a pending connection vanish
    # between run()'s select and the accept.
    timeout = 0.5

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._wake_r.close()
            self._wake_w.close()
            raise

    def run(self) -> None:
        """Accept connections until stop_serving(); the serve thread's target."""
        # Instead of serve_forever(), whose shutdown() waits for a poll timeout
        # (0.5 s by default): a byte on the socketpair stops this loop at once.
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    self.handle_request()

    def stop_serving(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup
        # that can take seconds on some machines; the sandbox needs no name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        # The default prints a traceback to stderr; a client that vanished
        # mid-answer is routine here, not worth a notebook's red text.
        logger.debug("sandbox: error while serving a connection", exc_info=True)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body
    # waits for the client's delayed ACK (~40 ms per request on Linux).
    disable_nagle_algorithm = True
    server_version = "omni-nb-sandbox"
    sys_version = ""

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        super().setup()
        with self._server.connections_lock:
            self._server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            with self._server.connections_lock:
                self._server.connections.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        # Silenced: http.server writes to stderr. One DEBUG line per request
        # is logged by _dispatch, without any header values.
        return

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, 501...) in JSON."""
        logger.debug("sandbox: protocol error %s: %s", code, message)
        try:
            phrase = http.HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps({"error": phrase, "message": message or phrase}).encode()
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            # Unparseable request lines default to HTTP/0.9, which has no status
            # line or headers; nobody speaks 0.9, so answer in HTTP/1.1 instead.
            self.request_version = "HTTP/1.1"
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            return
        self._linger()

    def _dispatch(self) -> None:
        state = self._server.state
        seq = state.begin()
        try:
            self._handle_request(state, seq)
        finally:
            state.end()

    def _handle_request(self, state: _State, seq: int) -> None:
        received_at = time.time()
        words = self.requestline.split()
        target = words[1] if len(words) >= 2 else self.path  # raw: before '//' collapsing
        path, query = _split_target(target)
        auth = self.headers.get("Authorization")
        body, framing_error = self._read_body()
        if framing_error is not None:
            reply = framing_error
            reply.role = state.authenticate(auth)[0]
            reply.delay = state.delay()
        else:
            try:
                reply = state.dispatch(self.command, target, auth, body)
            except Exception:
                logger.error("sandbox: internal error on %s %s", self.command, path, exc_info=True)
                reply = _error(500, "Sandbox internal error")
        # wait() returns True as soon as the sandbox closes, so close() stays
        # fast; a closing server answers nothing, like a process being killed.
        if reply.drop or (reply.delay > 0 and state.stopping.wait(reply.delay)):
            reply.status = 0
            reply.drop = True
        answered_at = time.time()
        # Recorded before the answer goes out: a client that has its answer
        # must find the request in sb.requests() straight away.
        state.record(
            seq,
            RequestRecord(
                method=self.command,
                path=path,
                query=query,
                document_id=reply.document_id,
                branch_id=reply.branch_id,
                body=body,
                role=reply.role,
                has_authorization=auth is not None,
                user_agent=self.headers.get("User-Agent"),
                status=reply.status,
                draft_id=reply.draft_id,
                received_at=received_at,
                answered_at=answered_at,
                thread=threading.current_thread().name,
            ),
        )
        if reply.drop:
            self._drop()
        else:
            self._write(reply)
        logger.debug(
            "sandbox: %s %s -> %s (role=%s, %.1f ms)",
            self.command,
            path,
            reply.status or "dropped",
            reply.role,
            (answered_at - received_at) * 1000,
        )

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _read_body(self) -> tuple[bytes, _Reply | None]:
        transfer_encoding = self.headers.get("Transfer-Encoding")
        if transfer_encoding is not None:
            if transfer_encoding.strip().lower() != "chunked":
                return b"", self._framing(501, "Unsupported Transfer-Encoding")
            return self._read_chunked()
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or ()}
        if not lengths:
            return b"", None
        value = lengths.pop()
        if lengths or not _DIGITS_RE.fullmatch(value):
            return b"", self._framing(400, "Invalid Content-Length")
        length = int(value)
        if length > MAX_BODY_BYTES:
            # Refuse unread: the connection is closed after the answer anyway.
            return b"", self._framing(413, f"Request body larger than {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            return body, self._framing(400, "Incomplete request body")
        return body, None

    def _read_chunked(self) -> tuple[bytes, _Reply | None]:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _HEX_RE.fullmatch(size_text):
                return b"", self._framing(400, "Malformed chunked body")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                return b"", self._framing(413, f"Request body larger than {MAX_BODY_BYTES} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.read(2) != b"\r\n":
                return b"", self._framing(400, "Malformed chunked body")
            chunks.append(chunk)
        for _ in range(100):  # trailer section, ignored
            line = self.rfile.readline(8192)
            if line in (b"\r\n", b"\n", b""):
                break
        return b"".join(chunks), None

    def _framing(self, status: int, message: str) -> _Reply:
        # The rest of the stream can no longer be trusted: answer and close.
        reply = _error(status, message)
        reply.close = True
        return reply

    def _drop(self) -> None:
        # SO_LINGER 0 makes close() send RST: the client sees a reset with no
        # bytes, like a proxy that died. The rfile holds a reference to the
        # socket, so it has to be closed too or the fd would stay open.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def _write(self, reply: _Reply) -> None:
        if reply.close:
            self.close_connection = True
        no_body = reply.status < 200 or reply.status in (204, 304)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            if not no_body:
                self.send_header("Content-Length", str(len(reply.body)))
            if reply.close:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and not no_body:
                self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True
            return
        if reply.close:
            self._linger()

    def _linger(self) -> None:
        # Closing a socket that still has unread request bytes makes the kernel
        # send RST, which can destroy the answer before the client reads it
        # (a 413 the client never sees). Half-close, then drain briefly.
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            deadline = time.monotonic() + 1.0
            drained = 0
            while time.monotonic() < deadline and drained < 64 * MAX_BODY_BYTES:
                data = self.connection.recv(65536)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass


# --------------------------------------------------------------------------
# Public handle


class Sandbox:
    """A running sandbox server; use it as a context manager or call close().

    Example::

        sb = serve(documents=5)
        try:
            print(sb.base_url)  # http://127.0.0.1:PORT/api
        finally:
            sb.close()
    """

    __slots__ = ("_closed", "_server", "_state", "_thread")

    def __init__(self, state: _State, server: _Server, thread: threading.Thread) -> None:
        self._state = state
        self._server = server
        self._thread = thread
        self._closed = False

    # -- addresses and credentials ----------------------------------------

    @property
    def url(self) -> str:
        """The origin, e.g. ``http://127.0.0.1:8787``."""
        return self._state.origin

    @property
    def base_url(self) -> str:
        """The API root (origin + ``/api``), what a client's base URL is set to."""
        return f"{self._state.origin}/api"

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``port=0``)."""
        return int(self._server.server_address[1])

    @property
    def token(self) -> str:
        """The editor token (random per server unless ``serve(token=...)``)."""
        return self._state.editor_token

    @property
    def viewer_token(self) -> str:
        """A valid token with the viewer role: create draft answers 403."""
        return self._state.viewer_token

    @property
    def branches(self) -> list[SandboxBranch]:
        """The seeded branches (feature-a, feature-b, feature-c)."""
        return list(self._state.branches)

    @property
    def documents(self) -> list[SandboxDocument]:
        """The documents the sandbox serves."""
        return list(self._state.documents)

    # -- inspection -------------------------------------------------------

    def drafts(self) -> dict[tuple[str, str | None], str]:
        """A copy of ``{(document identifier, branch id or None): draft id}``.

        Example::

            sb.drafts().get(("doc-0001", None))  # '1a2b3c4d' once created
        """
        with self._state.lock:
            return dict(self._state.drafts)

    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, in arrival order (answered requests only).

        Example::

            statuses = [r.status for r in sb.requests()]
        """
        with self._state.lock:
            records = list(self._state.records)
        records.sort(key=lambda pair: pair[0])
        return [record for _, record in records]

    def clear_requests(self) -> None:
        """Empty the request log.

        Example::

            sb.clear_requests(); assert sb.requests() == []
        """
        with self._state.lock:
            self._state.records.clear()

    # -- control ----------------------------------------------------------

    def configure(
        self,
        *,
        latency: float | _Unset = _UNSET,
        latency_jitter: float | _Unset = _UNSET,
        rate_limit: tuple[int, float] | _Unset | None = _UNSET,
        retry_after: RetryAfter | _Unset | None = _UNSET,
        fail_rate: float | _Unset = _UNSET,
        drop_rate: float | _Unset = _UNSET,
        slow_rate: float | _Unset = _UNSET,
        slow_seconds: float | _Unset = _UNSET,
        seed: int | _Unset = _UNSET,
    ) -> None:
        """Change faults, latency or the rate limit while serving; omitted options stay.

        A new ``seed`` restarts the fault sequence. Thread-safe.

        Example::

            sb.configure(fail_rate=1.0)   # every create-draft answer is a 5xx
            sb.configure(rate_limit=None) # no more 429s
        """
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("latency", latency),
                ("latency_jitter", latency_jitter),
                ("rate_limit", rate_limit),
                ("retry_after", retry_after),
                ("fail_rate", fail_rate),
                ("drop_rate", drop_rate),
                ("slow_rate", slow_rate),
                ("slow_seconds", slow_seconds),
            )
            if value is not _UNSET
        }
        with self._state.lock:
            # Validate before touching anything: a bad value changes nothing.
            settings = dataclasses.replace(self._state.settings, **changes)
            self._state.settings = settings
            if not isinstance(seed, _Unset):
                self._state.rng = random.Random(seed)

    def enqueue(
        self,
        status: int,
        body: bytes | str | Mapping[str, object] = b"",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Script the next ``times`` create-draft answers (FIFO).

        A scripted answer replaces all normal handling (auth, rate limit,
        faults) and does not count against the rate limit. A mapping body is
        sent as JSON; a str or bytes body as text unless ``headers`` sets
        ``Content-Type``. Content-Length is always computed.

        Example::

            sb.enqueue(429, {"error": "Too Many Requests", "message": "slow down"},
                       headers={"Retry-After": "2"})
            sb.enqueue(307, headers={"Location": f"{sb.base_url}/v1/documents/doc-0002/draft"})
            sb.enqueue(200, {"unexpected": True})
        """
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
        content_type: str | None = None
        if isinstance(body, Mapping):
            payload = json.dumps(dict(body)).encode()
            content_type = "application/json"
        elif isinstance(body, str):
            payload = body.encode()
            content_type = "text/plain; charset=utf-8"
        else:
            payload = bytes(body)
            content_type = "application/octet-stream"
        if payload and not any(name.lower() == "content-type" for name, _ in header_list):
            header_list.append(("Content-Type", content_type))
        scripted = _Scripted(status, payload, tuple(header_list))
        with self._state.lock:
            self._state.scripted.extend([scripted] * times)

    def add_token(self, role: Literal["editor", "viewer"] = "editor") -> str:
        """Issue another valid token with its own rate-limit window.

        Example::

            other = sb.add_token("editor")   # e.g. for a second process
        """
        return self._state.add_token(role)

    def close(self) -> None:
        """Stop serving and release the port; fast, idempotent.

        Example::

            sb = serve(); sb.close(); sb.close()  # the second call does nothing
        """
        if self._closed:
            return
        self._closed = True
        # Wake sleeping "slow" handlers first so none outlives the server.
        self._state.stopping.set()
        self._server.stop_serving()
        self._thread.join(timeout=1.0)
        self._server.server_close()
        # Woken handlers log and drop their request within milliseconds; a
        # client still sending a body is cut off by close_connections().
        self._state.wait_idle(timeout=0.5)
        self._server.close_connections()

    stop = close

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Deliberately no tokens: reprs end up in notebooks and logs.
        state = "closed" if self._closed else "serving"
        return (
            f"<Sandbox {state} base_url={self.base_url!r} "
            f"documents={len(self._state.documents)} drafts={len(self._state.drafts)}>"
        )


def serve(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    documents: int | Iterable[SandboxDocument] = 300,
    latency: float = 0.0,
    latency_jitter: float = 0.0,
    rate_limit: tuple[int, float] | None = (60, 60.0),
    retry_after: RetryAfter | None = "seconds",
    fail_rate: float = 0.0,
    drop_rate: float = 0.0,
    slow_rate: float = 0.0,
    slow_seconds: float = 5.0,
    seed: int = 0,
    token: str | None = None,
) -> Sandbox:
    """Start a sandbox on ``host:port`` in a daemon thread and return its handle.

    ``port=0`` picks a free port. All randomness (faults, jitter, draft ids)
    comes from ``seed``. Fault rates are drawn independently per create-draft
    request in the order drop, 5xx, slow.

    Example::

        with serve(fail_rate=0.2, seed=7) as sb:
            ...  # about one create-draft answer in five is a 500/502/503/504
    """
    settings = _Settings(
        latency=latency,
        latency_jitter=latency_jitter,
        rate_limit=rate_limit,
        retry_after=retry_after,
        fail_rate=fail_rate,
        drop_rate=drop_rate,
        slow_rate=slow_rate,
        slow_seconds=slow_seconds,
    )
    if isinstance(documents, bool):
        raise TypeError("documents must be an int or an iterable of SandboxDocument")
    docs = seed_documents(documents) if isinstance(documents, int) else list(documents)
    for doc in docs:
        if not isinstance(doc, SandboxDocument):
            raise TypeError(f"documents must hold SandboxDocument, got {type(doc).__name__}")
    state = _State(docs, settings, seed, token)
    server = _Server((host, port), state)
    # AF_INET/AF_INET6 addresses are (str, int, ...) tuples.
    bound_host, bound_port = cast(tuple[str, int], server.server_address[:2])
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    state.origin = f"http://{url_host}:{bound_port}"
    thread = threading.Thread(
        target=server.run,
        name=f"omni-nb-sandbox:{bound_port}",
        daemon=True,
    )
    try:
        thread.start()
    except BaseException:
        server.server_close()
        raise
    logger.debug("sandbox: serving on %s", state.origin)
    return Sandbox(state, server, thread)


# --------------------------------------------------------------------------
# Command line


def _rate_limit_arg(text: str) -> tuple[int, float] | None:
    if text.strip().lower() in ("off", "none", "0"):
        return None
    requests, sep, per = text.partition("/")
    try:
        limit = (int(requests), float(per) if sep else 60.0)
        _Settings(rate_limit=limit)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected N/SECONDS (e.g. 60/60) or 'off', got {text!r}"
        ) from None
    return limit


def _retry_after_arg(text: str) -> RetryAfter | None:
    value = text.strip().lower()
    if value == "seconds":
        return "seconds"
    if value == "date":
        return "date"
    if value == "none":
        return None
    raise argparse.ArgumentTypeError(f"expected seconds, date or none, got {text!r}")


def main(argv: list[str] | None = None) -> int:
    """Run a sandbox in the foreground until Ctrl-C; returns the exit status.

    Uses the fixed :data:`DEMO_TOKEN` so a second terminal can reuse it.

    Example::

        $ python -m omni_nb.sandbox --port 8787 --fail-rate 0.1 --rate-limit 60/60
    """
    parser = argparse.ArgumentParser(
        prog="python -m omni_nb.sandbox",
        description="Serve a local stand-in for Omni's Create draft API.",
    )
    parser.add_argument("--port", type=int, default=8787, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--documents", type=int, default=300, help="number of seeded documents")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    parser.add_argument("--latency-jitter", type=float, default=0.0, help="extra random 0..J s")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of 5xx answers")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of dropped requests")
    parser.add_argument("--slow-rate", type=float, default=0.0, help="share of slow answers")
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="delay of a slow answer")
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit_arg,
        default=(60, 60.0),
        metavar="N/SECONDS",
        help="per-token trailing-window limit, e.g. 60/60, or 'off'",
    )
    parser.add_argument(
        "--retry-after",
        type=_retry_after_arg,
        default="seconds",
        metavar="{seconds,date,none}",
        help="Retry-After form on 429",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for faults and draft ids")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s")
    try:
        sb = serve(
            args.port,
            args.host,
            documents=args.documents,
            latency=args.latency,
            latency_jitter=args.latency_jitter,
            rate_limit=args.rate_limit,
            retry_after=args.retry_after,
            fail_rate=args.fail_rate,
            drop_rate=args.drop_rate,
            slow_rate=args.slow_rate,
            slow_seconds=args.slow_seconds,
            seed=args.seed,
            token=DEMO_TOKEN,
        )
    except (OSError, ValueError) as exc:
        print(f"omni sandbox: cannot start: {exc}", file=sys.stderr)
        return 1
    with sb:
        limit = "off" if args.rate_limit is None else _rate_text(*args.rate_limit)
        print(
            f"Omni sandbox serving {args.documents} documents at {sb.url}\n"
            f"  API root     : {sb.base_url}\n"
            f"  editor token : {sb.token}   (sandbox-only demo token)\n"
            f"  viewer token : {sb.viewer_token}\n"
            f"  branches     : "
            + ", ".join(f"{b.name}={b.id}" for b in sb.branches)
            + f"\n  rate limit   : {limit}\n"
            "Use it from another shell:\n"
            f"  export OMNI_BASE_URL={sb.base_url}\n"
            f"  export OMNI_API_TOKEN={sb.token}\n"
            f'  curl -X POST -H "Authorization: Bearer $OMNI_API_TOKEN" '
            f"$OMNI_BASE_URL/v1/documents/doc-0001/draft\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nomni sandbox: stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
