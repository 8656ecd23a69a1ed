"""What a discard is asked to touch: ids and pairs as given, or a run's or a results table's
``ok`` creates with what each recorded (the draft it got back, its first send).

The recorded pairs make :class:`~.ops.DiscardDraft` careful: it discards a pair's active
draft only when that is the recorded draft and the run created it. Rows of a run or a table
that were not ``ok`` creates are not items at all: nothing is sent for them.

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


def undo_targets(items: Any, run_id: str | None, *, ledger: Ledger, api_root: str) -> UndoTargets:
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
    if run_id is not None:
        return _of_run(str(run_id), ledger, api_root)
    if "pandas" in sys.modules:  # a results table is a DataFrame: pandas is loaded already
        from ..table import is_results_frame, undo_rows_from_frame

        if is_results_frame(items):
            return _of_table(undo_rows_from_frame(items), ledger, api_root)
    return UndoTargets(items)


def _key(document_id: object, branch_id: object) -> Pair:
    """A pair as the planner will check it (branch ids are sent lower-case)."""
    return (str(document_id), branch_id.lower() if isinstance(branch_id, str) else None)


def _of_run(run_id: str, ledger: Ledger, api_root: str) -> UndoTargets:
    rows = ledger.run_rows(run_id)
    where = str(ledger.path) if ledger.path is not None else "the in-memory ledger"
    if not rows:
        raise InvalidInputError(f"run_id={run_id!r}: {where} has no run with that id "
                                "(omni_nb.results() lists the runs it has)")
    if all(r.action == "discard" for r in rows):
        raise InvalidInputError(
            f"run {run_id} discarded drafts: there is nothing to undo (Omni has no call that "
            "restores an archived draft)")
    _same_root(run_id, {r.api_root for r in rows}, api_root)
    ok = [r for r in rows if r.status == "ok" and r.action == "create" and r.draft_id]
    recorded = {_key(r.document_id, r.branch_id): Recorded(str(r.draft_id), r.requested_at_us)
                for r in ok}
    return UndoTargets([(r.document_id, r.branch_id) for r in ok], recorded)


def _of_table(rows: list[tuple[Any, ...]], ledger: Ledger, api_root: str) -> UndoTargets:
    _same_root("the table", {r[5] for r in rows if r[5] is not None}, api_root)
    unknown = [(str(doc), _key(doc, branch)[1], draft)
               for _, doc, branch, draft, when, _ in rows if when is None and doc is not None]
    known = ledger.first_sends(api_root, unknown)
    recorded: dict[Pair, Recorded] = {}
    for _, doc, branch, draft, when, _ in rows:
        key = _key(doc, branch)
        first = when if when is not None else known.get((key[0], key[1], draft))
        recorded[key] = Recorded(draft, first)
    return UndoTargets([(doc, branch) for _, doc, branch, _, _, _ in rows], recorded,
                       [f"row {pos}" for pos, *_ in rows])


def _same_root(what: str, roots: set[str], api_root: str) -> None:
    other = sorted(roots - {api_root})
    if other:
        raise InvalidInputError(
            f"{what} was sent to {other[0]}, but this discard would go to {api_root}: give the "
            "base_url= (or instance=) it was sent to")
