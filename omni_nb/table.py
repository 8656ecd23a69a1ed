"""The pandas room: the results table, its summary, DataFrame input, dry-run and text views.

The only module (with the accessor's registration) that imports pandas, so a client-only
user never pays for it. Rows come in as :class:`omni_nb.rows.Row` (or the ledger's tuples).
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ._text import one_line, plural
from .errors import InvalidInputError
from .rows import (
    DRAFT_COLUMNS,
    DRAFT_SHOWN,
    DRY_RUN_COLUMNS,
    RESULT_COLUMNS,
    SHOWN,
    STATUS_COLOURS,
    STATUSES,
    STORED_FIELDS,
    TEXT_COLUMNS,
    Row,
    known_actions,
)

__all__ = [
    "DRAFT_COLUMNS",
    "DraftListing",
    "DraftResults",
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

    # Exceptions by row label: a filtered table keeps each of its rows' errors.
    _metadata: ClassVar[list[str]] = ["_errors_by_label"]
    _errors_by_label: dict[Any, BaseException | None]

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
        object.__setattr__(self, "_errors_by_label", dict(zip(self.index, values, strict=True)))

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
        line = headline(self)
        head = f"{line}\n{shown_summary(self)}" if line else shown_summary(self)
        with pd.option_context("display.max_columns", len(SHOWN) + 1, "display.width", 160):
            return f"{head}\n{_compact_frame(self, cut=True).__repr__()}"


def summarize(frame: pd.DataFrame) -> str:
    """``N rows: a ok, b not_found ...`` (only statuses present).

    Example:
        >>> summarize(frame_from_rows([]))
        '0 rows'
    """
    total = len(frame)
    if not total:
        return "0 rows"
    counts = frame["status"].value_counts(sort=False)
    parts = [f"{int(counts[s])} {s}" for s in STATUSES if counts.get(s)]
    resumed = int(frame["from_ledger"].sum()) if "from_ledger" in frame else 0
    tail = f" ({resumed} from the ledger)" if resumed else ""
    return f"{plural(total, 'row')}: " + ", ".join(parts) + tail


def frame_from_rows(rows: Sequence[Row]) -> DraftResults:
    """The results table for rows, with the documented dtypes.

    Example:
        >>> list(frame_from_rows([]).dtypes["status"].categories)[:3]
        ['ok', 'invalid', 'not_eligible']
    """
    return frame_from_tuples([tuple(getattr(r, name) for name in STORED_FIELDS) for r in rows])


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

    Each chunk is turned into compact columns at once (numbers into arrays, statuses into
    codes, repeated text into one object per distinct value) and dropped, so a million rows
    never sit in memory as tuples: the peak stays near the table's own size.

    Example:
        >>> row = ("d", None, "x", "ok", 200, "", 1, 0.1, 5, "https://a/api", "run", 0.0, None)
        >>> frame_from_chunks([[row], [row]]).shape
        (2, 15)
    """
    kinds = _column_kinds()
    parts: dict[str, list[Any]] = {name: [] for name in STORED_FIELDS}
    for chunk in chunks:
        if not chunk:
            continue
        fields: list[Sequence[Any]] = list(zip(*chunk, strict=False))
        for name in STORED_FIELDS[len(fields):]:
            fields.append([_TRAILING_DEFAULTS[name]] * len(chunk))
        for name, values in zip(STORED_FIELDS, fields, strict=True):
            parts[name].append(kinds[name][0](values))
    data: dict[str, Any] = {}
    for name in RESULT_COLUMNS:
        field = "requested_at_us" if name == "requested_at" else name
        gather, build = kinds[field]
        # One column at a time, its pieces let go (popped) before the next is built.
        pieces = parts.pop(field) or [gather(())]
        data[name] = build(np.concatenate(pieces) if len(pieces) > 1 else pieces[0])
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
        columns = [c for c in DRAFT_SHOWN if c in self.columns]
        view = pd.DataFrame(self[columns]).astype(object)
        with pd.option_context("display.max_columns", len(columns), "display.width", 160):
            return f"{self.summary()}\n{view.where(view.notna(), '').__repr__()}"


