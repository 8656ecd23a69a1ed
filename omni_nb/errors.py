"""The exception tree (standard library only).

::

    OmniError
    ├── ConfigError                 settings missing or unsafe (raised before anything is sent)
    ├── DraftsFailedError           a front end's batch in which no row is ok
    ├── LedgerError                 the ledger cannot be used: not ours, unwritable, a write
    │                               failed (``.result``: the table; ``.unrecorded``)
    ├── InvalidInputError           also a ValueError; a document or branch id that is not sent
    ├── APIConnectionError          no HTTP answer: refused, reset, dropped, DNS
    │   ├── APITimeoutError         no answer within the timeout
    │   └── HostUnreachableError    no connection at all: refused, unresolvable, TLS failed
    └── APIStatusError              an HTTP answer that is not a usable 200
        ├── NotEligibleError        400 "not eligible for publishing workflow" (and other 400s)
        ├── AuthenticationError     401, and 403 "Invalid bearer token"
        ├── PermissionDeniedError   other 403 (EDITOR role required)
        ├── NotFoundError           404 document or branch
        ├── RateLimitError          429, with ``retry_after``
        ├── ServerError             5xx
        └── UnexpectedResponseError a 200 without an identifier, a redirect, any other status

Every message is built from the server's words and the item, never from the token.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "ConfigError",
    "DraftsFailedError",
    "HostUnreachableError",
    "InvalidInputError",
    "KeyRefusedWarning",
    "LedgerError",
    "LedgerWarning",
    "NotEligibleError",
    "NotFoundError",
    "OmniError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "UnexpectedResponseError",
]


class OmniError(Exception):
    """Root of every error omni_nb raises.

    Example:
        >>> try:
        ...     raise NotFoundError(404, "Document with identifier x not found")
        ... except OmniError as exc:
        ...     print(type(exc).__name__, exc)
        NotFoundError HTTP 404: Document with identifier x not found
    """

    #: How many requests were sent for the call that ended in this error (0: none was sent).
    attempts: int = 0

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: a notebook user sees one line
        # naming the class and the server's words.
        return [f"{type(self).__name__}: {self}"]

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_exception(self)


def reduce_exception(exc: BaseException) -> tuple[Any, ...]:
    """Pickle support that keeps every attribute of an exception, whatever its ``__init__``.

    Exceptions pickle as ``cls(*args)`` by default, which loses keyword-only fields
    (``body``, ``retry_after``) and attributes set later (``attempts``); errors cross process
    boundaries (multiprocessing, joblib), so this rebuilds without calling ``__init__`` and
    restores the whole ``__dict__``.

    Example:
        >>> import pickle
        >>> err = pickle.loads(pickle.dumps(RateLimitError(429, "slow down", retry_after=2.0)))
        >>> (err.status_code, err.message, err.retry_after, str(err))
        (429, 'slow down', 2.0, 'HTTP 429: slow down')
    """
    return (_rebuild, (type(exc), exc.args), dict(exc.__dict__))


def _rebuild(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    return exc


class ConfigError(OmniError):
    """Settings are missing or unsafe; nothing was sent.

    ``missing`` names what was not given (``"api_root"`` or ``"token"``), so a front end can
    say how to give it in its own words (CLI flags, magic options); None for other problems.

    Example:
        >>> err = ConfigError("no API token", missing="token")
        >>> str(err), err.missing
        ('no API token', 'token')
    """

    def __init__(self, message: str, *, missing: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing


class InvalidInputError(OmniError, ValueError):
    """A document or branch id that cannot be sent as is; nothing was sent.

    Example:
        >>> isinstance(InvalidInputError("bad id"), ValueError)
        True
    """


class APIConnectionError(OmniError):
    """No HTTP answer came back (refused, reset, dropped connection).

    Example:
        >>> str(APIConnectionError("connection reset"))
        'connection reset'
    """


class APITimeoutError(APIConnectionError):
    """No answer within the configured timeout.

    Example:
        >>> issubclass(APITimeoutError, APIConnectionError)
        True
    """


class HostUnreachableError(APIConnectionError):
    """No connection could be made at all: refused, a name that does not resolve, a TLS
    handshake that failed (not a connect that timed out: that is an
    :class:`APITimeoutError`, on the normal schedule). Retried briefly
    (``RetryPolicy.connect_retries``); a batch whose first answers are all this stops.

    Example:
        >>> issubclass(HostUnreachableError, APIConnectionError)
        True
    """


class APIStatusError(OmniError):
    """An HTTP answer that is not a usable 200.

    Attributes: ``status_code``, ``message`` (the server's own words), ``body`` (the parsed
    JSON body, or the text when it is not JSON, cut to 2,000 characters).

    Example:
        >>> err = APIStatusError(418, "teapot", body={"error": "teapot"})
        >>> (err.status_code, err.message)
        (418, 'teapot')
    """

    def __init__(self, status_code: int, message: str, *, body: Any = None) -> None:
        self.status_code = status_code
        self.message = message
        self.body = body
        super().__init__(f"HTTP {status_code}: {message}")


class NotEligibleError(APIStatusError):
    """400: the document is not eligible for the publishing workflow (or another bad request).

    Example:
        >>> NotEligibleError(400, "Document is not eligible for publishing workflow").status_code
        400
    """


class AuthenticationError(APIStatusError):
    """401, or 403 "Invalid bearer token": the token is missing, wrong or revoked.

    Example:
        >>> AuthenticationError(403, "Invalid bearer token").message
        'Invalid bearer token'
    """


class PermissionDeniedError(APIStatusError):
    """403 for a valid token without the EDITOR role on the document.

    Example:
        >>> PermissionDeniedError(403, "Permission denied - EDITOR role required").status_code
        403
    """


class NotFoundError(APIStatusError):
    """404: the document (or branch) does not exist for this token.

    Example:
        >>> NotFoundError(404, "Document with identifier x not found").status_code
        404
    """


class RateLimitError(APIStatusError):
    """429 after every retry; ``retry_after`` is the server's hint in seconds, if any.

    Example:
        >>> RateLimitError(429, "Too Many Requests", retry_after=2.0).retry_after
        2.0
    """

    def __init__(
        self, status_code: int, message: str, *, body: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status_code, message, body=body)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx after every retry.

    Example:
        >>> ServerError(503, "Service Unavailable").status_code
        503
    """


