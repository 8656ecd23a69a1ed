"""The sandbox over HTTP: the server, the request handler, the :class:`Sandbox` handle, serve().

The handler reads a request (framing, body limits), asks :class:`.state.State` for
the answer and writes it, drops the connection or lingers as the answer says.
"""

from __future__ import annotations

import contextlib
import http
import http.server
import json
import logging
import re
import selectors
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Literal, cast

from .data import (
    EDITOR_NAME,
    OTHER_NAME,
    RequestRecord,
    SandboxBranch,
    SandboxDocument,
    SandboxDraft,
    resolve_documents,
)
from .probe import SERVER_NAME
from .state import (
    UNSET,
    Replacement,
    Reply,
    RetryAfter,
    Scripted,
    Settings,
    State,
    Unset,
    error,
    split_target,
)

__all__ = ["MAX_BODY_BYTES", "Sandbox", "serve"]

# The package's name, as in the single-module days: users and tests configure it.
logger = logging.getLogger("omni_nb.sandbox")

#: Request bodies above this size are refused with 413 without being read.
MAX_BODY_BYTES: Final = 64 * 1024

_LENGTH_RE: Final = re.compile(r"[0-9]{1,18}")
_HEX_RE: Final = re.compile(rb"[0-9a-fA-F]{1,16}")
_TOO_LARGE: Final = f"Request body larger than {MAX_BODY_BYTES} bytes"


