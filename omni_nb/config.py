"""Settings: argument, then ``omni_nb.login()``, then environment, then default.

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
``OMNI_NB_BUDGET``     shared rate-budget store path, or ``off`` for per-process
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

__all__ = [
    "Secret",
    "Settings",
    "budget_path",
    "ledger_setting",
    "logout",
    "remember",
    "resolve_settings",
]

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
    """Where to send requests and with which token(s).

    ``tokens`` is the pool (several API keys, each with its own rate budget); ``token`` is
    its first key, so code that sends on one key is unchanged. Built with ``token`` only, the
    pool is that one key.

    Example:
        >>> s = resolve_settings(base_url="https://acme.omniapp.co", token="t", environ={})
        >>> s.api_root
        'https://acme.omniapp.co/api'
        >>> "t'" in repr(s)
        False
        >>> len(resolve_settings("https://a.omniapp.co", tokens=["a", "b"], environ={}).tokens)
        2
    """

    api_root: str
    token: Secret = field(repr=True)
    tokens: tuple[Secret, ...] = ()

    def __post_init__(self) -> None:
        if not self.tokens:
            object.__setattr__(self, "tokens", (self.token,))
        elif self.tokens[0] != self.token:
            raise ValueError("Settings.token must be the first key of Settings.tokens")

    def for_key(self, key: Secret) -> Settings:
        """These settings sending on one key of the pool (one client per key). The other
        keys stay in ``tokens``, after it: a client redacts every key of the pool from what
        the server sends back.

        Example:
            >>> s = resolve_settings("https://a.omniapp.co", tokens=["a", "b"], environ={})
            >>> s.for_key(s.tokens[1]).tokens == (s.tokens[1], s.tokens[0])
            True
        """
        others = tuple(t for t in self.tokens if t != key)
        return Settings(api_root=self.api_root, token=key, tokens=(key, *others))

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
        api_root = _resolve_api_root(base_url, instance, playground, environ={})
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
    environ: dict[str, str] | None = None,
) -> Settings:
    """Settings from arguments, then :func:`login`, then the environment.

    The key(s): ``token=`` or ``tokens=[...]`` (a pool), then what :func:`login` kept, then
    ``OMNI_API_TOKENS`` (a comma-separated pool), ``OMNI_API_TOKEN``, ``OMNI_API_KEY``.
    Raises :class:`ConfigError` naming every way to give what is missing, or the position of
    a bad key in a pool (never its value), before anything is sent.

    Example:
        >>> resolve_settings(instance="acme", playground=True, token="t", environ={}).api_root
        'https://acme.playground.exploreomni.dev/api'
        >>> resolve_settings(instance="acme", tokens=["a", "a"], environ={})
        Traceback (most recent call last):
        ...
        omni_nb.errors.ConfigError: tokens=: token 2 of 2 repeats token 1 (each key once).
    """
    env = dict(os.environ) if environ is None else environ
    with _session_lock:
        session = dict(_session)
    if base_url is not None or instance is not None:
        api_root = _resolve_api_root(base_url, instance, playground, env)
    elif isinstance(session.get("api_root"), str):
        api_root = str(session["api_root"])
    else:
        api_root = _resolve_api_root(None, None, playground, env)
    pool = _resolve_pool(token, tokens, session.get("tokens"), env)
    return Settings(api_root=api_root, token=pool[0], tokens=pool)


def _resolve_pool(
    token: str | Secret | None, tokens: Sequence[str | Secret] | None, stored: object,
    env: dict[str, str],
) -> tuple[Secret, ...]:
    if token is not None and tokens is not None:
        raise ConfigError("Give token or tokens, not both.")
    if tokens is not None:
        return _check_pool(tokens, "tokens=")
    if token is not None:
        return (_check_token(token),)
    if isinstance(stored, tuple) and stored:
        return stored
    pool_text = env.get("OMNI_API_TOKENS", "")
    if pool_text.strip():
        return _split_pool(pool_text, "OMNI_API_TOKENS")
    raw = env.get("OMNI_API_TOKEN") or env.get("OMNI_API_KEY")
    if not raw:
        raise ConfigError(
            "No Omni API token: pass token=... (or tokens=[...] for several keys), call "
            "omni_nb.login() (it prompts and keeps the token in this process only), or set "
            "OMNI_API_TOKEN (or OMNI_API_KEY, or OMNI_API_TOKENS with several, "
            "comma-separated).", missing="token",
        )
    source = "OMNI_API_TOKEN" if env.get("OMNI_API_TOKEN") else "OMNI_API_KEY"
    try:
        return (_check_token(raw),)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def ledger_setting(environ: dict[str, str] | None = None) -> str | None:
    """The ``OMNI_NB_LEDGER`` value, or None when unset.

    Example:
        >>> ledger_setting({"OMNI_NB_LEDGER": "off"})
        'off'
    """
    env = os.environ if environ is None else environ
    value = env.get("OMNI_NB_LEDGER")
    return value.strip() if value and value.strip() else None


def default_ledger_path() -> Path:
    """The per-user data directory's ledger file (platformdirs knows each OS's place).

    Example:
        >>> default_ledger_path().name
        'ledger.sqlite3'
    """
    import platformdirs  # only the ledger needs it

    return Path(platformdirs.user_data_dir("omni-nb", appauthor=False)) / "ledger.sqlite3"


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


def budget_path(environ: dict[str, str] | None = None) -> Path | None:
    """Where every process of the user shares each key's rate budget (``OMNI_NB_BUDGET``:
    a path, or ``off`` for a budget per process); default ``budget.sqlite3`` in the per-user
    data directory, next to the default ledger but independent of the ledger setting (kernels
    with different ledgers still share a key's budget).

    Example:
        >>> budget_path({"OMNI_NB_BUDGET": "off"}) is None
        True
        >>> budget_path({"OMNI_NB_BUDGET": "/tmp/b.sqlite3"}).name
        'b.sqlite3'
        >>> budget_path({}).name
        'budget.sqlite3'
    """
    env = os.environ if environ is None else environ
    value = (env.get("OMNI_NB_BUDGET") or "").strip()
    if value.lower() in ("off", "none", "0", "false", "no"):
        return None
    if value:
        return Path(value).expanduser()
    return default_ledger_path().with_name("budget.sqlite3")


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


def _resolve_api_root(
    base_url: str | None, instance: str | None, playground: bool | None, environ: dict[str, str]
) -> str:
    if base_url is not None and instance is not None:
        raise ConfigError("Give either base_url or instance, not both.")
    if playground is None:
        playground = environ.get("OMNI_PLAYGROUND", "").strip().lower() in _TRUE
    if base_url is not None:
        return normalize_base_url(base_url)
    if instance is not None:
        return _instance_root(instance, playground)
    env_url = environ.get("OMNI_BASE_URL", "").strip()
    if env_url:
        return normalize_base_url(env_url, source="OMNI_BASE_URL")
    env_instance = environ.get("OMNI_INSTANCE", "").strip()
    if env_instance:
        return _instance_root(env_instance, playground, source="OMNI_INSTANCE")
    raise ConfigError(
        "No Omni API root: pass base_url='https://acme.omniapp.co/api' or instance='acme', "
        "call omni_nb.login(instance=...), or set OMNI_BASE_URL or OMNI_INSTANCE "
        "(with OMNI_PLAYGROUND=1 for a playground instance).", missing="api_root",
    )


def _instance_root(instance: str, playground: bool, source: str = "instance") -> str:
    if not isinstance(instance, str):
        raise ConfigError(f"{source} must be a string, not {type(instance).__name__}.")
    name = instance.strip().lower()
    if not _DNS_LABEL.match(name):
        hint = " (it looks like a URL: pass it as base_url)" if ("/" in name or "." in name) else ""
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
