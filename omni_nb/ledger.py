"""The results ledger: every call's row in SQLite, committed as it arrives.

WAL mode with ``synchronous=NORMAL``: a committed row survives the process being killed
(``kill -9`` of a kernel); only an OS crash or power loss can take the last commits. Two
kernels can write at once (WAL lets readers and one writer overlap; the busy timeout makes a
second writer wait its turn instead of failing).

Location: ``ledger=`` argument, else ``OMNI_NB_LEDGER`` (a path, or ``off`` for memory only),
else ``ledger.sqlite3`` in the per-user data directory. The token is never stored: a row holds
the API root, never headers.

Example:
    >>> import tempfile, os
    >>> led = open_ledger(os.path.join(tempfile.mkdtemp(), "l.sqlite3"))
    >>> led.record([Row("doc-1", None, "d1", "ok", 200, "", 1, 0.1, 0, "https://a/api", "r1")])
    >>> list(led.results()["draft_id"])
    ['d1']
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import default_ledger_path, ledger_setting
from .rows import Row, to_us

if TYPE_CHECKING:
    import pandas as pd

    from .client import CallOutcome

__all__ = ["Ledger", "open_ledger", "results"]


#: The columns a row is stored in, in this order (``rows()`` returns tuples of them).
_COLUMNS = (
    "document_id", "branch_id", "draft_id", "status", "http_status", "message", "attempts",
    "elapsed_s", "requested_at_us", "api_root", "run_id", "queued_s", "key", "from_ledger",
    "action",
)
#: Schema versions (``PRAGMA user_version``). Changes are additive only (columns added with a
#: default, none removed or renamed), so an older omni_nb keeps reading and writing a newer
#: ledger: it names its columns and the new ones take their defaults.
#: 0: the first schema. 1: ``queued_s`` and ``key``. 2: ``action`` (``create``, ``discard``;
#: older rows were all creates) and ``from_ledger`` (a row ``resume=True`` copied into its run).
SCHEMA_VERSION = 2
_ADDED = (
    ("queued_s", "REAL NOT NULL DEFAULT 0"),
    ("key", "TEXT"),
    ("action", "TEXT NOT NULL DEFAULT 'create'"),
    ("from_ledger", "INTEGER NOT NULL DEFAULT 0"),
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    document_id TEXT NOT NULL,
    branch_id TEXT,
    draft_id TEXT,
    status TEXT NOT NULL,
    http_status INTEGER,
    message TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL,
    elapsed_s REAL NOT NULL,
    requested_at_us INTEGER NOT NULL,
    api_root TEXT NOT NULL,
    run_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_run ON calls (run_id);
CREATE INDEX IF NOT EXISTS calls_when ON calls (requested_at_us);
CREATE INDEX IF NOT EXISTS calls_ok ON calls (api_root, document_id, branch_id)
    WHERE status = 'ok';
"""
_INSERT = f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _when_unlocked(step: Callable[[], object], timeout_s: float) -> None:
    """Run ``step``, retrying while another process holds the database.

    Switching a new file to WAL answers "database is locked" at once, without waiting on the
    busy timeout, when a second kernel opens the same new ledger at the same moment.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class Ledger:
    """A SQLite results store; ``path=None`` keeps it in memory for this process only.

    Thread-safe: one connection per ledger, used under a lock (rows arrive from the batch's
    event-loop thread while a notebook cell may be reading).

    Example:
        >>> led = Ledger(None)
        >>> led.path is None
        True
    """

    def __init__(self, path: Path | None, *, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            ":memory:" if path is None else str(path),
            timeout=busy_timeout_s,
            check_same_thread=False,
            isolation_level=None,  # explicit transactions below; every record() commits
        )
        with self._lock:
            if path is not None:
                _when_unlocked(lambda: self._conn.execute("PRAGMA journal_mode=WAL"),
                               busy_timeout_s)
                self._conn.execute("PRAGMA synchronous=NORMAL")
            _when_unlocked(lambda: self._conn.executescript(_SCHEMA), busy_timeout_s)
            _when_unlocked(self._migrate, busy_timeout_s)

    def __repr__(self) -> str:
        return f"Ledger({str(self.path) if self.path else 'memory'!r})"

    def _migrate(self) -> None:
        """Add the columns a ledger made by an older omni_nb lacks, in place, and stamp the
        schema version; in one transaction, so two kernels opening it at once agree."""
        conn = self._conn
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            present = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
            for name, decl in _ADDED:
                if name not in present:
                    conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {decl}")
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def record(self, rows: Iterable[Row]) -> None:
        """Append rows and commit before returning (so a kill after this loses nothing)."""
        values = [tuple(getattr(r, c) for c in _COLUMNS) for r in rows]
        if not values:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(_INSERT, values)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def record_outcome(self, outcome: CallOutcome) -> None:
        """An ``on_result`` hook for :class:`omni_nb.OmniClient`: logs each call.

        A successful call that brought no draft back is a discard (a create's success always
        carries one); the outcome does not say which call a failure was, so a failed discard
        reads as a failed create (resume and undo only look at ``ok`` rows).

        Example:
            >>> # OmniClient(on_result=open_ledger().record_outcome)
        """
        row = Row.from_outcome(outcome, run_id="client")
        if outcome.error is None and outcome.draft is None:
            row.action = "discard"
        self.record([row])

    def ok_rows(
        self, api_root: str, pairs: Sequence[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], Row]:
        """The latest ``ok`` row of each pair for this API root, whatever its ``action``
        (for ``resume=True``: the caller copies it only when it did the same thing)."""
        wanted = set(pairs)
        found: dict[tuple[str, str | None], Row] = {}
        with self._lock:
            cursor = self._conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM calls WHERE status = 'ok' AND api_root = ? "
                "ORDER BY id",
                (api_root,),
            )
            for values in cursor:
                key = (values[0], values[1])
                if key in wanted:
                    found[key] = _row(values)
        return found

    def latest_run(self) -> str | None:
        """The run id of the newest batch (single client calls aside), or None.

        Example:
            >>> Ledger(None).latest_run() is None
            True
        """
        with self._lock:
            found = self._conn.execute(
                "SELECT run_id FROM calls WHERE run_id != 'client' ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if found is None else str(found[0])

    def run_rows(self, run_id: str) -> list[Row]:
        """Every row of one run, in arrival order (empty for a run the ledger does not know).

        Example:
            >>> Ledger(None).run_rows("nope")
            []
        """
        return [_row(values) for values in self.rows(run_id=run_id)]

    def first_sends(
        self, api_root: str, drafts: Iterable[tuple[str, str | None, str]]
    ) -> dict[tuple[str, str | None, str], int]:
        """For each (document, branch, draft id): the first send (microseconds, UTC) of the
        earliest ``ok`` create that got that draft back, when the ledger has one.

        Example:
            >>> Ledger(None).first_sends("https://a/api", [("doc-1", None, "d1")])
            {}
        """
        wanted = set(drafts)
        found: dict[tuple[str, str | None, str], int] = {}
        if not wanted:
            return found
        with self._lock:
            cursor = self._conn.execute(
                "SELECT document_id, branch_id, draft_id, MIN(requested_at_us) FROM calls "
                "WHERE status = 'ok' AND action = 'create' AND api_root = ? "
                "AND draft_id IS NOT NULL GROUP BY document_id, branch_id, draft_id",
                (api_root,),
            )
            for doc, branch, draft, first in cursor:
                if (doc, branch, draft) in wanted:
                    found[(doc, branch, draft)] = int(first)
        return found

    def rows(
        self, run_id: str | None = None, since: datetime | None = None,
        api_root: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Raw rows: tuples of :data:`_COLUMNS` (``Row``'s first eleven fields, then
        ``queued_s``, ``key``, ``from_ledger`` and ``action``), in arrival order.

        Example:
            >>> Ledger(None).rows(run_id="nope")
            []
        """
        sql, args = _select(run_id, since, api_root)
        with self._lock, _gc_paused():
            return self._conn.execute(sql, args).fetchall()

    def results(
        self, run_id: str | None = None, since: datetime | None = None,
        api_root: str | None = None,
    ) -> pd.DataFrame:
        """The ledger's rows as a results table (same columns and dtypes as a batch's), in
        arrival order.

        Read in chunks that become the table's columns as they come (see
        :func:`omni_nb.table.frame_from_chunks`): a million rows take less time than
        ``pandas.read_sql_query`` of the same rows and under half its memory
        (``benchmarks/bench_ledger.py``).

        Example:
            >>> Ledger(None).results().shape[0]
            0
        """
        from .table import frame_from_chunks

        sql, args = _select(run_id, since, api_root)
        # The lock covers the build: the chunks come from this connection's cursor.
        with self._lock, _gc_paused():
            cursor = self._conn.execute(sql, args)
            return frame_from_chunks(iter(lambda: cursor.fetchmany(_CHUNK_ROWS), []))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _row(values: Sequence[Any]) -> Row:
    """A Row from a tuple of :data:`_COLUMNS`."""
    row = Row(**dict(zip(_COLUMNS, values, strict=True)))
    row.from_ledger = bool(row.from_ledger)  # stored as 0/1
    return row


