"""Settings: argument, then ``omni_nb.login()``, then environment, then default.

Everything is resolved once, by :func:`resolve_settings`, from one reading of the
environment: the API root, the key(s), the ledger's and the rate budget's locations, and
``Settings.sources``, where each came from. Code given resolved settings never reads the
environment again; code without them asks this module, which reads it at that moment.

This is the only module that reads ``os.environ`` (the IPython startup file aside, which must
not import the package before it decides to load it).

Environment variables:

=====================  ==========================================================
``OMNI_BASE_URL``      API root, with or without the trailing ``/api``
``OMNI_INSTANCE``      instance name: ``acme`` -> ``https://acme.omniapp.co/api``
``OMNI_PLAYGROUND``    ``1`` -> ``https://acme.playground.exploreomni.dev/api``
``OMNI_API_TOKENS``    a pool of tokens, comma-separated (several keys: more throughput)
``OMNI_API_TOKEN``     the token (Omni's CLI name), else ``OMNI_API_KEY`` (Omni's SDK name)
``OMNI_NB_LEDGER``     results ledger path, or ``off`` for memory only
``OMNI_NB_BUDGET``     shared rate-budget store: a path (this machine), a Redis address
                       (``redis://[user:password@]host:port/db``, ``rediss://``,
                       ``unix://``: a team's machines), or ``off`` for per-process
=====================  ==========================================================
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import ipaddress
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from .budget_url import RedisAddress, is_redis_url
from .errors import ConfigError

if TYPE_CHECKING:
    from .ledger import Ledger

__all__ = [
    "Secret",
    "Settings",
    "budget_path",
    "default_budget_path",
    "default_ledger_path",
    "describe_sources",
    "ledger_setting",
    "logout",
    "remember",
    "resolve_api_root",
    "resolve_ledger",
    "resolve_settings",
]

#: Every environment variable this module reads: one snapshot of them is all a resolve reads.
_VARIABLES = ("OMNI_BASE_URL", "OMNI_INSTANCE", "OMNI_PLAYGROUND", "OMNI_API_TOKENS",
              "OMNI_API_TOKEN", "OMNI_API_KEY", "OMNI_NB_LEDGER", "OMNI_NB_BUDGET")
_LEDGER_OFF = ("off", "memory", ":memory:")
_BUDGET_OFF = ("off", "none", "0", "false", "no")
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TRUE = {"1", "true", "yes", "on"}
# The key of the digest that names a token in tables and the ledger. It is not a secret: it
# only makes the short name omni_nb's own, so it cannot be matched against a plain-hash table.
_KEY_ID_SALT = b"omni_nb key id v1"


class Secret:
    """A token that never shows itself: not in repr, str, format or pickles of settings.

    Example:
        >>> s = Secret("omni_osk_abc")
        >>> s
        Secret('**********')
        >>> s.get_secret_value()
        'omni_osk_abc'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """Return the token, for the one place that builds the Authorization header."""
        return self._value

    def fingerprint(self) -> str:
        """A one-way digest to key shared state (the rate limiter) by token without holding it.

        Example:
            >>> len(Secret("x").fingerprint())
            16
        """
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def key_id(self) -> str:
        """The short name of this key in results tables and the ledger: 8 hex characters of
        a keyed one-way hash (32 bits: enough to tell a pool's keys apart, nothing to learn
        the token from).

        Example:
            >>> Secret("omni_osk_abc").key_id() == Secret("omni_osk_abc").key_id()
            True
            >>> len(Secret("omni_osk_abc").key_id())
            8
        """
        return hmac.new(_KEY_ID_SALT, self._value.encode(), hashlib.sha256).hexdigest()[:8]

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Settings are never pickled by the library; refusing makes an accidental pickle
        # (multiprocessing, caching) fail loudly instead of writing the token to disk.
        raise TypeError("Secret cannot be pickled")


