"""The results ledger: every call's row in SQLite, committed as it arrives.

WAL mode with ``synchronous=NORMAL``: a committed row survives the process being killed
(``kill -9`` of a kernel); only an OS crash or power loss can take the last commits. Two
kernels can write at once (WAL lets readers and one writer overlap; the busy timeout makes a
second writer wait its turn instead of failing).

Location: ``ledger=`` argument, else ``OMNI_NB_LEDGER`` (a path, or ``off`` for memory only),
else ``ledger.sqlite3`` in the per-user data directory. The token is never stored: a row holds
the API root, never headers.

Opening checks the file before writing anything to it: an omni_nb ledger carries SQLite's
``application_id`` :data:`APPLICATION_ID`; one written before the id existed is recognised by
its exact tables and columns. Anything else (other bytes, another program's database, a place
that cannot be written) is a :class:`~omni_nb.errors.LedgerError` naming the path and the ways
out, and the file is left as it was. There is no silent fallback to memory, not even for the
default location: the ledger is what keeps a draft's id when the kernel dies, what
``resume=True`` and undo read, so losing it is the user's choice (``OMNI_NB_LEDGER=off``).

Example:
    >>> import tempfile, os
    >>> led = open_ledger(os.path.join(tempfile.mkdtemp(), "l.sqlite3"))
    >>> led.record([Row("doc-1", None, "d1", "ok", 200, "", 1, 0.1, 0, "https://a/api", "r1")])
    >>> list(led.results()["draft_id"])
    ['d1']
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._sqlite import when_unlocked
from .config import Settings, resolve_ledger
from .errors import TABLE_AT, LedgerError, LedgerWarning
from .rows import STORED_FIELDS, Row, to_us

if TYPE_CHECKING:
    import pandas as pd

    from .client import CallOutcome

__all__ = ["APPLICATION_ID", "CREATE_FIELDS", "Ledger", "open_ledger", "reading", "results"]


#: Schema versions (``PRAGMA user_version``). Changes are additive only (columns added with a
#: default, none removed or renamed), so an older omni_nb keeps reading and writing a newer
#: ledger: it names its columns and the new ones take their defaults.
#: 0: the first schema. 1: ``queued_s`` and ``key``. 2: ``action`` (``create``, ``discard``;
#: older rows were all creates) and ``from_ledger`` (a row ``resume=True`` copied into its run).
#: 3: ``evidence``: the call's attempts (send to answer) and the clock bound measured with
#: them (:class:`omni_nb.evidence.Evidence` as JSON; NULL in rows of older versions), which
#: an undo reads to tell the run's drafts from anyone else's.
SCHEMA_VERSION = 3
_ADDED = (
    ("queued_s", "REAL NOT NULL DEFAULT 0"),
    ("key", "TEXT"),
    ("action", "TEXT NOT NULL DEFAULT 'create'"),
    ("from_ledger", "INTEGER NOT NULL DEFAULT 0"),
    ("evidence", "TEXT"),
)
#: A ledger from before the application id has user_version 0 to 2 and at most the first
#: :data:`_LEGACY` added columns: every later version stamps the id.
_LEGACY_VERSION, _LEGACY = 2, 4
#: The v0 schema, run in the transaction that stamps the file (``IF NOT EXISTS``: a legacy
#: ledger keeps its table and gains what it lacks).
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS calls (
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
)""",
    "CREATE INDEX IF NOT EXISTS calls_run ON calls (run_id)",
    "CREATE INDEX IF NOT EXISTS calls_when ON calls (requested_at_us)",
    "CREATE INDEX IF NOT EXISTS calls_ok ON calls (api_root, document_id, branch_id) "
    "WHERE status = 'ok'",
)
#: SQLite's ``application_id`` (header offset 68) of an omni_nb ledger: ``b"OmNb"`` read as a
#: big-endian 32-bit integer, 0x4F6D4E62. Stamped when a ledger is made or first opened by
#: this version; a file with another non-zero id belongs to another program.
APPLICATION_ID = int.from_bytes(b"OmNb", "big")
_MAGIC = b"SQLite format 3\x00"
#: What a ledger from before :data:`APPLICATION_ID` holds: the v0 table's columns (plus any
#: of :data:`_ADDED`) and these indexes, nothing else; ``user_version`` 0 to 2.
_V0_COLUMNS = frozenset(("id", *STORED_FIELDS[:11]))
_INDEXES = frozenset(("calls_run", "calls_when", "calls_ok"))
_WAYS_OUT = ("use another path (ledger=PATH or OMNI_NB_LEDGER=PATH), or set "
             "OMNI_NB_LEDGER=off to keep results in memory only")
