"""The sync client's attempt deadline over real loopback sockets: a name lookup that hangs,
headers or a body trickled a byte at a time, each end the attempt as a timeout; proxies from
the environment and TLS verification still work as httpx's own transport does.

Bounds are generous (two busy cores): they tell a deadline that holds from one that does
not (tens of seconds), never a speed.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from omni_nb import APITimeoutError, OmniClient
from omni_nb.client import HostUnreachableError
from omni_nb.ratelimit import Limiter

DEADLINE = 1.0
BOUND = 5.0  # the attempt ends well within this, or the deadline is not kept
TRICKLE = 0.2  # seconds between two bytes the server sends
DRAFT = json.dumps({"identifier": "draft-0001", "documentId": "doc-0001"}).encode()

Handler = Callable[[socket.socket], None]


def _read_request(sock: socket.socket) -> bytes:
    """The request's head and body (all of it: a socket closed with unread bytes resets the
    connection, and the client may lose the answer already sent)."""
    seen = b""
    while b"\r\n\r\n" not in seen:
        data = sock.recv(4096)
        if not data:
            return seen
        seen += data
    head, _, body = seen.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while match and len(body) < int(match.group(1)):
        data = sock.recv(4096)
        if not data:
            break
        body += data
    return head + b"\r\n\r\n" + body


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], int]]:
    """Start a loopback server whose connections ``handler(sock)`` answers; its port comes
    back."""
    servers: list[_Server] = []

    def start(handler: Handler) -> int:
        class Handle(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(30.0)
                try:
                    handler(sock)
                except OSError:
                    return  # the client gave up

        server = _Server(("127.0.0.1", 0), Handle)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _trickle(sock: socket.socket, data: bytes) -> None:
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
        time.sleep(TRICKLE)


def _answer_draft(sock: socket.socket) -> None:
    _read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(DRAFT), DRAFT))


def _client(base_url: str) -> OmniClient:
    return OmniClient(base_url, "tok", timeout=DEADLINE, max_retries=0, limiter=Limiter(None))


def _timed_out(base_url: str) -> float:
    started = time.perf_counter()
    with _client(base_url) as client, pytest.raises(APITimeoutError):
        client.create_draft("doc-0001")
    return time.perf_counter() - started


def test_headers_trickled_a_byte_at_a_time_end_at_the_deadline(
    serve: Callable[[Handler], int],
) -> None:
    """Every read of the status line and headers is quick, but the attempt ends at its
    deadline (the whole header block would take 20 s)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"a" * 60
    port = serve(lambda sock: (_read_request(sock), _trickle(sock, head))[1])
    took = _timed_out(f"http://127.0.0.1:{port}/api")
    assert DEADLINE <= took < BOUND, took


def test_a_body_trickled_a_byte_at_a_time_ends_at_the_deadline(
    serve: Callable[[Handler], int],
) -> None:
    """Headers at once, then the body a byte every 0.2 s: the attempt ends at its deadline."""

    def answer(sock: socket.socket) -> None:
        _read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        _trickle(sock, b" " * 100)

    took = _timed_out(f"http://127.0.0.1:{serve(answer)}/api")
    assert DEADLINE <= took < BOUND, took


def test_a_name_lookup_that_hangs_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """getaddrinfo never answering (a dead resolver) ends the attempt as a timeout; the test
    thread goes on, and the lookup's thread ends once the resolver answers."""
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: object, *args: object, **kwargs: object) -> object:
        if host == "hangs.omni-nb.test":
            release.wait(60)
            raise socket.gaierror(socket.EAI_NONAME, "released")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        took = _timed_out("https://hangs.omni-nb.test/api")
        assert DEADLINE <= took < BOUND, took
    finally:
        release.set()
    for thread in threading.enumerate():
        if thread.name == "omni_nb-dns":
            thread.join(10)
            assert not thread.is_alive()


def test_a_pooled_connection_obeys_the_next_attempts_deadline(
    serve: Callable[[Handler], int],
) -> None:
    """The first answer comes at once on a kept-alive connection, the second trickles its
    headers: the second attempt still ends at its own deadline."""

    def answer(sock: socket.socket) -> None:
        _answer_draft(sock)
        if _read_request(sock):
            _trickle(sock, b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 60)

    port = serve(answer)
    with _client(f"http://127.0.0.1:{port}/api") as client:
        assert client.create_draft("doc-0001").identifier == "draft-0001"
        started = time.perf_counter()
        with pytest.raises(APITimeoutError):
            client.create_draft("doc-0001")
    assert DEADLINE <= time.perf_counter() - started < BOUND


def test_a_proxy_from_the_environment_is_used(
    serve: Callable[[Handler], int], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY is honoured (the request goes to the proxy, in absolute form), and
    NO_PROXY sends a host direct, as with httpx's own transport."""
    seen: list[bytes] = []

    def proxy(sock: socket.socket) -> None:
        request = _read_request(sock)
        seen.append(request.split(b"\r\n", 1)[0])
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(DRAFT), DRAFT))

    proxy_port, origin_port = serve(proxy), serve(_answer_draft)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with _client(f"http://127.0.0.1:{origin_port}/api") as client:
        client.create_draft("doc-0001")
    assert seen == [f"POST http://127.0.0.1:{origin_port}/api/v1/documents/doc-0001/draft "
                    f"HTTP/1.1".encode()]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with _client(f"http://127.0.0.1:{origin_port}/api") as client:
        client.create_draft("doc-0001")
    assert len(seen) == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def test_tls_is_verified_and_ssl_cert_file_is_trusted(
    serve: Callable[[Handler], int], certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A certificate nobody vouches for is refused; named in SSL_CERT_FILE it is trusted."""
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def answer(sock: socket.socket) -> None:
        with context.wrap_socket(sock, server_side=True) as tls:
            _answer_draft(tls)

    base_url = f"https://127.0.0.1:{serve(answer)}/api"
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with _client(base_url) as client, pytest.raises(HostUnreachableError, match="CERTIFICATE"):
        client.create_draft("doc-0001")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with _client(base_url) as client:
        assert client.create_draft("doc-0001").identifier == "draft-0001"
