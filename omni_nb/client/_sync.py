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
    RetryPolicy,
    Sent,
    draft_call,
    read_capped,
)
from ._core import now as _now

__all__ = ["OmniClient"]


class OmniClient(BaseClient):
    """Synchronous Create-draft client.

    Settings come from the arguments (or a resolved ``settings=``), then
    :func:`omni_nb.login`, then ``OMNI_BASE_URL`` / ``OMNI_INSTANCE`` and ``OMNI_API_TOKEN`` /
    ``OMNI_API_KEY``. Every client in the process with the same API root and token shares one
    rate budget.

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
        self._http = httpx.Client(
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            **self._core.http_options(),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

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
        started, requested_at = time.perf_counter(), _now()
        sent: Sent | OmniError
        try:
            sent = self._send(call)
        except OmniError as exc:
            sent = exc
        return self._core.report(doc, branch, sent, started, requested_at)

    def list_documents(self, **params: str | int) -> list[dict[str, Any]]:
        """Every document visible to the token, walking all pages of ``GET /v1/documents``.

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve(documents=3) as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     sorted(d["identifier"] for d in c.list_documents())
            ['doc-0001', 'doc-0002', 'doc-0003']
        """
        return self._walk(self._core.list_call("/v1/documents", {"pageSize": 100, **params}))

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

    def _walk(self, first: Call) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        call: Call | None = first
        for _ in range(MAX_PAGES):
            if call is None:
                return out
            payload, _, _ = self._send(call)
            records, call = self._core.next_page(call, payload)
            out.extend(records)
        raise UnexpectedResponseError(200, f"{first.path}: more than {MAX_PAGES:,} pages")

    def _send(self, call: Call) -> Sent:
        core, state = self._core, Attempts()
        while True:
            state.attempt += 1
            state.waited += core.limiter.acquire(self._sleep)
            try:
                request = core.build(call)
                sent = time.monotonic()
                response = self._http.send(request, stream=True)
                core.limiter.observe(time.monotonic() - sent, response.status_code)
                try:
                    body = read_capped(response.iter_bytes())
                finally:
                    response.close()
                return core.interpret(response, body), state.attempt, response.status_code
            except httpx.HTTPError as exc:
                error: OmniError = core.transport_error(exc)
            except OmniError as exc:
                error = exc
            wait = core.after_failure(error, state)
            if wait:
                self._sleep(wait)
