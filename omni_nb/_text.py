"""Bounded text for messages: every error, table cell and log line goes through these.

Standard library only; the one place that decides how a long or multi-line value is cut.

Example:
    >>> shorten("abcdef", 4)
    'abc…'
    >>> quoted("a" * 100, 10)
    "'aaaaaaaa…"
    >>> one_line("a\\n  b\\x00c")
    'a b c'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["REDACTED", "one_line", "quoted", "redact", "redact_bytes", "shorten"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: What stands where a secret was.
REDACTED = "[redacted]"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was cut.

    Example:
        >>> shorten("short", 10)
        'short'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plural(n: int, noun: str) -> str:
    """``1 row``, ``2 rows``: a count and its noun, agreeing.

    Example:
        >>> plural(1, "row"), plural(0, "row"), plural(3, "more row")
        ('1 row', '0 rows', '3 more rows')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def quoted(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut: how a message names the item it is about.

    Example:
        >>> quoted("doc/1")
        "'doc/1'"
    """
    return shorten(repr(value), limit)


def one_line(text: str, limit: int = 500) -> str:
    """Server text as one line (control characters and runs of space folded), cut.

    Example:
        >>> one_line("Not\\r\\nFound")
        'Not Found'
    """
    return shorten(" ".join(_CONTROL.sub(" ", text).split()), limit)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and so its ``Bearer`` form) replaced by ``[redacted]``.

    A server may echo the request's Authorization header in an error message; whatever it
    sends back is redacted before it is stored, shown or raised.

    Example:
        >>> redact("bad header: Bearer omni_osk_abc", ["omni_osk_abc"])
        'bad header: Bearer [redacted]'
    """
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_bytes(body: bytes, secrets: Iterable[str]) -> bytes:
    """:func:`redact` for a raw answer, before anything parses, keeps or shows it.

    Example:
        >>> redact_bytes(b'{"error": "Bearer t0k is bad"}', ["t0k"])
        b'{"error": "Bearer [redacted] is bad"}'
    """
    for secret in secrets:
        if secret:
            body = body.replace(secret.encode(), REDACTED.encode())
    return body
