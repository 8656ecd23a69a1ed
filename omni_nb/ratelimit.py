"""Client-side rate limiting: at most N requests in ANY trailing window, shared per key.

Omni's firewall counts requests per exact Authorization value in a trailing window. A token
bucket that bursts N and then refills could send nearly 2N in one window, so this is a
sliding log of the last N send slots instead: a new slot is never earlier than the slot N
places before it plus the window. Slots are *reserved* under a lock and then waited for
outside it, so threads and any number of event loops share one limiter without any
loop-bound primitive.

After a 429 every caller sharing the key pauses: :meth:`Limiter.pause_until` moves a floor
under all future slots and hands back the slots reserved but not yet used, so waiting callers
re-reserve after the pause instead of all firing at once when it ends.

No maintained library fits: ``aiolimiter`` is a leaky bucket (the 2N burst above) and async
only; ``limits``/``pyrate-limiter`` do not share one budget between threads and event loops
with a pause that every caller honours.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Limiter", "RateLimit", "pause_key", "shared_limiter"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` calls in any trailing ``per``-second window.

    Omni allows 60 per minute per key (500 on request).

    Example:
        >>> RateLimit()
        RateLimit(requests=60, per=60.0)
        >>> RateLimit(500, 60).requests
        500
    """

    requests: int = 60
    per: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.requests, bool) or not isinstance(self.requests, int):
            raise TypeError("RateLimit.requests must be an int")
        if self.requests < 1:
            raise ValueError("RateLimit.requests must be at least 1")
        if not isinstance(self.per, int | float) or isinstance(self.per, bool):
            raise TypeError("RateLimit.per must be a number of seconds")
        if not (self.per > 0 and self.per < float("inf")):
            raise ValueError("RateLimit.per must be a positive, finite number of seconds")
        object.__setattr__(self, "per", float(self.per))

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


