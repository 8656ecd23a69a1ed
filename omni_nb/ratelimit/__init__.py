"""Client-side rate limiting: at most N requests in ANY trailing window, one budget per key.

Omni's firewall counts requests per exact Authorization value in a trailing window, on
arrival. Every process of the user that uses one key (API root, token) draws from one
budget, kept in a small SQLite file in the user's data directory, or on a Redis server a team's
machines share (``OMNI_NB_BUDGET``: a path, a ``redis://`` address, or ``off`` for a
per-process budget; resolved with the other settings, ``Settings.budget``, and handed to
:func:`shared_limiter`). Layers, each usable alone:

- :mod:`.limits`: :class:`RateLimit`, checked once.
- :mod:`.log`: the pure maths on a key's send log (spacing, what a 429 teaches).
- :mod:`.store`: the shared SQLite store (no token in it: a digest keys it).
- :mod:`.redis_store`: the same store on Redis, for a team's machines.
- :mod:`.link`: whether the store can be used now (faults pass: it is tried again).
- :mod:`.limiter`: :class:`Limiter`, one per key per process, on the store or on its own,
  and its :class:`Caller` s, one per client or batch, each with its own limit.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from types import EllipsisType

from ..budget_url import RedisAddress
from ..config import budget_path, default_budget_path
from .limiter import BudgetStoreWarning, Caller, Limiter
from .limits import RateLimit
from .redis_store import open_at
from .store import BudgetStore, KeyState, LeaseView, Store, StoreError, key_of

__all__ = [
    "BudgetStore",
    "BudgetStoreWarning",
    "Caller",
    "KeyState",
    "LeaseView",
    "Limiter",
    "RateLimit",
    "StoreError",
    "open_store",
    "pause_key",
    "shared_limiter",
]

#: One limiter per key (API root, token fingerprint) and budget store (None: per process).
_registry: dict[tuple[str, str, Path | RedisAddress | None], Limiter] = {}
_stores: dict[Path | RedisAddress, Store | None] = {}
_registry_lock = threading.Lock()


def open_store(place: Path | RedisAddress | None) -> Store | None:
    """The process's open store at ``place`` (None for off, or when it cannot be used: then
    with a :class:`BudgetStoreWarning`, once per place).

    A Redis address that cannot be reached (or is another application's) gives, with its
    one warning, this machine's own store (:func:`omni_nb.config.default_budget_path`): the
    processes of this machine still share the key, until the next process start tries Redis
    again. Raises :class:`~omni_nb.errors.ConfigError` when Redis refuses the password or the
    database, or redis-py is missing: settings to fix, before anything is sent.

    Example:
        >>> open_store(None) is None
        True
    """
    if place is None:
        return None
    with _registry_lock:
        return _opened(place)


def _opened(place: Path | RedisAddress) -> Store | None:
    """The store at ``place``, opened once (under the registry lock); a Redis that cannot be
    used gives this machine's store, opened (and cached) the same way."""
    if place not in _stores:
        try:
            _stores[place] = open_at(place)
        except StoreError as exc:
            if isinstance(place, Path):
                _stores[place] = None
                warnings.warn(f"{exc}; this process keeps a rate budget of its own",
                              BudgetStoreWarning, stacklevel=4)
            else:
                machine = default_budget_path()
                _stores[place] = _opened(machine)
                where = (f"this machine's store {machine}" if _stores[place] is not None
                         else "a budget of its own")
                warnings.warn(f"{exc}; this process shares the key's rate budget through "
                              f"{where} instead (Redis is tried again at the next start)",
                              BudgetStoreWarning, stacklevel=4)
    return _stores[place]


def shared_limiter(
    api_root: str, token_fingerprint: str, limit: RateLimit | None, *,
    budget: Path | RedisAddress | EllipsisType | None = ...,
) -> Limiter:
    """The process-wide limiter of one key (API root, token): every client of it shares it,
    and through the budget store every process of the user does.

    ``budget`` is the store's path or Redis address (``Settings.budget``), or None for a
    budget of this process only; left out, it is :func:`omni_nb.config.budget_path`, read from the
    environment now. One limiter per key and store: settings naming another store for the
    key get another limiter. ``limit`` is the limiter's anonymous caller's, set by the first
    call only: a client takes a caller of its own (``shared_limiter(...).caller(limit)``),
    so no caller changes another's limit. A pause after a 429 holds every caller of the key.

    Example:
        >>> a = shared_limiter("https://x/api", "f", RateLimit(), budget=None)
        >>> a is shared_limiter("https://x/api", "f", RateLimit(30, 60), budget=None)
        True
        >>> a.limit, a.shared
        (RateLimit(requests=60, per=60.0), False)
    """
    path = budget_path() if isinstance(budget, EllipsisType) else budget
    key = (api_root, token_fingerprint, path)
    with _registry_lock:
        limiter = _registry.get(key)
    if limiter is None:
        store = open_store(path)
        with _registry_lock:
            limiter = _registry.get(key)
            if limiter is None:
                limiter = _registry[key] = Limiter(
                    limit, store=store, key=key_of(api_root, token_fingerprint)
                )
    return limiter


def pause_key(
    api_root: str, token_fingerprint: str, seconds: float, *,
    unless: Limiter | Caller | None = None,
) -> None:
    """After a 429, hold every caller of the key (if any client of it exists in this
    process; through the store, every process), unless its limiter is ``unless`` (or the
    limiter of the caller ``unless``).

    Example:
        >>> pause_key("https://nobody/api", "f", 1.0)  # no limiter of that key: nothing to do
    """
    with _registry_lock:
        limiters = [limiter for (root, fingerprint, _), limiter in _registry.items()
                    if (root, fingerprint) == (api_root, token_fingerprint)]
    skip = unless.limiter if isinstance(unless, Caller) else unless
    for limiter in limiters:
        if limiter is not skip:
            limiter.pause_for(seconds)
