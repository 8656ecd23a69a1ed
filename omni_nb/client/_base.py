"""The part of the two clients that is not I/O: settings in, the core made, the repr."""

from __future__ import annotations

import random
from collections.abc import Callable

from ..config import Settings, resolve_settings
from ..ratelimit import Limiter, RateLimit
from ._core import CallOutcome, RetryPolicy, _Core

__all__ = ["BaseClient"]


class BaseClient:
    """Resolves settings once (or takes resolved ones) and builds the shared core.

    Example:
        >>> c = BaseClient("https://acme.omniapp.co", "t", settings=None)
        >>> c.api_root
        'https://acme.omniapp.co/api'
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        settings: Settings | None,
        instance: str | None = None,
        playground: bool | None = None,
        rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, safe to share
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        on_result: Callable[[CallOutcome], None] | None = None,
        limiter: Limiter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if settings is None:
            settings = resolve_settings(base_url, token, instance=instance, playground=playground)
        elif base_url is not None or token is not None or instance is not None:
            raise TypeError("give settings= or base_url/token/instance, not both")
        self._core = _Core(
            settings=settings, rate_limit=rate_limit, retry=RetryPolicy.of(max_retries, retry),
            timeout=timeout, on_result=on_result, limiter=limiter, rng=rng,
        )

    @property
    def api_root(self) -> str:
        """The API root every request goes to."""
        return self._core.settings.api_root

    @property
    def limiter(self) -> Limiter:
        """The rate limiter this client draws from (shared by every client of its key)."""
        return self._core.limiter

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_root={self.api_root!r}, " \
            f"rate_limit={self._core.rate_limit!r})"