class UnexpectedResponseError(APIStatusError):
    """An answer the contract does not describe: a 200 without ``identifier``, a redirect,
    an undocumented status.

    Example:
        >>> UnexpectedResponseError(200, "response has no 'identifier'").status_code
        200
    """


class DraftsFailedError(OmniError):
    """A batch run from a front end in which no row is ``ok``: the cell fails so "Run all"
    stops. The table is still shown (or stored with ``-o``) before this is raised.

    Example:
        >>> DraftsFailedError("no draft created: 2 rows: 2 not_found")._render_traceback_()
        ['DraftsFailedError: no draft created: 2 rows: 2 not_found']
    """


#: Where a batch's table is, as the LedgerError of a failed ledger write first says it.
TABLE_AT = "this error's .result (and omni_nb.batch.last_result())"


class LedgerError(OmniError):
    """The ledger cannot be used: the file at its path is not an omni_nb ledger (omni_nb
    leaves it untouched), its location cannot be written, or a write failed mid-batch.

    ``path``: the ledger's path (a string; None for the memory ledger). ``result``: the
    results table when a batch was running (every input has its row; sending stopped at the
    failure), else None. ``unrecorded``: the answered rows that are not in the ledger, as
    ``(document_id, branch_id, draft_id)``; the message names the first few.

    Example:
        >>> err = LedgerError("ledger /x: a directory", path="/x")
        >>> (err.path, err.result, err.unrecorded)
        ('/x', None, [])
    """

    def __init__(
        self, message: str, *, path: str | None = None, result: Any = None,
        unrecorded: list[tuple[str, str | None, str | None]] | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.result = result
        self.unrecorded = list(unrecorded or [])

    def kept_in(self, where: str) -> LedgerError:
        """The same error, saying the table is ``where`` (a front end that stored it, in a
        variable say, tells the user so in the one line shown).

        Example:
            >>> err = LedgerError(f"write failed; the table is {TABLE_AT}", result=[1])
            >>> str(err.kept_in("in res"))
            'write failed; the table is in res'
        """
        moved = LedgerError(str(self).replace(TABLE_AT, where), path=self.path,
                            result=self.result, unrecorded=self.unrecorded)
        moved.attempts = self.attempts
        return moved


class LedgerWarning(UserWarning):
    """A single call's answer could not be recorded in the ledger; the call's result (a
    ``Draft``) is still returned, and the warning names its draft id so it is never lost.

    Example:
        >>> issubclass(LedgerWarning, UserWarning)
        True
    """


class KeyRefusedWarning(UserWarning):
    """A key of a pool was refused (401, 403 "Invalid bearer token"): it leaves the pool and
    the batch goes on with the others. The warning names the key by position and short name
    (:meth:`omni_nb.config.Secret.key_id`), never by value.

    Example:
        >>> issubclass(KeyRefusedWarning, UserWarning)
        True
    """