@dataclass(frozen=True, slots=True)
class Settings:
    """Where to send requests, with which token(s), where to record and share the budget,
    and where each of these came from.

    ``tokens`` is the pool (several API keys, each with its own rate budget); ``token`` is
    its first key, so code that sends on one key is unchanged. Built with ``token`` only, the
    pool is that one key.

    ``ledger`` is the results ledger's path, None for a ledger in memory only, or the
    :class:`~omni_nb.ledger.Ledger` object given; hand the settings themselves to
    :func:`~omni_nb.ledger.open_ledger` (``open_ledger(settings)``): a bare None there means
    "the configured ledger", not memory. ``budget`` is the shared rate-budget store's path,
    or None for a budget per process. ``sources`` maps ``api_root``, ``token``, ``tokens``,
    ``ledger`` and ``budget`` to where each came from (an argument such as ``base_url=``, an
    environment variable's name, ``login()``, or ``default``); it never holds a value.

    Built directly rather than by :func:`resolve_settings`, ``ledger`` and ``budget`` come
    from the environment at that moment and ``sources`` is empty unless given.

    Example:
        >>> s = resolve_settings(base_url="https://acme.omniapp.co", token="omni_osk_secret",
        ...                      ledger="off", environ={"OMNI_NB_BUDGET": "/tmp/b.sqlite3"})
        >>> s.api_root, s.ledger, s.budget.name
        ('https://acme.omniapp.co/api', None, 'b.sqlite3')
        >>> dict(s.sources)  # doctest: +NORMALIZE_WHITESPACE
        {'api_root': 'base_url=', 'token': 'token=', 'tokens': 'token=', 'ledger': 'ledger=',
         'budget': 'OMNI_NB_BUDGET'}
        >>> "omni_osk_secret" in repr(s) + str(s)
        False
        >>> len(resolve_settings("https://a.omniapp.co", tokens=["a", "b"], environ={}).tokens)
        2
    """

    api_root: str
    token: Secret = field(repr=True)
    tokens: tuple[Secret, ...] = ()
    ledger: Path | Ledger | None = field(default_factory=lambda: resolve_ledger())
    budget: Path | RedisAddress | None = field(default_factory=lambda: budget_path())
    # Not compared: settings that resolve to the same values are the same settings.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.tokens:
            object.__setattr__(self, "tokens", (self.token,))
        elif self.tokens[0] != self.token:
            raise ValueError("Settings.token must be the first key of Settings.tokens")
        # Read-only, so that the frozen settings stay what was resolved.
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def for_key(self, key: Secret) -> Settings:
        """These settings sending on one key of the pool (one client per key). The other
        keys stay in ``tokens``, after it: a client redacts every key of the pool from what
        the server sends back. Everything else (ledger, budget, sources) is kept.

        Example:
            >>> s = resolve_settings("https://a.omniapp.co", tokens=["a", "b"], budget="off",
            ...                      environ={})
            >>> one = s.for_key(s.tokens[1])
            >>> one.tokens == (s.tokens[1], s.tokens[0]), one.budget, one.sources["budget"]
            (True, None, 'budget=')
        """
        others = tuple(t for t in self.tokens if t != key)
        return replace(self, token=key, tokens=(key, *others))

    @property
    def origin(self) -> str:
        """Scheme, host and port of the API root: the only origin the token is sent to."""
        parts = urlsplit(self.api_root)
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


_session_lock = threading.Lock()
_session: dict[str, str | tuple[Secret, ...] | bool | None] = {}


def remember(
    token: str | None = None,
    *,
    tokens: Sequence[str] | None = None,
    base_url: str | None = None,
    instance: str | None = None,
    playground: bool | None = None,
) -> None:
    """Keep a token, or a pool of them (and optionally the API root), in this process only:
    what :func:`omni_nb.login` does before it checks the token.

    With neither ``token`` nor ``tokens`` it prompts with ``getpass`` (several keys:
    separate them with commas), so no token is typed into a cell (and so saved in the
    notebook). Later calls without a token use what was kept.

    Example:
        >>> remember("omni_osk_example", instance="acme")
        >>> resolve_settings(environ={}).api_root
        'https://acme.omniapp.co/api'
        >>> remember(tokens=["omni_osk_a", "omni_osk_b"])
        >>> len(resolve_settings("https://acme.omniapp.co", environ={}).tokens)
        2
        >>> logout()
    """
    if token is not None and tokens is not None:
        raise ConfigError("Give token or tokens, not both.")
    if tokens is not None:
        pool = _check_pool(tokens, "tokens=")
    elif token is not None:
        pool = (_check_token(token),)
    else:
        typed = getpass.getpass("Omni API token (several: separate with commas): ")
        pool = _split_pool(typed, "the typed tokens") if "," in typed else (_check_token(typed),)
    api_root = None
    if base_url is not None or instance is not None:
        api_root = _api_root(base_url, instance, playground, {}, {})[0]
    with _session_lock:
        _session.clear()
        _session["tokens"] = pool
        _session["api_root"] = api_root