#: The stored columns as SQL lists them (every read and the insert use this order).
_COLUMN_LIST = ", ".join(STORED_FIELDS)
_INSERT = (f"INSERT INTO calls ({_COLUMN_LIST}, evidence) "
           f"VALUES ({', '.join('?' * (len(STORED_FIELDS) + 1))})")
#: What an undo reads of a create row: where, what, its status and timing, and its evidence.
CREATE_FIELDS = ("document_id", "branch_id", "draft_id", "status", "attempts", "elapsed_s",
                 "requested_at_us", "key", "run_id", "from_ledger", "evidence")


def _refused(path: Path, problem: str) -> LedgerError:
    return LedgerError(f"ledger {path}: {problem}; {_WAYS_OUT}", path=str(path))


def _names(names: Iterable[str], most: int = 6) -> str:
    names = sorted(names)
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _check_file(path: Path) -> None:
    """Refuse what is at ``path`` unless it is ours, empty or absent, by reading only (the
    raw header, then a ``mode=ro`` connection): nothing is written to a file, no PRAGMA
    switches its journal, before it is known to be a ledger."""
    if path.is_dir():
        raise _refused(path, "a directory, not a file")
    try:
        with path.open("rb") as file:
            head = file.read(100)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there: ours to make (a parent that is a file fails when made)
    except OSError as exc:
        raise _refused(path, f"cannot be read ({exc.strerror or exc})") from None
    if not head:
        return  # an empty file: ours to fill
    if not head.startswith(_MAGIC):
        raise _refused(path, "not an SQLite database, so not an omni_nb ledger (left as it is)")
    problem = _foreign(path)
    if problem is not None:
        raise _refused(path, f"{problem}, not an omni_nb ledger (left as it is)")


def _foreign(path: Path) -> str | None:
    """Why this SQLite file is not a ledger, or None when it is one (or is empty).

    Read through a read-only connection: the header alone is not enough, since a file in WAL
    mode keeps its newest header (the application id a ledger was just stamped with) in the
    ``-wal`` file until a checkpoint. With no ``-wal`` beside it the file is complete, and
    ``immutable`` reads it without the ``-shm`` and ``-wal`` a WAL-mode reader would leave
    behind, so another program's directory is not touched either."""
    wal = Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri if wal else f"{uri}&immutable=1", uri=True)
        if wal and not _opens(conn):  # a -wal with no -shm on read-only media: the file alone
            conn.close()
            conn = sqlite3.connect(f"{uri}&immutable=1", uri=True)
        try:
            app_id, version = (conn.execute(f"PRAGMA {name}").fetchone()[0]
                               for name in ("application_id", "user_version"))
            objects = conn.execute(
                "SELECT type, name, tbl_name FROM sqlite_master "
                "WHERE name NOT LIKE 'sqlite^_%' ESCAPE '^'").fetchall()
            columns = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"an SQLite file omni_nb cannot read ({exc})"
    if app_id == APPLICATION_ID:
        return None  # ours, whatever its version: migrations are additive
    if app_id != 0:
        return f"another program's SQLite database (application_id {app_id:#010x})"
    if not objects and version == 0:
        return None  # an empty database: nothing of anyone's to harm
    return _legacy_problem(objects, columns, version)


