"""The budget store: one SQLite file every process of the user shares, one budget per key.

Schema (``PRAGMA application_id`` = :data:`APP_ID`, ``user_version`` = 2)::

    keys(key TEXT PRIMARY KEY, state TEXT)     -- JSON: pause, widening, learned, probe,
                                               --   the key's allowance, processes seen
    buckets(key, bucket, kind, at, n)           -- sends counted per 5 ms bucket (at: its
                                               --   latest send, wall-clock seconds)
    leases(key, id, requests, per, expires, holder)  -- every live caller's explicit limit

``key`` is a digest of (API root, token fingerprint): the store never holds the token, and a
lease's holder is a label like ``pid 1234 on host``. Each change is one ``BEGIN IMMEDIATE``
transaction (atomic across processes); sends older than the longest window are deleted as they
age, so a process killed mid-batch holds nothing beyond the window. Wall-clock times, because
monotonic clocks are not comparable across processes on every OS. A file that is not this
store (another program's SQLite file, not SQLite at all, a directory, a symlink to anything
but a store) is refused and never written to. A version-1 store is upgraded in place: its
tables stay, the new ones are added, and its old ``sends`` rows are ignored (they describe at
most the last window of an older omni_nb). Each step checks that the path still names the
file it opened (device and inode): a deleted or replaced store is an error the limiter
recovers from by opening it anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from .._sqlite import when_unlocked
from . import log
from .limits import RateLimit
from .log import Budget, bucket_of

__all__ = ["APP_ID", "BudgetStore", "BudgetStoreWarning", "Changes", "KeyState", "LeaseView",
           "Store", "StoreError", "apply_delta", "change_budget", "key_of", "key_state"]

APP_ID = 0x6F6E6262  # "onbb"
VERSION = 2
BUSY_TIMEOUT_S = 1.0  # a store locked longer than this is given up on, never waited for
OPEN_TIMEOUT_S = 5.0  # opening waits this long for another process creating the store
T = TypeVar("T")
Entry = tuple[float, int]  # (time, kind) of one send in a budget's log

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS buckets (key TEXT NOT NULL, bucket INTEGER NOT NULL, "
    "kind INTEGER NOT NULL, at REAL NOT NULL, n INTEGER NOT NULL, "
    "PRIMARY KEY (key, bucket, kind)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS leases (key TEXT NOT NULL, id TEXT NOT NULL, "
    "requests INTEGER NOT NULL, per REAL NOT NULL, expires REAL NOT NULL, "
    "holder TEXT NOT NULL, PRIMARY KEY (key, id))",
)
_CLEAR = tuple((f"SELECT key FROM {t}", f"DELETE FROM {t}")  # noqa: S608 - fixed names
               for t in ("keys", "leases", "buckets"))
_UPSERT = ("INSERT INTO buckets (key, bucket, kind, at, n) VALUES (?, ?, ?, ?, ?) "
           "ON CONFLICT (key, bucket, kind) DO UPDATE SET n = n + excluded.n, "
           "at = max(at, excluded.at)")


class BudgetStoreWarning(UserWarning):
    """The shared budget store cannot be used (now, or at this path): this process sends on
    its share of the budget."""


class StoreError(Exception):
    """The budget store cannot be used (foreign, corrupt, locked, unwritable, gone)."""


@dataclass(frozen=True, slots=True)
class LeaseView:
    """One live caller's explicit limit on a key, and who holds it (never a secret)."""

    limit: RateLimit
    holder: str
    expires: float  # wall-clock seconds


@dataclass(frozen=True, slots=True)
class KeyState:
    """What a key's budget holds now (:meth:`BudgetStore.snapshot`): the key's digest, the
    leases in force, the learned limit, the pause, the sends in the last window (the tightest
    in force, else a minute), the allowance in seconds and the processes seen in that window.
    """

    key: str
    leases: tuple[LeaseView, ...]
    learned: RateLimit | None
    paused_until: float | None
    sends: int
    allowance: float
    processes: int


def key_of(api_root: str, token_fingerprint: str) -> str:
    """The store's key of one API key: a digest, never the token.

    Example:
        >>> len(key_of("https://acme.omniapp.co/api", "0123456789abcdef"))
        32
    """
    return hashlib.sha256(f"{api_root}\n{token_fingerprint}".encode()).hexdigest()[:32]