def logout() -> None:
    """Forget what :func:`login` kept.

    Example:
        >>> logout()
    """
    with _session_lock:
        _session.clear()


def resolve_settings(
    base_url: str | None = None,
    token: str | Secret | None = None,
    *,
    tokens: Sequence[str | Secret] | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    ledger: str | Path | Ledger | None = None,
    budget: str | Path | RedisAddress | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from arguments, then :func:`login`, then the environment, then defaults;
    with ``sources`` saying which gave each value.

    The key(s): ``token=`` or ``tokens=[...]`` (a pool), then what :func:`login` kept, then
    ``OMNI_API_TOKENS`` (a comma-separated pool), ``OMNI_API_TOKEN``, ``OMNI_API_KEY``.
    The ledger: ``ledger=`` (a path, ``"off"`` for memory only, or a Ledger object kept as
    is), else ``OMNI_NB_LEDGER``, else the per-user default. The rate budget's store:
    ``budget=`` (a path, or ``"off"`` for a budget per process), else ``OMNI_NB_BUDGET``, else
    the per-user default. The environment (``environ``, else ``os.environ``) is read once,
    here. Raises :class:`ConfigError` naming every way to give what is missing, or the
    position of a bad key in a pool (never its value), before anything is sent.

    Example:
        >>> resolve_settings(instance="acme", playground=True, token="t", environ={}).api_root
        'https://acme.playground.exploreomni.dev/api'
        >>> s = resolve_settings(instance="acme", environ={"OMNI_API_TOKEN": "t"})
        >>> s.sources["token"], s.sources["ledger"], s.ledger.name
        ('OMNI_API_TOKEN', 'default', 'ledger.sqlite3')
        >>> resolve_settings(instance="acme", tokens=["a", "a"], environ={})
        Traceback (most recent call last):
        ...
        omni_nb.errors.ConfigError: tokens=: token 2 of 2 repeats token 1 (each key once).
    """
    env = _snapshot(environ)
    session = _session_copy()
    api_root, root_source = _api_root(base_url, instance, playground, session, env)
    pool, pool_source = _pool(token, tokens, session.get("tokens"), env)
    ledger_at, ledger_source = _ledger_sourced(ledger, env)
    budget_at, budget_source = _budget_sourced(budget, env)
    return Settings(
        api_root=api_root, token=pool[0], tokens=pool, ledger=ledger_at, budget=budget_at,
        sources={"api_root": root_source, "token": pool_source, "tokens": pool_source,
                 "ledger": ledger_source, "budget": budget_source},
    )


def describe_sources(
    base_url: str | None = None,
    token: str | Secret | None = None,
    *,
    tokens: Sequence[str | Secret] | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    ledger: str | Path | Ledger | None = None,
    budget: str | Path | RedisAddress | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """Where :func:`resolve_settings` would take each setting from, given these arguments;
    None for one given nowhere. For front ends that show it before everything is given: it
    never raises and checks no value (a malformed ``base_url=`` is still its source;
    :func:`resolve_settings` then says what is wrong with it). ``playground`` changes the API
    root's value, never its source: it is taken so that the same keywords can be passed.

    Example:
        >>> describe_sources(environ={"OMNI_INSTANCE": "acme", "OMNI_NB_BUDGET": "off"})
        ... # doctest: +NORMALIZE_WHITESPACE
        {'api_root': 'OMNI_INSTANCE', 'token': None, 'tokens': None, 'ledger': 'default',
         'budget': 'OMNI_NB_BUDGET'}
        >>> describe_sources("https://acme.omniapp.co", "t", environ={})["api_root"]
        'base_url='
    """
    env = _snapshot(environ)
    session = _session_copy()
    pool = _pool_source(token, tokens, session.get("tokens"), env)
    given_object = ledger is not None and not isinstance(ledger, str | os.PathLike)
    return {
        "api_root": _root_source(base_url, instance, session, env),
        "token": pool,
        "tokens": pool,
        "ledger": "ledger=" if given_object else _setting(ledger, env, "OMNI_NB_LEDGER",
                                                          "ledger=")[1],
        "budget": _setting(budget, env, "OMNI_NB_BUDGET", "budget=")[1],
    }


def resolve_api_root(
    base_url: str | None = None,
    *,
    instance: str | None = None,
    playground: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The API root alone, as :func:`resolve_settings` finds it (no token needed): for front
    ends that show it before a token is given. Raises :class:`ConfigError` as it does.

    Example:
        >>> resolve_api_root(environ={"OMNI_INSTANCE": "acme"})
        'https://acme.omniapp.co/api'
    """
    return _api_root(base_url, instance, playground, _session_copy(), _snapshot(environ))[0]


def resolve_ledger(
    ledger: str | Path | Ledger | None = None, *, environ: Mapping[str, str] | None = None
) -> Path | Ledger | None:
    """Where the ledger is, as :func:`resolve_settings` resolves ``ledger=``: the path, None
    for memory only, or the Ledger object given. The environment is read only when
    ``ledger`` is None.

    Example:
        >>> resolve_ledger("off") is None
        True
        >>> resolve_ledger(environ={"OMNI_NB_LEDGER": "/tmp/l.sqlite3"}).name
        'l.sqlite3'
    """
    return _ledger_sourced(ledger, _snapshot(environ) if ledger is None else {})[0]


def ledger_setting(environ: Mapping[str, str] | None = None) -> str | None:
    """The ``OMNI_NB_LEDGER`` value, or None when unset.

    Example:
        >>> ledger_setting({"OMNI_NB_LEDGER": "off"})
        'off'
    """
    value = _snapshot(environ).get("OMNI_NB_LEDGER")
    return value.strip() if value and value.strip() else None


def default_ledger_path() -> Path:
    """The per-user data directory's ledger file (platformdirs knows each OS's place).

    Example:
        >>> default_ledger_path().name
        'ledger.sqlite3'
    """
    import platformdirs  # only the ledger needs it

    return Path(platformdirs.user_data_dir("omni-nb", appauthor=False)) / "ledger.sqlite3"


def default_budget_path() -> Path:
    """This machine's budget store: ``budget.sqlite3`` next to the default ledger (also where
    a process goes when the team's Redis cannot be reached).

    Example:
        >>> default_budget_path().name
        'budget.sqlite3'
    """
    return default_ledger_path().with_name("budget.sqlite3")


def budget_path(environ: Mapping[str, str] | None = None) -> Path | RedisAddress | None:
    """Where every process of the user shares each key's rate budget (``OMNI_NB_BUDGET``:
    a path, or ``off`` for a budget per process); default ``budget.sqlite3`` in the per-user
    data directory, next to the default ledger but independent of the ledger setting (kernels
    with different ledgers still share a key's budget). What :func:`resolve_settings` gives
    as ``Settings.budget`` when no ``budget=`` is passed.

    Example:
        >>> budget_path({"OMNI_NB_BUDGET": "off"}) is None
        True
        >>> budget_path({"OMNI_NB_BUDGET": "/tmp/b.sqlite3"}).name
        'b.sqlite3'
        >>> budget_path({}).name
        'budget.sqlite3'
    """
    return _budget_sourced(None, _snapshot(environ))[0]


def _snapshot(environ: Mapping[str, str] | None) -> dict[str, str]:
    """The variables this module reads, each read once (``os.environ`` when not injected)."""
    source = os.environ if environ is None else environ
    return {name: value for name in _VARIABLES if (value := source.get(name)) is not None}


def _session_copy() -> dict[str, str | tuple[Secret, ...] | bool | None]:
    with _session_lock:
        return dict(_session)


def _root_source(
    base_url: str | None, instance: str | None, session: Mapping[str, object],
    env: Mapping[str, str],
) -> str | None:
    """Where the API root comes from (None: nowhere); the order every resolve follows."""
    if base_url is not None:
        return "base_url="
    if instance is not None:
        return "instance="
    if isinstance(session.get("api_root"), str):
        return "login()"
    return next((name for name in ("OMNI_BASE_URL", "OMNI_INSTANCE")
                 if env.get(name, "").strip()), None)


def _api_root(
    base_url: str | None, instance: str | None, playground: bool | None,
    session: Mapping[str, object], env: Mapping[str, str],
) -> tuple[str, str]:
    """(the API root, where it came from), checked."""
    if base_url is not None and instance is not None:
        raise ConfigError("Give either base_url or instance, not both.")
    source = _root_source(base_url, instance, session, env)
    if source is None:
        raise ConfigError(
            "No Omni API root: pass base_url='https://acme.omniapp.co/api' or "
            "instance='acme', call omni_nb.login(instance=...), or set OMNI_BASE_URL or "
            "OMNI_INSTANCE (with OMNI_PLAYGROUND=1 for a playground instance).",
            missing="api_root",
        )
    if playground is None:
        playground = env.get("OMNI_PLAYGROUND", "").strip().lower() in _TRUE
    if base_url is not None:
        return normalize_base_url(base_url), source
    if instance is not None:
        return _instance_root(instance, playground), source
    if source == "login()":
        return str(session["api_root"]), source
    if source == "OMNI_BASE_URL":
        return normalize_base_url(env[source].strip(), source=source), source
    return _instance_root(env[source].strip(), playground, source=source), source


def _pool_source(
    token: str | Secret | None, tokens: Sequence[str | Secret] | None, stored: object,
    env: Mapping[str, str],
) -> str | None:
    """Where the key(s) come from (None: nowhere)."""
    if tokens is not None:
        return "tokens="
    if token is not None:
        return "token="
    if isinstance(stored, tuple) and stored:
        return "login()"
    if env.get("OMNI_API_TOKENS", "").strip():
        return "OMNI_API_TOKENS"
    return next((name for name in ("OMNI_API_TOKEN", "OMNI_API_KEY") if env.get(name)), None)


def _pool(
    token: str | Secret | None, tokens: Sequence[str | Secret] | None, stored: object,
    env: Mapping[str, str],
) -> tuple[tuple[Secret, ...], str]:
    """(the pool of keys, where it came from), each key checked."""
    if token is not None and tokens is not None:
        raise ConfigError("Give token or tokens, not both.")
    source = _pool_source(token, tokens, stored, env)
    if source is None:
        raise ConfigError(
            "No Omni API token: pass token=... (or tokens=[...] for several keys), call "
            "omni_nb.login() (it prompts and keeps the token in this process only), or set "
            "OMNI_API_TOKEN (or OMNI_API_KEY, or OMNI_API_TOKENS with several, "
            "comma-separated).", missing="token",
        )
    if tokens is not None:
        return _check_pool(tokens, source), source
    if token is not None:
        return (_check_token(token),), source
    if isinstance(stored, tuple) and source == "login()":
        return stored, source
    if source == "OMNI_API_TOKENS":
        return _split_pool(env[source], source), source
    try:
        return (_check_token(env[source]),), source
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _setting(
    given: object, env: Mapping[str, str], variable: str, argument: str
) -> tuple[str, str]:
    """(a location's text, where it came from): the argument, else the variable; ``""`` and
    ``"default"`` when neither says anything (an empty argument means the default too)."""
    if given is not None:
        text = str(given)
        return (text, argument) if text.strip() else ("", "default")
    value = env.get(variable, "").strip()
    return (value, variable) if value else ("", "default")


def _ledger_sourced(
    ledger: str | Path | Ledger | None, env: Mapping[str, str]
) -> tuple[Path | Ledger | None, str]:
    """(the ledger's path, None for memory only, or the Ledger given; where it came from)."""
    if ledger is not None and not isinstance(ledger, str | os.PathLike):
        return ledger, "ledger="  # a Ledger object: used as it is
    text, source = _setting(ledger, env, "OMNI_NB_LEDGER", "ledger=")
    if source == "default":
        return default_ledger_path(), source
    if text.strip().lower() in _LEDGER_OFF:
        return None, source
    return Path(text).expanduser(), source


def _budget_sourced(budget: str | Path | RedisAddress | None, env: Mapping[str, str]
                    ) -> tuple[Path | RedisAddress | None, str]:
    """(the budget store's path or Redis address, None for a budget per process; where it
    came from)."""
    if isinstance(budget, RedisAddress):
        return budget, "budget="
    text, source = _setting(budget, env, "OMNI_NB_BUDGET", "budget=")
    if source == "default":
        return default_budget_path(), source
    if text.strip().lower() in _BUDGET_OFF:
        return None, source
    if is_redis_url(text):
        return RedisAddress.parse(text, source), source
    return Path(text.strip()).expanduser(), source


def _split_pool(text: str, source: str) -> tuple[Secret, ...]:
    """A comma-separated pool (``OMNI_API_TOKENS``, the login prompt), checked."""
    return _check_pool([part.strip() for part in text.split(",")], source)


def _check_pool(tokens: object, source: str) -> tuple[Secret, ...]:
    """A pool of keys, each checked; errors name the key's position, never its value."""
    if isinstance(tokens, str | bytes | Secret) or not isinstance(tokens, Sequence):
        raise ConfigError(
            f"{source} must be a list of tokens, not {type(tokens).__name__} "
            "(one token: use token=)."
        )
    if not tokens:
        raise ConfigError(f"{source}: the token pool is empty.")
    pool: list[Secret] = []
    total = len(tokens)
    for position, raw in enumerate(tokens, start=1):
        problem = _token_problem(raw)
        if problem is not None:
            raise ConfigError(f"{source}: token {position} of {total} {problem}.")
        secret = _check_token(raw)
        if secret in pool:
            first = pool.index(secret) + 1
            raise ConfigError(
                f"{source}: token {position} of {total} repeats token {first} (each key once)."
            )
        pool.append(secret)
    return tuple(pool)


def _check_token(raw: str | Secret) -> Secret:
    if isinstance(raw, Secret):
        return raw
    problem = _token_problem(raw)
    if problem is not None:
        raise ConfigError(f"The Omni API token {problem}.")
    assert isinstance(raw, str)
    return Secret(raw.strip())


def _token_problem(raw: object) -> str | None:
    """What is wrong with a token, in words that never quote it (None: nothing)."""
    if isinstance(raw, Secret):
        return None
    if not isinstance(raw, str):
        return f"must be a string, not {type(raw).__name__}"
    value = raw.strip()
    if not value:
        return "is empty"
    # A token with spaces or control characters is a paste error, and would corrupt the
    # Authorization header.
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value) or not value.isascii():
        return "contains spaces, control or non-ASCII characters"
    return None


