"""The part of the two clients that is not I/O: resolved settings and options in, the core."""

from __future__ import annotations

from ..config import Settings, resolve_settings
from ..evidence import ServerClock
from ..ratelimit import Caller, Limiter
from ._core import ClientOptions, Core

__all__ = ["BaseClient", "settings_for"]


def settings_for(
    base_url: str | None, token: str | None, settings: Settings | None,
    instance: str | None, playground: bool | None,
) -> Settings:
    """``settings`` when a front end resolved them already, else resolve them now.

    Example:
        >>> settings_for("https://acme.omniapp.co", "t", None, None, None).api_root
        'https://acme.omniapp.co/api'
    """
    if settings is None:
        return resolve_settings(base_url, token, instance=instance, playground=playground)
    if base_url is not None or token is not None or instance is not None:
        raise TypeError("give settings= or base_url/token/instance, not both")
    return settings


class BaseClient:
    """Holds the shared core; the twins add the I/O.

    Example:
        >>> from omni_nb.config import resolve_settings
        >>> s = resolve_settings("https://acme.omniapp.co", "t", environ={})
        >>> BaseClient(s, ClientOptions()).api_root
        'https://acme.omniapp.co/api'
    """

    def __init__(self, settings: Settings, options: ClientOptions) -> None:
        self._core = Core(settings=settings, options=options)

    @property
    def api_root(self) -> str:
        """The API root every request goes to."""
        return self._core.settings.api_root

    @property
    def limiter(self) -> Caller | Limiter:
        """This client's caller of the key's rate limiter (the limiter is shared by every
        client of its key), or the limiter it was given."""
        return self._core.limiter

    @property
    def server_clock(self) -> ServerClock:
        """How far Omni's clock is from this machine's, bounded by the answers' ``Date``
        headers so far (see :mod:`omni_nb.evidence`)."""
        return self._core.clock

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(api_root={self.api_root!r}, "
                f"rate_limit={self._core.rate_limit!r})")
