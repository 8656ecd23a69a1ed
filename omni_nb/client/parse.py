"""Reading answers: Omni's error-body shapes, ``Retry-After``, origins (standard library only).

Example:
    >>> parse_error_body(b'{"error": "Bad", "message": "Document is not eligible"}', "")[0]
    'Document is not eligible'
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from .._text import one_line

__all__ = ["body_text", "origin", "parse_error_body", "parse_retry_after", "snippet"]


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
        return one_line(str(message)), parsed
    if parsed is not None:
        return one_line(reason or str(parsed)), parsed
    text = body_text(body)
    if not text.strip():
        return one_line(reason or "empty answer"), None
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    shown = title.group(1) if title else text
    return one_line(f"{reason or 'error'} (non-JSON answer: {one_line(shown, 120)})"), text


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


def origin(url: str) -> str:
    """Scheme, host and port of ``url``: what decides where the token may go.

    Example:
        >>> origin("HTTPS://Acme.omniapp.co:443/api/v1")
        'https://acme.omniapp.co:443'
    """
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


def body_text(body: bytes) -> str:
    """The first 2,000 bytes of a body as text (an error keeps this much).

    Example:
        >>> body_text(b"oops")
        'oops'
    """
    return body[:2000].decode("utf-8", "replace")


def snippet(body: bytes) -> str:
    """A body as a short single line, for a message.

    Example:
        >>> snippet(b"<html>\\n<b>no</b>")
        '<html> <b>no</b>'
    """
    return one_line(body_text(body), 120)
