"""OmniClient and AsyncOmniClient: the only module that does HTTP.

The two clients are twins over one :class:`_Core`: building requests, checking input,
classifying answers and choosing retry waits live once in the core; only the I/O loop is
written twice (the httpx pattern).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx

from . import __version__
from ._config import Settings, resolve_settings
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    InvalidInputError,
    NotEligibleError,
    NotFoundError,
    OmniError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from ._ratelimit import Limiter, RateLimit, pause_all, shared_limiter

__all__ = [
    "AsyncOmniClient",
    "CallOutcome",
    "Draft",
    "OmniClient",
    "RetryPolicy",
    "check_branch_id",
    "check_document_id",
]

MAX_DOCUMENT_ID_LENGTH = 256
_MAX_BODY = 1 << 20  # bytes read from any answer; a larger body is cut, never buffered whole
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Omni document ids and slugs are URL path material: RFC 3986 unreserved characters only.
_DOC_ID = re.compile(r"^[A-Za-z0-9._~-]+$")
_DEFAULT = object()


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
class CallOutcome:
    """One finished call, success or failure, as handed to an ``on_result`` hook.

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

    @property
    def ok(self) -> bool:
        """True when a draft identifier came back."""
        return self.draft is not None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How 429, 5xx, timeouts and dropped connections are retried (the call is idempotent).

    ``max_retries`` retries at most; waits are capped exponential backoff with jitter
    (``backoff`` * 2**n, at most ``backoff_cap``), or the server's ``Retry-After`` when it
    is between 0 and ``max_retry_after``; the sum of waits never passes ``max_wait``.

    Example:
        >>> RetryPolicy(max_retries=0).max_retries
        0
    """

    max_retries: int = 6
    backoff: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0
    max_wait: float = 180.0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError("max_retries must be an int")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for name in ("backoff", "backoff_cap", "max_retry_after", "max_wait"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0 or math.isinf(value):
                raise ValueError(f"{name} must be a finite number >= 0")


def check_document_id(document_id: object) -> str:
    """Return the id to send, or raise :class:`InvalidInputError` naming it.

    Omni ids and slugs are path material: letters, digits and ``- . _ ~``, at most 256
    characters. Anything else (``/``, ``?``, ``#``, spaces, control characters, look-alike
    letters) is refused rather than sent: nothing malformed leaves the machine.

    Example:
        >>> check_document_id(" 93874a87 ")
        '93874a87'
        >>> check_document_id("../x")
        Traceback (most recent call last):
        ...
        omni_nb._errors.InvalidInputError: document id '../x': '/' is not allowed ...
    """
    if isinstance(document_id, bool) or not isinstance(document_id, str):
        raise InvalidInputError(
            f"document id {_show(document_id)}: must be a string, not {type(document_id).__name__}"
        )
    value = document_id.strip()
    if not value:
        raise InvalidInputError(f"document id {_show(document_id)}: empty")
    if len(value) > MAX_DOCUMENT_ID_LENGTH:
        raise InvalidInputError(
            f"document id {_show(value)}: {len(value)} characters, "
            f"at most {MAX_DOCUMENT_ID_LENGTH}"
        )
    if not _DOC_ID.match(value):
        bad = next(ch for ch in value if not _DOC_ID.match(ch))
        raise InvalidInputError(
            f"document id {_show(value)}: {_show(bad)} is not allowed (ids use letters, digits "
            "and - . _ ~)"
        )
    if set(value) == {"."}:
        raise InvalidInputError(f"document id {_show(value)}: a path step, not an id")
    return value


def check_branch_id(branch_id: object) -> str | None:
    """Return the canonical (lower-case) branch UUID, None for no branch, or raise.

    Example:
        >>> check_branch_id("7C9E6679-7425-40DE-944B-E07FC1F90AE7")
        '7c9e6679-7425-40de-944b-e07fc1f90ae7'
        >>> check_branch_id(None) is None
        True
    """
    if branch_id is None:
        return None
    if isinstance(branch_id, uuid.UUID):
        return str(branch_id)
    if not isinstance(branch_id, str):
        raise InvalidInputError(
            f"branch id {_show(branch_id)}: must be a UUID string, not {type(branch_id).__name__}"
        )
    value = branch_id.strip()
    if not _UUID.match(value):
        raise InvalidInputError(
            f"branch id {_show(branch_id)}: not a UUID (expected like "
            "7c9e6679-7425-40de-944b-e07fc1f90ae7)"
        )
    return value.lower()


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class _Prepared:
    method: str
    url: str
    json_body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)


class _Core:
    """Everything both clients share: settings, request building, classification, waits."""

    def __init__(
        self,
        base_url: str | None,
        token: str | None,
        instance: str | None,
        playground: bool | None,
        rate_limit: RateLimit | object | None,
        max_retries: int | None,
        retry: RetryPolicy | None,
        timeout: float,
        on_result: Callable[[CallOutcome], None] | None,
        limiter: Limiter | None,
        rng: random.Random | None,
    ) -> None:
        self.settings: Settings = resolve_settings(
            base_url, token, instance=instance, playground=playground
        )
        if rate_limit is _DEFAULT:
            rate_limit = RateLimit()
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError("rate_limit must be an omni_nb.RateLimit or None")
        self.rate_limit: RateLimit | None = rate_limit
        if retry is None:
            retry = RetryPolicy() if max_retries is None else RetryPolicy(max_retries=max_retries)
        elif max_retries is not None:
            raise TypeError("give max_retries or retry, not both")
        self.retry = retry
        if not isinstance(timeout, int | float) or not timeout > 0 or math.isinf(timeout):
            raise ValueError("timeout must be a positive number of seconds")
        self.timeout = float(timeout)
        self.on_result = on_result
        self.limiter = limiter or shared_limiter(
            self.settings.api_root, self.settings.token.fingerprint(), rate_limit
        )
        self.rng = rng or random.Random()
        self.origin = self.settings.origin

    # -- requests ----------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.settings.token.get_secret_value()}",
            "User-Agent": f"omni-nb/{__version__}",
            "Accept": "application/json",
        }

    def draft_request(
        self, document_id: object, branch_id: object
    ) -> tuple[_Prepared, str, str | None]:
        doc = check_document_id(document_id)
        branch = check_branch_id(branch_id)
        # quote(safe="") encodes everything but unreserved characters: the id stays one path
        # segment even if the checks above are ever relaxed.
        url = f"{self.settings.api_root}/v1/documents/{quote(doc, safe='')}/draft"
        body: dict[str, Any] = {} if branch is None else {"branchId": branch}
        return _Prepared("POST", url, json_body=body), doc, branch

    def list_request(self, path: str, params: dict[str, str]) -> _Prepared:
        return _Prepared("GET", f"{self.settings.api_root}{path}", params=dict(params))

    def build(self, prepared: _Prepared) -> httpx.Request:
        headers = self.headers()
        content = None
        if prepared.json_body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(prepared.json_body).encode()
        request = httpx.Request(
            prepared.method, prepared.url, params=prepared.params or None,
            headers=headers, content=content,
        )
        # Belt and braces: the token only ever goes to the configured origin.
        if _origin(str(request.url)) != self.origin:
            raise InvalidInputError("request would leave the configured API root; not sent")
        return request

    # -- answers -----------------------------------------------------------------------------

    def interpret(self, response: httpx.Response, body: bytes) -> Any:
        """The parsed JSON of a usable 2xx, or raise the classified error."""
        status = response.status_code
        if 200 <= status < 300:
            try:
                return json.loads(body) if body else None
            except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
                raise UnexpectedResponseError(
                    status, f"answer is not JSON: {_snippet(body)}", body=_body_text(body)
                ) from None
        raise self.classify_error(response, body)

    def classify_error(self, response: httpx.Response, body: bytes) -> APIStatusError:
        status = response.status_code
        message, parsed = parse_error_body(body, response.reason_phrase or "")
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            target = _origin(str(response.url.join(location))) if location else "(no Location)"
            return UnexpectedResponseError(
                status,
                f"redirected to {target}; not followed: the token is only sent to "
                f"{self.settings.api_root}",
                body=parsed,
            )
        if status == 400:
            return NotEligibleError(status, message, body=parsed)
        if status == 401:
            return AuthenticationError(status, message, body=parsed)
        if status == 403:
            # Omni answers a bad token with 403, not 401: that is authentication, not a
            # missing role.
            if "invalid bearer token" in message.lower() or "invalid api key" in message.lower():
                return AuthenticationError(status, message, body=parsed)
            return PermissionDeniedError(status, message, body=parsed)
        if status == 404:
            return NotFoundError(status, message, body=parsed)
        if status == 429:
            return RateLimitError(
                status, message, body=parsed,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status >= 500:
            return ServerError(status, message, body=parsed)
        return UnexpectedResponseError(status, message, body=parsed)

    def transport_error(self, exc: httpx.HTTPError) -> APIConnectionError:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"no answer from {self.origin} within {self.timeout:g} s")
        # httpx messages name the host and the OS error, never headers.
        return APIConnectionError(f"{type(exc).__name__} talking to {self.origin}: {exc}")

    def draft_from(self, payload: Any, doc: str, branch: str | None, attempts: int) -> Draft:
        identifier = payload.get("identifier") if isinstance(payload, dict) else None
        if not isinstance(identifier, str) or not identifier.strip():
            raise UnexpectedResponseError(
                200, f"answer has no draft 'identifier': {_snippet(json.dumps(payload).encode())}",
                body=payload,
            )
        return Draft(identifier, doc, branch, attempts)

    # -- retries -----------------------------------------------------------------------------

    def next_wait(self, error: OmniError, attempt: int, waited: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not isinstance(error, RateLimitError | ServerError | APIConnectionError):
            return None
        if attempt > self.retry.max_retries:
            return None
        hint = error.retry_after if isinstance(error, RateLimitError) else None
        if hint is not None and 0 <= hint <= self.retry.max_retry_after:
            wait = hint
        else:
            ceiling = min(self.retry.backoff_cap, self.retry.backoff * 2 ** (attempt - 1))
            wait = ceiling * (0.5 + 0.5 * self.rng.random())  # jitter spreads retries out
        if waited + wait > self.retry.max_wait:
            return None
        return wait

    def pause_everyone(self, wait: float) -> None:
        pause_all(self.settings.api_root, self.settings.token.fingerprint(), wait)
        self.limiter.pause_for(wait)  # an injected limiter is not in the shared registry

    def report(
        self, doc: str, branch: str | None, sent: tuple[Any, int, int] | OmniError,
        started: float, requested_at: datetime,
    ) -> CallOutcome:
        """Turn what ``_send`` gave (or raised) into an outcome and hand it to the hook."""
        result: Draft | OmniError
        if isinstance(sent, OmniError):
            result, attempts, status = sent, sent.attempts, getattr(sent, "status_code", None)
        else:
            payload, attempts, status = sent
            try:
                result = self.draft_from(payload, doc, branch, attempts)
            except OmniError as exc:
                exc.attempts = attempts
                result = exc
        outcome = CallOutcome(
            document_id=doc, branch_id=branch,
            draft=result if isinstance(result, Draft) else None,
            error=result if isinstance(result, OmniError) else None,
            http_status=status, attempts=attempts, elapsed_s=time.perf_counter() - started,
            requested_at=requested_at, api_root=self.settings.api_root,
        )
        if self.on_result is not None:
            self.on_result(outcome)
        return outcome


def parse_error_body(body: bytes, reason: str) -> tuple[str, Any]:
    """(the server's message, the body as JSON or cut text) for every shape Omni sends.

    Example:
        >>> parse_error_body(b'{"error": {"code": 403, "message": "Invalid bearer token"}}', "")[0]
        'Invalid bearer token'
        >>> parse_error_body(b'{"detail": "Not Found", "status": 404}', "")[0]
        'Not Found'
        >>> parse_error_body(b'<html><title>502 Bad Gateway</title></html>', "Bad Gateway")[0]
        'Bad Gateway (non-JSON answer: 502 Bad Gateway)'
    """
    try:
        parsed: Any = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        message: Any = None
        if isinstance(error, dict):
            message = error.get("message") or error.get("code")
        if message is None and parsed.get("message") is not None:
            message = parsed.get("message")
        if message is None and parsed.get("detail") is not None:
            message = parsed.get("detail")
        if message is None and isinstance(error, str | int):
            message = error
        if message is None:
            message = reason or "no message"
        return _clean(str(message)), parsed
    if parsed is not None:
        return _clean(reason or str(parsed)), parsed
    text = _body_text(body)
    if not text.strip():
        return _clean(reason or "empty answer"), None
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    shown = title.group(1) if title else text
    return _clean(f"{reason or 'error'} (non-JSON answer: {_clean(shown, 120)})"), text


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` in delta-seconds or HTTP-date form; None if unusable.

    Example:
        >>> parse_retry_after("3")
        3.0
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0)
        10.0
        >>> parse_retry_after("soon") is None
        True
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
        return max(0.0, seconds)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return seconds


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc = host if ":" not in host else f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme.lower()}://{netloc}"


def _body_text(body: bytes) -> str:
    return body[:2000].decode("utf-8", "replace")


def _clean(text: str, limit: int = 500) -> str:
    # Server text goes into exception messages and table cells: one line, bounded.
    one_line = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _snippet(body: bytes) -> str:
    return _clean(_body_text(body), 120)


def _now() -> datetime:
    return datetime.now(UTC)


def _client_kwargs(core: _Core) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(core.timeout),
        # Redirects are never followed: a Location elsewhere must not receive the token,
        # and Omni's API does not redirect.
        "follow_redirects": False,
    }


class OmniClient:
    """Synchronous Create-draft client.

    Settings come from the arguments, then :func:`omni_nb.login`, then ``OMNI_BASE_URL`` /
    ``OMNI_INSTANCE`` and ``OMNI_API_TOKEN`` / ``OMNI_API_KEY``. Every client in the process
    with the same API root and token shares one rate limiter.

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
        instance: str | None = None,
        playground: bool | None = None,
        rate_limit: RateLimit | None = _DEFAULT,  # type: ignore[assignment]
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        on_result: Callable[[CallOutcome], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        limiter: Limiter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._core = _Core(
            base_url, token, instance, playground, rate_limit, max_retries, retry, timeout,
            on_result, limiter, rng,
        )
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, **_client_kwargs(self._core))

    @property
    def api_root(self) -> str:
        """The API root every request goes to."""
        return self._core.settings.api_root

    def __repr__(self) -> str:
        return f"OmniClient(api_root={self.api_root!r}, rate_limit={self._core.rate_limit!r})"

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
        core = self._core
        prepared, doc, branch = core.draft_request(document_id, branch_id)
        started, requested_at = time.perf_counter(), _now()
        sent: tuple[Any, int, int] | OmniError
        try:
            sent = self._send(prepared)
        except OmniError as exc:
            sent = exc
        return core.report(doc, branch, sent, started, requested_at)

    def list_documents(self, **params: str | int) -> list[dict[str, Any]]:
        """Every document visible to the token, walking all pages of ``GET /v1/documents``.

        Example:
            >>> from omni_nb import sandbox
            >>> with sandbox.serve(documents=3) as sb, OmniClient(sb.base_url, sb.token) as c:
            ...     sorted(d["identifier"] for d in c.list_documents())
            ['doc-0001', 'doc-0002', 'doc-0003']
        """
        return list(self._walk("/v1/documents", {"pageSize": 100, **params}))

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
        query: dict[str, str | int] = {"modelKind": "BRANCH", "pageSize": 100, **params}
        if base_model_id is not None:
            query["baseModelId"] = base_model_id
        return list(self._walk("/v1/models", query))

    def _walk(self, path: str, params: dict[str, str | int]) -> Iterator[dict[str, Any]]:
        query = {k: str(v) for k, v in params.items()}
        for _ in range(10_000):  # a server that never ends its pages must not hang us
            payload, _, _ = self._send(self._core.list_request(path, query))
            records, cursor = _page(payload)
            yield from records
            if cursor is None:
                return
            query["cursor"] = cursor
        raise UnexpectedResponseError(200, f"{path}: more than 10,000 pages")

    def _send(self, prepared: _Prepared) -> tuple[Any, int, int]:
        core, attempt, waited = self._core, 0, 0.0
        while True:
            attempt += 1
            waited += core.limiter.acquire(self._sleep)
            try:
                request = core.build(prepared)
                sent = time.monotonic()
                response = self._http.send(request, stream=True)
                core.limiter.observe(time.monotonic() - sent)
                try:
                    body = _read_capped(response.iter_bytes())
                finally:
                    response.close()
                return core.interpret(response, body), attempt, response.status_code
            except httpx.HTTPError as exc:
                error: OmniError = core.transport_error(exc)
            except OmniError as exc:
                error = exc
            wait = core.next_wait(error, attempt, waited)
            if wait is None:
                error.attempts = attempt
                raise error
            if isinstance(error, RateLimitError):
                core.pause_everyone(wait)  # acquire() above then waits it out with everyone
            else:
                self._sleep(wait)
                waited += wait


class AsyncOmniClient:
    """Asynchronous twin of :class:`OmniClient` (same arguments, awaitable methods).

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
        instance: str | None = None,
        playground: bool | None = None,
        rate_limit: RateLimit | None = _DEFAULT,  # type: ignore[assignment]
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
        self._core = _Core(
            base_url, token, instance, playground, rate_limit, max_retries, retry, timeout,
            on_result, limiter, rng,
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            **_client_kwargs(self._core),
        )

    @property
    def api_root(self) -> str:
        """The API root every request goes to."""
        return self._core.settings.api_root

    def __repr__(self) -> str:
        return f"AsyncOmniClient(api_root={self.api_root!r}, rate_limit={self._core.rate_limit!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def create_draft(self, document_id: str, branch_id: str | None = None) -> Draft:
        """Async :meth:`OmniClient.create_draft`.

        Example:
            >>> # draft = await client.create_draft("93874a87")
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
            >>> # outcome = await client.create_draft_outcome("93874a87")
        """
        core = self._core
        prepared, doc, branch = core.draft_request(document_id, branch_id)
        started, requested_at = time.perf_counter(), _now()
        sent: tuple[Any, int, int] | OmniError
        try:
            sent = await self._send(prepared)
        except OmniError as exc:
            sent = exc
        return core.report(doc, branch, sent, started, requested_at)

    async def list_documents(self, **params: str | int) -> list[dict[str, Any]]:
        """Async :meth:`OmniClient.list_documents`.

        Example:
            >>> # docs = await client.list_documents()
        """
        return await self._walk("/v1/documents", {"pageSize": 100, **params})

    async def list_branches(
        self, base_model_id: str | None = None, **params: str | int
    ) -> list[dict[str, Any]]:
        """Async :meth:`OmniClient.list_branches`.

        Example:
            >>> # branches = await client.list_branches()
        """
        query: dict[str, str | int] = {"modelKind": "BRANCH", "pageSize": 100, **params}
        if base_model_id is not None:
            query["baseModelId"] = base_model_id
        return await self._walk("/v1/models", query)

    async def _walk(self, path: str, params: dict[str, str | int]) -> list[dict[str, Any]]:
        query = {k: str(v) for k, v in params.items()}
        out: list[dict[str, Any]] = []
        for _ in range(10_000):
            payload, _, _ = await self._send(self._core.list_request(path, query))
            records, cursor = _page(payload)
            out.extend(records)
            if cursor is None:
                return out
            query["cursor"] = cursor
        raise UnexpectedResponseError(200, f"{path}: more than 10,000 pages")

    async def _send(self, prepared: _Prepared) -> tuple[Any, int, int]:
        core, attempt, waited = self._core, 0, 0.0
        while True:
            attempt += 1
            waited += await core.limiter.aacquire(self._sleep)
            try:
                request = core.build(prepared)
                sent = time.monotonic()
                response = await self._http.send(request, stream=True)
                core.limiter.observe(time.monotonic() - sent)
                try:
                    body = await _aread_capped(response.aiter_bytes())
                finally:
                    await response.aclose()
                return core.interpret(response, body), attempt, response.status_code
            except httpx.HTTPError as exc:
                error: OmniError = core.transport_error(exc)
            except OmniError as exc:
                error = exc
            wait = core.next_wait(error, attempt, waited)
            if wait is None:
                error.attempts = attempt
                raise error
            if isinstance(error, RateLimitError):
                core.pause_everyone(wait)
            else:
                await self._sleep(wait)
                waited += wait


def _page(payload: Any) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        raise UnexpectedResponseError(200, "list answer has no 'records'", body=payload)
    info = payload.get("pageInfo") or {}
    cursor = info.get("nextCursor") if isinstance(info, dict) else None
    more = isinstance(info, dict) and bool(info.get("hasNextPage"))
    records = [r for r in payload["records"] if isinstance(r, dict)]
    return records, (str(cursor) if more and cursor else None)


def _read_capped(chunks: Iterator[bytes]) -> bytes:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) >= _MAX_BODY:
            break
    return bytes(buf[:_MAX_BODY])


async def _aread_capped(chunks: Any) -> bytes:
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) >= _MAX_BODY:
            break
    return bytes(buf[:_MAX_BODY])
