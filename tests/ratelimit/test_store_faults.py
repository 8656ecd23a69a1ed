"""Store faults pass: a locked, deleted or replaced store is tried again and sharing resumes;
meanwhile a process sends at most its share; a path that is not a store is never touched.
(The SQLite file's faults; a Redis's, paused, restarted or another application's, are in
test_redis_faults.)"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings
from pathlib import Path

import pytest

from omni_nb import RateLimit
from omni_nb.ratelimit import BudgetStore, BudgetStoreWarning, Caller, Limiter, open_store
from omni_nb.ratelimit.link import RETRY_S
from omni_nb.ratelimit.store import APP_ID

from ..redis_server import StoreFactory
from .test_ratelimit import FakeClock


def _two(path: Path, clock: FakeClock, limit: RateLimit) -> tuple[Limiter, Limiter]:
    """Two "processes" that each made one send (so each sees the other)."""
    a, b = (Limiter(None, clock=clock, margin=0.0, store=BudgetStore(path), key="k")
            for _ in range(2))
    for lim in (a, b, a):
        caller = lim.caller(limit)
        caller.acquire(clock.sleep)
        caller.sent()
        lim.flush()  # its stamp is in the store (a stamp waits for the next step otherwise)
    return a, b


def test_a_locked_store_means_the_share_then_sharing_resumes(tmp_path: Path) -> None:
    """Another connection holds the store's write lock: one warning naming the store and
    the share (20 per 60 s over the 2 processes seen: 10); at most the share is sent
    meanwhile; once the lock is gone, the store is used again at the next retry (what was
    sent meanwhile is written), the share holding until the other process, which may still
    be on its own share, has written since; then the whole budget is shared again. The
    share counts the processes seen before the lock however long it lasts."""
    path, clock = tmp_path / "b.sqlite3", FakeClock()
    a, b = _two(path, clock, RateLimit(20, 60.0))  # 3 sends in the window
    caller = a.caller(RateLimit(20, 60.0))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.warns(BudgetStoreWarning) as caught:
            _send_seven(caller, clock)
        assert caller.next_send_in() > 59  # 3 + 7: its share of the window is used
        assert [str(w.message) for w in caught] == [
            f"budget store {path} is locked; this process sends at most its share, "
            "10 per 60 s, until it can use it again"]
        assert not a.shared
        clock.now += 62.0  # a window on: the other process is still counted
        _send_seven(caller, clock)
        _send_seven(caller, clock, 3)
        assert caller.next_send_in() > 59  # its share, 10, not the whole 20
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    clock.now += RETRY_S
    assert caller.next_send_in() > 0  # back, but the other process may still be on its share
    assert a.shared
    b.flush()  # the other process writes: it is back too
    assert caller.next_send_in() == 0.0  # shared again: the whole 20 per 60 s, 10 used
    with _Reader(path) as reader:
        assert reader.sends() == 10  # the last window's sends, made while it was locked


def _send_seven(caller: Caller, clock: FakeClock, n: int = 7) -> None:
    for _ in range(n):
        assert caller.acquire(clock.sleep) == 0.0
        caller.sent()


class _Reader:
    def __init__(self, path: Path) -> None:
        self.store = BudgetStore(path)

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    def sends(self) -> int:
        return int(self.store.update("k", lambda b: len(b.sends)))


def test_a_deleted_store_is_made_anew_with_this_process_sends(tmp_path: Path) -> None:
    """The store file deleted mid-batch: the next step makes it anew, seeded with this
    process's sends of the window and its lease, with one warning; the other process finds
    the new store and counts them."""
    path, clock = tmp_path / "b.sqlite3", FakeClock()
    a, b = _two(path, clock, RateLimit(5, 10.0))
    strict = a.caller(RateLimit(5, 10.0))
    for _ in range(3):
        strict.acquire(clock.sleep)
        strict.sent()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.warns(BudgetStoreWarning, match="deleted or replaced; it is made anew") as w:
        strict.acquire(clock.sleep)
    assert len(w) == 1
    assert path.exists()
    assert a.shared
    with _Reader(path) as reader:
        [state] = reader.store.snapshot(now=clock.now)
    assert [lease.limit for lease in state.leases] == [RateLimit(5, 10.0)]  # a's, live
    assert state.sends == 2  # a's claim of now, and its send of now: the window's
    other = b.caller(None)
    with pytest.warns(BudgetStoreWarning, match="made anew"):  # b finds it gone too
        assert other.next_send_in() == 0.0
    assert b.shared
    assert other.effective_limit == RateLimit(5, 10.0)  # a's lease holds b too


def test_a_store_made_anew_keeps_to_the_share_until_the_others_have_written(
        tmp_path: Path) -> None:
    """Both processes had the store open when it was deleted: the one that makes it anew
    knows only its own sends there, so it keeps to its share (20 per 60 s over the 2
    processes the old store knew: 10) until the other has written to the new store, then
    shares the whole budget, counted over both."""
    path, clock = tmp_path / "b.sqlite3", FakeClock()
    a, b = _two(path, clock, RateLimit(20, 60.0))  # a sent 2, b 1
    clock.now += 1.0
    caller = a.caller(RateLimit(20, 60.0))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.warns(BudgetStoreWarning, match="made anew"):
        _send_seven(caller, clock, 8)  # 2 + 8: its share of the window
    assert caller.next_send_in() > 58  # until a's first sends leave it
    with pytest.warns(BudgetStoreWarning, match="made anew"):
        b.flush()  # the other finds the new store and writes to it: it is heard
    assert caller.next_send_in() == 0.0  # 11 of 20 in the window


@pytest.mark.parametrize("kind", ["directory", "symlink", "read-only"])
def test_a_path_that_is_not_a_store_is_refused_untouched(tmp_path: Path, kind: str) -> None:
    """A directory, a symlink to another program's file, a read-only file: one warning
    naming the path, nothing written (bytes and mtime unchanged), and a budget of the
    process's own that still sends."""
    path = tmp_path / "b.sqlite3"
    if kind == "directory":
        path.mkdir()
        target = path
    elif kind == "symlink":
        target = tmp_path / "notes.txt"
        target.write_text("another program's notes\n")
        path.symlink_to(target)
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes read-only files")
        BudgetStore(path).close()
        path.chmod(0o444)
        target = path
    before = (target.stat().st_mtime_ns, target.read_bytes() if target.is_file() else b"")
    with pytest.warns(BudgetStoreWarning, match=str(path)) as caught:
        store = open_store(path)
    assert store is None
    assert len(caught) == 1
    lim = Limiter(RateLimit(2, 10.0), store=store, key="k")
    assert lim.acquire() == 0.0
    assert not lim.shared
    after = (target.stat().st_mtime_ns, target.read_bytes() if target.is_file() else b"")
    assert after == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_store(path) is None  # warned once per path


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    """A store an older omni_nb made: opened, upgraded to version 2 (its old send rows are
    left and ignored), and used."""
    path = tmp_path / "b.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE keys (key TEXT PRIMARY KEY, state TEXT NOT NULL)")
        conn.execute("CREATE TABLE sends (key TEXT NOT NULL, at REAL NOT NULL, "
                     "kind INTEGER NOT NULL)")
        conn.execute("INSERT INTO sends VALUES ('k', 1.0, 0)")
        conn.execute(f"PRAGMA application_id={APP_ID}")
        conn.execute("PRAGMA user_version=1")
    store = BudgetStore(path)
    assert store.update("k", lambda b: len(b.sends)) == 0
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


def test_snapshot_shows_each_key_by_digest_and_clear_drops_it(make_store: StoreFactory) -> None:
    """snapshot(): a key's leases (limit, holder, expiry), learned limit, pause, sends in the
    window and processes, by digest and never the token; clear() drops a key's state (on a
    SQLite file and on a real Redis)."""
    clock = FakeClock()
    a = Limiter(None, clock=clock, margin=0.0, store=make_store(), key="digest-a")
    caller = a.caller(RateLimit(5, 2.0))
    for _ in range(3):
        caller.acquire(clock.sleep)
        caller.sent()
    a.pause_for(1.0)
    store = make_store()
    [state] = store.snapshot(now=clock.now)
    assert state.key == "digest-a"
    assert [(lease.limit, lease.holder.startswith("pid ")) for lease in state.leases] == [
        (RateLimit(5, 2.0), True)]
    assert state.sends == 3
    assert state.paused_until == pytest.approx(clock.now + 1.0)
    assert state.processes == 1
    assert state.learned is None
    assert store.clear("other") == 0
    assert store.clear("digest-a") == 1
    assert store.snapshot(now=clock.now) == []
