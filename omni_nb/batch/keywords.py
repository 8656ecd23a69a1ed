"""The keywords every batch function takes, written once, and their resolution.

Every family (``create_drafts``/``acreate_drafts``, ``discard_drafts``/``adiscard_drafts``,
``list_drafts``/``alist_drafts``, ``run_operation``/``arun_operation``) takes
``**keywords: Unpack[BatchKeywords]``: where requests go (``base_url``, ``token``... or a
resolved ``settings=``), how the batch runs (``concurrency``, ``rate_limit``... or a built
``options=``) and what the caller watches (``progress``, ``cancel``, the columns, the
labels). :func:`resolve` turns them into one :class:`Resolved`, once per call.

Example:
    >>> r = resolve({"base_url": "https://acme.omniapp.co", "token": "t", "concurrency": 4})
    >>> (r.settings.api_root, r.options.concurrency, r.document_col)
    ('https://acme.omniapp.co/api', 4, 'document_id')
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from ..client import RetryPolicy
from ..config import Settings, resolve_settings
from ..ledger import Ledger
from ..ratelimit import RateLimit
from ..rows import Row
from .run import BatchOptions

__all__ = ["BatchKeywords", "Resolved", "SendKeywords", "options_of", "resolve"]


class SendKeywords(TypedDict, total=False):
    """Where and how requests go, and what the caller watches (every family takes these)."""

    base_url: str | None
    token: str | None
    tokens: Sequence[str] | None
    instance: str | None
    playground: bool | None
    #: Resolved settings (:func:`omni_nb.config.resolve_settings`), instead of the five above.
    settings: Settings
    concurrency: int
    rate_limit: RateLimit | None
    #: A callable ``(done, total, row)``; None: the display where a person watches; False: none.
    progress: Callable[[int, int, Row], None] | bool | None
    max_retries: int | None
    retry: RetryPolicy | None
    timeout: float
    #: Built options, instead of concurrency, rate_limit, max_retries/retry, timeout,
    #: resume and ledger.
    options: BatchOptions
    document_col: str
    cancel: threading.Event | None
    #: Names of the inputs in messages (default ``item 1``, ``item 2``...).
    labels: Sequence[str] | None


class BatchKeywords(SendKeywords, total=False):
    """:class:`SendKeywords` and what a recorded batch adds: resume, the ledger, a branch
    column."""

    resume: bool
    ledger: str | Path | Ledger | None
    branch_col: str | None


_CONNECTION = ("base_url", "token", "tokens", "instance", "playground")
_OPTIONS = ("concurrency", "rate_limit", "max_retries", "retry", "timeout", "resume", "ledger")


@dataclass(frozen=True, slots=True)
class Resolved:
    """One call's keywords, resolved once: settings, options and what the caller watches.

    Example:
        >>> resolve({"base_url": "https://a.omniapp.co", "token": "t"}).cancel is None
        True
    """

    settings: Settings
    options: BatchOptions
    progress: Callable[[int, int, Row], None] | bool | None = None
    cancel: threading.Event | None = None
    document_col: str = "document_id"
    branch_col: str | None = None
    labels: Sequence[str] | None = None


def resolve(
    keywords: SendKeywords | BatchKeywords | dict[str, Any],
    accepted: type[SendKeywords] = BatchKeywords,
) -> Resolved:
    """The settings, options and the rest for a call's keywords. Raises :class:`TypeError`
    for a keyword that is not one of ``accepted``'s (``**keywords`` accepts anything at run
    time; a typo such as ``ledgr="off"`` must not be ignored) and for ``settings=`` or
    ``options=`` given together with what they replace.

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
    settings = _settings(kw)
    return Resolved(
        settings=settings, options=_options(kw, settings), progress=kw.get("progress"),
        cancel=kw.get("cancel"), document_col=kw.get("document_col", "document_id"),
        branch_col=kw.get("branch_col"), labels=kw.get("labels"),
    )


def _settings(kw: dict[str, Any]) -> Settings:
    given = kw.get("settings")
    if given is None:
        # The ledger's location is a setting: resolved here with the rest, once.
        return resolve_settings(kw.get("base_url"), kw.get("token"), tokens=kw.get("tokens"),
                                instance=kw.get("instance"), playground=kw.get("playground"),
                                ledger=kw.get("ledger"))
    clash = [name for name in _CONNECTION if kw.get(name) is not None]
    if clash:
        raise TypeError(f"give settings= or {clash[0]}=, not both")
    if not isinstance(given, Settings):
        raise TypeError(f"settings= takes resolved Settings, not {type(given).__name__}")
    return given


def _options(kw: dict[str, Any], settings: Settings) -> BatchOptions:
    given = kw.get("options")
    if given is None:
        # ledger= went into the settings unless they came resolved: then it overrides them.
        ledger = kw.get("ledger") if "settings" in kw else None
        return options_of(kw.get("concurrency", 8), kw.get("rate_limit", RateLimit()),
                          kw.get("resume", False), ledger, kw.get("max_retries"),
                          kw.get("retry"), kw.get("timeout", 30.0))
    clash = [name for name in _OPTIONS if name in kw]
    if clash:
        raise TypeError(f"give options= or {clash[0]}=, not both")
    if not isinstance(given, BatchOptions):
        raise TypeError(f"options= takes BatchOptions, not {type(given).__name__}")
    return given


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
