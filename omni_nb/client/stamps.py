"""First-send stamps: when each attempt's request was really written, and when it was answered.

A rate rule counts a request when it *arrives*, and the time between the rate budget's
claim and the request's arrival is not only the network's: the wait for a pooled
connection, a TCP connect and a TLS handshake all come between them. httpx's documented
``trace`` request extension reports the moment the request headers are written (after the
pool wait, the connect and the handshake); :class:`WireTrace` listens for it on each attempt
and tells the rate budget (``limiter.sent(at)``), which spaces later sends from there. An
attempt that never left (no connection, its headers never written) gives its claim back
(``limiter.unsent()``). A transport that reports no trace (``httpx.MockTransport``) simply
never stamps: the budget keeps its claim time.

Each attempt that could have reached the application also leaves an
:class:`~omni_nb.client._core.AttemptInterval` (sent, answered) on the call's state: what an
undo reads to know which attempts may have acted. A call cancelled while an attempt is in
flight (``asyncio.CancelledError``, ``KeyboardInterrupt``) raises as before, with its
intervals so far on the exception (:func:`attempt_log_of`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

import httpx

from ._core import AttemptInterval, Deadline

__all__ = ["SendSide", "WireTrace", "attempt_log_of", "keep_attempt_log"]

#: The header Omni's firewall puts on a 429 it answered itself (see the API notes).
WAF_HEADER = "x-omni-waf-action"
#: httpx errors raised before a request is written: no connection was had for it.
_BEFORE_WRITE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
                 httpx.UnsupportedProtocol)
#: Where a cancelled call leaves its intervals (an attribute of the exception it raises).
_LOG_ATTRIBUTE = "omni_nb_attempt_log"


class SendSide(Protocol):
    """What a trace tells the rate budget: a claim written to the wire, or never sent, and
    the answer's round trip (a :class:`~omni_nb.ratelimit.Limiter` or its caller)."""

    def sent(self, at: float | None = None) -> None:
        """The claim this thread or task made last was written at ``at`` (wall clock)."""

    def unsent(self) -> None:
        """That claim never left."""

    def observe(self, round_trip_s: float, status: int | None = None) -> None:
        """An answer (``status``) came, ``round_trip_s`` after the send began."""