def listing_summary(frame: pd.DataFrame) -> str:
    """A listing's summary: drafts, documents, how many active and archived, and the listings
    that failed.

    Example:
        >>> listing_summary(pd.DataFrame({"document_id": ["a", "a", "b"],
        ...     "draft_id": ["x", "y", None], "draft_status": ["active", "archived", None],
        ...     "status": ["ok", "ok", "not_found"]}))
        '2 drafts of 2 documents: 1 active, 1 archived; 1 listing failed (not_found).'
    """
    found = frame[frame["draft_id"].notna()]
    states = Counter(str(s) for s in found["draft_status"])
    parts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    documents = plural(int(frame["document_id"].nunique()), "document")
    line = f"{plural(len(found), 'draft')} of {documents}" + (f": {parts}" if parts else "")
    failed = frame[frame["status"].astype(str) != "ok"]
    if len(failed):
        kinds = ", ".join(sorted(set(failed["status"].astype(str))))
        line += f"; {plural(len(failed), 'listing')} failed ({kinds})"
    return line + "."


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


def text_view(
    table: pd.DataFrame, limit: int = 15, *, newest_first: bool = False, hint: str = ""
) -> str:
    """The headline (a refused token), the summary and the first ``limit`` rows' main columns,
    for a terminal, and how many rows were not shown (then ``hint``). Rows read as
    :func:`status_words` says (a discard that worked is ``archived``), with an ``action``
    column when the table holds more than creates. ``newest_first`` reverses the rows, says so
    in the summary line and adds the ``run_id`` column (a ledger view).

    Example:
        >>> text_view(frame_from_rows([]))
        '0 rows'
        >>> lines = text_view(frame_from_rows(
        ...     [Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r", action="discard")]))
        >>> [line.split() for line in lines.splitlines()]  # doctest: +NORMALIZE_WHITESPACE
        [['1', 'row:', '1', 'archived'],
         ['document_id', 'branch_id', 'draft_id', 'action', 'status', 'http_status', 'message'],
         ['d', 'x', 'discard', 'archived', '200']]
    """
    head = shown_summary(table)
    if not len(table):
        return head
    if newest_first:
        head += " (newest first)"
    line = headline(table)
    if line:
        head = f"{line}\n{head}"
    columns = [c for c in TEXT_COLUMNS if c in table.columns]
    if _mixes_actions(table):
        columns.insert(columns.index("status") if "status" in columns else 0, "action")
    view = pd.DataFrame(table[columns]).astype(object)
    view["status"] = status_words(table)
    if newest_first:
        view, columns = view.iloc[::-1], ["run_id", *columns]
        view.insert(0, "run_id", table["run_id"].astype(object).iloc[::-1].to_numpy())
    view = view.where(view.notna(), "")  # a blank, not <NA>, where there is no value
    with pd.option_context("display.width", 160, "display.max_columns", len(columns)):
        shown = view.head(limit).to_string(index=False)
    hidden = len(table) - min(limit, len(table))
    older = ": the older ones" if newest_first else ""
    more = f"\n… {plural(hidden, 'more row')} not shown{older}{hint}" if hidden else ""
    return f"{head}\n{shown}{more}"


# -- what a row reads as ------------------------------------------------------------------------

#: A status as displays word it for an action: a discard that worked archived its draft. The
#: ``status`` value stays ``ok`` (filters such as ``t[t.status == "ok"]`` keep working).
_WORDS = {("discard", "ok"): "archived"}
#: Where the display words sit among the statuses (summaries and legends list them in order).
_WORD_ORDER = ("ok", "archived", *STATUSES[1:])
#: The colour of a display word that is not a status: the status it stands for.
_WORD_COLOURS = {**STATUS_COLOURS, "archived": STATUS_COLOURS["ok"]}