def _instance_root(instance: str, playground: bool, source: str = "instance") -> str:
    if not isinstance(instance, str):
        raise ConfigError(f"{source} must be a string, not {type(instance).__name__}.")
    name = instance.strip().lower()
    if not _DNS_LABEL.match(name):
        url = "/" in name or "." in name
        hint = " (it looks like a URL: pass it as base_url=)" if url else ""
        raise ConfigError(
            f"{source} {_safe(instance)} is not an instance name: use the subdomain only, "
            f"like 'acme' for https://acme.omniapp.co{hint}."
        )
    domain = "playground.exploreomni.dev" if playground else "omniapp.co"
    return f"https://{name}.{domain}/api"


def normalize_base_url(url: str, source: str = "base_url") -> str:
    """Check and normalize an API root: https (http only to loopback), no credentials,
    no query, trailing ``/api`` added when missing.

    Example:
        >>> normalize_base_url("https://acme.omniapp.co/")
        'https://acme.omniapp.co/api'
        >>> normalize_base_url("http://127.0.0.1:8787/api")
        'http://127.0.0.1:8787/api'
    """
    if not isinstance(url, str):
        raise ConfigError(f"{source} must be a string, not {type(url).__name__}.")
    text = url.strip()
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in text):
        raise ConfigError(f"{source} contains spaces or control characters.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{source} {_safe(text)} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("https", "http") or not host:
        raise ConfigError(
            f"{source} {_safe(text)} is not an http(s) URL; expected e.g. "
            "'https://acme.omniapp.co/api'."
        )
    if parts.username is not None or parts.password is not None:
        # Never echo the URL: the credentials in it are a secret.
        raise ConfigError(f"{source} must not carry credentials (user:password@); use token=.")
    if parts.query or parts.fragment:
        raise ConfigError(f"{source} {_safe(text)} must not have a query or fragment.")
    if scheme == "http" and not _is_loopback(host):
        raise ConfigError(
            f"{source} {_safe(text)} uses plain http to a non-loopback host; the token would "
            "travel unencrypted. Use https."
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/api"):
        path += "/api"
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, path, "", ""))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _safe(text: str, limit: int = 80) -> str:
    if "@" in text:
        # It may carry user:password; such text is never echoed.
        return "(a value with '@', not shown)"
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)
