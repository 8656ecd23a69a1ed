"""A throwaway ``redis-server`` for the tests: Debian's binary on a free loopback port, in a
temporary directory, with no persistence (a restart is a Redis that lost its data).

It runs as a child process of the test run (never daemonized), so it is stopped with it;
:func:`stop_all` ends every server still running (the session fixture calls it, also when a
test failed).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

from omni_nb.budget_url import RedisAddress
from omni_nb.ratelimit.redis_store import open_at
from omni_nb.ratelimit.store import Store

__all__ = ["REASON", "RedisServer", "StoreFactory", "missing", "stop_all"]

#: Why the Redis tests skip, when they do.
REASON = "redis-server is not installed: apt-get install redis-server"

_running: set[RedisServer] = set()


def missing() -> str | None:
    """Why a Redis test cannot run here (None when it can).

    Example:
        >>> missing() in (None, REASON, "redis-py is not installed: pip install 'omni_nb[redis]'")
        True
    """
    if shutil.which("redis-server") is None:
        return REASON
    try:
        import redis  # noqa: F401
    except ImportError:
        return "redis-py is not installed: pip install 'omni_nb[redis]'"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server on 127.0.0.1: :meth:`start` (again on the same port after
    :meth:`stop`, empty), :meth:`pause` / :meth:`resume` (SIGSTOP/SIGCONT: a Redis that stops
    answering), :meth:`address` for a store.

    Example:
        >>> server = RedisServer()
        >>> server.address(prefix="t1:").startswith("redis://127.0.0.1:")
        True
        >>> server.running
        False
        >>> server.close()
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="omni-nb-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether its process is alive (paused counts as running)."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start it (empty: nothing is saved) and wait until it answers PING."""
        if self.running:
            return self
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", str(self.dir), "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _running.add(self)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)  # startup of a real process: polled, not a test's wait
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL): its data is gone; the port stays this server's."""
        process, self.process = self.process, None
        _running.discard(self)
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """Stop it answering (SIGSTOP): connections stay open, replies never come."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server answer again (SIGCONT), its data kept."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def add_user(self, name: str, password: str, rules: list[str]) -> None:
        """``ACL SETUSER name on >password *rules`` on the running server."""
        import redis

        raw = redis.Redis(port=self.port)
        try:
            raw.execute_command(  # type: ignore[no-untyped-call]
                "ACL", "SETUSER", name, "on", f">{password}", *rules)
        finally:
            raw.close()

    def address(self, prefix: str | None = None, user: str | None = None,
                password: str | None = None, db: int = 0) -> str:
        """The ``redis://`` text of this server (with user, password and ``?prefix=``)."""
        auth = ""
        if user is not None or password is not None:
            auth = urllib.parse.quote(user or "", safe="")
            if password is not None:
                auth += ":" + urllib.parse.quote(password, safe="")
            auth += "@"
        query = f"?prefix={urllib.parse.quote(prefix, safe=':')}" if prefix else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}{query}"

    def close(self) -> None:
        """Stop it and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class StoreFactory:
    """``make()`` -> a new store object on one shared place (one "process's" connection);
    every one is closed by :meth:`close`. ``kind`` is ``"sqlite"`` or ``"redis"``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     make = StoreFactory("sqlite", Path(tmp) / "b.sqlite3")
        ...     a, b = make(), make()
        ...     a.update("k", lambda budget: budget.sends.append((1.0, 0)))
        ...     seen = b.update("k", lambda budget: len(budget.sends))
        ...     make.close()
        >>> seen
        1
    """

    def __init__(self, kind: str, place: Path | RedisAddress) -> None:
        self.kind, self.place = kind, place
        self.made: list[Store] = []

    def __call__(self) -> Store:
        store = open_at(self.place)
        self.made.append(store)
        return store

    def close(self) -> None:
        """Close every store it made."""
        for store in self.made:
            store.close()


@atexit.register
def stop_all() -> None:
    """Stop every server this process started and has not stopped (a failed test's too).

    Example:
        >>> stop_all()
    """
    for server in list(_running):
        server.close()