def status_words(table: pd.DataFrame) -> list[str]:
    """Each row's status as the displays word it: ``archived`` for a discard that worked, the
    status itself otherwise (a ``skipped`` discard stays ``skipped``, its message says why).

    Example:
        >>> status_words(frame_from_rows([
        ...     Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r"),
        ...     Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r", action="discard")]))
        ['ok', 'archived']
    """
    statuses = [str(s) for s in table["status"].astype(object)]
    if "action" not in table.columns:
        return statuses
    actions = [str(a) for a in table["action"].astype(object)]
    return [_WORDS.get((a, s), s) for a, s in zip(actions, statuses, strict=True)]


def _word_counts(table: pd.DataFrame) -> list[tuple[str, int]]:
    """(word, rows) for the display words present, statuses' order, unknown ones last."""
    counts = Counter(status_words(table)) if "status" in table.columns else Counter[str]()
    order = [*_WORD_ORDER, *sorted(set(counts) - set(_WORD_ORDER))]
    return [(word, counts[word]) for word in order if counts[word]]


def shown_summary(table: pd.DataFrame) -> str:
    """:func:`summarize` in the displays' words: ``6 rows: 6 archived`` for a discard, where
    :meth:`DraftResults.summary` keeps the statuses (``6 rows: 6 ok``).

    Example:
        >>> shown_summary(frame_from_rows(
        ...     [Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "a", "r", action="discard")]))
        '1 row: 1 archived'
    """
    total = len(table)
    if not total:
        return "0 rows"
    parts = [f"{n} {word}" for word, n in _word_counts(table)]
    resumed = int(table["from_ledger"].sum()) if "from_ledger" in table else 0
    tail = f" ({resumed} from the ledger)" if resumed else ""
    return f"{plural(total, 'row')}: " + ", ".join(parts) + tail


def headline(table: pd.DataFrame) -> str:
    """The line above a table whose rows say the batch could not work at all: a refused
    token (in the server's words, and what the other rows are), or an instance that no row
    reached (the connection error's words); "" for any other table.

    Example:
        >>> headline(frame_from_rows([Row("d", None, None, "unauthorized", 401,
        ...     "Invalid bearer token", 1, 0.1, 0, "a", "r")]))
        'The token was refused: Invalid bearer token. Check the API key (1 row unauthorized).'
    """
    if "status" not in table.columns or not len(table):
        return ""
    statuses = table["status"].astype(str)
    refused = table[statuses == "unauthorized"]
    if len(refused):
        words = _first_words(refused)
        unsent = int((statuses == "cancelled").sum())
        tail = f", {unsent} not sent" if unsent else ""
        return (f"The token was refused: {words}. Check the API key "
                f"({len(refused)} {'row' if len(refused) == 1 else 'rows'} unauthorized{tail}).")
    lost = table[statuses == "network_error"]
    # Only when nothing got through: one lost connection among answered rows is just a row.
    if len(lost) and not statuses.isin(["network_error", "cancelled", "invalid"]).eq(False).any():
        return f"Could not reach the instance: {_first_words(lost)}."
    return ""


def _first_words(rows: pd.DataFrame) -> str:
    """The first row's message, one line, as a sentence's end (no final full stop)."""
    return one_line(str(rows["message"].iloc[0] or ""), 300).rstrip(".") or "no reason given"


def _mixes_actions(table: pd.DataFrame) -> bool:
    """Whether a display needs an ``action`` column: some row is not a create."""
    return "action" in table.columns and bool((table["action"].astype(str) != "create").any())


