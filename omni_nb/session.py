"""``omni_nb.login()``: keep a token for this process, and check it with one cheap call.

Above the client (it asks the server), below the front ends. The keeping itself is
:func:`omni_nb.config.remember`; the check lists one document (``GET /v1/documents``, which
any valid token may do) on each key, so a typo or a revoked key fails here, in one line,
instead of in the middle of a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from .client import OmniClient
from .config import logout, remember, resolve_settings
from .errors import ConfigError, OmniError

__all__ = ["login"]


def login(
    token: str | None = None,
    *,
    tokens: Sequence[str] | None = None,
    base_url: str | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    check: bool = True,
) -> None:
    """Keep a token (or a pool: ``tokens=[...]``) for this process and say where it works.

    With neither ``token`` nor ``tokens`` it prompts (``getpass``), so the token is never
    typed into a cell. With ``check`` (the default) each key is tried with one cheap call
    against the API root (``instance=``/``base_url=`` or the environment): it prints where
    it connected, or raises one line (:class:`omni_nb.AuthenticationError` for a refused key,
    :class:`omni_nb.APIConnectionError` for an unreachable instance) and keeps nothing.
    ``check=False`` only keeps it (no network: what doctests and offline code use).

    Example:
        >>> login("omni_osk_example", instance="acme", check=False)
        >>> from omni_nb.config import resolve_settings
        >>> resolve_settings(environ={}).api_root
        'https://acme.omniapp.co/api'
        >>> logout()
    """
    remember(token, tokens=tokens, base_url=base_url, instance=instance, playground=playground)
    if not check:
        return
    try:
        settings = resolve_settings()
    except ConfigError as exc:
        if exc.missing != "api_root":
            raise
        print("Kept the token for this kernel; no API root yet to check it against: "
              "login(instance=...) or set OMNI_BASE_URL / OMNI_INSTANCE.")
        return
    try:
        for key in settings.tokens:
            with OmniClient(settings=settings.for_key(key), rate_limit=None, max_retries=1,
                            timeout=15.0) as client:
                client.list_documents(limit=1)
    except OmniError:
        logout()  # a token that does not work is not kept
        raise
    keys = "the token is" if len(settings.tokens) == 1 else \
        f"all {len(settings.tokens)} keys are"
    print(f"Logged in to {settings.api_root}: {keys} accepted (drafting also needs Editor "
          f"rights on each document).")
