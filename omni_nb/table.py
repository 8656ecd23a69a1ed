"""The pandas room's frames: the results table and the drafts listing (built from rows, the
ledger's tuples or chunks of them), DataFrame input, the dry-run table, what an undo reads
from a table. How they display (summaries, the compact HTML and text views) is
:mod:`omni_nb.views`; its names are re-exported here.

With :mod:`omni_nb.views` and the accessor's registration, the only modules that import
pandas, so a client-only user never pays for it. Rows come in as
:class:`omni_nb.rows.Row` (or the ledger's tuples).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ._text import plural
from .errors import InvalidInputError
from .rows import (
    DRAFT_COLUMNS,
    DRY_RUN_COLUMNS,
    RESULT_COLUMNS,
    STATUSES,
    STORED_FIELDS,
    Row,
    known_actions,
)
from .views import (
    compact_html,
    compact_text,
    cut_at_word,
    headline,
    listing_html,
    listing_summary,
    listing_text,
    shown_summary,
    status_words,
    summarize,
    text_view,
)

__all__ = [
    "DRAFT_COLUMNS",
    "DraftListing",
    "DraftResults",
    "TableBuilder",
    "compact_html",
    "compact_text",
    "cut_at_word",
    "drafts_frame",
    "dry_run_frame",
    "frame_from_chunks",
    "frame_from_rows",
    "frame_from_tuples",
    "headline",
    "is_results_frame",
    "items_from_frame",
    "listing_html",
    "listing_summary",
    "listing_text",
    "plural",
    "shown_summary",
    "status_words",
    "summarize",
    "text_view",
    "undo_rows_from_frame",
]

_STRING = pd.StringDtype()
_DRAFT_STATUS = pd.CategoricalDtype(["active", "archived"])
_UTC_US = "datetime64[us, UTC]"


class DraftResults(pd.DataFrame):
    """The results table: a DataFrame that displays compactly (a summary, a bar of the
    statuses, the columns an analyst reads first); every column stays in the DataFrame.

    What is derived from it (a filter such as ``t[t.status != "ok"]``, a sort) is a results
    table too and displays the same way. ``errors`` lists the exception behind each row (with
    its ``.body`` and ``.retry_after``), or None for a row that was not a failed call.

    Example:
        >>> t = frame_from_rows([])
        >>> t.summary(), t.errors
        ('0 rows', [])
    """

    # Exceptions by row label, only for the rows that have one (a table of 100,000 rows,
    # most of them ok, holds no 100,000-entry dict of Nones): a filtered table keeps each of
    # its rows' errors.
    _metadata: ClassVar[list[str]] = ["_errors_by_label"]
    _errors_by_label: dict[Any, BaseException]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return DraftResults

    @property
    def errors(self) -> list[BaseException | None]:
        """The exception behind each row, in row order (None: not a failed call)."""
        found = getattr(self, "_errors_by_label", None) or {}
        return [found.get(label) for label in self.index]

    @errors.setter
    def errors(self, values: Sequence[BaseException | None]) -> None:
        found = {label: e for label, e in zip(self.index, values, strict=True) if e is not None}
        object.__setattr__(self, "_errors_by_label", found)

    def summary(self) -> str:
        """Counts per status, like ``300 rows: 270 ok, 30 not_eligible``."""
        return summarize(self)

    def counts(self) -> pd.Series:
        """Rows per status, only the statuses that occur (``status`` stays categorical, so
        ``value_counts()`` lists every status, zeros included).

        Example:
            >>> frame_from_rows([]).counts().to_dict()
            {}
        """
        if "status" not in self.columns:
            return pd.Series(dtype="int64")
        counts = self["status"].value_counts(sort=False)
        return counts[counts > 0].astype("int64")

    def _is_results(self) -> bool:
        return {"document_id", "status"} <= set(self.columns)

    def _repr_html_(self) -> str | None:
        if not self._is_results():  # a derived frame of other columns: pandas' own view
            return super()._repr_html_()  # type: ignore[misc,no-any-return]
        return compact_html(self)

    def __repr__(self) -> str:
        if not self._is_results():
            return super().__repr__()
        return compact_text(self)


def frame_from_rows(rows: Sequence[Row]) -> DraftResults:
    """The results table for rows, with the documented dtypes.

    Example:
        >>> list(frame_from_rows([]).dtypes["status"].categories)[:3]
        ['ok', 'invalid', 'not_eligible']
    """
    builder = TableBuilder()
    builder.add_rows(rows)
    return builder.frame()


#: The values of the trailing fields a shorter tuple leaves out.
_TRAILING_DEFAULTS = {"from_ledger": False, "action": "create"}


def frame_from_tuples(rows: Sequence[tuple[Any, ...]]) -> DraftResults:
    """The table for tuples of the ledger's columns in their order
    (:data:`~omni_nb.rows.STORED_FIELDS`); ``from_ledger`` and ``action`` may be left off
    (then False and ``create``).

    Example:
        >>> t = frame_from_tuples([("d", None, "x", "ok", 200, "", 1, 0.1, 5, "r", "run", 0.0,
        ...                         None)])
        >>> t["action"].tolist(), t["from_ledger"].tolist()
        (['create'], [False])
    """
    return frame_from_chunks([rows])


def frame_from_chunks(chunks: Iterable[Sequence[tuple[Any, ...]]]) -> DraftResults:
    """The table for tuples arriving in chunks (a cursor's ``fetchmany``), as
    :func:`frame_from_tuples` takes them; the same columns, dtypes and order.

    Each chunk is turned into compact columns at once and dropped (:class:`TableBuilder`),
    so a million rows never sit in memory as tuples: the peak stays near the table's own size.

    Example:
        >>> row = ("d", None, "x", "ok", 200, "", 1, 0.1, 5, "https://a/api", "run", 0.0, None)
        >>> frame_from_chunks([[row], [row]]).shape
        (2, 15)
    """
    builder = TableBuilder()
    for chunk in chunks:
        builder.add_tuples(chunk)
    return builder.frame()


class TableBuilder:
    """A results table gathered as its rows arrive, in any order: each chunk of rows is
    turned into compact columns at once (numbers into arrays, statuses into codes, repeated
    text into one object per distinct value) and the rows are let go; :meth:`frame` builds
    the table with the rows in the order of their positions.

    A row weighs about 110 bytes here (eight-byte numbers and pointers, two-byte codes)
    besides its own text (a draft id), where a :class:`~omni_nb.rows.Row` with its number
    objects takes about 250, and a tuple of it, to build a frame, 180 more.

    Example:
        >>> b = TableBuilder()
        >>> b.add(Row("d2", None, "y", "ok", 200, "", 1, 0.1, 5, "https://a/api", "r"), 2)
        >>> b.add(Row("d1", None, None, "cancelled", None, "", 0, 0.0, 5, "https://a/api",
        ...           "r"), 1)
        >>> len(b), b.frame()["document_id"].tolist()
        (2, ['d1', 'd2'])
    """

    #: Rows buffered before they are turned into columns: large enough that the numpy and
    #: pandas calls cost nothing per row, small enough that the buffer weighs nothing.
    CHUNK_ROWS = 2048

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._kinds = _column_kinds()  # new for each table: the categories learn their values
        self._parts: dict[str, list[np.ndarray]] = {name: [] for name in STORED_FIELDS}
        self._positions: list[np.ndarray] = []
        self._count = 0
        self._in_order = True  # every position so far after the one before: no sort needed
        self._last = -1
        self._pending: list[Row] = []
        self._pending_at: list[int] = []

    def __len__(self) -> int:
        return self._count + len(self._pending)

    def add(self, row: Row, position: int) -> None:
        """Take one row, to stand at ``position`` among the table's rows (any int; each
        once). It is buffered, then gathered with the next :attr:`CHUNK_ROWS` rows (see the
        class's example)."""
        self._pending.append(row)
        self._pending_at.append(position)
        if len(self._pending) >= self.CHUNK_ROWS:
            self._flush()

    def add_rows(self, rows: Sequence[Row]) -> None:
        """Take rows, after those taken so far, in their order.

        Example:
            >>> b = TableBuilder()
            >>> b.add_rows([Row("d", None, "x", "ok", 200, "", 1, 0.1, 5, "https://a/api", "r")])
            >>> b.frame()["draft_id"].tolist()
            ['x']
        """
        for start in range(0, len(rows), self.CHUNK_ROWS):
            chunk = rows[start:start + self.CHUNK_ROWS]
            self._gather([list(map(attrgetter(name), chunk)) for name in STORED_FIELDS],
                         range(len(self), len(self) + len(chunk)))

    def add_tuples(self, chunk: Sequence[tuple[Any, ...]]) -> None:
        """Take tuples of the ledger's columns (as :func:`frame_from_tuples` does), after
        the rows taken so far, in their order.

        Example:
            >>> b = TableBuilder()
            >>> b.add_tuples([("d", None, "x", "ok", 200, "", 1, 0.1, 5, "https://a/api", "r",
            ...                0.0, None)])
            >>> len(b), b.frame()["action"].tolist()
            (1, ['create'])
        """
        if not chunk:
            return
        fields: list[Sequence[Any]] = list(zip(*chunk, strict=False))
        for name in STORED_FIELDS[len(fields):]:
            fields.append([_TRAILING_DEFAULTS[name]] * len(chunk))
        self._gather(fields, range(len(self), len(self) + len(chunk)))

    def _flush(self) -> None:
        rows, at = self._pending, self._pending_at
        if rows:
            self._pending, self._pending_at = [], []
            self._gather([list(map(attrgetter(name), rows)) for name in STORED_FIELDS], at)

    def _gather(self, fields: Sequence[Sequence[Any]], positions: Sequence[int]) -> None:
        for name, values in zip(STORED_FIELDS, fields, strict=True):
            self._parts[name].append(self._kinds[name][0](values))
        at = np.fromiter(positions, dtype=np.int64, count=len(positions))
        if len(at) and (at[0] <= self._last or (len(at) > 1 and (np.diff(at) <= 0).any())):
            self._in_order = False
        self._last = max(self._last, int(at.max())) if len(at) else self._last
        self._positions.append(at)
        self._count += len(at)

    def frame(self) -> DraftResults:
        """The table of every row taken, ordered by position; the builder is left empty."""
        self._flush()
        order = None
        if not self._in_order:
            order = np.argsort(np.concatenate(self._positions), kind="stable")
        parts, kinds = self._parts, self._kinds
        self._reset()  # empty again: the parts are this call's now
        data: dict[str, Any] = {}
        for name in RESULT_COLUMNS:
            field = "requested_at_us" if name == "requested_at" else name
            gather, build = kinds[field]
            # One column at a time, its pieces let go (popped) before the next is built.
            pieces = parts.pop(field) or [gather(())]
            joined = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            del pieces
            data[name] = build(joined if order is None else joined[order])
        return DraftResults(data, copy=False)  # the arrays are new: no need to copy them again


#: Turns one chunk's values of a column into an array (kept until the whole is built).
_Gather = Callable[[Sequence[Any]], np.ndarray]
#: Turns a column's gathered arrays, joined, into the table's column.
_Build = Callable[[np.ndarray], Any]


def _objects(values: Sequence[Any]) -> np.ndarray:
    """The values as a 1-D object array, as they are (no dtype guessed from them)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _shared(values: Sequence[Any]) -> np.ndarray:
    """Text that repeats from row to row (an API root, a run id, a key), with one object per
    distinct value of the chunk: SQLite hands out a new string for every row, and a million
    copies of one API root weigh 75 MB."""
    seen: dict[Any, Any] = {}
    return _objects(list(map(seen.setdefault, values, values)))  # map: the loop stays in C


class _Coder:
    """Gathers a categorical column as codes, the known categories first; a value outside
    them (a status or action written by a newer omni_nb, an operation registered in another
    process) becomes a category of its own, so it reads back as itself, never as missing."""

    def __init__(self, known: Sequence[str]) -> None:
        self.categories = list(known)
        self.index = {name: i for i, name in enumerate(self.categories)}

    def gather(self, values: Sequence[Any]) -> np.ndarray:
        codes = np.fromiter(map(self.index.get, values, repeat(-1, len(values))),
                            dtype=np.int16, count=len(values))  # map: the loop stays in C
        if (codes < 0).any():  # rare: only unknown or missing values take the slow path
            for i in np.flatnonzero(codes < 0).tolist():
                value = values[i]
                if isinstance(value, str):
                    codes[i] = self.index.setdefault(value, len(self.categories))
                    if codes[i] == len(self.categories):
                        self.categories.append(value)
        return codes

    def build(self, codes: np.ndarray) -> Any:
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(self.categories))


def _text(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.array(values, dtype=_STRING)


def _when(values: np.ndarray) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="int64", copy=False), unit="us", utc=True)


def _column_kinds() -> dict[str, tuple[_Gather, _Build]]:
    """Per ledger column: how a chunk's values are gathered, and how the gathered whole is
    built (new for each table: the categorical columns learn the values they meet)."""
    status, action = _Coder(STATUSES), _Coder(known_actions())
    return {
        **dict.fromkeys(("document_id", "draft_id"), (_objects, _text)),  # unique per row
        **dict.fromkeys(("branch_id", "message", "key", "api_root", "run_id"),
                        (_shared, _text)),
        "status": (status.gather, status.build),
        "action": (action.gather, action.build),
        # Gathered as floats (None: NaN), which pandas turns into Int64 (NaN: <NA>) in one
        # pass, where objects take a Python-level look at each value; both refuse a
        # non-integral value.
        **dict.fromkeys(("http_status", "attempts"),
                        (lambda v: np.asarray(v, dtype=np.float64),
                         lambda v: pd.array(v, dtype="Int64"))),
        **dict.fromkeys(("elapsed_s", "queued_s"),
                        (lambda v: np.asarray(v, dtype=np.float64),
                         lambda v: pd.array(v, dtype="float64"))),
        "requested_at_us": (lambda v: np.asarray(v, dtype=np.int64), _when),
        "from_ledger": (lambda v: np.fromiter(map(bool, v), dtype=bool, count=len(v)),
                        lambda v: pd.array(v, dtype="bool")),
    }


def is_results_frame(frame: Any) -> bool:
    """True for a DataFrame with a results table's ``document_id``, ``status`` and
    ``draft_id`` columns (filtered, sorted or rebuilt: any frame with those).

    Example:
        >>> is_results_frame(frame_from_rows([])), is_results_frame(pd.DataFrame({"a": []}))
        (True, False)
    """
    return isinstance(frame, pd.DataFrame) and {"document_id", "status", "draft_id"} <= set(
        frame.columns)


#: One row of a results table to undo: (position, document, branch, draft id, first send in
#: microseconds or None, API root or None).
UndoRow = tuple[int, object, object, str, int | None, str | None]


def undo_rows_from_frame(frame: pd.DataFrame) -> list[UndoRow]:
    """The rows of a results table that an undo discards: its ``ok`` creates that name a
    draft (``action`` absent means create), with their position (1-based) in the frame.

    Example:
        >>> undo_rows_from_frame(frame_from_rows(
        ...     [Row("d", None, "x", "ok", 200, "", 1, 0.1, 5, "https://a/api", "r")]))
        [(1, 'd', None, 'x', 5, 'https://a/api')]
    """
    n = len(frame)
    status = frame["status"].astype("object").tolist()
    action = frame["action"].astype("object").tolist() if "action" in frame else ["create"] * n
    drafts = frame["draft_id"].astype("object").tolist()
    documents = frame["document_id"].astype("object").tolist()
    branches = frame["branch_id"].astype("object").tolist() if "branch_id" in frame else [None] * n
    roots = frame["api_root"].astype("object").tolist() if "api_root" in frame else [None] * n
    when: list[int | None] = [None] * n
    if "requested_at" in frame:
        stamps = pd.to_datetime(frame["requested_at"], utc=True)
        when = [None if pd.isna(t) else int(t.value // 1000) for t in stamps]
    out: list[UndoRow] = []
    for i in range(n):
        if status[i] != "ok" or action[i] != "create" or _missing_to_none(drafts[i]) is None:
            continue
        root = _missing_to_none(roots[i])
        out.append((i + 1, _missing_to_none(documents[i]), _missing_to_none(branches[i]),
                    str(drafts[i]), when[i], None if root is None else str(root)))
    return out


class DraftListing(pd.DataFrame):
    """The drafts listing: a DataFrame that displays compactly, in the style of the results
    table (its summary, then :data:`~omni_nb.rows.DRAFT_SHOWN`: blanks for missing values,
    times to the minute, a message cut at a word with the whole text on hover); every column
    stays in the DataFrame. What is derived from it (a filter, a sort) displays the same way.

    Example:
        >>> drafts_frame([]).summary()
        '0 drafts of 0 documents.'
    """

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return DraftListing

    def summary(self) -> str:
        """Drafts, documents, how many active and archived, and the listings that failed
        (:func:`listing_summary`).

        Example:
            >>> drafts_frame([("d", "x", None, None, "active", False, None, None, None, None,
            ...                "ok", "")]).summary()
            '1 draft of 1 document: 1 active.'
        """
        return listing_summary(self)

    def _is_listing(self) -> bool:
        return {"document_id", "draft_id", "draft_status", "status"} <= set(self.columns)

    def _repr_html_(self) -> str | None:
        if not self._is_listing():  # a derived frame of other columns: pandas' own view
            return super()._repr_html_()  # type: ignore[misc,no-any-return]
        return listing_html(self)

    def __repr__(self) -> str:
        if not self._is_listing():
            return super().__repr__()
        return listing_text(self)


def drafts_frame(rows: Sequence[tuple[Any, ...]]) -> DraftListing:
    """The drafts listing: one row per draft, tuples of :data:`DRAFT_COLUMNS` (times as
    aware datetimes or None). ``draft_status`` is Omni's (active, archived); ``status`` and
    ``message`` are the listing's outcome (a document whose listing failed: one row, no draft).
    A :class:`DraftListing`: it displays compactly, as a results table does.

    Example:
        >>> drafts_frame([]).columns[:3].tolist()
        ['document_id', 'draft_id', 'branch_id']
    """
    cols: list[Sequence[Any]] = (
        list(zip(*rows, strict=True)) if rows else [()] * len(DRAFT_COLUMNS))
    at = dict(zip(DRAFT_COLUMNS, cols, strict=True))

    def times(name: str) -> Any:
        return pd.Series(pd.to_datetime(list(at[name]), utc=True), dtype=_UTC_US)

    data: dict[str, Any] = {name: pd.array(at[name], dtype=_STRING) for name in (
        "document_id", "draft_id", "branch_id", "branch_name", "created_by", "last_edited_by",
        "message")}
    data.update({
        "draft_status": pd.Categorical(at["draft_status"], dtype=_DRAFT_STATUS),
        "out_of_date": pd.array(at["out_of_date"], dtype="boolean"),
        "created_at": times("created_at"), "updated_at": times("updated_at"),
        "status": _Coder(STATUSES).build(_Coder(STATUSES).gather(list(at["status"]))),
    })
    return DraftListing({name: data[name] for name in DRAFT_COLUMNS})


def items_from_frame(
    frame: Any, document_col: str, branch_col: str | None
) -> list[tuple[object, object]] | None:
    """(document, branch) pairs from a DataFrame, or None when ``frame`` is not one.

    Missing values (None, NaN, NA) in the branch column mean "no branch given for this row".

    Example:
        >>> items_from_frame(pd.DataFrame({"document_id": ["a"]}), "document_id", None)
        [('a', None)]
    """
    if not isinstance(frame, pd.DataFrame):
        return None
    if document_col not in frame.columns:
        raise InvalidInputError(
            f"the DataFrame has no {document_col!r} column (columns: {list(frame.columns)}); "
            "pass document_col="
        )
    if branch_col is None and "branch_id" in frame.columns:
        branch_col = "branch_id"
    if branch_col is not None and branch_col not in frame.columns:
        raise InvalidInputError(f"the DataFrame has no {branch_col!r} column (branch_col=)")
    column = frame[document_col]
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.notna().any():
        # Read as text, 00123 would have lost its zeros already, and a column with a missing
        # value turns 123 into "123.0": both name the wrong documents. The caller must fix it.
        raise InvalidInputError(
            f"the {document_col!r} column holds numbers ({column.dtype}), but document ids "
            f"are text: read them as text (pd.read_csv(..., dtype=str)) or convert with "
            f"df.astype({{{document_col!r}: str}}) if no zeros or missing values were lost"
        )
    documents = frame[document_col].tolist()
    branches: Iterable[object] = (
        frame[branch_col].tolist() if branch_col is not None else [None] * len(documents)
    )
    return [
        (_missing_to_none(d), _missing_to_none(b))
        for d, b in zip(documents, branches, strict=True)
    ]


def _missing_to_none(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def dry_run_frame(records: Sequence[tuple[Any, ...]], summary: str) -> pd.DataFrame:
    """A dry run's table: ``input``, ``document_id``, ``branch_id``, ``valid``, ``request``,
    ``message``; ``attrs["summary"]`` says what would be sent.

    Example:
        >>> dry_run_frame([("item 1", "d", None, True, "POST ...", "")], "1 request").shape
        (1, 6)
    """
    frame = pd.DataFrame(list(records), columns=list(DRY_RUN_COLUMNS))
    frame = frame.astype({"document_id": "string", "branch_id": "string", "valid": "bool",
                          "request": "string", "message": "string"})
    frame.attrs["summary"] = summary
    return frame