class _Server(http.server.ThreadingHTTPServer):
    # Handler threads must not delay close(): a kept-alive idle connection or
    # a "slow" request would otherwise block server_close() until it ends.
    daemon_threads = True
    block_on_close = False
    # socketserver's default listen backlog is 5: a client opening 16 connections at once
    # would see SYNs dropped and a 1 s retransmit, i.e. spurious connect timeouts.
    request_queue_size = 128
    # Bounds handle_request()'s own select, should a pending connection vanish
    # between run()'s select and the accept.
    timeout = 0.5

    def __init__(self, address: tuple[str, int], state: State) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._wake_r.close()
            self._wake_w.close()
            raise

    @property
    def origin(self) -> str:
        """``http://host:port`` of the bound socket (IPv6 hosts in brackets)."""
        # AF_INET/AF_INET6 addresses are (str, int, ...) tuples.
        host, port = cast(tuple[str, int], self.server_address[:2])
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self) -> None:
        """Accept connections until stop_serving(); the serve thread's target."""
        # Instead of serve_forever(), whose shutdown() waits for a poll timeout
        # (0.5 s by default): a byte on the socketpair stops this loop at once.
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    self.handle_request()

    def stop_serving(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup
        # that can take seconds on some machines; the sandbox needs no name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        # The default prints a traceback to stderr; a client that vanished
        # mid-answer is routine here, not worth a notebook's red text.
        logger.debug("sandbox: error while serving a connection", exc_info=True)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body
    # waits for the client's delayed ACK (~40 ms per request on Linux).
    disable_nagle_algorithm = True
    server_version = SERVER_NAME  # how is_sandbox() recognises it
    sys_version = ""

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        super().setup()
        with self._server.connections_lock:
            self._server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            with self._server.connections_lock:
                self._server.connections.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        # Silenced: http.server writes to stderr. One DEBUG line per request
        # is logged by _handle_request, without any header values.
        return

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header: the sandbox's clock (moved by ``clock_offset``)."""
        when = self._server.state.now() if timestamp is None else timestamp
        return super().date_time_string(when)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, 501...) in JSON."""
        logger.debug("sandbox: protocol error %s: %s", code, message)
        try:
            phrase = http.HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps({"error": phrase, "message": message or phrase}).encode()
        if self.request_version == "HTTP/0.9":
            # Unparseable request lines default to HTTP/0.9, which has no status
            # line or headers; nobody speaks 0.9, so answer in HTTP/1.1 instead.
            self.request_version = "HTTP/1.1"
        self._write(Reply(code, body, [("Content-Type", "application/json")], close=True))

    def _dispatch(self) -> None:
        state = self._server.state
        seq = state.log.begin()
        try:
            self._handle_request(state, seq)
        finally:
            state.log.end()

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _handle_request(self, state: State, seq: int) -> None:
        received_at = time.time()
        words = self.requestline.split()
        target = words[1] if len(words) >= 2 else self.path  # raw: before '//' collapsing
        path, query = split_target(target)
        auth = self.headers.get("Authorization")
        body, reply = self._read_body()
        if reply is not None:
            reply.role = state.authenticate(auth).role
            reply.delay = state.delay()
        else:
            reply = self._answer(state, target, auth, body)
        # wait() returns True as soon as the sandbox closes, so close() stays
        # fast; a closing server answers nothing, like a process being killed.
        if reply.drop or (reply.delay > 0 and state.stopping.wait(reply.delay)):
            reply.status = 0
            reply.drop = True
        _then(reply, state, before=True)
        answered_at = time.time()
        # Recorded before the answer goes out: a client that has its answer
        # must find the request in sb.requests() straight away.
        state.log.record(
            seq,
            RequestRecord(
                method=self.command,
                path=path,
                query=query,
                document_id=reply.document_id,
                branch_id=reply.branch_id,
                body=body,
                role=reply.role,
                has_authorization=auth is not None,
                user_agent=self.headers.get("User-Agent"),
                status=reply.status,
                draft_id=reply.draft_id,
                received_at=received_at,
                answered_at=answered_at,
                thread=threading.current_thread().name,
            ),
        )
        if reply.drop:
            self._drop()
        else:
            self._write(reply)
        _then(reply, state, before=False)
        logger.debug(
            "sandbox: %s %s -> %s (role=%s, %.1f ms)",
            self.command,
            path,
            reply.status or "dropped",
            reply.role,
            (answered_at - received_at) * 1000,
        )

    def _answer(self, state: State, target: str, auth: str | None, body: bytes) -> Reply:
        try:
            return state.dispatch(self.command, target, auth, body)
        except Exception:
            # A bug in the sandbox answers 500 and is logged; serving goes on.
            logger.error(
                "sandbox: internal error on %s %s",
                self.command,
                split_target(target)[0],
                exc_info=True,
            )
            return error(500, "Sandbox internal error")

    # -- reading ----------------------------------------------------------

    def _read_body(self) -> tuple[bytes, Reply | None]:
        """The body, and the answer to give instead when its framing is wrong."""
        transfer_encoding = self.headers.get("Transfer-Encoding")
        if transfer_encoding is not None:
            if transfer_encoding.strip().lower() != "chunked":
                return b"", _framing(501, "Unsupported Transfer-Encoding")
            return self._read_chunked()
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or ()}
        if not lengths:
            return b"", None
        value = lengths.pop()
        if lengths or not _LENGTH_RE.fullmatch(value):
            return b"", _framing(400, "Invalid Content-Length")
        length = int(value)
        if length > MAX_BODY_BYTES:
            # Refuse unread: the connection is closed after the answer anyway.
            return b"", _framing(413, _TOO_LARGE)
        body = self.rfile.read(length)
        if len(body) < length:
            return body, _framing(400, "Incomplete request body")
        return body, None

    def _read_chunked(self) -> tuple[bytes, Reply | None]:
        # Kept rather than answered 411: an HTTP/1.1 server must accept chunked
        # bodies (RFC 9112, 6.1), so a client that streams one must not be told
        # it is wrong here. No client here sends one; hence no more than this.
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()  # chunk extensions ignored
            if not line.endswith(b"\n") or not _HEX_RE.fullmatch(size_text):
                return b"", _framing(400, "Malformed chunked body")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                return b"", _framing(413, _TOO_LARGE)
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.read(2) != b"\r\n":
                return b"", _framing(400, "Malformed chunked body")
            chunks.append(chunk)
        for _ in range(100):  # trailer section, ignored
            line = self.rfile.readline(8192)
            if line in (b"\r\n", b"\n", b""):
                break
        return b"".join(chunks), None

    # -- writing ----------------------------------------------------------

    def _write(self, reply: Reply) -> None:
        if reply.close:
            self.close_connection = True
        no_body = reply.status < 200 or reply.status in (204, 304)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            if not no_body:
                self.send_header("Content-Length", str(len(reply.body)))
            if reply.close:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and not no_body:
                self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True
            return
        if reply.close:
            self._linger()

    def _drop(self) -> None:
        # SO_LINGER 0 makes close() send RST: the client sees a reset with no
        # bytes, like a proxy that died. The rfile holds a reference to the
        # socket, so it has to be closed too or the fd would stay open.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def _linger(self) -> None:
        # Closing a socket that still has unread request bytes makes the kernel
        # send RST, which can destroy the answer before the client reads it
        # (a 413 the client never sees). Half-close, then drain briefly.
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            deadline = time.monotonic() + 1.0
            drained = 0
            while time.monotonic() < deadline and drained < 64 * MAX_BODY_BYTES:
                data = self.connection.recv(65536)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass


def _then(reply: Reply, state: State, *, before: bool) -> None:
    """Run a replaced answer's ``then`` at its moment: before the answer goes out, or
    ``then_after`` seconds after it (unless the sandbox closes meanwhile)."""
    if reply.then is None or (reply.then_after is None) != before:
        return
    if reply.then_after is None or not state.stopping.wait(reply.then_after):
        reply.then()


def _framing(status: int, message: str) -> Reply:
    # The rest of the stream can no longer be trusted: answer and close.
    reply = error(status, message)
    reply.close = True
    return reply


# --------------------------------------------------------------------------
# Public handle


class Sandbox:
    """A running sandbox server; use it as a context manager or call close().

    Example::

        sb = serve(documents=5)
        try:
            print(sb.base_url)  # http://127.0.0.1:PORT/api
        finally:
            sb.close()
    """

    __slots__ = ("_closed", "_server", "_state", "_thread")

    def __init__(self, state: State, server: _Server, thread: threading.Thread) -> None:
        self._state = state
        self._server = server
        self._thread = thread
        self._closed = False

    # -- addresses and credentials ----------------------------------------

    @property
    def url(self) -> str:
        """The origin, e.g. ``http://127.0.0.1:8787``."""
        return self._state.origin

    @property
    def base_url(self) -> str:
        """The API root (origin + ``/api``), what a client's base URL is set to."""
        return f"{self._state.origin}/api"

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``port=0``)."""
        return int(self._server.server_address[1])

    @property
    def token(self) -> str:
        """The editor token (random per server unless ``serve(token=...)``)."""
        return self._state.editor_token

    @property
    def viewer_token(self) -> str:
        """A valid viewer token: listing works, creating or discarding a draft answers 403."""
        return self._state.viewer_token

    @property
    def branches(self) -> list[SandboxBranch]:
        """The seeded branches (feature-a, feature-b, feature-c)."""
        return list(self._state.catalog.branches)

    @property
    def documents(self) -> list[SandboxDocument]:
        """The documents the sandbox serves."""
        return list(self._state.catalog.documents)

    @property
    def editor_name(self) -> str:
        """The user every editor token acts as; drafts list it as ``createdBy``."""
        return EDITOR_NAME

    # -- inspection -------------------------------------------------------

    def drafts(self) -> dict[tuple[str, str | None], str]:
        """A copy of ``{(document identifier, branch id or None): draft id}``, active drafts only.

        An archived (discarded) draft leaves this map; see :meth:`archived_drafts`.

        Example::

            sb.drafts().get(("doc-0001", None))  # '1a2b3c4d' once created
        """
        return self._state.drafts.ids()

    def draft_records(self) -> list[SandboxDraft]:
        """Every draft the sandbox made, active and archived, in creation order (a copy).

        Each :class:`SandboxDraft` holds its identifier, document, branch, status
        and the exact ``time.time()`` of its creation (and archiving).

        Example::

            created = {d.identifier: d.created_at for d in sb.draft_records()}
            [d.identifier for d in sb.draft_records() if d.status == "active"]
        """
        return self._state.drafts.records()

    def archived_drafts(self) -> list[SandboxDraft]:
        """The drafts ``DELETE .../draft`` archived, in creation order (a copy).

        Example::

            httpx.delete(f"{sb.base_url}/v1/documents/doc-0001/draft", headers=auth)
            [(d.document_id, d.branch_id) for d in sb.archived_drafts()]
            # [('doc-0001', None)]
        """
        return [d for d in self._state.drafts.records() if not d.active]

    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, in arrival order (answered requests only).

        Example::

            statuses = [r.status for r in sb.requests()]
        """
        return self._state.log.snapshot()

    def busiest_window(self, per: float, token: str | None = None) -> int:
        """The most requests the rate limit accepted in any trailing ``per``-second window.

        Counted per token on the server's own arrival times (the last 100,000 accepted per
        token, cleared logs or not); ``token=None``: the busiest of every token's. Only
        accepted requests count, refused ones never do.

        Example:

            >>> import httpx
            >>> with serve(documents=3, rate_limit=(2, 60.0), grace=0.25) as sb:
            ...     auth = {"Authorization": f"Bearer {sb.token}"}
            ...     codes = [httpx.post(f"{sb.base_url}/v1/documents/doc-0001/draft",
            ...                         headers=auth).status_code for _ in range(3)]
            ...     codes, sb.busiest_window(60.0), sb.busiest_window(60.0, sb.viewer_token)
            ([200, 200, 429], 2, 0)
        """
        return self._state.limiter.busiest_window(per, token)

    def clear_requests(self) -> None:
        """Empty the request log.

        Example::

            sb.clear_requests(); assert sb.requests() == []
        """
        self._state.log.clear()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every request received so far is answered and in :meth:`requests`.

        Returns False when ``timeout`` seconds ran out first (a "slow" answer
        still held, say). A request whose client gave up is still answered and
        logged by the sandbox; call this before counting the log.

        Example:

            >>> with serve(documents=1) as sb:
            ...     sb.wait_idle(1.0)
            True
        """
        return self._state.log.wait_idle(timeout)

    # -- control ----------------------------------------------------------

    def configure(
        self,
        *,
        latency: float | Unset = UNSET,
        latency_jitter: float | Unset = UNSET,
        rate_limit: tuple[int, float] | Unset | None = UNSET,
        retry_after: RetryAfter | Unset | None = UNSET,
        count_refused: bool | Unset = UNSET,
        grace: float | Unset = UNSET,
        fail_rate: float | Unset = UNSET,
        drop_rate: float | Unset = UNSET,
        slow_rate: float | Unset = UNSET,
        slow_seconds: float | Unset = UNSET,
        clock_offset: float | Unset = UNSET,
        seed: int | Unset = UNSET,
    ) -> None:
        """Change faults, latency or the rate limit while serving; omitted options stay.

        A new ``seed`` restarts the fault sequence. Thread-safe.

        Example::

            sb.configure(fail_rate=1.0)   # every create/discard-draft answer is a 5xx
            sb.configure(rate_limit=None) # no more 429s
        """
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("latency", latency),
                ("latency_jitter", latency_jitter),
                ("rate_limit", rate_limit),
                ("retry_after", retry_after),
                ("count_refused", count_refused),
                ("grace", grace),
                ("fail_rate", fail_rate),
                ("drop_rate", drop_rate),
                ("slow_rate", slow_rate),
                ("slow_seconds", slow_seconds),
                ("clock_offset", clock_offset),
            )
            if value is not UNSET
        }
        self._state.configure(changes, seed)

    def enqueue(
        self,
        status: int,
        body: bytes | str | Mapping[str, object] = b"",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Script the next ``times`` create-draft answers (FIFO).

        A scripted answer replaces all normal handling (auth, rate limit,
        faults) and does not count against the rate limit. A mapping body is
        sent as JSON; a str or bytes body as text unless ``headers`` sets
        ``Content-Type``. Content-Length is always computed.

        Example::

            sb.enqueue(429, {"error": "Too Many Requests", "message": "slow down"},
                       headers={"Retry-After": "2"})
            sb.enqueue(307, headers={"Location": f"{sb.base_url}/v1/documents/doc-0002/draft"})
            sb.enqueue(200, {"unexpected": True})
        """
        self._state.enqueue(Scripted.build(status, body, headers, times))

    def make_draft(
        self, document_id: str, branch_id: str | None = None, *, by: str = OTHER_NAME,
        created_at: float | None = None,
    ) -> str:
        """Another user makes a draft of (document, branch), as Omni's own editor would:
        the active one, if any, is archived first; ``created_at`` is the sandbox's clock
        (default now). Returns the new draft's identifier; the listing names ``by``.

        Example:

            >>> with serve(documents=1) as sb:
            ...     made = sb.make_draft("doc-0001")
            ...     sb.drafts() == {("doc-0001", None): made}
            True
        """
        if document_id not in self._state.catalog.doc_by_id:
            raise KeyError(f"no document {document_id!r} in the sandbox")
        return self._state.drafts.make(document_id, branch_id, by, created_at).identifier

    def replace_answer(
        self, method: Literal["POST", "DELETE"], document_id: str | None = None, *,
        status: int = 0, headers: Mapping[str, str] | None = None, route: bool = True,
        then: Callable[[], object] | None = None, then_after: float | None = None,
    ) -> None:
        """Replace the answer to the next create (``POST``) or discard (``DELETE``) of
        ``document_id`` (None: of any document), once: ``status`` 0 drops the connection
        after the request arrived, 502 answers a proxy's HTML page, any other status Omni's
        error shape with ``headers`` (a firewall 429: ``{"X-Omni-Waf-Action": "block",
        "Retry-After": "3"}`` and ``route=False``). With ``route`` the write takes effect
        first (its answer is what is lost). ``then`` runs before the answer goes out, or
        ``then_after`` seconds after it: another user's move at that moment.

        Example::

            sb.replace_answer("DELETE", "doc-0001", then=lambda: sb.make_draft("doc-0001"))
        """
        self._state.replace(Replacement(method, document_id, status,
                                        tuple((headers or {}).items()), route, then,
                                        then_after))

    def add_token(
        self, role: Literal["editor", "viewer"] = "editor", token: str | None = None
    ) -> str:
        """Issue another valid token with its own rate-limit window (``token``: a chosen
        value, e.g. one a test recognises in what it scans; default a random one).

        Example::

            other = sb.add_token("editor")   # e.g. for a second process
        """
        return self._state.add_token(role, token)

    def close(self) -> None:
        """Stop serving and release the port; fast, idempotent.

        Example::

            sb = serve(); sb.close(); sb.close()  # the second call does nothing
        """
        if self._closed:
            return
        self._closed = True
        # Wake sleeping "slow" handlers first so none outlives the server.
        self._state.stopping.set()
        self._server.stop_serving()
        self._thread.join(timeout=1.0)
        self._server.server_close()
        # Woken handlers log and drop their request within milliseconds; a
        # client still sending a body is cut off by close_connections().
        self._state.log.wait_idle(timeout=0.5)
        self._server.close_connections()

    stop = close

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Deliberately no tokens: reprs end up in notebooks and logs.
        state = "closed" if self._closed else "serving"
        return (
            f"<Sandbox {state} base_url={self.base_url!r} "
            f"documents={len(self._state.catalog.documents)} drafts={len(self._state.drafts)}>"
        )


