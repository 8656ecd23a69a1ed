"""The keywords every batch function shares (connection, budget, retries, ledger, columns),
written once: :func:`discard_drafts` and :func:`list_drafts` take them as ``**keywords``
and turn them into resolved settings and options here.

``create_drafts`` keeps its keywords spelled out (its signature is older than this module
and documented); these are the same names with the same defaults.

Example:
    >>> settings, options, rest = resolve({"base_url": "https://acme.omniapp.co",
    ...                                    "token": "t", "concurrency": 4})
    >>> (settings.api_root, options.concurrency, rest)
    ('https://acme.omniapp.co/api', 4, {})
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict

from ..client import RetryPolicy
from ..config import Settings, resolve_settings
from ..ledger import Ledger
from ..ratelimit import RateLimit
from ..rows import Row
from .run import BatchOptions

__all__ = ["BatchKeywords", "SendKeywords", "options_of", "resolve"]


class SendKeywords(TypedDict, total=False):
    """Where and how requests go (what a listing takes), as ``create_drafts`` documents them."""

    base_url: str | None
    token: str | None
    tokens: Sequence[str] | None
    instance: str | None
    playground: bool | None
    concurrency: int
    rate_limit: RateLimit | None
    progress: Callable[[int, int, Row], None] | None
    max_retries: int | None
    retry: RetryPolicy | None
    timeout: float
    document_col: str
    cancel: threading.Event | None


class BatchKeywords(SendKeywords, total=False):
    """:class:`SendKeywords` and what a recorded batch adds: resume, the ledger, a branch
    column."""

    resume: bool
    ledger: str | Path | Ledger | None
    branch_col: str | None


#: Keywords that stay with the caller (columns, callbacks), not settings or options.
_PASSED_ON = ("progress", "document_col", "branch_col", "cancel")


def resolve(
    keywords: SendKeywords | BatchKeywords | dict[str, Any],
    accepted: type[SendKeywords] = BatchKeywords,
) -> tuple[Settings, BatchOptions, dict[str, Any]]:
    """(settings, options, the keywords passed on): raises :class:`TypeError` for a keyword
    that is not one of them (``**keywords`` accepts anything at run time; a typo such as
    ``ledgr="off"`` must not be ignored).

    Example:
        >>> resolve({"ledgr": "off"})
        Traceback (most recent call last):
        ...
        TypeError: unexpected keyword argument 'ledgr'
    """
    unknown = sorted(set(keywords) - set(accepted.__annotations__))
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    kw: dict[str, Any] = dict(keywords)
    settings = resolve_settings(kw.get("base_url"), kw.get("token"), tokens=kw.get("tokens"),
                                instance=kw.get("instance"), playground=kw.get("playground"))
    options = options_of(kw.get("concurrency", 8), kw.get("rate_limit", RateLimit()),
                         kw.get("resume", False), kw.get("ledger"), kw.get("max_retries"),
                         kw.get("retry"), kw.get("timeout", 30.0))
    return settings, options, {k: kw[k] for k in _PASSED_ON if k in kw}


def options_of(
    concurrency: int, rate_limit: RateLimit | None, resume: bool,
    ledger: str | Path | Ledger | None, max_retries: int | None, retry: RetryPolicy | None,
    timeout: float,
) -> BatchOptions:
    """The batch options for the shared keywords (one of ``max_retries``/``retry``).

    Example:
        >>> options_of(4, None, False, "off", 0, None, 5.0).retry.max_retries
        0
    """
    return BatchOptions(concurrency=concurrency, rate_limit=rate_limit,
                        retry=RetryPolicy.of(max_retries, retry), timeout=timeout,
                        resume=resume, ledger=ledger)
