"""AsyncOmniClient: the asynchronous twin (I/O only; every decision is in :mod:`._core`)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
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
    aread_capped,
    draft_call,
    read_nothing,
)
from ._core import (
    first_page_size as _page,
)
from .drafts import DraftRecord, discard_call, drafts_call, records_from
from .stamps import WireTrace, keep_attempt_log

__all__ = ["AsyncOmniClient"]


class AsyncOmniClient(BaseClient):
    """Asynchronous twin of :class:`~omni_nb.OmniClient` (same arguments, awaitable methods).

    Create it inside the event loop that uses it.

    Example:
        >>> import asyncio
        >>> from omni_nb import sandbox
        >>> async def main(sb):
        ...     async with AsyncOmniClient(sb.base_url, sb.token) as client:
        ...         return await client.create_draft("doc-0003")
        >>> with sandbox.serve() as sb:
        ...     asyncio.run(main(sb)).document_id
        'doc-0003'
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
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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
        # httpx's own transport reports trace events: an attempt that ends without writing
        # its headers surely never left (another transport may not say).
        self._traced = transport is None
        self._http = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            **self._core.http_options(),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (and end this client's hold on the key's budget)."""
        await self._http.aclose()
        self._core.limiter.close()

    async def create_draft(self, document_id: str, branch_id: str | None = None) -> Draft:
        """Async :meth:`OmniClient.create_draft`.

        Example:
            >>> import asyncio
            >>> from omni_nb import sandbox
            >>> async def main(sb):
            ...     async with AsyncOmniClient(sb.base_url, sb.token) as client:
            ...         return await client.create_draft("doc-0001")
            >>> with sandbox.serve() as sb:
            ...     asyncio.run(main(sb)).document_id
            'doc-0001'
        """
        outcome = await self.create_draft_outcome(document_id, branch_id)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.draft is not None
        return outcome.draft

    async def create_draft_outcome(
        self, document_id: object, branch_id: object = None
    ) -> CallOutcome:
        """Async :meth:`OmniClient.create_draft_outcome`.

        Example:
            >>> import asyncio
            >>> from omni_nb import sandbox
            >>> async def main(sb):
            ...     async with AsyncOmniClient(sb.base_url, sb.token) as client:
            ...         return await client.create_draft_outcome("nope")
            >>> with sandbox.serve() as sb:
            ...     asyncio.run(main(sb)).error.status_code
            404
        """
        call, doc, branch = draft_call(document_id, branch_id)
        return await self.outcome(call, doc, branch, self._core.draft_from)

    async def list_documents(
        self, limit: int | None = None, **params: str | int
    ) -> list[dict[str, Any]]:
        """Async :meth:`OmniClient.list_documents`.

        Example:
            >>> import asyncio
            >>> from omni_nb import sandbox
            >>> async def main(sb):
            ...     async with AsyncOmniClient(sb.base_url, sb.token) as client:
            ...         return await client.list_documents(limit=2)
            >>> with sandbox.serve() as sb:
            ...     len(asyncio.run(main(sb)))
            2
        """
        first = self._core.list_call("/v1/documents", {"pageSize": _page(limit), **params})
        return await self._walk(first, limit)

    async def list_branches(
        self, base_model_id: str | None = None, **params: str | int
    ) -> list[dict[str, Any]]:
        """Async :meth:`OmniClient.list_branches`.

        Example:
            >>> import asyncio
            >>> from omni_nb import sandbox
            >>> async def main(sb):
            ...     async with AsyncOmniClient(sb.base_url, sb.token) as client:
            ...         return await client.list_branches()
            >>> with sandbox.serve() as sb:
            ...     len(asyncio.run(main(sb))) > 0
            True
        """
        return await self._walk(self._core.branches_call(base_model_id, params))

    async def discard_draft(self, document_id: str, branch_id: str | None = None) -> None:
        """Async :meth:`OmniClient.discard_draft`.

        Example:
            >>> import asyncio
            >>> from omni_nb import sandbox
            >>> async def main(sb):
            ...     async with AsyncOmniClient(sb.base_url, sb.token) as client:
            ...         await client.create_draft("doc-0002")
            ...         return await client.discard_draft("doc-0002")
            >>> with sandbox.serve() as sb:
            ...     asyncio.run(main(sb)) is None
            True
        """
        outcome = await self.discard_draft_outcome(document_id, branch_id)
        if outcome.error is not None:
            raise outcome.error

    async def discard_draft_outcome(
        self, document_id: object, branch_id: object = None
    ) -> CallOutcome:
        """Async :meth:`OmniClient.discard_draft_outcome`.

        Example:
            >>> import asyncio
            >>> from omni_nb import sandbox
            >>> async def main(sb):
            ...     async with AsyncOmniClient(sb.base_url, sb.token) as client:
            ...         return await client.discard_draft_outcome("doc-0005")
            >>> with sandbox.serve() as sb:
            ...     asyncio.run(main(sb)).error.status_code
            404
        """
        call, doc, branch = discard_call(document_id, branch_id)
        return await self.outcome(call, doc, branch, read_nothing)

    async def list_drafts(
        self, document_id: str, include_archived: bool = False
    ) -> list[DraftRecord]:
        """Async :meth:`OmniClient.list_drafts`.

        Example:
            >>> import asyncio
            >>> from omni_nb import sandbox
            >>> async def main(sb):
            ...     async with AsyncOmniClient(sb.base_url, sb.token) as client:
            ...         return await client.list_drafts("doc-0006")
            >>> with sandbox.serve() as sb:
            ...     asyncio.run(main(sb))
            []
        """
        call, doc = drafts_call(document_id, include_archived)
        payload, _, _ = await self._send(call)
        return records_from(payload, doc)

    async def outcome(
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
            >>> import asyncio
            >>> from omni_nb import sandbox
            >>> from omni_nb.client import Call
            >>> async def main(sb):
            ...     async with AsyncOmniClient(sb.base_url, sb.token) as c:
            ...         return await c.outcome(Call("GET", "/v1/documents/nope/drafts"), "nope")
            >>> with sandbox.serve() as sb:
            ...     asyncio.run(main(sb)).error.status_code
            404
        """
        read = read_nothing if read is None else read
        state = Attempts()
        sent: Sent | OmniError
        try:
            sent = await self._send(call, state)
        except OmniError as exc:
            sent = exc
        except BaseException as exc:  # cancelled: the attempts that may have acted stay known
            keep_attempt_log(exc, state.log)
            raise
        return self._core.report(document_id, branch_id, sent, state, read, call.action)

    async def _walk(self, first: Call, limit: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        call: Call | None = first
        for _ in range(MAX_PAGES):
            if call is None or (limit is not None and len(out) >= limit):
                return out[:limit]
            payload, _, _ = await self._send(call)
            records, call = self._core.next_page(call, payload)
            out.extend(records)
        raise UnexpectedResponseError(200, f"{first.path}: more than {MAX_PAGES:,} pages")

    async def _send(self, call: Call, state: Attempts | None = None) -> Sent:
        core = self._core
        state = state or Attempts()
        while True:
            state.attempt += 1
            held = time.perf_counter()
            waited = await core.limiter.aacquire(self._sleep)
            # Time in the shared budget's queue is queued_s, not this call's retry waits:
            # a long queue must not use up max_wait (its 429 waits count in after_failure).
            state.held(held, waited)
            try:
                deadline = core.deadline()
                request = core.build(call, deadline)
                state.sending()
                wire = WireTrace(core.limiter, deadline, state.log, traced=self._traced)
                request.extensions["trace"] = wire.aevent  # the moment it is written
                with wire:
                    async with asyncio.timeout(deadline.remaining()):  # the whole attempt
                        response = await self._http.send(request, stream=True)
                        wire.answered(response.status_code, response.headers)
                        core.dated(response.headers, wire.interval())  # Omni's clock
                        try:
                            chunks = response.aiter_bytes()
                            body = core.redacted(await aread_capped(chunks, deadline))
                        finally:
                            await response.aclose()
                return core.interpret(response, body), state.attempt, response.status_code
            except httpx.HTTPError as exc:
                error: OmniError = core.transport_error(exc)
            except TimeoutError:
                error = core.timed_out()
            except OmniError as exc:
                error = exc
            wait = core.after_failure(error, state, call)
            if wait:
                await self._sleep(wait)
