"""What a discard is asked to touch: ids and pairs as given, or a run's or a results table's
creates with the evidence the ledger holds for each (which requests could have made the
draft, and Omni's clock against ours: :mod:`omni_nb.evidence`).

The recorded pairs make :class:`~.ops.DiscardDraft` careful: it discards a pair's active
draft only when that is the recorded draft and its ``createdAt`` falls inside one of the
recorded requests' intervals. Rows of a run or a table that were not ``ok`` creates are not
items at all (nothing is sent for them), except a run's requests that were in flight when
it was cancelled: their pairs are checked by the same evidence.

Rows an older omni_nb wrote hold no evidence. One with a single attempt still carries its
interval (``requested_at`` to ``requested_at + elapsed_s``, judged with the 2 s allowance);
one with several attempts, or from before ``requested_at`` meant the first send (no
``key``), cannot say whose draft it got, and is ``skipped`` unless the caller says
``trust_old_ledger=True`` (then its whole call stands for the request's time).

Example:
    >>> from omni_nb.ledger import Ledger
    >>> t = undo_targets(["doc-1"], None, ledger=Ledger(None), api_root="https://a/api")
    >>> t.items, t.recorded
    (['doc-1'], {})
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from ..evidence import ALLOWANCE_S, Attempt, ClockBound, Evidence, meet_all
from ..ledger import Ledger
from .ops import Pair, Recorded

__all__ = ["UndoTargets", "undo_targets"]


@dataclass(frozen=True, slots=True)
class UndoTargets:
    """The items to plan (``labels`` name them in messages, None: ``item N``), and what was
    recorded for the pairs to undo carefully."""

    items: Any
    recorded: dict[Pair, Recorded] = field(default_factory=dict)
    labels: list[str] | None = None


def undo_targets(items: Any, run_id: str | None, *, ledger: Ledger, api_root: str,
                 trust_old_ledger: bool = False) -> UndoTargets:
    """Resolve ``discard_drafts``' ``items`` / ``run_id=`` (exactly one of them).

    Raises :class:`InvalidInputError` for neither or both, a run the ledger does not know, a
    discard run, and rows sent to another API root.
    """
    if items is None and run_id is None:
        raise InvalidInputError(
            "discard_drafts() needs items (document ids, (id, branch) pairs or a results "
            "table) or run_id= (a run to undo)")
    if items is not None and run_id is not None:
        raise InvalidInputError("give items or run_id=, not both")
    weigh = _Weigher(ledger, api_root, trust_old_ledger)
    if run_id is not None:
        return _of_run(str(run_id), ledger, weigh)
    if "pandas" in sys.modules:  # a results table is a DataFrame: pandas is loaded already
        from ..table import is_results_frame, undo_rows_from_frame

        if is_results_frame(items):
            return _of_table(undo_rows_from_frame(items), weigh, _spans(items))
    return UndoTargets(items)


def _key(document_id: object, branch_id: object) -> Pair:
    """A pair as the planner will check it (branch ids are sent lower-case)."""
    return (str(document_id), branch_id.lower() if isinstance(branch_id, str) else None)


#: One create row as the ledger gives it to an undo (:data:`omni_nb.ledger.CREATE_FIELDS`).
_Stored = tuple[Any, ...]
_DOC, _BRANCH, _DRAFT, _STATUS, _ATTEMPTS, _ELAPSED, _SENT, _KEY, _RUN, _COPY, _EVIDENCE = range(11)

_OLDER = ("recorded by an older omni_nb: cannot tell whose draft ({why}); "
          "discard_drafts(..., trust_old_ledger=True) or --trust-old-ledger takes the whole "
          "call for the request's time")


class _Weigher:
    """Reads the ledger's evidence for the pairs to undo: the create rows of those pairs,
    each run's clock bound (once per run), and whether older rows are trusted."""

    def __init__(self, ledger: Ledger, api_root: str, trust_old: bool) -> None:
        self.ledger, self.api_root, self.trust_old = ledger, api_root, trust_old
        self._clocks: dict[str, tuple[ClockBound | None, str]] = {}
        self.stored: dict[Pair, list[_Stored]] = {}

    def load(self, pairs: set[Pair]) -> None:
        """Read every create row of ``pairs`` (their evidence), in arrival order."""
        for values in self.ledger.creates(self.api_root, pairs):
            self.stored.setdefault(_key(values[_DOC], values[_BRANCH]), []).append(values)

    def clock(self, run_id: str) -> tuple[ClockBound | None, str]:
        """A run's clock bound (the intersection of its rows') and what to say about it."""
        if run_id not in self._clocks:
            found = [Evidence.from_text(text) for text in self.ledger.run_evidence(run_id)]
            self._clocks[run_id] = meet_all([e.clock for e in found if e is not None])
        return self._clocks[run_id]

    def evidence(self, row: _Stored) -> tuple[Evidence | None, str]:
        """A stored row's evidence judged with its run's clock, and the note (or, with no
        evidence, why not)."""
        found = Evidence.from_text(row[_EVIDENCE])
        if found is not None:
            bound, note = self.clock(str(row[_RUN]))
            return found.with_clock(bound), note
        start = int(row[_SENT])
        span = Evidence((Attempt(start, start + int(float(row[_ELAPSED]) * 1e6)),))
        allowance = f"a row of an older omni_nb: a {ALLOWANCE_S:g} s allowance for the clocks"
        if self.trust_old:
            return span, f"trusted, as asked: {allowance}"
        if row[_KEY] is None:
            return None, _OLDER.format(why="its requested_at is when it was queued")
        if int(row[_ATTEMPTS]) != 1:
            return None, _OLDER.format(why=f"{row[_ATTEMPTS]} attempts, and no record of when "
                                       "each was sent")
        return span, allowance

    def recorded(self, pair: Pair, made: _Stored | None, draft: str | None,
                 first_us: int | None) -> Recorded:
        """What the undo of ``pair`` weighs: the row that got ``draft`` (``made``; None for
        a request in flight at a cancel), and the requests in flight before it."""
        rows = self.stored.get(pair, [])
        upto = rows.index(made) if made is not None and made in rows else len(rows)
        weighed = ([] if made is None else [made]) + [
            r for r in rows[:upto] if r[_STATUS] == "cancelled"]
        found = [self.evidence(r) for r in weighed]
        evidence = tuple(e for e, _ in found if e is not None)
        unknown = None if evidence or not found else found[0][1]
        note = found[0][1] if found and found[0][0] is not None else ""
        return Recorded(draft, first_us, evidence, unknown, note)

    def original(self, pair: Pair, draft: str) -> _Stored | None:
        """The first ok create of ``pair`` that got ``draft`` and was sent (not a copy)."""
        for row in self.stored.get(pair, []):
            if row[_STATUS] == "ok" and row[_DRAFT] == draft and not row[_COPY]:
                return row
        return None


