"""The sync client's transport: one deadline per attempt, down to the name lookup and every
socket read.

httpx bounds each socket operation on its own (connect, each read, each write): a server that
trickles its headers or its body a byte at a time keeps every read short and the answer
endless, and the name lookup before a connect has no bound at all (``getaddrinfo`` blocks as
long as the resolver does). The async twin puts the whole attempt under ``asyncio.timeout``;
a thread has no such thing, so the bound is kept where the time is spent, with httpcore's
public network-backend API: :class:`DeadlineBackend` looks the host up in a worker thread
waited on for the time left, and its streams give every read, write and TLS handshake at
most the time left. The deadline travels in a :class:`contextvars.ContextVar` that
:func:`attempt_deadline` sets around each attempt, so a connection kept in the pool obeys
whichever attempt uses it, and threads sharing one client do not see each other's.

:class:`DeadlineTransport` runs an httpcore pool over that backend, as
:class:`httpx.HTTPTransport` does over the default one (which takes no backend);
:func:`proxy_mounts` routes the proxies named in the environment through it, as httpx would
mount them (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``), since httpx reads
no proxy from the environment for a client given its own transport.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any
from urllib.request import getproxies

import httpcore
import httpx

from ._core import Deadline

__all__ = [
    "DeadlineBackend",
    "DeadlineTransport",
    "attempt_deadline",
    "environment_proxies",
    "proxy_mounts",
    "resolve",
    "time_left",
]

_current: ContextVar[Deadline | None] = ContextVar("omni_nb_attempt_deadline", default=None)


@contextlib.contextmanager
def attempt_deadline(deadline: Deadline) -> Iterator[Deadline]:
    """Bound every lookup, connect, read and write this thread makes through a
    :class:`DeadlineTransport` by ``deadline`` while the block runs.

    Example:
        >>> with attempt_deadline(Deadline(5.0)):
        ...     0.0 < time_left(30.0) <= 5.0
        True
        >>> time_left(30.0)
        30.0
    """
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def time_left(
    timeout: float | None, expired: type[Exception] = httpcore.ReadTimeout
) -> float | None:
    """``timeout`` cut to the current attempt's time left (unchanged outside an attempt);
    raises ``expired`` once the deadline has passed.

    Example:
        >>> with attempt_deadline(Deadline(-1.0)):
        ...     time_left(30.0)
        Traceback (most recent call last):
        httpcore.ReadTimeout: attempt deadline of -1 s passed
    """
    deadline = _current.get()
    if deadline is None:
        return timeout
    if deadline.passed():
        raise expired(f"attempt deadline of {deadline.seconds:g} s passed")
    left = deadline.remaining()
    return left if timeout is None else min(timeout, left)


def resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """The addresses of ``host``, in the resolver's order, looked up in a daemon thread that
    is waited on at most ``timeout`` seconds (an address is its own answer).

    Raises :class:`httpcore.ConnectTimeout` when the lookup takes longer (the thread is left
    to finish on its own) and :class:`httpcore.ConnectError` when it fails.

    Example:
        >>> resolve("127.0.0.1", 80, 1.0)
        ['127.0.0.1']
    """
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host))]
    found: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()

    def look_up() -> None:
        try:
            found.set_result(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the waiting caller
            found.set_exception(exc)

    # A daemon thread per lookup, not a pool: a lookup that never returns must hold neither
    # a worker that later lookups queue behind nor the interpreter's exit.
    threading.Thread(target=look_up, name="omni_nb-dns", daemon=True).start()
    try:
        infos = found.result(timeout)
    except concurrent.futures.TimeoutError:
        raise httpcore.ConnectTimeout(
            f"looking up {host} took more than {timeout:g} s") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Stream(httpcore.NetworkStream):
    """A stream whose every operation gets at most the current attempt's time left."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = time_left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend with the attempt's deadline on the name lookup, the
    connect and every later operation of the connection (see the module docstring).

    Example:
        >>> pool = httpcore.ConnectionPool(network_backend=DeadlineBackend())
    """

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Look ``host`` up, then try its addresses in turn (as ``socket.create_connection``
        does), each connect with the time left."""
        addresses = resolve(host, port, time_left(timeout, httpcore.ConnectTimeout))
        refused: httpcore.ConnectError | None = None
        for address in addresses:
            wait = time_left(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(address, port, wait, local_address,
                                                 socket_options)
            except httpcore.ConnectError as exc:
                refused = exc
                continue
            return _Stream(stream)
        raise refused or httpcore.ConnectError(f"{host} has no address")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """A Unix socket, connected with the time left."""
        wait = time_left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, wait, socket_options))

    def sleep(self, seconds: float) -> None:
        """Wait (httpcore's connect retries; none are configured here)."""
        self._inner.sleep(seconds)