class Store(Protocol):
    """What a limiter needs of a budget store: :class:`BudgetStore` (a machine's SQLite
    file) and :class:`~omni_nb.ratelimit.redis_store.RedisBudgetStore` (a team's Redis)."""

    @property
    def where(self) -> str:
        """The store's place as it may be shown (never a password)."""

    @property
    def lost(self) -> str:
        """How a store made anew is said ("was deleted or replaced")."""

    @property
    def opened(self) -> object:
        """:meth:`identity` when it was opened."""

    def identity(self) -> object:
        """Which store the place names now (OSError when none)."""

    def clock(self) -> float:
        """The store's time now, in seconds."""

    def skew(self) -> float:
        """Seconds to add to ``time.time()`` to get :meth:`clock`."""

    def patience(self, seconds: float) -> None:
        """How long a step waits for the store before failing."""

    def reopen(self) -> Store:
        """The same place opened anew."""

    def update(self, key: str, change: Callable[[Budget], T], *,
               delta: Counter[Entry] | None = None, sends: bool = True,
               forget_before: float | None = None) -> T:
        """Run ``change`` on ``key``'s budget atomically."""

    def snapshot(self, now: float | None = None) -> list[KeyState]:
        """Every key's state."""

    def clear(self, key: str | None = None) -> int:
        """Drop a key's (or every key's) state."""

    def close(self) -> None:
        """Close the connection."""


def key_state(name: str, b: Budget, at: float) -> KeyState:
    """What key ``name``'s budget ``b`` holds at ``at`` (see :class:`KeyState`).

    Example:
        >>> key_state("k", Budget(sends=[(1.0, 0)]), 2.0).sends
        1
    """
    limits = log.limits_in_force(b, None, at)
    window = log.window_of(limits)
    return KeyState(
        key=name,
        leases=tuple(LeaseView(RateLimit(n, per), holder, exp)
                     for n, per, exp, holder in b.leases.values()),
        learned=RateLimit(b.learned[0], b.learned[1]) if b.learned else None,
        paused_until=b.paused_until if b.paused_until > at else None,
        sends=sum(1 for t, kind in b.sends
                  if kind != log.REFUSED and at - window < min(t, at) <= at),
        allowance=log.allowance(b, b.base or log.FLOOR_S, at, limits),
        processes=sum(1 for seen, _ in b.procs.values() if seen > at - window),
    )


@dataclass(frozen=True, slots=True)
class Changes(Generic[T]):
    """What one step did to a key's budget (:func:`change_budget`), for a store to write its
    own way: the step's result, the state as JSON (None: unchanged), the leases gone (ids)
    and written (new or changed), and the log's change (+n / -n per entry)."""

    result: T
    state: str | None
    gone: list[str]
    leases: dict[str, log.Lease]
    sends: Counter[Entry]


def change_budget(state: str | None, leases: dict[str, log.Lease],
                  rows: Iterable[tuple[float, int, int]] | None, change: Callable[[Budget], T],
                  delta: Counter[Entry]) -> Changes[T]:
    """Run ``change`` on a key's budget as a store read it: its ``state`` (JSON, None for a
    new key), ``leases`` and log ``rows`` ((latest time, kind, count) per bucket; None when a
    batched write did not read the log: ``delta`` is then written as it is, else applied
    first). Every store's step is this, between its read and its write.

    Example:
        >>> done = change_budget(None, {}, [(1.0, 0, 2)], lambda b: len(b.sends),
        ...                      Counter({(2.0, 0): 1}))
        >>> done.result, sorted(done.sends.items()), done.state is not None
        (3, [((2.0, 0), 1)], True)
    """
    loaded = ([(float(at), int(kind)) for at, kind, n in rows for _ in range(max(0, int(n)))]
              if rows is not None else [])
    entries = list(loaded)
    if rows is not None:
        apply_delta(entries, delta)
    budget = (Budget.from_scalars(json.loads(state), entries) if state is not None
              else Budget(sends=entries))
    budget.leases = dict(leases)
    before = budget.scalars()
    result = change(budget)
    after = budget.scalars()
    return Changes(
        result,
        json.dumps(after) if state is None or after != before else None,
        [i for i in leases if i not in budget.leases],
        {i: lease for i, lease in budget.leases.items() if leases.get(i) != lease},
        deltas(loaded, budget.sends) if rows is not None
        else Counter({entry: n for entry, n in delta.items() if n}))


def deltas(before: Iterable[Entry], after: Iterable[Entry]) -> Counter[Entry]:
    """What turned the multiset of entries ``before`` into ``after`` (+n added, -n gone).

    Example:
        >>> sorted(deltas([(1.0, 0), (2.0, 0)], [(2.0, 0), (3.0, 0)]).items())
        [((1.0, 0), -1), ((3.0, 0), 1)]
    """
    change: Counter[Entry] = Counter(after)
    change.subtract(Counter(before))
    return Counter({entry: n for entry, n in change.items() if n})


