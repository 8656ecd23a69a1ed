"""A Redis budget store's address (``OMNI_NB_BUDGET=redis://…``), its password never shown.

``OMNI_NB_BUDGET`` is a path (the machine's SQLite store), ``off``, or the address of a Redis
server a team shares: ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) or
``unix:///path/to/redis.sock?db=N``. One query parameter is omni_nb's own and is taken out
before the address reaches redis-py: ``prefix=`` (the Redis keys' prefix, default
``omni_nb:``), so several teams or tests can share one Redis without seeing each other.

Where the setting shows (repr, str, warnings, errors, ``%config``, the form), it is the
address with its password masked (:attr:`RedisAddress.shown`); only the store's connection
reads :attr:`RedisAddress.url`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from .errors import ConfigError

__all__ = ["DEFAULT_PREFIX", "SCHEMES", "RedisAddress", "is_redis_url", "mask_url"]

SCHEMES = ("redis", "rediss", "unix")
DEFAULT_PREFIX = "omni_nb:"
_MASK = "***"
_PREFIX_OK = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")  # no glob characters: SCAN matches it


def is_redis_url(text: str) -> bool:
    """True when a budget setting names a Redis server rather than a file.

    Example:
        >>> is_redis_url("redis://cache:6379/0"), is_redis_url("/tmp/b.sqlite3")
        (True, False)
    """
    return text.strip().lower().partition("://")[0] in SCHEMES and "://" in text


def mask_url(text: str) -> str:
    """``text`` with any password in it (user info, or a ``password=`` parameter) masked.

    Example:
        >>> mask_url("redis://team:s3cret@cache:6379/0")
        'redis://team:***@cache:6379/0'
        >>> mask_url("unix:///run/redis.sock?db=1&password=s3cret")
        'unix:///run/redis.sock?db=1&password=***'
    """
    parts = urlsplit(text.strip())
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name, colon, secret = user.partition(":")
        netloc = f"{name}:{_MASK}@{host}" if colon and secret else (
            f"{_MASK}@{host}" if not colon and name and parts.scheme != "unix" else netloc)
    query = urlencode([(k, _MASK if k.lower() == "password" else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*/")
    return _join(parts.scheme, netloc, parts.path, query)


def _join(scheme: str, netloc: str, path: str, query: str) -> str:
    # Not urlunsplit: it drops the "//" of unix:///path (an empty host), which redis-py needs.
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """A Redis budget store's address: :attr:`url` for the connection (password included,
    ``prefix=`` taken out), :attr:`prefix` for its keys, :attr:`shown` everywhere else.

    Example:
        >>> a = RedisAddress.parse("redis://team:s3cret@cache:6379/2?prefix=acme:")
        >>> a
        RedisAddress('redis://team:***@cache:6379/2?prefix=acme:')
        >>> a.url, a.prefix
        ('redis://team:s3cret@cache:6379/2', 'acme:')
        >>> "s3cret" in repr(a) + str(a) + f"{a}"
        False
    """

    url: str = field(repr=False)
    prefix: str = DEFAULT_PREFIX

    @classmethod
    def parse(cls, text: str, source: str = "OMNI_NB_BUDGET") -> RedisAddress:
        """Check a ``redis://``, ``rediss://`` or ``unix://`` address; errors name ``source``
        and show the address masked.

        Example:
            >>> RedisAddress.parse("redis://cache").url
            'redis://cache'
            >>> try:
            ...     RedisAddress.parse("redis://cache?prefix=a b")
            ... except ConfigError as exc:
            ...     print(str(exc)[:46])
            OMNI_NB_BUDGET: the Redis key prefix 'a b' may
        """
        text = text.strip()
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        shown = mask_url(text)
        if scheme not in SCHEMES:
            raise ConfigError(f"{source}: {shown} is not a redis://, rediss:// or unix:// "
                              "address")
        if scheme == "unix" and not parts.path:
            raise ConfigError(f"{source}: {shown} names no socket (unix:///path/to/redis.sock)")
        if scheme != "unix" and not parts.hostname:
            raise ConfigError(f"{source}: {shown} names no host (redis://host:6379/0)")
        try:
            _ = parts.port  # a port that is not a number raises here
        except ValueError:
            raise ConfigError(f"{source}: {shown} has a port that is not a number") from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefixes = [v for k, v in query if k == "prefix"]
        prefix = prefixes[-1] if prefixes else DEFAULT_PREFIX
        if not _PREFIX_OK.match(prefix):
            raise ConfigError(f"{source}: the Redis key prefix {prefix!r} may hold only "
                              "letters, digits and _ . : / - (at most 64)")
        rest = urlencode([(k, v) for k, v in query if k != "prefix"])
        url = _join(parts.scheme, parts.netloc, parts.path, rest)
        return cls(url, prefix)

    @property
    def shown(self) -> str:
        """The address as it may be shown: its password masked (the prefix, when not the
        default, added back)."""
        shown = mask_url(self.url)
        if self.prefix != DEFAULT_PREFIX:
            shown += ("&" if "?" in shown else "?") + f"prefix={self.prefix}"
        return shown

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"RedisAddress({self.shown!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("RedisAddress cannot be pickled (it holds a password)")