def _opens(conn: sqlite3.Connection) -> bool:
    """Whether a read-only connection can read (SQLite opens lazily, at the first read)."""
    try:
        conn.execute("PRAGMA application_id").fetchone()
    except sqlite3.Error:
        return False
    return True


def _legacy_problem(objects: list[tuple[str, str, str]], columns: set[str],
                    version: int) -> str | None:
    """Why a file without our application id is not a ledger from before it, or None."""
    if not objects:
        return f"another program's SQLite database (empty, user_version {version})"
    strangers = [name for kind, name, table in objects
                 if not (kind == "table" and name == "calls")
                 and not (kind == "index" and name in _INDEXES and table == "calls")]
    if strangers:
        return f"another program's SQLite database (it holds {_names(strangers)})"
    if not _V0_COLUMNS <= columns <= _V0_COLUMNS | {name for name, _ in _ADDED[:_LEGACY]}:
        return f"another program's SQLite database (its calls table has {_names(columns)})"
    if not 0 <= version <= _LEGACY_VERSION:
        return f"another program's SQLite database (user_version {version})"
    return None


def _check_writable(path: Path) -> None:
    """Make the directory if needed; refuse a place where SQLite could not write (the file,
    its ``-wal`` and ``-shm`` beside it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _refused(path, f"its directory cannot be made ({exc.strerror or exc})") from None
    for target in (path.parent, path):
        if target.exists() and not os.access(target, os.W_OK):
            raise _refused(path, f"cannot be written ({target} is read-only)")


def _writable(path: Path) -> bool:
    """Whether a ledger at ``path`` could be written: the file (if there) and its directory.
    ``os.access`` answers for the media too (a read-only mount is read-only for root)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:  # made on opening, if it can be
        parent = parent.parent
    return all(os.access(target, os.W_OK) for target in (path, parent) if target.exists())


def _read_only(path: Path) -> tuple[sqlite3.Connection, str]:
    """A read-only connection to the ledger at ``path`` and the column list to select.

    Nothing is written: ``mode=ro``, no journal switch, no migration. ``immutable`` only
    where no ``-wal`` file exists (then the file is complete, and no ``-shm`` is made
    beside it); with a ``-wal``, SQLite reads it through the ``-shm``. Where there is no
    ``-shm`` and none can be made (read-only media), the main file is read alone, with a
    :class:`~omni_nb.errors.LedgerWarning`: the rows of the ``-wal`` are not in it. A ledger of
    an older schema reads its missing columns as their defaults."""
    _check_file(path)
    wal = Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri if wal else f"{uri}&immutable=1", uri=True,
                           check_same_thread=False)
    if wal and not _opens(conn):
        conn.close()
        warnings.warn(LedgerWarning(
            f"ledger {path}: read without its -wal file (there is no -shm beside it and none "
            "can be made here): its newest rows may be missing"), stacklevel=4)
        conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, check_same_thread=False)
    try:
        present = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    except sqlite3.Error as exc:
        conn.close()
        raise _refused(path, f"cannot be read ({exc})") from None
    defaults = {name: decl.rpartition("DEFAULT ")[2] if "DEFAULT" in decl else "NULL"
                for name, decl in _ADDED}
    columns = ", ".join(name if name in present else f"{defaults[name]} AS {name}"
                        for name in STORED_FIELDS)
    return conn, columns


def _storage_failure(exc: BaseException) -> bool:
    """A failure of the place (full, I/O error, locked past the timeout, read-only, corrupt),
    as opposed to a row the schema refuses (a bug, raised as is)."""
    return type(exc) in (sqlite3.OperationalError, sqlite3.DatabaseError) or isinstance(
        exc, OSError)