#: Rows read per ``fetchmany`` by :meth:`Ledger.results`. Small on purpose: a chunk's new
#: objects (about half a megabyte) are still in the CPU's cache when they are turned into
#: columns; 50,000-row chunks made a million-row read a third slower. The per-chunk work is
#: a few calls per column, cheap against a thousand rows.
_CHUNK_ROWS = 1_000


def _select(
    run_id: str | None, since: datetime | None, api_root: str | None
) -> tuple[str, list[object]]:
    """The query for :meth:`Ledger.rows` and :meth:`Ledger.results`: the filters given, in
    arrival (``id``) order.

    With ``since``, the order is written ``+id``: plain ``ORDER BY id`` lets SQLite read the
    table in rowid order to skip sorting, which scans every row for a window of the last few;
    ``+id`` is not the rowid to the planner, so it finds the window through ``calls_when``
    and sorts the few rows it found. Without ``since``, ``ORDER BY id`` is what we want: the
    whole table in rowid order, or one run through ``calls_run`` (already in rowid order).
    ``api_root`` alone has no index (a ledger holds one or two API roots, so it would not
    narrow the read): it is checked on the rows the other filters select.

    Example:
        >>> _select(None, None, "https://a/api")[0].endswith("WHERE api_root = ? ORDER BY id")
        True
    """
    where: list[str] = []
    args: list[object] = []
    if run_id is not None:
        where.append("run_id = ?")
        args.append(run_id)
    if since is not None:
        where.append("requested_at_us >= ?")
        args.append(to_us(since))
    if api_root is not None:
        where.append("api_root = ?")
        args.append(api_root)
    sql = f"SELECT {', '.join(_COLUMNS)} FROM calls"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + (" ORDER BY +id" if since is not None else " ORDER BY id"), args


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while rows are read.

    Every row arrives as a new tuple, a container the collector tracks: reading a million of
    them sets off collection after collection, each walking every container the process
    holds (a third of the read's time with a small heap; more in a full notebook). Reading
    makes no cycles, so nothing is left for the collector to find; it resumes afterwards
    (unless it was off already).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_shared: dict[str, Ledger] = {}
_shared_lock = threading.Lock()


def open_ledger(ledger: str | Path | Ledger | None = None) -> Ledger:
    """The ledger to use: an object as is, a path, ``"off"``, or (None) the configured one.

    Ledgers are shared per path in a process (one connection each), so every call from the
    client, batch, magic and widget lands in the same place.

    Example:
        >>> open_ledger("off").path is None
        True
    """
    if isinstance(ledger, Ledger):
        return ledger
    setting = str(ledger) if ledger is not None else ledger_setting()
    if setting is not None and setting.strip().lower() in ("off", "memory", ":memory:"):
        key = ":memory:"
        path = None
    else:
        path = Path(setting).expanduser() if setting else default_ledger_path()
        key = str(path.resolve())
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = Ledger(path)
            _shared[key] = found
        return found


def results(
    run_id: str | None = None,
    since: datetime | str | None = None,
    api_root: str | None = None,
    *,
    ledger: str | Path | Ledger | None = None,
) -> pd.DataFrame:
    """Read results back from the ledger, for later analysis.

    ``since`` is a datetime or an ISO string (taken as UTC when it has no zone); it reads
    only its window, through an index, so a recent window of a large ledger comes back in
    milliseconds.

    Example:
        >>> df = results(ledger="off")
        >>> list(df.columns)[:4]
        ['document_id', 'branch_id', 'draft_id', 'status']
    """
    if isinstance(since, str):
        since = datetime.fromisoformat(since)
    if since is not None and since.tzinfo is None:
        from datetime import UTC

        since = since.replace(tzinfo=UTC)
    return open_ledger(ledger).results(run_id, since, api_root)
