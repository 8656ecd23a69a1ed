"""What a key's shared rate budget holds now, in words: ``omni-nb budget`` and
:func:`rate_budget`.

Each key of the budget store is shown by the configured key's short name (``Secret.key_id``)
when the settings name it, else by the first characters of the store's digest: the store
never holds a token, and neither does this view. ``clear`` drops a key's stale state (the
leases of callers that no longer run, a pause, a learned limit, the sends of the window),
for a key a crashed or foreign process left holding back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._text import plural
from ..budget_url import RedisAddress, is_redis_url
from ..config import Settings, budget_path, resolve_settings
from ..errors import ConfigError
from .limits import RateLimit
from .redis_store import open_at
from .store import KeyState, LeaseView, StoreError, key_of

__all__ = ["BudgetReport", "KeyBudget", "rate_budget"]


def _rate(limit: RateLimit) -> str:
    return f"{limit.requests} per {limit.per:g} s"


@dataclass(frozen=True, slots=True)
class KeyBudget:
    """One key's budget as the store holds it now.

    ``key`` is the configured key's short name (8 hex characters) or, for a key the settings
    do not name, ``"digest <first 8 of the store's digest>"``; ``api_root`` is known only for
    configured keys. ``leases`` are the explicit limits of live callers (each with who holds
    it and its wall-clock expiry); ``paused_for`` the seconds of a 429 pause left.

    Example:
        >>> k = KeyBudget("1a2b3c4d", "https://acme.omniapp.co/api", (), None, None, 3, 0.05, 1)
        >>> for part in str(k).split("; "):
        ...     print(part)
        key 1a2b3c4d (https://acme.omniapp.co/api): no explicit limit held
        3 sends in the window, 1 process, allowance 0.05 s
    """

    key: str
    api_root: str | None
    leases: tuple[LeaseView, ...]
    learned: RateLimit | None
    paused_for: float | None
    sends: int
    allowance: float
    processes: int

    def __str__(self) -> str:
        where = f" ({self.api_root})" if self.api_root else " (not configured here)"
        parts = []
        if self.leases:
            now = time.time()
            held = [f"{_rate(lease.limit)} held by {lease.holder} for "
                    f"{max(0.0, lease.expires - now):.1f} s more" for lease in self.leases]
            parts.append("limits " + ", ".join(held))
        else:
            parts.append("no explicit limit held")
        if self.learned is not None:
            parts.append(f"learned limit {_rate(self.learned)}")
        if self.paused_for is not None:
            parts.append(f"paused for {self.paused_for:.1f} s after a 429")
        body = "; ".join(parts)
        return (f"key {self.key}{where}: {body}; {plural(self.sends, 'send')} in the window, "
                f"{self.processes} process{'' if self.processes == 1 else 'es'}, allowance "
                f"{self.allowance:.2f} s")


@dataclass(frozen=True, slots=True)
class BudgetReport:
    """Every key's budget in one store (``store`` None: budgets are per process).

    Example:
        >>> print(BudgetReport(None, ()))
        rate budget: off (each process keeps its own; nothing is shared)
    """

    store: Path | RedisAddress | None  # (an address shows its password masked)
    keys: tuple[KeyBudget, ...]
    cleared: int = 0
    note: str = ""

    def __str__(self) -> str:
        if self.store is None:
            return "rate budget: off (each process keeps its own; nothing is shared)"
        lines = [f"rate budget store: {self.store}"]
        if self.note:
            lines.append(self.note)
        if self.cleared:
            lines.append(f"cleared the state of {plural(self.cleared, 'key')}")
        lines += [str(key) for key in self.keys] or ([] if self.note else
                                                     ["no key has state in it"])
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def _labels(settings: Settings | None) -> dict[str, tuple[str, str]]:
    """Store digest -> (short key name, API root) of every configured key."""
    if settings is None:
        return {}
    return {key_of(settings.api_root, token.fingerprint()): (token.key_id(), settings.api_root)
            for token in settings.tokens}


def _view(state: KeyState, labels: dict[str, tuple[str, str]], now: float, skew: float
          ) -> KeyBudget:
    """One key's view; lease expiries moved from the store's clock to this machine's."""
    name, root = labels.get(state.key, (f"digest {state.key[:8]}", None))
    paused = None if state.paused_until is None else max(0.0, state.paused_until - now)
    leases = tuple(replace(lease, expires=lease.expires - skew) for lease in state.leases)
    return KeyBudget(name, root, leases, state.learned, paused, state.sends,
                     state.allowance, state.processes)


def rate_budget(
    settings: Settings | None = None, *, clear: bool = False, every_key: bool = False,
    path: str | Path | RedisAddress | None = None,
) -> BudgetReport:
    """Each key's rate budget in the shared store: the explicit limits in force and who holds
    them, a learned limit, a pause, the sends in the window — by the key's short name, never
    the token. ``clear=True`` first drops the configured keys' state (``every_key=True``:
    every key's); a store that does not exist yet is reported, never created.

    ``settings`` default to :func:`omni_nb.config.resolve_settings` (the environment and
    :func:`omni_nb.login`); with no key configured every key is shown by digest, and clearing
    needs ``every_key=True``. ``path`` names the store (a file, or a ``redis://`` address)
    instead of the settings' one.

    Example:
        >>> import tempfile, os
        >>> from omni_nb.config import resolve_settings
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     s = resolve_settings("https://acme.omniapp.co", "t", environ={},
        ...                          budget=os.path.join(tmp, "b.sqlite3"))
        ...     report = rate_budget(s)
        >>> report.keys, report.note
        ((), 'no budget store there yet: no process has shared a budget')
    """
    if settings is None:
        try:
            settings = resolve_settings()
        except ConfigError:
            settings = None  # no key configured: show every key, by digest
    place: Path | RedisAddress | None
    if isinstance(path, str) and is_redis_url(path):
        place = RedisAddress.parse(path, "--budget")
    elif isinstance(path, str | Path):
        place = Path(path)
    else:
        place = path if path is not None else (
            settings.budget if settings is not None else budget_path())
    if place is None:
        return BudgetReport(None, ())
    if clear and not every_key and settings is None:
        raise ConfigError("no key is configured to clear: set OMNI_API_TOKEN, or clear "
                          "every key's state (every_key=True, --all-keys)")
    if isinstance(place, Path) and not place.exists():
        return BudgetReport(place, (), note="no budget store there yet: no process has "
                                            "shared a budget")
    labels = _labels(settings)
    try:
        store = open_at(place)
    except StoreError as exc:
        raise ConfigError(str(exc)) from None
    try:
        cleared = 0
        if clear:
            targets: list[str | None] = [None] if every_key else list(labels)
            cleared = sum(store.clear(key) for key in targets)
        now, skew = store.clock(), store.skew()
        states = store.snapshot(now)
    finally:
        store.close()
    return BudgetReport(place, tuple(_view(state, labels, now, skew) for state in states),
                        cleared)
