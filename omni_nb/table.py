"""The pandas room: the results table, its summary, DataFrame input, dry-run and text views.

The only module (with the accessor's registration) that imports pandas, so a client-only
user never pays for it. Rows come in as :class:`omni_nb.rows.Row` (or the ledger's tuples).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import pandas as pd

from .errors import InvalidInputError
from .rows import STATUSES, Row

__all__ = [
    "DraftResults",
    "dry_run_frame",
    "frame_from_rows",
    "frame_from_tuples",
    "items_from_frame",
    "summarize",
    "text_view",
]

_STRING = pd.StringDtype()
_STATUS = pd.CategoricalDtype(list(STATUSES))


class DraftResults(pd.DataFrame):
    """The results table: a DataFrame that shows a one-line status summary above itself.

    Anything derived from it (a filter, a groupby) is a plain DataFrame. ``errors[i]`` is the
    exception behind row ``i`` (with its ``.body`` and ``.retry_after``), or None for a row
    that was not a failed call.

    Example:
        >>> t = frame_from_rows([])
        >>> t.summary(), t.errors
        ('0 rows', [])
    """

    # Lets pandas accept the attribute; derived frames (plain DataFrames) do not carry it.
    _metadata: ClassVar[list[str]] = ["errors"]
    errors: list[BaseException | None]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def summary(self) -> str:
        """Counts per status, like ``300 rows: 270 ok, 30 not_eligible``."""
        return summarize(self)

    def _repr_html_(self) -> str | None:
        table = super()._repr_html_()  # type: ignore[misc]  # pandas-stubs omit it
        return f"<p><b>{html.escape(self.summary())}</b></p>{table or ''}"

    def __repr__(self) -> str:
        return f"{self.summary()}\n{super().__repr__()}"


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
    return f"{total} rows: " + ", ".join(parts) + tail


def frame_from_rows(rows: Sequence[Row]) -> DraftResults:
    """The results table for rows, with the documented dtypes.

    Example:
        >>> list(frame_from_rows([]).dtypes["status"].categories)[:3]
        ['ok', 'invalid', 'not_eligible']
    """
    return frame_from_tuples(
        [
            (r.document_id, r.branch_id, r.draft_id, r.status, r.http_status, r.message,
             r.attempts, r.elapsed_s, r.requested_at_us, r.api_root, r.run_id, r.queued_s,
             r.key, r.from_ledger)
            for r in rows
        ]
    )


#: Where each field sits in the tuples :func:`frame_from_tuples` takes (the ledger's order).
_AT = {name: i for i, name in enumerate((
    "document_id", "branch_id", "draft_id", "status", "http_status", "message", "attempts",
    "elapsed_s", "requested_at_us", "api_root", "run_id", "queued_s", "key", "from_ledger",
))}


def frame_from_tuples(rows: Sequence[tuple[Any, ...]]) -> DraftResults:
    """Build the table column by column (much faster than row records for 100k rows).

    ``rows`` hold the ledger's columns in its order (:data:`_AT`), ``from_ledger`` optional.
    """
    columns: list[Sequence[Any]] = list(zip(*rows, strict=False)) if rows else [()] * len(_AT)
    if len(columns) == len(_AT) - 1:
        columns.append([False] * len(rows))

    def col(name: str) -> Sequence[Any]:
        return columns[_AT[name]]

    data = {
        "document_id": pd.array(col("document_id"), dtype=_STRING),
        "branch_id": pd.array(col("branch_id"), dtype=_STRING),
        "draft_id": pd.array(col("draft_id"), dtype=_STRING),
        "status": pd.Categorical(col("status"), dtype=_STATUS),
        "http_status": pd.array(col("http_status"), dtype="Int64"),
        "message": pd.array(col("message"), dtype=_STRING),
        "attempts": pd.array(col("attempts"), dtype="Int64"),
        "queued_s": pd.array(col("queued_s"), dtype="float64"),
        "elapsed_s": pd.array(col("elapsed_s"), dtype="float64"),
        "requested_at": pd.to_datetime(
            pd.Series(col("requested_at_us"), dtype="int64"), unit="us", utc=True
        ),
        "key": pd.array(col("key"), dtype=_STRING),
        "api_root": pd.array(col("api_root"), dtype=_STRING),
        "run_id": pd.array(col("run_id"), dtype=_STRING),
        "from_ledger": pd.array(col("from_ledger"), dtype="bool"),
    }
    table = DraftResults(data)
    table.errors = [None] * len(rows)
    return table


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
    frame = pd.DataFrame(
        list(records),
        columns=["input", "document_id", "branch_id", "valid", "request", "message"],
    ).astype({"document_id": "string", "branch_id": "string", "valid": "bool",
              "request": "string", "message": "string"})
    frame.attrs["summary"] = summary
    return frame


def text_view(table: pd.DataFrame, limit: int = 15) -> str:
    """The summary and the first ``limit`` rows' main columns, for a terminal.

    Example:
        >>> text_view(frame_from_rows([]))
        '0 rows'
    """
    head = summarize(table)
    if not len(table):
        return head
    columns = ["document_id", "branch_id", "draft_id", "status", "http_status", "message"]
    with pd.option_context("display.width", 160, "display.max_columns", 8):
        return head + "\n" + table[columns].head(limit).to_string(index=False)
