"""Several API keys for one batch: one client per key, each request on the key that can send
soonest, a refused key leaving the pool.

Omni counts its rate limit per key, so K keys give K budgets. Each key keeps its own client
and with it the process-wide limiter of that key (:func:`omni_nb.ratelimit.shared_limiter`,
keyed by API root and token fingerprint), so another batch or kernel thread on the same key
still shares its budget. Choosing happens between two awaits (the pick and the client's
reservation run without yielding to the event loop), so two workers of one batch never
both count on the same free slot.

Example:
    >>> import asyncio
    >>> from omni_nb.config import resolve_settings
    >>> s = resolve_settings("https://a.omniapp.co", tokens=["k1", "k2"], environ={})
    >>> async def keys():
    ...     async with KeyPool.open(s, rate_limit=None, retry=RetryPolicy(), timeout=5.0,
    ...                             max_connections=1) as pool:
    ...         return len(pool.keys)
    >>> asyncio.run(keys())
    2
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..client import AsyncOmniClient, RetryPolicy
from ..config import Settings
from ..errors import AuthenticationError, KeyRefusedWarning, OmniError
from ..ratelimit import RateLimit

__all__ = ["Key", "KeyPool"]

log = logging.getLogger("omni_nb")
REPICK_S = 0.1  # a worker waiting for a key's slot looks again this often for a freer key


@dataclass(eq=False, slots=True)
class Key:
    """One key of the pool: its client, its position (1-based) and short name, its load."""

    client: AsyncOmniClient
    position: int
    key_id: str
    in_flight: int = 0
    sent: int = 0

    def free_in(self) -> float:
        """Seconds until this key may send (0: now), no slot taken. A key with no limit in
        force and no pause sends at once: its budget is not read, which would cost a store
        transaction per item of an unlimited batch.

        Example:
            >>> from types import SimpleNamespace
            >>> from omni_nb.ratelimit import Limiter, RateLimit
            >>> t = [0.0]
            >>> lim = Limiter(RateLimit(1, 10.0), clock=lambda: t[0], margin=0.0)
            >>> key = Key(SimpleNamespace(limiter=lim), 1, "k")
            >>> key.free_in(), lim.acquire(lambda s: None), key.free_in()
            (0.0, 0.0, 10.0)
        """
        limiter = self.client.limiter
        if limiter.effective_limit is None and limiter.paused_until <= time.monotonic():
            return 0.0
        return limiter.next_send_in()


class KeyPool:
    """The live keys of a batch (see the module docstring).

    Example:
        >>> KeyPool([]).keys
        []
    """

    def __init__(self, keys: list[Key]) -> None:
        self.keys = list(keys)
        self.live = list(keys)
        self.refusal: OmniError | None = None  # the last refusal: why a key left

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, settings: Settings, *, rate_limit: RateLimit | None, retry: RetryPolicy,
        timeout: float, max_connections: int,
    ) -> AsyncIterator[KeyPool]:
        """One client per key of ``settings.tokens``, closed on exit."""
        async with contextlib.AsyncExitStack() as stack:
            keys = []
            for position, secret in enumerate(settings.tokens, start=1):
                client = AsyncOmniClient(
                    settings=settings.for_key(secret), rate_limit=rate_limit, retry=retry,
                    timeout=timeout, max_connections=max_connections,
                )
                await stack.enter_async_context(client)
                keys.append(Key(client, position, secret.key_id()))
            yield cls(keys)

    def no_key_left(self) -> AuthenticationError:
        """What :meth:`ready` raises once every key was refused: the last
        refusal's status and words (a new error: the refusal itself is its row's error).

        Example:
            >>> pool = KeyPool([])
            >>> pool.refusal = AuthenticationError(403, "Invalid bearer token")
            >>> str(pool.no_key_left())
            'HTTP 403: no key of the pool is left (the last one was refused: Invalid bearer token)'
            >>> import asyncio
            >>> asyncio.run(pool.ready())  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            omni_nb.errors.AuthenticationError: HTTP 403: no key of the pool is left (...)
        """
        last = self.refusal
        if isinstance(last, AuthenticationError):
            status, why = last.status_code, f"the last one was refused: {last.message}"
        else:
            status, why = 401, "no key was given" if last is None else f"refused: {last}"
        return AuthenticationError(status, f"no key of the pool is left ({why})")

    async def ready(self) -> tuple[Key, float]:
        """The key to send on, once one may send now, and the seconds spent waiting for it.

        The batch asks with its next item in hand and one worker at a time (the others wait
        their turn), so every earlier send has taken its slot and the budget alone says how
        long (the keys' own counts of workers do not). Among keys free now, the one with the
        fewest requests in flight, then sent, goes (equally free keys take turns). While none
        is free, the choice is made again every :data:`REPICK_S`: another key's window may
        open first. It returns without awaiting once a key is free, so the client's claim of
        the slot follows directly. Once every key was refused (the last one while this waited,
        say), it raises :meth:`no_key_left`.

        Example:
            >>> import asyncio
            >>> from omni_nb.config import resolve_settings
            >>> s = resolve_settings("https://a.omniapp.co", "k1", environ={})
            >>> async def first():
            ...     async with KeyPool.open(s, rate_limit=None, retry=RetryPolicy(),
            ...                             timeout=5.0, max_connections=1) as pool:
            ...         key, waited = await pool.ready()
            ...         return key.key_id == pool.keys[0].key_id, waited
            >>> asyncio.run(first())
            (True, 0.0)
        """
        waited = 0.0
        while True:
            if not self.live:
                raise self.no_key_left()
            scored = [((k.free_in(), k.in_flight, k.sent), k) for k in self.live]
            (wait, _, _), key = min(scored, key=lambda pair: pair[0])
            if wait <= 0:
                return key, waited
            start = time.monotonic()
            await asyncio.sleep(min(wait, REPICK_S))
            waited += time.monotonic() - start

    def refuse(self, key: Key, error: OmniError) -> bool:
        """Take a refused key out of the pool, with a warning; True while keys are left."""
        self.refusal = error
        if key in self.live:
            self.live.remove(key)
            if len(self.keys) > 1:
                left = len(self.live)
                message = (
                    f"API key {key.position} of {len(self.keys)} ({key.key_id}) was refused "
                    f"({error}); it leaves the pool"
                    + (f", the batch goes on with {left} key(s)" if left else
                       ", and no key is left")
                )
                log.warning(message)
                warnings.warn(message, KeyRefusedWarning, stacklevel=2)
        return bool(self.live)
