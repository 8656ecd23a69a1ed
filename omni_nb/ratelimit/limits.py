"""RateLimit: at most N requests in any trailing window, checked once when made."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MAX_PER", "MAX_REQUESTS", "RateLimit"]

MAX_PER = 86_400.0  # a window over a day is a typo, not a limit
MAX_REQUESTS = 1_000_000  # more than any API key is given; the store keeps one row per send


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` calls in any trailing ``per``-second window.

    Omni allows 60 per minute per key (500 on request). A value that is not positive, a
    bool, NaN or infinite, or a window over a day is refused with one error naming the field.

    Example:
        >>> RateLimit()
        RateLimit(requests=60, per=60.0)
        >>> RateLimit(500, 60).requests
        500
        >>> RateLimit(10, 90_000)
        Traceback (most recent call last):
        ...
        ValueError: RateLimit.per must be at most 86400 seconds (a day), got 90000
    """

    requests: int = 60
    per: float = 60.0

    def __post_init__(self) -> None:
        n = self.requests
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"RateLimit.requests must be an int, got {n!r}")
        if not 1 <= n <= MAX_REQUESTS:
            raise ValueError(
                f"RateLimit.requests must be between 1 and {MAX_REQUESTS:,}, got {n!r}"
            )
        per = self.per
        if isinstance(per, bool) or not isinstance(per, int | float):
            raise TypeError(f"RateLimit.per must be a number of seconds, got {per!r}")
        if not (math.isfinite(per) and per > 0):
            raise ValueError(
                f"RateLimit.per must be a positive, finite number of seconds, got {per!r}"
            )
        if per > MAX_PER:
            raise ValueError(
                f"RateLimit.per must be at most {MAX_PER:.0f} seconds (a day), got {per!r}"
            )
        object.__setattr__(self, "per", float(per))

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """``"60/60"`` -> ``RateLimit(60, 60.0)``; ``"off"`` -> None.

        Example:
            >>> RateLimit.parse("30/60")
            RateLimit(requests=30, per=60.0)
        """
        value = text.strip().lower()
        if value in ("off", "none", "0"):
            return None
        count, sep, seconds = value.partition("/")
        try:
            return cls(int(count), float(seconds) if sep else 60.0)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"rate {text!r} is not N/SECONDS (like 60/60) or 'off': {exc}"
            ) from None