#: httpcore's errors as httpx's, most specific first (the first match wins).
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool on :class:`DeadlineBackend`: what
    :class:`httpx.HTTPTransport` does (TLS verification, ``SSL_CERT_FILE``/``SSL_CERT_DIR``
    when ``trust_env``, an HTTP, HTTPS or SOCKS ``proxy``), with the attempt's deadline
    (:func:`attempt_deadline`) on every network step.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb, httpx.Client(transport=DeadlineTransport()) as c:
        ...     with attempt_deadline(Deadline(10.0)):
        ...         c.get(f"{sb.base_url}/v1/documents").status_code
        401
    """

    def __init__(
        self, *, verify: ssl.SSLContext | str | bool = True,
        cert: str | tuple[str, str] | tuple[str, str, str] | None = None,
        trust_env: bool = True, limits: httpx.Limits | None = None,
        proxy: httpx.Proxy | str | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._pool = _pool(
            httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env),
            limits or httpx.Limits(), httpx.Proxy(proxy) if isinstance(proxy, str) else proxy,
            DeadlineBackend(network_backend),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool; the body streams as it is read."""
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions,
        )
        with _as_httpx_errors():
            answer = self._pool.handle_request(sent)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(status_code=answer.status, headers=answer.headers,
                              stream=_Body(answer.stream), extensions=answer.extensions)

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()


def _pool(
    ssl_context: ssl.SSLContext, limits: httpx.Limits, proxy: httpx.Proxy | None,
    backend: httpcore.NetworkBackend,
) -> httpcore.ConnectionPool:
    sizes: dict[str, Any] = {
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "network_backend": backend,
    }
    if proxy is None:
        return httpcore.ConnectionPool(ssl_context=ssl_context, **sizes)
    where = httpcore.URL(scheme=proxy.url.raw_scheme, host=proxy.url.raw_host,
                         port=proxy.url.port, target=proxy.url.raw_path)
    if proxy.url.scheme in ("http", "https"):
        return httpcore.HTTPProxy(
            proxy_url=where, proxy_auth=proxy.raw_auth, proxy_headers=proxy.headers.raw,
            ssl_context=ssl_context, proxy_ssl_context=proxy.ssl_context, **sizes,
        )
    if proxy.url.scheme in ("socks5", "socks5h"):
        return httpcore.SOCKSProxy(proxy_url=where, proxy_auth=proxy.raw_auth,
                                   ssl_context=ssl_context, **sizes)
    raise ValueError(f"proxy scheme must be http, https, socks5 or socks5h, "
                     f"not {proxy.url.scheme!r}")


def environment_proxies() -> dict[str, str | None]:
    """The proxies the environment names, as httpx reads them: URL pattern -> proxy URL, or
    None for the ``NO_PROXY`` hosts (curl's rules: ``*`` turns every proxy off).

    Example:
        >>> import os
        >>> from unittest import mock
        >>> env = {"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": "localhost,.internal"}
        >>> with mock.patch.dict(os.environ, env, clear=True):
        ...     environment_proxies()
        {'https://': 'http://proxy.corp:3128', 'all://localhost': None, 'all://*.internal': None}
    """
    named = getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if named.get(scheme):
            where = named[scheme]
            mounts[f"{scheme}://"] = where if "://" in where else f"http://{where}"
    for host in (h.strip() for h in named.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif _is_ip(host, ipaddress.IPv4Address) or host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        elif _is_ip(host, ipaddress.IPv6Address):
            mounts[f"all://[{host}]"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def _is_ip(host: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(host.split("/")[0])
    except ValueError:
        return False
    return True


def proxy_mounts(
    limits: httpx.Limits | None = None, *, trust_env: bool = True
) -> dict[str, httpx.BaseTransport | None]:
    """``mounts`` for an httpx client given a :class:`DeadlineTransport`: each proxy of the
    environment through a :class:`DeadlineTransport` of its own, None for the hosts that
    go direct (nothing when ``trust_env`` is false).

    Example:
        >>> proxy_mounts(trust_env=False)
        {}
    """
    if not trust_env:
        return {}
    return {
        pattern: None if url is None else DeadlineTransport(limits=limits, proxy=url)
        for pattern, url in environment_proxies().items()
    }