def serve(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    documents: int | Iterable[SandboxDocument] = 300,
    latency: float = 0.0,
    latency_jitter: float = 0.0,
    rate_limit: tuple[int, float] | None = (60, 60.0),
    retry_after: RetryAfter | None = "seconds",
    count_refused: bool = False,
    grace: float = 0.0,
    fail_rate: float = 0.0,
    drop_rate: float = 0.0,
    slow_rate: float = 0.0,
    slow_seconds: float = 5.0,
    clock_offset: float = 0.0,
    seed: int = 0,
    token: str | None = None,
) -> Sandbox:
    """Start a sandbox on ``host:port`` in a daemon thread and return its handle.

    ``port=0`` picks a free port. All randomness (faults, jitter, draft ids)
    comes from ``seed``. Faults apply to the writes (create and discard draft,
    not the GET routes); their rates are drawn independently per write in the
    order drop, 5xx, slow. A dropped or failed write changes nothing.
    ``count_refused=True`` counts refused requests in the rate window too (a firewall that
    counts every arrival); by default only accepted ones count. ``grace=S`` accepts a
    request the strict window would refuse when the arrival that has to leave the window
    for it leaves within S seconds (a firewall lenient at the window's edge).
    ``clock_offset`` puts the sandbox's clock that many seconds ahead of this machine's
    (negative: behind): its ``Date`` headers, drafts' ``createdAt`` and ``Retry-After``
    dates move together.

    Example::

        with serve(fail_rate=0.2, seed=7) as sb:
            ...  # about one create/discard-draft answer in five is a 500/502/503/504
    """
    settings = Settings(
        latency=latency,
        latency_jitter=latency_jitter,
        rate_limit=rate_limit,
        retry_after=retry_after,
        count_refused=count_refused,
        grace=grace,
        fail_rate=fail_rate,
        drop_rate=drop_rate,
        slow_rate=slow_rate,
        slow_seconds=slow_seconds,
        clock_offset=clock_offset,
    )
    state = State(resolve_documents(documents), settings, seed, token)
    server = _Server((host, port), state)
    state.origin = server.origin
    thread = threading.Thread(
        target=server.run,
        name=f"omni-nb-sandbox:{server.server_port}",
        daemon=True,
    )
    try:
        thread.start()
    except BaseException:
        server.server_close()
        raise
    logger.debug("sandbox: serving on %s", state.origin)
    return Sandbox(state, server, thread)