class Limiter:
    """A sliding-log limiter; pass a fake ``clock`` to test it without sleeping.

    ``limit=None`` keeps only the shared pause after a 429.

    Example:
        >>> t = [0.0]
        >>> lim = Limiter(RateLimit(2, 10.0), clock=lambda: t[0], margin=0.0)
        >>> [lim.reserve()[0] for _ in range(3)]
        [0.0, 0.0, 10.0]
    """

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        margin: float | None = None,
    ) -> None:
        self._clock = clock
        self._fixed_margin = margin
        self._set(limit)
        # The server counts a request when it handles it, somewhere between our send and the
        # answer: spacing sends by the window plus the longest recent round trip keeps the
        # server's count within the limit however the requests were delayed on the way.
        self._latencies: deque[float] = deque(maxlen=64)
        # Every slot still inside the trailing window, plus the ones reserved for the future
        # (not bounded to N: a pause pops future slots, and the older real sends behind
        # them must still be there to count).
        self._slots: deque[float] = deque()
        self._floor = float("-inf")
        self._epoch = 0
        self._lock = threading.Lock()

    def _set(self, limit: RateLimit | None) -> None:
        self.limit = limit
        margin = self._fixed_margin
        # Sends are timed at the client and counted at the server on arrival; a small margin
        # absorbs the difference in network delay between two requests one window apart.
        if margin is None:
            # 50 ms covers scheduling jitter on a busy machine; 1% of long windows covers
            # network jitter; capped so a 60 s window loses at most 0.4%.
            margin = 0.0 if limit is None else min(0.25, max(0.05, limit.per * 0.01))
        self._margin = margin

    def use(self, limit: RateLimit | None) -> None:
        """Count against ``limit`` from now on (the newest client of a key sets its limit).

        Example:
            >>> lim = Limiter(None)
            >>> lim.use(RateLimit(5, 1.0)); lim.limit
            RateLimit(requests=5, per=1.0)
        """
        with self._lock:
            self._set(limit)

    def reserve(self) -> tuple[float, int]:
        """Reserve the next send slot: (monotonic time to send at, pause epoch)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._floor)
            if self.limit is not None:
                n, per = self.limit.requests, self.limit.per + self._margin
                while self._slots and self._slots[0] <= now - per - max(
                    self._latencies, default=0.0
                ):
                    self._slots.popleft()  # out of every window that a new slot can be in
                if len(self._slots) >= n:
                    slack = max(self._latencies, default=0.0)
                    slot = max(slot, self._slots[-n] + per + slack)
                self._slots.append(slot)
            return slot, self._epoch

    def next_send_in(self) -> float:
        """Seconds until a caller could send on this key (0: now); reserves nothing.

        Example:
            >>> t = [0.0]
            >>> lim = Limiter(RateLimit(1, 10.0), clock=lambda: t[0], margin=0.0)
            >>> lim.next_send_in(), lim.reserve()[0], lim.next_send_in()
            (0.0, 0.0, 10.0)
        """
        with self._lock:
            now = self._clock()
            slot = max(now, self._floor)
            if self.limit is not None and len(self._slots) >= self.limit.requests:
                per = self.limit.per + self._margin + max(self._latencies, default=0.0)
                slot = max(slot, self._slots[-self.limit.requests] + per)
            return max(0.0, slot - now)

    def pause_until(self, when: float) -> None:
        """Hold every caller sharing this limiter until monotonic time ``when``."""
        with self._lock:
            if when <= self._floor:
                return
            self._floor = when
            self._epoch += 1
            now = self._clock()
            # Slots reserved for the future were not used: release them so the budget they
            # held is not wasted; their owners see the new epoch and reserve again.
            while self._slots and self._slots[-1] > now:
                self._slots.pop()

    def observe(self, round_trip: float) -> None:
        """Record how long a request took from send to answer (see the margin above)."""
        if self.limit is not None and round_trip >= 0:
            with self._lock:
                self._latencies.append(round_trip)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller sharing this limiter for ``seconds`` from now (its own clock)."""
        self.pause_until(self._clock() + seconds)

    @property
    def paused_until(self) -> float:
        """The monotonic time before which nobody sends (-inf when not paused)."""
        with self._lock:
            return self._floor

    def _ready(self, slot: float, epoch: int) -> tuple[float, float, int]:
        """(seconds still to wait, slot, epoch), re-reserving after a pause."""
        with self._lock:
            stale = epoch != self._epoch
        if stale:
            slot, epoch = self.reserve()
        return slot - self._clock(), slot, epoch

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until this caller may send; returns the seconds waited.

        Example:
            >>> Limiter(None).acquire()
            0.0
        """
        slot, epoch = self.reserve()
        waited = 0.0
        while True:
            delay, slot, epoch = self._ready(slot, epoch)
            if delay <= 0:
                return waited
            sleep(delay)
            waited += delay

    async def aacquire(
        self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> float:
        """Wait (without blocking the event loop) until this caller may send.

        Example:
            >>> import asyncio
            >>> asyncio.run(Limiter(None).aacquire())
            0.0
        """
        slot, epoch = self.reserve()
        waited = 0.0
        while True:
            delay, slot, epoch = self._ready(slot, epoch)
            if delay <= 0:
                return waited
            await sleep(delay)
            waited += delay


_registry: dict[tuple[str, str], Limiter] = {}
_registry_lock = threading.Lock()


def shared_limiter(api_root: str, token_fingerprint: str, limit: RateLimit | None) -> Limiter:
    """The process-wide limiter of one key (API root, token): every client of it shares it.

    One budget per key, because the server counts per key: the limiter counts every send
    on the key, and its limit is the one the newest client of the key asked for. A pause
    after a 429 holds every caller of the key.

    Example:
        >>> a = shared_limiter("https://x/api", "f", RateLimit())
        >>> a is shared_limiter("https://x/api", "f", RateLimit(30, 60))
        True
        >>> a.limit
        RateLimit(requests=30, per=60.0)
    """
    key = (api_root, token_fingerprint)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = Limiter(limit)
    limiter.use(limit)
    return limiter


def pause_key(api_root: str, token_fingerprint: str, seconds: float) -> None:
    """After a 429, hold every caller of the key (if any client of it exists).

    Example:
        >>> pause_key("https://nobody/api", "f", 1.0)  # no limiter of that key: nothing to do
    """
    limiter = _registry.get((api_root, token_fingerprint))  # a dict read is atomic
    if limiter is not None:
        limiter.pause_for(seconds)
