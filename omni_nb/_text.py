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

import bisect
import json
import re
from collections.abc import Iterable
from html.entities import html5

__all__ = ["REDACTED", "SECRET_RUN", "one_line", "quoted", "redact", "redact_bytes", "shorten"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: What stands where a secret was.
REDACTED = "[redacted]"
#: A run of this many characters of a secret is redacted wherever it appears (the whole
#: secret when it is shorter): a server that cuts or wraps what it echoes still shows none.
SECRET_RUN = 12

#: One escaped character, in each form a server may echo a secret in: JSON ``\u006f`` and
#: ``\n``, percent ``%6F``, HTML ``&#111;``, ``&#x6f;`` and named references (``&lowbar;``).
_ESCAPE = re.compile(
    r"\\u([0-9A-Fa-f]{4})|\\([\"\\/bfnrt])|%([0-9A-Fa-f]{2})"
    r"|&#[xX]([0-9A-Fa-f]{1,6});?|&#([0-9]{1,7});?|&([A-Za-z][A-Za-z0-9]{1,31};?)"
)
_JSON_SHORT = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
               "t": "\t"}
#: The characters that start an escape: text without them reads the same decoded.
_MARKS = ("\\", "%", "&")
#: Escapes inside escapes (``%2526``, ``&amp;#111;``, ``\u0025...``) are read this deep.
_DEPTH = 3


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
    """``text`` with every secret replaced by ``[redacted]``, and with it every run of
    :data:`SECRET_RUN` of its characters, also where they are escaped: JSON ``\\u`` and
    short escapes, percent-encoding, HTML character references (numeric and named), any mix
    of them, any character of the secret escaped, escapes within escapes.

    A server may echo the request's Authorization header in an error message; whatever it
    sends back is redacted before it is stored, shown or raised. Text holding no escape and
    no part of a secret (an ordinary answer) costs a few substring searches.

    Example:
        >>> redact("bad header: Bearer omni_osk_abc", ["omni_osk_abc"])
        'bad header: Bearer [redacted]'
        >>> redact('{"m": "Bearer \\\\u006fmni%5Fosk&#x5f;abc"}', ["omni_osk_abc"])
        '{"m": "Bearer [redacted]"}'
        >>> redact("key omni_osk_abcdefghijklmn cut to omni_osk_abcd", ["omni_osk_abcdefghijklmn"])
        'key [redacted] cut to [redacted]'
    """
    needles = _needles(secrets)
    if not needles:
        return text
    spans: list[tuple[int, int]] = []
    view: _View | None = _View(text)
    for _ in range(_DEPTH + 1):
        if view is None:
            break
        if _any_part(view.text, needles):
            spans.extend(view.source_span(a, b) for a, b in _found(view.text, needles))
        view = view.decoded() if any(m in view.text for m in _MARKS) else None
    if not spans:
        return text
    out, pos = [], 0
    for start, end in _merged(spans):
        out += [text[pos:start], REDACTED]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact_bytes(body: bytes, secrets: Iterable[str]) -> bytes:
    """:func:`redact` for a raw answer, before anything parses, keeps or shows it: the body
    is read as JSON would read it (UTF-8, or the UTF-16/32 a JSON body may be in), so the
    decoded answer can hold no secret either.

    Example:
        >>> redact_bytes(b'{"error": "Bearer t0k is bad"}', ["t0k"])
        b'{"error": "Bearer [redacted] is bad"}'
        >>> redact_bytes('{"e": "t0k"}'.encode("utf-16"), ["t0k"]).decode("utf-16")
        '{"e": "[redacted]"}'
    """
    keys = [secret for secret in secrets if secret]
    if not keys or not body:
        return body
    encoding, errors = json.detect_encoding(body), "strict"
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError:
        # Not valid in the encoding JSON would read it in: read it byte for byte as UTF-8
        # (invalid bytes kept as they are), which is how it is shown.
        encoding, errors = "utf-8", "surrogateescape"
        text = body.decode(encoding, errors)
    clean = redact(text, keys)
    return body if clean == text else clean.encode(encoding, errors)


class _View:
    """A reading of a text with one more level of escapes decoded; each of its characters
    knows the span of the original text it came from."""

    def __init__(self, text: str, parent: _View | None = None,
                 pieces: list[tuple[int, int, int, bool]] | None = None) -> None:
        self.text = text
        self.parent = parent
        # (start here, start in the parent's text, end there, plain): a plain piece maps
        # character for character, an escape as a whole.
        self.pieces = pieces or [(0, 0, len(text), True)]
        self.starts = [piece[0] for piece in self.pieces]

    def decoded(self) -> _View | None:
        """The next level down (None when no escape decodes: nothing more to read)."""
        out: list[str] = []
        pieces: list[tuple[int, int, int, bool]] = []
        here = pos = 0
        for match in _ESCAPE.finditer(self.text):
            char = _unescape(match)
            if char is None:
                continue
            if match.start() > pos:
                pieces.append((here, pos, match.start(), True))
                out.append(self.text[pos:match.start()])
                here += match.start() - pos
            pieces.append((here, match.start(), match.end(), False))
            out.append(char)
            here, pos = here + len(char), match.end()
        if not pieces:
            return None
        pieces.append((here, pos, len(self.text), True))
        out.append(self.text[pos:])
        return _View("".join(out), self, pieces)

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that characters ``start:end`` came from."""
        first = self._piece(start)
        last = self._piece(end - 1)
        a = first[1] + (start - first[0]) if first[3] else first[1]
        b = last[1] + (end - last[0]) if last[3] else last[2]
        return (a, b) if self.parent is None else self.parent.source_span(a, b)

    def _piece(self, index: int) -> tuple[int, int, int, bool]:
        return self.pieces[bisect.bisect_right(self.starts, index) - 1]


def _unescape(match: re.Match[str]) -> str | None:
    """The character(s) an escape stands for; None for one that is not (``&nosuch;``)."""
    json_u, short, percent, hex_ref, dec_ref, named = match.groups()
    if json_u is not None:
        return chr(int(json_u, 16))
    if short is not None:
        return _JSON_SHORT[short]
    if percent is not None:
        return chr(int(percent, 16))
    if hex_ref is not None or dec_ref is not None:
        code = int(hex_ref, 16) if hex_ref is not None else int(dec_ref)
        return chr(code) if code <= 0x10FFFF else None
    return html5.get(named)


def _needles(secrets: Iterable[str]) -> list[str]:
    """Every run of :data:`SECRET_RUN` characters of each secret (a shorter one whole)."""
    found: set[str] = set()
    for secret in secrets:
        if secret:
            n = min(SECRET_RUN, len(secret))
            found.update(secret[i:i + n] for i in range(len(secret) - n + 1))
    return sorted(found, key=len, reverse=True)


def _any_part(text: str, needles: list[str]) -> bool:
    """Whether ``text`` holds any needle: the quick check an ordinary answer passes."""
    return any(needle in text for needle in needles)


def _found(text: str, needles: list[str]) -> list[tuple[int, int]]:
    """Every span of ``text`` a needle occupies."""
    spans = []
    for needle in needles:
        at = text.find(needle)
        while at >= 0:
            spans.append((at, at + len(needle)))
            at = text.find(needle, at + 1)
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans as one, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
