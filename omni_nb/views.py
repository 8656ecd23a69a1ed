"""How results and listings read: their summaries, the compact HTML a notebook shows (a
status bar, the columns an analyst reads first, discards as "archived", a headline for a
refused token or an unreachable instance, messages cut at a word), and the text views a
terminal and ``repr`` show. Every display of rows (the table's, the magic's, the CLI's, the
form's) goes through here.

Frames come from :mod:`omni_nb.table`, which imports this module (never the reverse).

Example:
    >>> import pandas as pd
    >>> summarize(pd.DataFrame({"status": ["ok", "not_found", "ok"]}))
    '3 rows: 2 ok, 1 not_found'
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ._text import one_line, plural
from .rows import DRAFT_SHOWN, SHOWN, STATUS_COLOURS, STATUSES, TEXT_COLUMNS

__all__ = [
    "compact_html",
    "compact_text",
    "cut_at_word",
    "headline",
    "listing_html",
    "listing_summary",
    "listing_text",
    "shown_summary",
    "status_words",
    "summarize",
    "text_view",
]


def summarize(frame: pd.DataFrame) -> str:
    """``N rows: a ok, b not_found ...`` (only statuses present).

    Example:
        >>> from omni_nb.table import frame_from_rows
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


def text_view(
    table: pd.DataFrame, limit: int = 15, *, newest_first: bool = False, hint: str = ""
) -> str:
    """The headline (a refused token), the summary and the first ``limit`` rows' main columns,
    for a terminal, and how many rows were not shown (then ``hint``). Rows read as
    :func:`status_words` says (a discard that worked is ``archived``), with an ``action``
    column when the table holds more than creates. ``newest_first`` reverses the rows, says so
    in the summary line and adds the ``run_id`` column (a ledger view).

    Example:
        >>> from omni_nb.table import frame_from_rows
        >>> from omni_nb.rows import Row
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
        >>> from omni_nb.table import frame_from_rows
        >>> from omni_nb.rows import Row
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
        >>> from omni_nb.table import frame_from_rows
        >>> from omni_nb.rows import Row
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
        >>> from omni_nb.table import frame_from_rows
        >>> from omni_nb.rows import Row
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
        >>> from omni_nb.table import frame_from_rows
        >>> from omni_nb.rows import Row
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
        >>> from omni_nb.table import drafts_frame
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


def compact_text(table: pd.DataFrame) -> str:
    """A results table as ``repr`` shows it: the headline, the summary, the main columns cut
    to a line each.

    Example:
        >>> from omni_nb.table import frame_from_rows
        >>> compact_text(frame_from_rows([])).splitlines()[0]
        '0 rows'
    """
    line = headline(table)
    head = f"{line}\n{shown_summary(table)}" if line else shown_summary(table)
    with pd.option_context("display.max_columns", len(SHOWN) + 1, "display.width", 160):
        return f"{head}\n{_compact_frame(table, cut=True).__repr__()}"


def listing_text(frame: pd.DataFrame) -> str:
    """A drafts listing as ``repr`` shows it: its summary, then the shown columns with blanks
    for missing values.

    Example:
        >>> from omni_nb.table import drafts_frame
        >>> listing_text(drafts_frame([])).splitlines()[0]
        '0 drafts of 0 documents.'
    """
    columns = [c for c in DRAFT_SHOWN if c in frame.columns]
    view = pd.DataFrame(frame[columns]).astype(object)
    with pd.option_context("display.max_columns", len(columns), "display.width", 160):
        return f"{listing_summary(frame)}\n{view.where(view.notna(), '').__repr__()}"