class WireTrace:
    """One attempt's moments on the wire, from httpx's ``trace`` extension.

    Used as a context manager around the attempt: put :meth:`event` (sync client) or
    :meth:`aevent` (async client) in the request's ``trace`` extension, call
    :meth:`answered` when the response headers are in; on leaving, the attempt's
    :class:`AttemptInterval` is appended to ``into`` when it could have reached the
    application, and a claim that never left is given back to the budget. ``traced`` says
    the transport is known to report trace events (httpx's own and
    :class:`~omni_nb.client.transport.DeadlineTransport` do), so an attempt that ends
    without writing its headers surely never left. ``clock`` is the wall clock the stamps
    are read from.

    Example:
        >>> from omni_nb.ratelimit import Limiter
        >>> log: list[AttemptInterval] = []
        >>> t = [100.0]
        >>> with WireTrace(Limiter(None), Deadline(30.0), log, clock=lambda: t[0]) as wire:
        ...     wire.event("http11.send_request_headers.started", {})
        ...     t[0] = 100.25
        ...     wire.event("http11.receive_response_headers.complete", {})
        ...     wire.answered(200, httpx.Headers())
        >>> log[0].sent_at, log[0].answered_at, log[0].status, log[0].reached_app
        (100.0, 100.25, 200, True)
    """

    __slots__ = ("_before", "_before_mono", "_clock", "_deadline", "_into", "_limiter",
                 "_saw", "_traced", "answered_at", "started_at", "status", "waf", "written_at")

    def __init__(
        self, limiter: SendSide, deadline: Deadline, into: list[AttemptInterval], *,
        traced: bool = False, clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter, self._deadline, self._into = limiter, deadline, into
        self._traced, self._clock = traced, clock
        self._before = clock()  # the send time when the transport reports none
        self._before_mono = time.perf_counter()
        self._saw = False  # any trace event on this attempt (the transport traces)
        self.started_at: float | None = None  # headers began to be written
        self.written_at: float | None = None  # headers written
        self.answered_at: float | None = None  # the answer's headers arrived
        self.status: int | None = None
        self.waf = False  # a 429 the firewall answered: it never reached the application

    def __enter__(self) -> Self:
        self._before, self._before_mono = self._clock(), time.perf_counter()
        return self

    def event(self, name: str, info: dict[str, Any]) -> None:
        """httpx's ``trace`` callback for the sync client: ``(event name, info)``."""
        self._saw = True
        request = info.get("request")
        if getattr(request, "method", None) == b"CONNECT":
            return  # a proxy's tunnel, not our request (it shares the request's extensions)
        _, _, step = name.partition(".")
        if step == "send_request_headers.started":
            self.started_at = self._clock()
        elif step == "send_request_headers.complete":
            self.written_at = self._clock()
            self._limiter.sent(self.written_at)
        elif step == "receive_response_headers.complete":
            self.answered_at = self._clock()

    async def aevent(self, name: str, info: dict[str, Any]) -> None:
        """The async client's ``trace`` callback (httpx awaits it): :meth:`event`."""
        self.event(name, info)

    def answered(self, status: int, headers: httpx.Headers) -> None:
        """The response headers are in: note the status and tell the budget the round trip
        from just before the send (a fresh connection's set-up included, as the budget's
        allowance expects)."""
        round_trip = time.perf_counter() - self._before_mono
        if self.answered_at is None:
            self.answered_at = self._clock()
        self.status = status
        self.waf = status == 429 and headers.get(WAF_HEADER, "").strip().lower() == "block"
        self._limiter.observe(round_trip, status)

    def left(self, error: BaseException | None) -> bool:
        """Whether the attempt may have reached the server: answered, its headers began to
        be written, or (with no trace to tell) it failed other than before writing."""
        if self.status is not None or self.started_at is not None:
            return True
        if isinstance(error, _BEFORE_WRITE):
            return False
        return not (self._traced or self._saw)

    def interval(self) -> AttemptInterval:
        """The attempt as :class:`AttemptInterval` (never answered: until its deadline)."""
        sent = self.started_at if self.started_at is not None else self._before
        if self.status is None or self.answered_at is None:
            return AttemptInterval(sent, max(sent, self._deadline.wall_at), None,
                                   reached_app=True, answered=False)
        return AttemptInterval(sent, self.answered_at, self.status,
                               reached_app=not self.waf, answered=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.left(exc):
            self._into.append(self.interval())
        else:
            self._limiter.unsent()


def keep_attempt_log(exc: BaseException, log: Sequence[AttemptInterval]) -> None:
    """Leave a call's attempt intervals on the exception that cut it short (a cancel, an
    interrupt), for whoever records the call; read them back with :func:`attempt_log_of`.

    Example:
        >>> stop = KeyboardInterrupt()
        >>> keep_attempt_log(stop, [AttemptInterval(1.0, 31.0, None, True, False)])
        >>> attempt_log_of(stop)[0].answered
        False
    """
    # An exception type without a __dict__ keeps nothing: the call still raises as it was.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, _LOG_ATTRIBUTE, tuple(log))


def attempt_log_of(exc: BaseException) -> tuple[AttemptInterval, ...]:
    """The attempt intervals a call left on the exception that cut it short (empty when it
    left none): the attempts that may have acted although the call has no outcome.

    Example:
        >>> attempt_log_of(ValueError("not from a call"))
        ()
    """
    found = getattr(exc, _LOG_ATTRIBUTE, ())
    return found if isinstance(found, tuple) else ()
