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

__all__ = ["one_line", "quoted", "shorten"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was cut.

    Example:
        >>> shorten("short", 10)
        'short'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
