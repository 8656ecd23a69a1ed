"""The sandbox's settings: latency, faults, the rate window (with its grace at the edge) and
the clock offset, replaced as a whole so readers never see half an update.

Example:

    >>> Settings(grace=0.25).grace
    0.25
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Final, Literal

__all__ = ["UNSET", "RetryAfter", "Settings", "Unset"]

RetryAfter = Literal["seconds", "date"]


class Unset(enum.Enum):
    """The default of :meth:`Sandbox.configure`'s options: "leave this setting as it is".

    A sentinel that mypy can narrow, because ``None`` is a meaningful value
    for rate_limit and retry_after.
    """

    UNSET = enum.auto()


UNSET: Final = Unset.UNSET


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Fault/latency/rate options; replaced as a whole so readers never see half an update.

    Example:

        >>> Settings(rate_limit=(5, 1)).rate_limit
        (5, 1.0)
        >>> Settings(fail_rate=2.0)
        Traceback (most recent call last):
        ...
        ValueError: fail_rate must be between 0 and 1, got 2.0
    """

    latency: float = 0.0
    latency_jitter: float = 0.0
    rate_limit: tuple[int, float] | None = (60, 60.0)
    retry_after: RetryAfter | None = "seconds"
    #: Refused requests count in the window too (a firewall that counts every arrival, so
    #: retrying into a block prolongs it); False: only accepted ones count, as by default.
    count_refused: bool = False
    #: Seconds of leniency at the window's edge: a request the strict window would refuse
    #: is accepted when the arrival that has to leave the window for it leaves within
    #: ``grace`` seconds (a firewall that is lenient at the edge). 0: strict.
    grace: float = 0.0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    #: Seconds the sandbox's clock is ahead of this machine's (negative: behind): its
    #: ``Date`` headers, drafts' ``createdAt`` and ``Retry-After`` dates move together.
    clock_offset: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latency", "latency_jitter", "slow_seconds", "grace"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in ("fail_rate", "drop_rate", "slow_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        offset = self.clock_offset
        if not (isinstance(offset, (int, float)) and math.isfinite(offset)):
            raise ValueError(f"clock_offset must be a finite number of seconds, got {offset!r}")
        if self.rate_limit is not None:
            object.__setattr__(self, "rate_limit", _checked_rate_limit(self.rate_limit))
        if self.retry_after not in ("seconds", "date", None):
            raise ValueError(
                f"retry_after must be 'seconds', 'date' or None, got {self.retry_after!r}"
            )


def _checked_rate_limit(rate_limit: tuple[int, float]) -> tuple[int, float]:
    # The annotation is what callers should pass; anything else is checked for here.
    try:
        requests, per = rate_limit
    except (TypeError, ValueError):
        raise ValueError(
            f"rate_limit must be (requests, per_seconds) or None, got {rate_limit!r}"
        ) from None
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ValueError(f"rate_limit requests must be an int >= 1, got {requests!r}")
    if not (isinstance(per, (int, float)) and math.isfinite(per) and per > 0):
        raise ValueError(f"rate_limit seconds must be > 0, got {per!r}")
    return requests, float(per)