class Ledger:
    """A SQLite results store; ``path=None`` keeps it in memory for this process only;
    ``read_only=True`` reads an existing file and never writes to it (see :func:`reading`).

    Thread-safe: one connection per ledger, used under a lock (rows arrive from the batch's
    event-loop thread while a notebook cell may be reading).

    Example:
        >>> led = Ledger(None)
        >>> led.path is None
        True
    """

    def __init__(self, path: Path | None, *, busy_timeout_s: float = 30.0,
                 read_only: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        #: What a read selects: the stored fields (a read-only older ledger: their defaults).
        self._columns = _COLUMN_LIST
        if read_only and path is not None:  # see reading(): writes fail, nothing is tried
            self._conn, self._columns = _read_only(path)
            return
        if path is not None:
            _check_file(path)  # before anything is written, the directory included
            _check_writable(path)
        try:
            self._conn = sqlite3.connect(
                ":memory:" if path is None else str(path),
                timeout=busy_timeout_s,
                check_same_thread=False,
                isolation_level=None,  # explicit transactions below; every record() commits
            )
        except sqlite3.Error as exc:
            raise _refused(Path(str(path)), f"cannot be opened ({exc})") from None
        try:
            with self._lock:
                if path is not None:
                    when_unlocked(lambda: self._conn.execute("PRAGMA journal_mode=WAL"),
                                   busy_timeout_s)
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                when_unlocked(self._migrate, busy_timeout_s)
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, sqlite3.Error) and path is not None:
                raise _refused(path, f"cannot be written ({exc})") from None
            raise

    def __repr__(self) -> str:
        return f"Ledger({str(self.path) if self.path else 'memory'!r})"

    def _migrate(self) -> None:
        """Make the schema, add the columns a ledger made by an older omni_nb lacks, and stamp
        the application id and schema version; in one write transaction, so two kernels
        opening one new file agree, and so a place that cannot be written fails here, at
        opening, rather than at the first row."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            app_id, version = (conn.execute(f"PRAGMA {name}").fetchone()[0]
                               for name in ("application_id", "user_version"))
            if app_id not in (0, APPLICATION_ID):  # swapped in since it was checked
                raise _refused(Path(str(self.path)), "another program's SQLite database")
            if app_id != APPLICATION_ID or version < SCHEMA_VERSION:
                for statement in _SCHEMA:
                    conn.execute(statement)
                present = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
                for name, decl in _ADDED:
                    if name not in present:
                        conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {decl}")
                if version < SCHEMA_VERSION:  # a newer omni_nb's ledger is not downgraded
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except BaseException:
            self._rollback()
            raise
        conn.execute("COMMIT")

    def _rollback(self) -> None:
        # SQLite may have rolled back already (a full disk does); a failing ROLLBACK must
        # not hide the error that led here.
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def record(self, rows: Iterable[Row]) -> None:
        """Append rows and commit before returning (so a kill after this loses nothing).

        One transaction: on failure none of the rows is stored. A failure of the place (disk
        full, I/O error, locked past the busy timeout) is a
        :class:`~omni_nb.errors.LedgerError`; a row the schema refuses raises SQLite's error.

        Example:
            >>> led = Ledger(None)
            >>> led.record([Row("doc-1", None, "d1", "ok", 200, "", 1, 0.1, 0, "https://a/api",
            ...                 "r1")])
            >>> len(led.rows())
            1
        """
        values = [(*(getattr(r, c) for c in STORED_FIELDS),
                   None if r.evidence is None else r.evidence.text()) for r in rows]
        if not values:
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(_INSERT, values)
                self._conn.execute("COMMIT")  # inside the try: a full disk fails here too
            except BaseException as exc:
                self._rollback()
                if _storage_failure(exc):
                    raise LedgerError(f"ledger {_place(self.path)}: a write failed ({exc}); "
                                      f"{_WAYS_OUT}", path=_path_text(self.path)) from exc
                raise


    def record_outcome(self, outcome: CallOutcome) -> None:
        """An ``on_result`` hook for :class:`omni_nb.OmniClient`: logs each call.

        A call whose row cannot be written is not an error of the call: the hook issues a
        :class:`~omni_nb.errors.LedgerWarning` naming the draft id instead of raising, so the
        caller still gets its ``Draft``.

        The row's ``action`` is the call's own (:attr:`CallOutcome.action`), failed or not.

        Example:
            >>> from omni_nb import OmniClient, sandbox
            >>> led = Ledger(None)
            >>> with sandbox.serve() as sb, OmniClient(sb.base_url, sb.token,
            ...                                        on_result=led.record_outcome) as c:
            ...     c.discard_draft_outcome("doc-0001").error.status_code
            404
            >>> led.results()[["status", "action"]].values.tolist()
            [['not_found', 'discard']]
        """
        row = Row.from_outcome(outcome, run_id="client")
        try:
            self.record([row])
        except LedgerError as exc:
            # Never raise from here: the client would lose the Draft it is about to return,
            # and a draft that exists on the server with no id anywhere is the worst outcome.
            warnings.warn(LedgerWarning(_not_recorded(row, _place(self.path), exc)), stacklevel=2)

    def ok_rows(
        self, api_root: str, pairs: Sequence[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], Row]:
        """The latest ``ok`` row of each pair for this API root, whatever its ``action``
        (for ``resume=True``: the caller copies it only when it did the same thing)."""
        wanted = set(pairs)
        found: dict[tuple[str, str | None], Row] = {}
        with self._lock:
            cursor = self._conn.execute(
                f"SELECT {self._columns} FROM calls WHERE status = 'ok' AND api_root = ? "
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

    def creates(
        self, api_root: str, pairs: Iterable[tuple[str, str | None]],
    ) -> list[tuple[Any, ...]]:
        """Every create row of these (document, branch) pairs sent to ``api_root`` that an
        undo may weigh: ``ok`` ones with a draft id and ``cancelled`` ones with evidence
        (a request in flight when its run stopped), as tuples of :data:`CREATE_FIELDS`, in
        arrival order; ``evidence`` is None in rows of an older omni_nb.

        Example:
            >>> led = Ledger(None)
            >>> led.record([Row("doc-1", None, "d1", "ok", 200, "", 1, 0.1, 5, "https://a/api",
            ...                 "r1")])
            >>> led.creates("https://a/api", [("doc-1", None)])[0][:4]
            ('doc-1', None, 'd1', 'ok')
        """
        wanted = set(pairs)
        if not wanted:
            return []
        evidence = "evidence" if self._knows_evidence() else "NULL"
        fields = ", ".join(CREATE_FIELDS[:-1])
        with self._lock:
            cursor = self._conn.execute(
                f"SELECT {fields}, {evidence} FROM calls WHERE action = 'create' AND "
                "api_root = ? AND ((status = 'ok' AND draft_id IS NOT NULL) OR "
                f"(status = 'cancelled' AND {evidence} IS NOT NULL)) ORDER BY id",
                (api_root,),
            )
            return [values for values in cursor if (values[0], values[1]) in wanted]

    def run_evidence(self, run_id: str) -> list[str]:
        """The evidence (JSON text) of every row of a run that has some: the run's clock
        bound is the intersection of theirs.

        Example:
            >>> Ledger(None).run_evidence("r1")
            []
        """
        if not self._knows_evidence():
            return []
        with self._lock:
            return [text for (text,) in self._conn.execute(
                "SELECT evidence FROM calls WHERE run_id = ? AND evidence IS NOT NULL",
                (run_id,))]

    def _knows_evidence(self) -> bool:
        """Whether the calls table has the evidence column (a read-only older ledger has
        not: it was never migrated)."""
        with self._lock:
            return any(row[1] == "evidence"
                       for row in self._conn.execute("PRAGMA table_info(calls)"))

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
        """Raw rows: tuples of :data:`~omni_nb.rows.STORED_FIELDS` (``Row``'s first eleven
        fields, then ``queued_s``, ``key``, ``from_ledger`` and ``action``), in arrival order.

        Example:
            >>> Ledger(None).rows(run_id="nope")
            []
        """
        sql, args = _select(run_id, since, api_root, self._columns)
        with self._lock, _gc_paused():
            return self._conn.execute(sql, args).fetchall()

    def results(
        self, run_id: str | None = None, since: datetime | None = None,
        api_root: str | None = None,
    ) -> pd.DataFrame:
        """The ledger's rows as a results table (same columns and dtypes as a batch's), in
        arrival order: oldest first, so ``.tail()`` holds the newest rows (``omni-nb results``
        lists the newest first, and says so).

        Read in chunks that become the table's columns as they come (see
        :func:`omni_nb.table.frame_from_chunks`): a million rows take less time than
        ``pandas.read_sql_query`` of the same rows and under half its memory
        (``benchmarks/bench_ledger.py``).

        Example:
            >>> Ledger(None).results().shape[0]
            0
        """
        from .table import frame_from_chunks

        sql, args = _select(run_id, since, api_root, self._columns)
        # The lock covers the build: the chunks come from this connection's cursor.
        with self._lock, _gc_paused():
            cursor = self._conn.execute(sql, args)
            return frame_from_chunks(iter(lambda: cursor.fetchmany(_CHUNK_ROWS), []))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def _place(path: Path | None) -> str:
    """Where the ledger is, as messages say it."""
    return str(path) if path is not None else "in memory"


def _path_text(path: Path | None) -> str | None:
    """The ledger's path as a LedgerError carries it (None: the memory ledger)."""
    return None if path is None else str(path)