def cut_at_word(text: str, limit: int) -> str:
    """``text`` on one line, cut to at most ``limit`` characters at a word boundary (the last
    one an ellipsis when it was cut; mid-word only when one word fills the limit).

    Example:
        >>> cut_at_word("host acme-typo.omniapp.co not found: check the name", 30)
        'host acme-typo.omniapp.co not…'
    """
    flat = one_line(text, len(text) + 1)
    if len(flat) <= limit:
        return flat
    room = flat[: limit - 1]
    space = room.rfind(" ")
    if flat[limit - 1] != " " and space >= limit // 2:  # else the room ends on a whole word
        room = room[:space]
    return room.rstrip(" ,;:") + "…"


# -- the compact display ----------------------------------------------------------------------

_BRANCH_CHARS, _MESSAGE_CHARS = 8, 60
#: The characters of a message a notebook cell shows (the rest on hover).
_CELL_CHARS = 38


def _shown_rows(n: int) -> tuple[list[int], bool]:
    """Which row positions to show (pandas' max_rows/min_rows rule) and whether some are cut."""
    max_rows = pd.get_option("display.max_rows") or n
    if n <= max_rows:
        return list(range(n)), False
    half = max((pd.get_option("display.min_rows") or 10) // 2, 1)
    return [*range(half), *range(n - half, n)], True


def _shown_columns(table: pd.DataFrame) -> list[str]:
    """The columns a display shows (those present), ``action`` before ``status`` when some row
    is not a create."""
    columns = [c for c in SHOWN if c in table.columns]
    if _mixes_actions(table):
        columns.insert(columns.index("status") if "status" in columns else 0, "action")
    return columns


def _compact_frame(table: pd.DataFrame, *, cut: bool) -> pd.DataFrame:
    """The shown columns (those present), with long text cut when ``cut`` (the text view)."""
    columns = _shown_columns(table)
    view = pd.DataFrame(table[columns]).rename(columns=SHOWN)
    if "status" in view:
        view["status"] = status_words(table)
    if cut and "branch" in view:
        view["branch"] = view["branch"].map(
            lambda b: b if not isinstance(b, str) else b[:_BRANCH_CHARS] + "…")
    if cut and "message" in view:
        view["message"] = view["message"].map(
            lambda m: m if not isinstance(m, str) else cut_at_word(m, _MESSAGE_CHARS))
    if "elapsed s" in view:
        view["elapsed s"] = view["elapsed s"].round(3)
    return view


def _bar_svg(counts: Sequence[tuple[str, int]], total: int, width: int = 240) -> str:
    x, parts = 0.0, []
    for word, n in counts:
        w = width * n / total
        parts.append(f'<rect x="{x:.1f}" width="{w:.1f}" height="8" '
                     f'fill="{_WORD_COLOURS.get(word, "#888")}">'
                     f"<title>{n} {html.escape(word)}</title></rect>")
        x += w
    return (f'<svg width="{width}" height="8" role="img" aria-label="rows per status" '
            f'style="vertical-align:middle">{"".join(parts)}</svg>')


#: A cell's text never wraps (one line per row); the table wraps its headings instead.
_NOWRAP = "white-space:nowrap"


def _cell(column: str, value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "<td></td>"
    text = str(value)
    if column == "branch_id":
        return f'<td title="{html.escape(text)}">{html.escape(text[:_BRANCH_CHARS])}…</td>'
    if column == "message":
        return _message_cell(text, _CELL_CHARS)
    if column == "status":
        colour = _WORD_COLOURS.get(text, "inherit")
        return f'<td style="color:{colour};font-weight:600">{html.escape(text)}</td>'
    if column == "elapsed_s":
        return f"<td>{float(value):.3f}</td>"
    return f'<td style="{_NOWRAP}">{html.escape(text)}</td>'


def _message_cell(text: str, chars: int, style: str = "text-align:left") -> str:
    """Text cut at a word to ``chars`` characters (the whole text on hover), in a cell of one
    line at most as wide as those characters (about 0.55 em each in a notebook's font): the
    ellipsis style is the safety net for wide letters, so the width is bounded either way."""
    return (f'<td title="{html.escape(text)}" style="max-width:{chars * 0.58:.1f}em;'
            f'{_NOWRAP};overflow:hidden;text-overflow:ellipsis;{style}">'
            f"{html.escape(cut_at_word(text, chars))}</td>")


def _legend(counts: Sequence[tuple[str, int]], total: int) -> str:
    """The summary line: the row count, the bar, each word's count in its colour."""
    head = f"<b>{html.escape(plural(total, 'row'))}</b>"
    if not total:
        return head
    legend = ", ".join(
        f'<span style="color:{_WORD_COLOURS.get(word, "inherit")}">&#9632;</span> {n} '
        f"{html.escape(word)}" for word, n in counts)
    return f"{head} {_bar_svg(counts, total)} {legend}"


def compact_html(table: pd.DataFrame) -> str:
    """The notebook view: a headline when the batch could not work (a refused token), a
    summary with a stacked bar, then the columns an analyst reads first, a discard's rows
    worded as such (``archived``, an ``action`` column); a branch and a message in full on
    hover. Fits a 960 px notebook cell: one line per row, messages cut at a word.

    Example:
        >>> "<svg" in compact_html(frame_from_rows(
        ...     [Row("d", None, "x", "ok", 200, "", 1, 0.1, 0, "https://a/api", "r")]))
        True
    """
    total = len(table)
    words = status_words(table) if "status" in table.columns else [""] * total
    line = headline(table)
    alarm = (f'<p style="color:{STATUS_COLOURS["unauthorized"]};font-weight:600">'
             f"{html.escape(line)}</p>" if line else "")
    columns = _shown_columns(table)
    positions, cut = _shown_rows(total)
    body = []
    for i, pos in enumerate(positions):
        if cut and i == len(positions) // 2:
            body.append(f'<tr><td colspan="{len(columns) + 1}">…</td></tr>')
        row = table.iloc[pos]
        cells = "".join(_cell(c, words[pos] if c == "status" else row[c]) for c in columns)
        body.append(f"<tr><th>{html.escape(str(table.index[pos]))}</th>{cells}</tr>")
    headings = "".join(  # the message reads left to right, so its heading sits left too
        f'<th style="text-align:left">{SHOWN[c]}</th>' if c == "message" else
        f"<th>{SHOWN.get(c, c)}</th>" for c in columns)
    hidden = [c for c in table.columns if c not in columns]
    note = (f"{len(positions)} of {total} rows shown; " if cut else "") + (
        "also in the DataFrame: " + ", ".join(hidden) if hidden else "")
    return (
        f'<div class="omni-nb-results">{alarm}<p>{_legend(_word_counts(table), total)}</p>'
        f'<table class="dataframe"><thead><tr><th></th>{headings}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        f'<p style="font-size:smaller;opacity:0.7">{html.escape(note)}</p></div>'
    )


# -- the listing's display ---------------------------------------------------------------------

#: The listing's headings in the compact display.
_DRAFT_HEADINGS = {
    "document_id": "document", "draft_id": "draft", "branch_id": "branch id",
    "branch_name": "branch", "draft_status": "draft status", "out_of_date": "out of date",
    "created_at": "created (UTC)", "updated_at": "updated (UTC)", "created_by": "created by",
    "last_edited_by": "last edited by",
}
_LEFT = ' style="text-align:left"'
#: The characters of a listing's text a cell shows (the whole on hover): what keeps the
#: widest listing (long names, a failed listing) inside a 960 px cell.
_NAME_CHARS = {"document_id": 16, "draft_id": 10, "branch_name": 14, "created_by": 16,
               "status": 26}
#: Omni's draft states, coloured as the statuses they resemble.
_DRAFT_COLOURS = {"active": STATUS_COLOURS["ok"], "archived": STATUS_COLOURS["cancelled"]}


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and math.isnan(value))


def _listing_cell(column: str, row: pd.Series) -> str:
    value = row[column]
    if column == "status":  # the listing's outcome: blank when it worked, else why not
        status, message = str(value), "" if _missing(row.get("message")) else str(
            row["message"])
        if status == "ok" and not message:
            return "<td></td>"
        # The message in the status's colour (the summary names the statuses); both on hover.
        cell = _message_cell(message or status, _NAME_CHARS["status"],
                             f"text-align:left;color:{STATUS_COLOURS.get(status, 'inherit')}")
        return cell.replace(f'title="{html.escape(message or status)}"',
                            f'title="{html.escape(f"{status}: {message}")}"', 1)
    if _missing(value):
        return "<td></td>"
    if isinstance(value, pd.Timestamp):  # to the minute; the exact time on hover
        exact = value.tz_convert("UTC").isoformat() if value.tzinfo else value.isoformat()
        return (f'<td title="{html.escape(exact)}" style="{_NOWRAP}">'
                f'{html.escape(value.strftime("%Y-%m-%d %H:%M"))}</td>')
    if column == "out_of_date":
        return "<td>yes</td>" if bool(value) else "<td></td>"
    text = str(value)
    if column == "draft_status":
        return (f'<td style="color:{_DRAFT_COLOURS.get(text, "inherit")};font-weight:600">'
                f"{html.escape(text)}</td>")
    if column in _NAME_CHARS:
        return _message_cell(text, _NAME_CHARS[column], "")
    return f'<td style="{_NOWRAP}">{html.escape(text)}</td>'


def listing_html(frame: pd.DataFrame, *, summary: bool = True) -> str:
    """The drafts listing's notebook view, in the results table's compact style: its summary
    (unless ``summary=False``: a form says it in its status line), then the columns of
    :data:`~omni_nb.rows.DRAFT_SHOWN` (the listing's status and message as one column, only
    when some listing failed), blanks where there is no value, times to the minute, long
    names and messages cut at a word (the whole on hover), so it fits a 960 px cell. Escaped
    throughout.

    Example:
        >>> page = listing_html(drafts_frame([("d", "x", None, None, "active", False, None,
        ...     None, "ann", None, "ok", "")]))
        >>> "1 draft of 1 document: 1 active." in page, "&lt;NA&gt;" in page, "<NA>" in page
        (True, False, False)
    """
    # The listing's status and message are one column ("listing": why a listing failed),
    # shown only when one did: the summary counts them either way.
    columns = [c for c in DRAFT_SHOWN if c in frame.columns and c != "message"]
    if "status" in columns and (frame["status"].astype(str) == "ok").all() and not (
            "message" in frame.columns and frame["message"].fillna("").astype(str).any()):
        columns.remove("status")
    total = len(frame)
    positions, cut = _shown_rows(total)
    body = []
    for i, pos in enumerate(positions):
        if cut and i == len(positions) // 2:
            body.append(f'<tr><td colspan="{len(columns) + 1}">…</td></tr>')
        row = frame.iloc[pos]
        cells = "".join(_listing_cell(c, row) for c in columns)
        body.append(f"<tr><th>{html.escape(str(frame.index[pos]))}</th>{cells}</tr>")
    # Each heading names its DataFrame column on hover (what code filters on).
    headings = "".join(
        f'<th title="status, message"{_LEFT}>listing</th>' if c == "status" else
        f'<th title="{c}">{html.escape(_DRAFT_HEADINGS.get(c, c))}</th>' for c in columns)
    hidden = len([c for c in frame.columns if c not in columns])
    note = (f"{len(positions)} of {total} rows shown; " if cut else "") + (
        f"{plural(hidden, 'more column')} in the DataFrame" if hidden else "")
    head = f"<p><b>{html.escape(listing_summary(frame))}</b></p>" if summary else ""
    return (
        f'<div class="omni-nb-drafts">{head}'
        f'<table class="dataframe"><thead><tr><th></th>{headings}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        f'<p style="font-size:smaller;opacity:0.7">{html.escape(note)}</p></div>'
    )
