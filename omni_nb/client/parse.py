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
import socket
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from .._text import one_line

__all__ = ["body_text", "host_not_found", "instance_of", "name_not_resolved", "origin",
           "parse_error_body", "parse_retry_after", "snippet"]

#: The hosts of Omni's instances, by suffix: ``acme.omniapp.co`` is the instance ``acme``.
_INSTANCE_SUFFIXES = (".omniapp.co", ".playground.exploreomni.dev")
#: What resolvers say of a name they could not find, when only the text is left (a wrapped
#: error, another platform's wording).
_NAME_ERRORS = re.compile(
    r"Name or service not known|nodename nor servname|getaddrinfo failed|"
    r"No address associated with hostname|Temporary failure in name resolution|"
    r"\[Errno (-2|-3|-5|8|11001|11004)\]", re.IGNORECASE)


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


def name_not_resolved(error: BaseException) -> bool:
    """True when ``error`` (or an error it was raised from) says a host name did not resolve:
    a ``socket.gaierror`` in its chain, or a resolver's words in its text.

    Example:
        >>> name_not_resolved(OSError("[Errno -2] Name or service not known"))
        True
        >>> name_not_resolved(ConnectionRefusedError(111, "Connection refused"))
        False
    """
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen:
        if isinstance(found, socket.gaierror) or _NAME_ERRORS.search(str(found)):
            return True
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    return False


def instance_of(url: str) -> str | None:
    """The Omni instance a URL names (``acme`` for ``https://acme.omniapp.co``), or None for
    a host that is not an Omni instance's.

    Example:
        >>> instance_of("https://acme-typo.omniapp.co/api"), instance_of("http://127.0.0.1:9")
        ('acme-typo', None)
    """
    host = (urlsplit(url).hostname or "").lower()
    for suffix in _INSTANCE_SUFFIXES:
        if host.endswith(suffix) and len(host) > len(suffix):
            return host[: -len(suffix)]
    return None


def host_not_found(url: str, detail: str) -> str:
    """The message for a host name that did not resolve: the host, the instance it names (if
    it is an Omni one) and what to check, then the resolver's own words.

    Example:
        >>> host_not_found("https://acme-typo.omniapp.co", "[Errno -2]")
        "host acme-typo.omniapp.co not found: check the instance name 'acme-typo' ([Errno -2])"
        >>> host_not_found("https://omni.example.internal", "[Errno -2]")
        'host omni.example.internal not found: check the host in the base URL ([Errno -2])'
    """
    host = urlsplit(url).hostname or url
    instance = instance_of(url)
    check = (f"check the instance name {instance!r}" if instance is not None
             else "check the host in the base URL")
    return f"host {host} not found: {check} ({detail})"