def _of_run(run_id: str, ledger: Ledger, weigh: _Weigher) -> UndoTargets:
    rows = ledger.run_rows(run_id)
    where = str(ledger.path) if ledger.path is not None else "the in-memory ledger"
    if not rows:
        raise InvalidInputError(f"run_id={run_id!r}: {where} has no run with that id "
                                "(omni_nb.results() lists the runs it has)")
    if all(r.action == "discard" for r in rows):
        raise InvalidInputError(
            f"run {run_id} discarded drafts: there is nothing to undo (Omni has no call that "
            "restores an archived draft)")
    _same_root(run_id, {r.api_root for r in rows}, weigh.api_root)
    creates = [r for r in rows if r.action == "create" and r.status in ("ok", "cancelled")]
    weigh.load({_key(r.document_id, r.branch_id) for r in creates})
    recorded: dict[Pair, Recorded] = {}
    for pair, stored in weigh.stored.items():
        mine = [s for s in stored if s[_RUN] == run_id]
        made = next((s for s in reversed(mine) if s[_STATUS] == "ok"), None)
        if made is not None:
            draft = str(made[_DRAFT])
            source = weigh.original(pair, draft) if made[_COPY] else made
            recorded[pair] = weigh.recorded(pair, source, draft, int(made[_SENT]))
        elif mine:  # only requests in flight when this run was cancelled
            recorded[pair] = weigh.recorded(pair, None, None, None)
    # One item per pair, in the run's order (a pair may have an in-flight row and an ok one).
    items: dict[Pair, tuple[str, str | None]] = {}
    for r in creates:
        if _key(r.document_id, r.branch_id) in recorded:
            items.setdefault(_key(r.document_id, r.branch_id), (r.document_id, r.branch_id))
    return UndoTargets(list(items.values()), recorded)


def _spans(frame: Any) -> dict[int, tuple[int, float]]:
    """Each table row's (attempts, elapsed_s) by 1-based position, where the table has them
    (read as plain values: no pandas here)."""
    columns = getattr(frame, "columns", ())
    if "attempts" not in columns or "elapsed_s" not in columns:
        return {}
    spans: dict[int, tuple[int, float]] = {}
    for pos, (tries, elapsed) in enumerate(zip(list(frame["attempts"]),
                                               list(frame["elapsed_s"]), strict=True), 1):
        try:
            spans[pos] = (int(tries), float(elapsed))
        except (TypeError, ValueError):  # a missing value: no span for that row
            continue
    return spans


def _of_table(rows: list[tuple[Any, ...]], weigh: _Weigher,
              spans: dict[int, tuple[int, float]]) -> UndoTargets:
    _same_root("the table", {r[5] for r in rows if r[5] is not None}, weigh.api_root)
    weigh.load({_key(doc, branch) for _, doc, branch, _, _, _ in rows if doc is not None})
    where = str(weigh.ledger.path) if weigh.ledger.path is not None else "in memory"
    recorded: dict[Pair, Recorded] = {}
    for pos, doc, branch, draft, when, _ in rows:
        key = _key(doc, branch)
        made = weigh.original(key, str(draft))
        if made is not None:
            recorded[key] = weigh.recorded(key, made, draft, when)
            continue
        tries, elapsed = spans.get(pos, (0, 0.0))
        if when is not None and tries == 1:  # the table's own row carries its interval
            span = Evidence((Attempt(int(when), int(when) + int(elapsed * 1e6)),))
            recorded[key] = Recorded(draft, when, (span,), note=(
                f"judged by the table's row (the ledger, {where}, holds no request that got "
                f"it): a {ALLOWANCE_S:g} s allowance for the clocks"))
        else:
            recorded[key] = Recorded(draft, when, (), (
                f"cannot tell whose draft: the ledger ({where}) holds no request that got "
                f"draft {draft} back"))
    return UndoTargets([(doc, branch) for _, doc, branch, _, _, _ in rows], recorded,
                       [f"row {pos}" for pos, *_ in rows])


def _same_root(what: str, roots: set[str], api_root: str) -> None:
    other = sorted(roots - {api_root})
    if other:
        raise InvalidInputError(
            f"{what} was sent to {other[0]}, but this discard would go to {api_root}: give the "
            "base_url= (or instance=) it was sent to")
