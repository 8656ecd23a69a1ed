"""Shared fixtures: every sandbox comes from one factory, every test is isolated from the
developer's Omni settings and ledger, and a fake clock stands in for time.

* ``make_sandbox(**serve_options)`` starts a :func:`omni_nb.sandbox.serve` (with no rate
  limit unless one is asked for) and closes it when the test ends; ``make_module_sandbox`` is
  the same factory for one server shared by a module's tests. ``sb`` is ``make_sandbox()``.
  A module that needs other options overrides ``sb`` in one line through a factory.
* ``_isolated`` (autouse): no ``OMNI_*`` variable of the developer's environment, a private
  ``OMNI_NB_LEDGER`` per test, and no ``login()`` session before or after.
* ``clock``: a :class:`FakeClock` to inject where the code under test would wait.
* ``redis_server``: one real ``redis-server`` for the session (each test isolates itself
  with its own key prefix, ``redis_address``); ``own_redis``: a server of the test's own, to
  stop, restart or pause. Both skip, saying why, where redis-server or redis-py is missing.
* ``make_store``: parametrised ``sqlite`` / ``redis``, a factory of store objects on one
  shared place (each object is one process's connection), for the tests that make claims
  about a shared store. ``fresh_stores``: the process's open stores and limiters forgotten.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from omni_nb import logout, sandbox
from omni_nb.budget_url import RedisAddress

from .redis_server import RedisServer, StoreFactory, missing, stop_all

#: ``make_sandbox(**serve_options) -> Sandbox``
MakeSandbox = Callable[..., sandbox.Sandbox]


@contextlib.contextmanager
def _sandbox_factory() -> Iterator[MakeSandbox]:
    made: list[sandbox.Sandbox] = []

    def make(**serve_options: Any) -> sandbox.Sandbox:
        serve_options.setdefault("rate_limit", None)  # tests opt in to a server-side limit
        server = sandbox.serve(**serve_options)
        made.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(made):
            server.close()  # idempotent: a test may have closed it already


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    """Start sandboxes with serve()'s options (``rate_limit=None`` unless given); every one
    is closed when the test ends."""
    with _sandbox_factory() as make:
        yield make


@pytest.fixture(scope="module")
def make_module_sandbox() -> Iterator[MakeSandbox]:
    """The same factory for a sandbox shared by a module's tests (closed after the module)."""
    with _sandbox_factory() as make:
        yield make


@pytest.fixture
def sb(make_sandbox: MakeSandbox) -> sandbox.Sandbox:
    """A fresh sandbox (300 documents) with no rate limit and no faults."""
    return make_sandbox()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reads the developer's Omni settings, keeps a login() session, or writes the
    real ledger."""
    for name in [n for n in os.environ if n.startswith("OMNI_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OMNI_NB_LEDGER", str(tmp_path / "ledger.sqlite3"))
    # The rate budget every process of a key shares: private to the test, and outside
    # tmp_path (tests check what a batch wrote there).
    budget = tmp_path_factory.mktemp("budget") / "budget.sqlite3"
    monkeypatch.setenv("OMNI_NB_BUDGET", str(budget))
    logout()
    yield
    logout()


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock() -> FakeClock:
    """An injected clock: retries and rate-limit waits take no real time."""
    return FakeClock()


#: The first ledger schema (omni_nb before user_version): its table, then with its indexes.
V0_CALLS_TABLE = """
CREATE TABLE calls (
    id INTEGER PRIMARY KEY, document_id TEXT NOT NULL, branch_id TEXT, draft_id TEXT,
    status TEXT NOT NULL, http_status INTEGER, message TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL, elapsed_s REAL NOT NULL, requested_at_us INTEGER NOT NULL,
    api_root TEXT NOT NULL, run_id TEXT NOT NULL
);
"""
V0_LEDGER_SCHEMA = V0_CALLS_TABLE + """CREATE INDEX calls_run ON calls (run_id);
CREATE INDEX calls_when ON calls (requested_at_us);
CREATE INDEX calls_ok ON calls (api_root, document_id, branch_id) WHERE status = 'ok';
"""


# -- Redis ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the run (skips, saying why, where it cannot run); every
    server the run started is stopped at the end, whatever happened."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    try:
        yield RedisServer().start()
    finally:
        stop_all()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own (to stop, restart empty, or pause); stopped after."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of the test's own (``t<8 hex>:``): tests share the session's server."""
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def redis_address(redis_server: RedisServer, redis_prefix: str) -> str:
    """The session server's address under the test's own prefix."""
    return redis_server.address(prefix=redis_prefix)


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Store objects on one place, for each store: a SQLite file, or the session's Redis
    under the test's own prefix."""
    place: Path | RedisAddress
    if request.param == "redis":
        place = RedisAddress.parse(request.getfixturevalue("redis_address"))
    else:
        place = tmp_path / "b.sqlite3"
    factory = StoreFactory(request.param, place)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def fresh_stores(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """This process's open stores and shared limiters forgotten for the test (as in a new
    process), restored after; call the fixture's value to forget them again (the next
    "process")."""
    import omni_nb.ratelimit as ratelimit

    def new_process() -> None:
        monkeypatch.setattr(ratelimit, "_stores", {})
        monkeypatch.setattr(ratelimit, "_registry", {})

    new_process()
    return new_process
