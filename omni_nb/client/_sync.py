"""OmniClient: the synchronous twin (I/O only; every decision is in :mod:`._core`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx

from ..config import Settings
from ..errors import OmniError, UnexpectedResponseError
from ..ratelimit import Limiter, RateLimit
from ._base import BaseClient, settings_for
from ._core import (
    MAX_PAGES,
    Attempts,
    Call,
    CallOutcome,
    ClientOptions,
    Draft,
    Reader,
    RetryPolicy,
    Sent,
    draft_call,
    read_capped,
    read_nothing,
)
from ._core import (
    first_page_size as _page,
)
from .drafts import DraftRecord, discard_call, drafts_call, records_from
from .stamps import WireTrace, keep_attempt_log
from .transport import DeadlineTransport, attempt_deadline, proxy_mounts

__all__ = ["OmniClient"]


class OmniClient(BaseClient):
    """Synchronous Create-draft client.

    Settings come from the arguments (or a resolved ``settings=``), then
    :func:`omni_nb.login`, then ``OMNI_BASE_URL`` / ``OMNI_INSTANCE`` and ``OMNI_API_TOKEN`` /
    ``OMNI_API_KEY``. Every client in the process with the same API root and token shares one
    rate budget.

    Each attempt (name lookup, connect, request, headers, body) ends by ``timeout`` seconds,
    through :class:`~omni_nb.client.transport.DeadlineTransport`; a ``transport`` given
    here is used as it is (the deadline then holds between body chunks only).

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token) as client:
        ...     draft = client.create_draft("doc-0001")
        >>> draft.document_id
        'doc-0001'
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        settings: Settings | None = None,
        instance: str | None = None,
        playground: bool | None = None,
        rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, safe to share
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        on_result: Callable[[CallOutcome], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        limiter: Limiter | None = None,
        rng: random.Random | None = None,
        max_connections: int = 100,
    ) -> None:
        super().__init__(
            settings_for(base_url, token, settings, instance, playground),
            ClientOptions(rate_limit=rate_limit, retry=RetryPolicy.of(max_retries, retry),
                          timeout=timeout, on_result=on_result, limiter=limiter, rng=rng),
        )
        self._sleep = sleep
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        mounts = None
        # Our transports report httpx's trace events: an attempt that ends without writing
        # its headers surely never left (another transport may not say).
        self._traced = transport is None
        if transport is None:
            # Each attempt's deadline reaches the name lookup and every socket read through
            # this transport; the environment's proxies go through one like it.
            transport, mounts = DeadlineTransport(limits=limits), proxy_mounts(limits)
        self._http = httpx.Client(
            transport=transport, mounts=mounts, limits=limits, **self._core.http_options()
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (and end this client's hold on the key's budget)."""
        self._http.close()
        self._core.limiter.close()

    def create_draft(self, document_id: str, branch_id: str | None = None) -> Draft:
        """Create (or get back) the draft of ``document_id`` on ``branch_id``.

        Raises :class:`InvalidInputError` before sending anything for a bad id, else an
        :class:`APIStatusError` subclass or :class:`APIConnectionError` after retries.

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     c.create_draft("doc-0002").identifier == c.create_draft("doc-0002").identifier
            True
        """
        outcome = self.create_draft_outcome(document_id, branch_id)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.draft is not None
        return outcome.draft

    def create_draft_outcome(self, document_id: object, branch_id: object = None) -> CallOutcome:
        """Like :meth:`create_draft`, but failures after sending come back in the outcome.

        Invalid input still raises :class:`InvalidInputError` (nothing was sent).

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     c.create_draft_outcome("nope").error.status_code
            404
        """
        call, doc, branch = draft_call(document_id, branch_id)
        return self.outcome(call, doc, branch, self._core.draft_from)

    def list_documents(
        self, limit: int | None = None, **params: str | int
    ) -> list[dict[str, Any]]:
        """Every document visible to the token, walking all pages of ``GET /v1/documents``
        (the first ``limit`` only, when given: ``limit=1`` is the cheapest call there is).

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve(documents=3) as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     sorted(d["identifier"] for d in c.list_documents())
            ['doc-0001', 'doc-0002', 'doc-0003']
        """
        first = self._core.list_call("/v1/documents", {"pageSize": _page(limit), **params})
        return self._walk(first, limit)

    def list_branches(
        self, base_model_id: str | None = None, **params: str | int
    ) -> list[dict[str, Any]]:
        """Every branch model (``GET /v1/models?modelKind=BRANCH``), all pages; a record's
        ``id`` is the ``branch_id`` to pass. ``params`` are further query parameters
        (``pageSize=20``, ``sortField="name"``), as for :meth:`list_documents`.

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     len(c.list_branches()) > 0
            True
        """
        return self._walk(self._core.branches_call(base_model_id, params))

    def discard_draft(self, document_id: str, branch_id: str | None = None) -> None:
        """Discard (archive) the active draft of ``document_id`` on ``branch_id``.

        A 404 (no active draft, unknown document) raises :class:`NotFoundError` and is
        never retried; a dropped connection is (the call is idempotent).

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     _ = c.create_draft("doc-0004")
            ...     c.discard_draft("doc-0004")
            ...     [d.status for d in c.list_drafts("doc-0004", include_archived=True)]
            ['archived']
        """
        outcome = self.discard_draft_outcome(document_id, branch_id)
        if outcome.error is not None:
            raise outcome.error

    def discard_draft_outcome(self, document_id: object, branch_id: object = None) -> CallOutcome:
        """Like :meth:`discard_draft`, but failures after sending come back in the outcome.

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     c.discard_draft_outcome("doc-0005").error.status_code
            404
        """
        call, doc, branch = discard_call(document_id, branch_id)
        return self.outcome(call, doc, branch, read_nothing)

    def list_drafts(self, document_id: str, include_archived: bool = False) -> list[DraftRecord]:
        """The drafts of ``document_id`` (active ones; archived ones too if asked).

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     made = c.create_draft("doc-0006")
            ...     [d.identifier for d in c.list_drafts("doc-0006")] == [made.identifier]
            True
        """
        call, doc = drafts_call(document_id, include_archived)
        payload, _, _ = self._send(call)
        return records_from(payload, doc)

    def outcome(
        self, call: Call, document_id: str = "", branch_id: str | None = None,
        read: Reader | None = None,
    ) -> CallOutcome:
        """Send any :class:`Call` with this client's rate budget, retries and error
        classification; failures after sending come back in the outcome (never raised).

        This is the one door an operation needs (a batch operation is its ``Call`` plus
        this): ``document_id``/``branch_id`` label the outcome (the call's path is already
        built from checked ids), ``read`` turns a usable answer into a :class:`Draft` (None:
        read nothing; the decoded answer is in ``outcome.payload`` either way) and
        ``outcome.action`` is ``call.action``.

        Example:
            >>> from omni_nb import sandbox
            >>> from omni_nb.client import Call
            >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     o = c.outcome(Call("GET", "/v1/documents/doc-0001/drafts", action="list"),
            ...                   "doc-0001")
            >>> o.ok, o.action, o.payload
            (True, 'list', [])
        """
        read = read_nothing if read is None else read
        state = Attempts()
        sent: Sent | OmniError
        try:
            sent = self._send(call, state)
        except OmniError as exc:
            sent = exc
        except BaseException as exc:  # interrupted: the attempts that may have acted stay known
            keep_attempt_log(exc, state.log)
            raise
        return self._core.report(document_id, branch_id, sent, state, read, call.action)

    def _walk(self, first: Call, limit: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        call: Call | None = first
        for _ in range(MAX_PAGES):
            if call is None or (limit is not None and len(out) >= limit):
                return out[:limit]
            payload, _, _ = self._send(call)
            records, call = self._core.next_page(call, payload)
            out.extend(records)
        raise UnexpectedResponseError(200, f"{first.path}: more than {MAX_PAGES:,} pages")

    def _send(self, call: Call, state: Attempts | None = None) -> Sent:
        core = self._core
        state = state or Attempts()
        while True:
            state.attempt += 1
            held = time.perf_counter()
            waited = core.limiter.acquire(self._sleep)
            # Time in the shared budget's queue is queued_s, not this call's retry waits:
            # a long queue must not use up max_wait (its 429 waits count in after_failure).
            state.held(held, waited)
            try:
                deadline = core.deadline()
                request = core.build(call, deadline)
                state.sending()
                wire = WireTrace(core.limiter, deadline, state.log, traced=self._traced)
                request.extensions["trace"] = wire.event  # the moment it is written
                # The deadline covers lookup, connect, headers and body.
                with wire, attempt_deadline(deadline):
                    response = self._http.send(request, stream=True)
                    wire.answered(response.status_code, response.headers)
                    core.dated(response.headers, wire.interval())  # Omni's clock
                    try:
                        body = core.redacted(read_capped(response.iter_bytes(), deadline))
                    finally:
                        response.close()
                return core.interpret(response, body), state.attempt, response.status_code
            except httpx.HTTPError as exc:
                error: OmniError = core.transport_error(exc)
            except OmniError as exc:
                error = exc
            wait = core.after_failure(error, state, call)
            if wait:
                self._sleep(wait)