def failure_cause(exc: BaseException) -> BaseException:
    """What went wrong underneath a failed write: SQLite's or the OS's error that a
    :class:`~omni_nb.errors.LedgerError` wraps (any other error is its own cause).

    Example:
        >>> err = LedgerError("ledger x: a write failed")
        >>> err.__cause__ = OSError("disk full")
        >>> failure_cause(err)
        OSError('disk full')
    """
    if isinstance(exc, LedgerError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _not_recorded(row: Row, where: str, exc: LedgerError) -> str:
    branch = f" on branch {row.branch_id}" if row.branch_id else ""
    cause = failure_cause(exc)
    if row.draft_id:
        return (f"draft {row.draft_id} of {row.document_id}{branch} exists on the server but "
                f"is not in the ledger at {where}: the write failed ({cause}); keep its id")
    return (f"the {row.action} call for {row.document_id}{branch} ({row.status}) is not in "
            f"the ledger at {where}: the write failed ({cause})")


def write_failed(
    path: Path | None, cause: BaseException, table: Any,
    unrecorded: list[tuple[str, str | None, str | None]],
) -> LedgerError:
    """The error of a batch whose ledger write failed: it carries the whole table and names
    the answered rows that are not in the ledger (the first few in its message).

    Example:
        >>> err = write_failed(None, OSError("disk full"), None, [("doc-1", None, "d1")])
        >>> err.unrecorded, "doc-1 (draft d1)" in str(err)
        ([('doc-1', None, 'd1')], True)
    """
    reason = failure_cause(cause)
    shown = ", ".join(f"{doc}{f' on {branch}' if branch else ''} "
                      f"({f'draft {draft}' if draft else 'no draft'})"
                      for doc, branch, draft in unrecorded[:5])
    more = f" and {len(unrecorded) - 5} more" if len(unrecorded) > 5 else ""
    lost = (f"{len(unrecorded)} answered row{'s' if len(unrecorded) != 1 else ''} not in the "
            f"ledger: {shown}{more} (all in .unrecorded)" if unrecorded
            else "every answered row is in the ledger")
    return LedgerError(
        f"ledger {_place(path)}: a write failed ({reason}); sending stopped, {lost}; the table is "
        f"{TABLE_AT}; to go on, {_WAYS_OUT}",
        path=_path_text(path), result=table, unrecorded=unrecorded,
    )


def _row(values: Sequence[Any]) -> Row:
    """A Row from a tuple of :data:`~omni_nb.rows.STORED_FIELDS`."""
    row = Row(**dict(zip(STORED_FIELDS, values, strict=True)))
    row.from_ledger = bool(row.from_ledger)  # stored as 0/1
    return row


#: Rows read per ``fetchmany`` by :meth:`Ledger.results`. Small on purpose: a chunk's new
#: objects (about half a megabyte) are still in the CPU's cache when they are turned into
#: columns; 50,000-row chunks made a million-row read a third slower. The per-chunk work is
#: a few calls per column, cheap against a thousand rows.
_CHUNK_ROWS = 1_000


def _select(
    run_id: str | None, since: datetime | None, api_root: str | None,
    columns: str = _COLUMN_LIST,
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
    sql = f"SELECT {columns} FROM calls"
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


def open_ledger(ledger: str | Path | Ledger | Settings | None = None) -> Ledger:
    """The ledger to use: an object as is, a path, ``"off"``, resolved settings (their
    ``ledger``; None there means memory only), or (None) the configured one, which
    :func:`omni_nb.config.resolve_ledger` reads from the environment now.

    Ledgers are shared per path in a process (one connection each), so every call from the
    client, batch, magic and widget lands in the same place.

    Example:
        >>> open_ledger("off").path is None
        True
        >>> from omni_nb.config import resolve_settings
        >>> open_ledger(resolve_settings("https://a.omniapp.co", "t", ledger="off")).path is None
        True
    """
    return cast(Ledger, _shared_ledger(_location(ledger)))


def _location(ledger: str | Path | Ledger | Settings | None) -> Path | Ledger | None:
    return ledger.ledger if isinstance(ledger, Settings) else resolve_ledger(ledger)


def _shared_ledger(location: Path | Ledger | None, *, opened_only: bool = False,
                   ) -> Ledger | None:
    """The process's one Ledger for ``location``, opened if need be (``opened_only``: only
    one already open, else None)."""
    if isinstance(location, Ledger):
        return location
    key = ":memory:" if location is None else str(location.resolve())
    with _shared_lock:
        found = _shared.get(key)
        if found is None and not opened_only:
            found = Ledger(location)
            _shared[key] = found
        return found


@contextmanager
def reading(ledger: str | Path | Ledger | Settings | None = None) -> Iterator[Ledger]:
    """The ledger to read (found as :func:`open_ledger` finds it), for the block: the
    process's shared one where it is open or its place can be written (as before), else a
    read-only connection that writes nothing, closed after the block, so a ledger on
    read-only media (a read-only mount, a directory this user cannot write) reads back like
    any other. A ledger file that is not there and cannot be made reads as empty.

    Example:
        >>> import tempfile, os
        >>> with reading(os.path.join(tempfile.mkdtemp(), "new.sqlite3")) as led:
        ...     led.latest_run() is None
        True
    """
    location = _location(ledger)
    if not isinstance(location, Path) or _writable(location):
        yield cast(Ledger, _shared_ledger(location))
        return
    found = _shared_ledger(location, opened_only=True)
    if found is not None:
        yield found
        return
    reader = Ledger(location, read_only=True) if location.exists() else Ledger(None)
    try:
        yield reader
    finally:
        reader.close()


def results(
    run_id: str | None = None,
    since: datetime | str | None = None,
    api_root: str | None = None,
    *,
    ledger: str | Path | Ledger | None = None,
) -> pd.DataFrame:
    """Read results back from the ledger, for later analysis: oldest first (arrival order),
    so ``.tail()`` holds the newest rows, which ``omni-nb results`` lists first ("newest first"
    in its summary line).

    ``since`` is a datetime or an ISO string (taken as UTC when it has no zone); it reads
    only its window, through an index, so a recent window of a large ledger comes back in
    milliseconds. A ledger on read-only media is read through a read-only connection
    (:func:`reading`): nothing is written to read it.

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
    with reading(ledger) as store:  # read-only media too: nothing is written to read
        return store.results(run_id, since, api_root)
