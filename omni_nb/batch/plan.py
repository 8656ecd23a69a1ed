"""The one planner: inputs in any form -> what each becomes (sent, invalid, or a duplicate).

Every way of giving documents (ids, ``(id, branch)`` pairs, a DataFrame, lines typed in a
magic cell, a CSV) becomes a list of raw pairs, then a :class:`Plan`: each input checked,
the batch-wide branch applied, identical pairs folded into their first occurrence. The batch
engine sends a plan's distinct valid pairs, and ``--dry-run`` shows the same plan: what a
dry run says is what a run does.

Example:
    >>> p = plan(["doc-1", "doc-1", "../x"])
    >>> [(i.label, i.first, i.error is not None) for i in p.inputs]
    [('item 1', None, False), ('item 2', 'item 1', False), ('item 3', None, True)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._text import shorten
from ..client.validate import check_branch_id, check_document_id
from ..errors import InvalidInputError

__all__ = ["Plan", "Planned", "pairs_of", "plan"]

RawPair = tuple[object, object]


@dataclass(frozen=True, slots=True)
class Planned:
    """One input, planned.

    ``document_id``/``branch_id`` are the checked values (for an invalid input, the raw
    values as text, cut). ``error`` says why an input is not sent; ``first`` names the
    identical earlier input that is sent in its place.

    Example:
        >>> Planned("item 1", "doc-1", None).sent
        True
    """

    label: str
    document_id: str
    branch_id: str | None
    error: str | None = None
    first: str | None = None

    @property
    def sent(self) -> bool:
        """True for the inputs the batch sends (valid, and not a duplicate)."""
        return self.error is None and self.first is None


@dataclass(frozen=True, slots=True)
class Plan:
    """Every input in input order (:attr:`inputs`); :attr:`distinct` are the table's rows.

    Example:
        >>> len(plan(["a", "a"]).distinct)
        1
    """

    inputs: list[Planned]

    @property
    def distinct(self) -> list[Planned]:
        """One per distinct input (duplicates folded), in input order: a results row each."""
        return [i for i in self.inputs if i.first is None]


def pairs_of(
    items: Any, document_col: str = "document_id", branch_col: str | None = None
) -> list[RawPair]:
    """``(document, branch)`` pairs from ids, pairs, or a DataFrame (branch None: not given).

    Example:
        >>> pairs_of(["a", ("b", "7c9e6679-7425-40de-944b-e07fc1f90ae7")])
        [('a', None), ('b', '7c9e6679-7425-40de-944b-e07fc1f90ae7')]
    """
    if isinstance(items, str | bytes):
        raise InvalidInputError(
            "items must be a list of document ids, of (document_id, branch_id) pairs, or a "
            "DataFrame; got a single string (wrap it in a list)"
        )
    if any(cls.__module__.startswith("pandas") for cls in type(items).__mro__):
        # a DataFrame, or a subclass of one (a results table)
        from ..table import items_from_frame  # pandas only when a DataFrame was given

        framed = items_from_frame(items, document_col, branch_col)
        if framed is not None:
            return framed
    if not isinstance(items, Iterable):
        raise InvalidInputError(
            f"items must be a list of document ids, pairs or a DataFrame, not "
            f"{type(items).__name__}"
        )
    return [
        (item[0], item[1]) if isinstance(item, tuple | list) and len(item) == 2 else (item, None)
        for item in items
    ]


def plan(
    items: Any,
    *,
    branch_id: object = None,
    document_col: str = "document_id",
    branch_col: str | None = None,
    labels: Sequence[str] | None = None,
) -> Plan:
    """Plan a batch: check every input, apply ``branch_id`` where an input has none, fold
    duplicates. A bad ``branch_id`` raises (it is the caller's, not an item's).

    ``labels`` name the inputs in messages (default ``item 1``, ``item 2``...).

    Example:
        >>> p = plan([("doc-1", None)], branch_id="7C9E6679-7425-40DE-944B-E07FC1F90AE7")
        >>> p.inputs[0].branch_id
        '7c9e6679-7425-40de-944b-e07fc1f90ae7'
    """
    default_branch = check_branch_id(branch_id)
    pairs = pairs_of(items, document_col, branch_col)
    if labels is None:
        labels = [f"item {n}" for n in range(1, len(pairs) + 1)]
    seen: dict[object, str] = {}
    # One object per distinct branch: a DataFrame's branch column repeats a few branches,
    # and each checked value is a new (lower-cased) string.
    branches: dict[str | None, str | None] = {None: None}
    planned: list[Planned] = []
    for label, (raw_doc, raw_branch) in zip(labels, pairs, strict=True):
        try:
            if raw_doc is None:  # a missing value (None, NaN, NA in a DataFrame, a short line)
                raise InvalidInputError("no document id (a missing value)")
            doc = check_document_id(raw_doc)
            branch = check_branch_id(raw_branch) if raw_branch is not None else default_branch
        except InvalidInputError as exc:
            # Identical bad values fold like identical pairs; missing ones never do: each
            # is its own row, named by its position.
            key: object = ("invalid", label if raw_doc is None else repr(raw_doc),
                           repr(raw_branch))
            planned.append(Planned(
                label, "" if raw_doc is None else shorten(str(raw_doc), 300), _text(raw_branch),
                f"{label}: {exc}", seen.get(key),
            ))
        else:
            branch = branches.setdefault(branch, branch)
            # A pair without a branch is keyed by its id alone (no tuple per input): a key
            # that is a string never equals a tuple one.
            key = doc if branch is None else (doc, branch)
            # The same pair is sent once: the API would answer with the same draft.
            planned.append(Planned(label, doc, branch, None, seen.get(key)))
        seen.setdefault(key, label)
    return Plan(planned)


def _text(value: object) -> str | None:
    return None if value is None else shorten(str(value), 300)
