"""What a batch's keys allow right now, for the progress displays: why sending waits, for how
long, and how fast the budget lets the rest go (the ETA).

Example:
    >>> from omni_nb.ratelimit import Limiter, RateLimit
    >>> view = KeysBudget([Limiter(RateLimit(60, 60.0))])
    >>> view.per_second(), view.held()
    (1.0, None)
    >>> t = [0.0]
    >>> key = Limiter(None, clock=lambda: t[0], margin=0.0)
    >>> strict = key.caller(RateLimit(1, 10.0))
    >>> _ = strict.acquire(lambda s: None)
    >>> KeysBudget([key.caller(None)]).held().text()
    "waiting for the rate budget (held by another caller's 1 per 10 s): next send in 10 s"
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..config import Settings
from ..progress.tally import Hold
from ..ratelimit import Caller, Limiter, RateLimit, shared_limiter

__all__ = ["KeysBudget", "budget_for"]


class KeysBudget:
    """The displays' view of the keys' limiters (a :class:`~omni_nb.progress.tally.Budget`)."""

    def __init__(self, limiters: Sequence[Limiter | Caller]) -> None:
        self._limiters = list(limiters)

    def held(self) -> Hold | None:
        """Sending waits when no key may send now: a 429 pause on every key, or the budget
        (saying what holds the key that frees first: another caller's limit, a learned one)."""
        if not self._limiters:
            return None
        now = time.monotonic()
        paused = [limiter.paused_until - now for limiter in self._limiters]
        if all(left > 0 for left in paused):
            return Hold("a 429 pause", min(paused))
        wait, first = min(((limiter.next_send_in(), i) for i, limiter
                           in enumerate(self._limiters)), default=(0.0, 0))
        if wait <= 0:
            return None
        return Hold("the rate budget", wait, self._limiters[first].holding())

    def per_second(self) -> float | None:
        """Requests per second all keys allow together (learned limits included); None when
        any key is unlimited."""
        limits = [limiter.effective_limit for limiter in self._limiters]
        if not limits or any(limit is None for limit in limits):
            return None
        return sum(limit.requests / limit.per for limit in limits if limit is not None)


def budget_for(settings: Settings, rate_limit: RateLimit | None) -> KeysBudget:
    """The view of every key of ``settings`` (the limiters the batch's clients share, each
    through a caller with the batch's limit: it only looks, so it holds nobody back).

    Example:
        >>> from omni_nb.config import resolve_settings
        >>> s = resolve_settings("https://acme.omniapp.co", "t", environ={})
        >>> budget_for(s, RateLimit(30, 60)).per_second()
        0.5
    """
    return KeysBudget([shared_limiter(settings.api_root, key.fingerprint(), rate_limit,
                                      budget=settings.budget).caller(rate_limit)
                       for key in settings.tokens])