class BudgetStore:
    """One open store file; :meth:`update` runs a function on a key's budget atomically.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     store = BudgetStore(os.path.join(tmp, "b.sqlite3"))
        ...     store.update("k", lambda b: b.sends.append((1.0, 0)))
        ...     n = store.update("k", lambda b: len(b.sends))
        ...     store.close()
        >>> n
        1
    """

    lost = "was deleted or replaced"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self._lock = threading.Lock()
        try:
            self._refuse_odd_paths()
            # Another process may be creating the store at this moment (switching it to WAL).
            self._conn = when_unlocked(self._open, OPEN_TIMEOUT_S)
            self.opened = self.identity()  # the file this connection is on
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"budget store {self.path} cannot be used: {exc}") from None

    def identity(self) -> tuple[int, int]:
        """(device, inode) of the file the path names now (OSError when there is none)."""
        st = os.stat(self.path)
        return st.st_dev, st.st_ino

    def clock(self) -> float:
        """The store's time: this machine's wall clock (its processes share it).

        Example:
            >>> import tempfile, os
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     store = BudgetStore(os.path.join(tmp, "b.sqlite3"))
            ...     gap = abs(store.clock() - time.time()); store.close()
            >>> gap < 1.0
            True
        """
        return time.time()

    def skew(self) -> float:
        """Seconds to add to ``time.time()`` to get :meth:`clock`: none."""
        return 0.0

    def reopen(self) -> BudgetStore:
        """The same path opened anew (a fresh file after it was deleted or replaced)."""
        return BudgetStore(self.path)

    def patience(self, seconds: float) -> None:
        """How long a step waits for another process's lock before failing."""
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")

    def _refuse_odd_paths(self) -> None:
        """A directory, or a symlink to anything but an existing store, is not ours to use."""
        if self.path.is_dir():
            raise StoreError(f"budget store {self.path} is a directory; it is left as is")
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise StoreError(f"budget store {self.path} is read-only; it is left as is")
        if self.path.is_symlink():
            target = self.path.resolve()
            if not target.is_file() or target.stat().st_size == 0:
                raise StoreError(f"budget store {self.path} is a symlink to something that "
                                 "is not an omni_nb budget store; it is left as is")

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            self._check_foreign()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # the budget need not survive a crash
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if (app_id, version) != (APP_ID, VERSION):
                self._create(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _create(self, conn: sqlite3.Connection) -> None:
        """Make (or upgrade from version 1) the schema, in one transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the lock: another process may have made it meanwhile.
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != APP_ID and (app_id or tables):
                raise StoreError(f"{self.path} is another program's SQLite file")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APP_ID}")
            conn.execute(f"PRAGMA user_version={VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _check_foreign(self) -> None:
        """Refuse, without writing a byte, a file that is not this store."""
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # One read transaction: another process creating the store commits its tables and
            # its application id together, and must not be seen half-way.
            conn.execute("BEGIN")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.close()
        ours = app_id == APP_ID and version in (1, VERSION)
        if not ours and (app_id or version or tables):
            raise StoreError(f"{self.path} is not an omni_nb budget store; it is left as is")

    def _alive(self) -> None:
        try:
            same = self.identity() == self.opened
        except OSError:
            same = False
        if not same:
            raise StoreError(f"budget store {self.path} was deleted or replaced")

    def update(self, key: str, change: Callable[[Budget], T], *,
               delta: Counter[Entry] | None = None, sends: bool = True,
               forget_before: float | None = None) -> T:
        """Load ``key``'s budget, apply ``delta`` (sends added +n or gone -n) and ``change``,
        write back what changed, atomically. With ``sends=False`` the log is not read (the
        budget's ``sends`` is empty: a batched write, its cost independent of the log's
        length); ``forget_before`` then deletes the key's sends older than that.

        Raises :class:`StoreError` when the store is locked past the busy timeout, broken,
        deleted or replaced.
        """
        with self._lock:
            conn = self._conn
            try:
                self._alive()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = self._step(conn, key, change, delta or Counter(), sends,
                                        forget_before)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except (sqlite3.Error, OSError, KeyError, TypeError, ValueError,
                    IndexError) as exc:
                raise StoreError(f"budget store {self.path}: {exc}") from None
            return result

    @staticmethod
    def _step(conn: sqlite3.Connection, key: str, change: Callable[[Budget], T],
              delta: Counter[Entry], sends: bool, forget_before: float | None) -> T:
        row = conn.execute("SELECT state FROM keys WHERE key = ?", (key,)).fetchone()
        leases = {i: (int(n), float(per), float(exp), str(holder)) for i, n, per, exp, holder
                  in conn.execute("SELECT id, requests, per, expires, holder FROM leases "
                                  "WHERE key = ?", (key,))}
        rows = conn.execute("SELECT at, kind, n FROM buckets WHERE key = ? ORDER BY bucket",
                            (key,)).fetchall() if sends else None
        done = change_budget(row[0] if row else None, leases, rows, change, delta)
        if done.state is not None:
            conn.execute("INSERT OR REPLACE INTO keys (key, state) VALUES (?, ?)",
                         (key, done.state))
        if done.gone:
            conn.executemany("DELETE FROM leases WHERE key = ? AND id = ?",
                             [(key, i) for i in done.gone])
        if done.leases:
            conn.executemany("INSERT OR REPLACE INTO leases (key, id, requests, per, expires, "
                             "holder) VALUES (?, ?, ?, ?, ?, ?)",
                             [(key, i, *lease) for i, lease in done.leases.items()])
        _save_sends(conn, key, done.sends)
        if forget_before is not None:
            # By bucket, the table's order: no scan of the key's rows.
            conn.execute("DELETE FROM buckets WHERE key = ? AND bucket < ?",
                         (key, bucket_of(forget_before)))
        return done.result

    def snapshot(self, now: float | None = None) -> list[KeyState]:
        """Every key's state in the store (see :class:`KeyState`), by digest.

        Example:
            >>> import tempfile, os
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     store = BudgetStore(os.path.join(tmp, "b.sqlite3"))
            ...     store.update("k", lambda b: b.leases.update(a=(5, 2.0, 1e12, "pid 1")))
            ...     [state] = store.snapshot()
            ...     store.close()
            >>> state.key, state.leases[0].limit, state.leases[0].holder
            ('k', RateLimit(requests=5, per=2.0), 'pid 1')
        """
        at = time.time() if now is None else now
        with self._lock:
            names = [k for (k,) in self._conn.execute(
                "SELECT key FROM keys UNION SELECT key FROM leases "
                "UNION SELECT key FROM buckets ORDER BY 1")]
        return [key_state(name, self.update(name, lambda budget: budget), at)
                for name in names]

    def clear(self, key: str | None = None) -> int:
        """Drop a key's (or every key's) leases, pause, learned limit and sends; returns how
        many keys had any.

        Example:
            >>> import tempfile, os
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     store = BudgetStore(os.path.join(tmp, "b.sqlite3"))
            ...     store.update("k", lambda b: b.sends.append((1.0, 0)))
            ...     cleared = store.clear(), store.clear("k"), store.snapshot()
            ...     store.close()
            >>> cleared
            (1, 0, [])
        """
        with self._lock:
            conn = self._conn
            try:
                self._alive()
                conn.execute("BEGIN IMMEDIATE")
                names: set[str] = set()
                for select, delete in _CLEAR:
                    if key is None:
                        names.update(k for (k,) in conn.execute(select))
                        conn.execute(delete)
                    else:
                        names.update(k for (k,) in conn.execute(f"{select} WHERE key = ?",
                                                                (key,)))
                        conn.execute(f"{delete} WHERE key = ?", (key,))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"budget store {self.path}: {exc}") from None
        return len(names)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def apply_delta(entries: list[Entry], change: Counter[Entry]) -> None:
    """Apply +n / -n per entry to a loaded log; an entry gone is the one of its kind in its
    bucket (the store keeps a bucket's latest time, not each send's).

    Example:
        >>> entries = [(1.0, 0), (2.0, 0)]
        >>> apply_delta(entries, Counter({(1.0, 0): -1, (3.0, 0): 1})); entries
        [(2.0, 0), (3.0, 0)]
    """
    for (at, kind), n in change.items():
        for _ in range(-n):
            for i, (t, k) in enumerate(entries):
                if k == kind and bucket_of(t) == bucket_of(at):
                    del entries[i]
                    break
        entries.extend([(at, kind)] * max(0, n))
    entries.sort()


def _save_sends(conn: sqlite3.Connection, key: str, change: Counter[Entry]) -> None:
    """Apply +n / -n per entry to the key's buckets; a bucket at zero goes."""
    up = [(key, bucket_of(at), kind, at, n) for (at, kind), n in change.items() if n > 0]
    down = [(-n, key, bucket_of(at), kind) for (at, kind), n in change.items() if n < 0]
    if up:
        conn.executemany(_UPSERT, up)
    if down:
        conn.executemany("UPDATE buckets SET n = n - ? WHERE key = ? AND bucket = ? AND "
                         "kind = ?", down)
        conn.execute("DELETE FROM buckets WHERE key = ? AND n <= 0", (key,))

