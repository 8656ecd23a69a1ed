"""The budget store: one SQLite file every process of the user shares, one budget per key.

Schema (``PRAGMA application_id`` = :data:`APP_ID`, ``user_version`` = 1)::

    keys(key TEXT PRIMARY KEY, state TEXT)        -- JSON: pause, widening, learned, probe
    sends(key TEXT, at REAL, kind INTEGER)         -- the key's send log (wall-clock seconds)

``key`` is a digest of (API root, token fingerprint): the store never holds the token. Each
change is one ``BEGIN IMMEDIATE`` transaction (atomic across processes); sends older than the
longest window are deleted as they age, so a process killed mid-batch holds nothing beyond
the window. Wall-clock times, because monotonic clocks are not comparable across processes
on every OS. A file that is not this store (another program's SQLite file, or not SQLite at
all) is refused and never written to; the caller then falls back to a per-process budget.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .._sqlite import when_unlocked
from .log import Budget

__all__ = ["APP_ID", "BudgetStore", "StoreError", "key_of"]

APP_ID = 0x6F6E6262  # "onbb"
VERSION = 1
BUSY_TIMEOUT_S = 1.0  # a store locked longer than this is given up on, never waited for
OPEN_TIMEOUT_S = 5.0  # opening waits this long for another process creating the store
T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sends (key TEXT NOT NULL, at REAL NOT NULL, "
    "kind INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sends_key_at ON sends (key, at)",
)


class StoreError(Exception):
    """The budget store cannot be used (foreign, corrupt, locked, unwritable)."""


def key_of(api_root: str, token_fingerprint: str) -> str:
    """The store's key of one API key: a digest, never the token.

    Example:
        >>> len(key_of("https://acme.omniapp.co/api", "0123456789abcdef"))
        32
    """
    return hashlib.sha256(f"{api_root}\n{token_fingerprint}".encode()).hexdigest()[:32]


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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            # Another process may be creating the store at this moment (switching it to WAL).
            self._conn = when_unlocked(self._open, OPEN_TIMEOUT_S)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"budget store {self.path} cannot be used: {exc}") from None

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            self._check_foreign()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # the budget need not survive a crash
            conn.execute("BEGIN IMMEDIATE")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != APP_ID and (app_id or tables):
                raise StoreError(f"{self.path} is another program's SQLite file")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APP_ID}")
            conn.execute(f"PRAGMA user_version={VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_foreign(self) -> None:
        """Refuse, without writing a byte, a file that is not this store."""
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.close()
        if (app_id, version) != (APP_ID, VERSION) and (app_id or version or tables):
            raise StoreError(f"{self.path} is not an omni_nb budget store; it is left as is")

    def update(self, key: str, change: Callable[[Budget], T]) -> T:
        """Load ``key``'s budget, apply ``change``, write back what changed, atomically.

        Raises :class:`StoreError` when the store is locked past the busy timeout or broken.
        """
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute("SELECT state FROM keys WHERE key = ?", (key,)).fetchone()
                    rows = conn.execute(
                        "SELECT rowid, at, kind FROM sends WHERE key = ? ORDER BY at", (key,)
                    ).fetchall()
                    sends = [(float(at), int(kind)) for _, at, kind in rows]
                    budget = (Budget.from_scalars(json.loads(row[0]), list(sends)) if row
                              else Budget(sends=list(sends)))
                    before_state = budget.scalars()
                    result = change(budget)
                    self._save(conn, key, budget, row is None, before_state, rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except (sqlite3.Error, KeyError, TypeError, ValueError, IndexError) as exc:
                raise StoreError(f"budget store {self.path}: {exc}") from None
            return result

    @staticmethod
    def _save(conn: sqlite3.Connection, key: str, budget: Budget, new: bool,
              before_state: dict[str, object], rows: list[tuple[int, float, int]]) -> None:
        state = budget.scalars()
        if new or state != before_state:
            conn.execute("INSERT OR REPLACE INTO keys (key, state) VALUES (?, ?)",
                         (key, json.dumps(state)))
        # Multisets: two sends may share a time (a coarse clock); rows are deleted by rowid.
        after = Counter(budget.sends)
        gone: list[tuple[int]] = []
        for rowid, at, kind in rows:
            entry = (float(at), int(kind))
            if after[entry] > 0:
                after[entry] -= 1
            else:
                gone.append((rowid,))
        if gone:
            conn.executemany("DELETE FROM sends WHERE rowid = ?", gone)
        added = [(key, at, kind) for (at, kind), n in after.items() for _ in range(n)]
        if added:
            conn.executemany("INSERT INTO sends (key, at, kind) VALUES (?, ?, ?)", added)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
