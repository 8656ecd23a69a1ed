"""The batch room: many inputs -> one results table, every row in the ledger as it arrives.

* :mod:`.plan`: the one planner (inputs in any form -> checked, de-duplicated pairs), also
  behind ``--dry-run``.
* :mod:`.ops`: operations (what is done to each pair): :data:`CREATE_DRAFT`,
  :class:`DiscardDraft` (careful undo), :class:`ListDrafts`.
* :mod:`.undo`: what a discard touches (ids, a run's or a table's ``ok`` creates).
* :mod:`.run`: the engine, generic over the operation, and :class:`BatchOptions`.
* :mod:`.api`: the functions users call (:func:`create_drafts`, :func:`discard_drafts`,
  :func:`list_drafts`...) and the front ends' entry
  (:func:`run_batch`).

Example:
    >>> from omni_nb.batch import plan
    >>> [i.sent for i in plan(["doc-1", "doc-1"]).inputs]
    [True, False]
"""

from .api import (
    BatchInterrupted,
    acreate_drafts,
    adiscard_drafts,
    alist_drafts,
    arun_batch,
    create_draft,
    create_drafts,
    discard_drafts,
    discard_with,
    dry_run,
    last_result,
    list_drafts,
    list_with,
    run_batch,
)
from .background import BatchRun, start
from .ops import (
    CLOCK_SKEW_S,
    CREATE_DRAFT,
    CreateDraft,
    DiscardDraft,
    ListDrafts,
    Operation,
    Recorded,
)
from .plan import Plan, Planned, pairs_of, plan
from .run import BatchOptions, Progress

__all__ = [
    "CLOCK_SKEW_S",
    "CREATE_DRAFT",
    "BatchInterrupted",
    "BatchOptions",
    "BatchRun",
    "CreateDraft",
    "DiscardDraft",
    "ListDrafts",
    "Operation",
    "Plan",
    "Planned",
    "Progress",
    "Recorded",
    "acreate_drafts",
    "adiscard_drafts",
    "alist_drafts",
    "arun_batch",
    "create_draft",
    "create_drafts",
    "discard_drafts",
    "discard_with",
    "dry_run",
    "last_result",
    "list_drafts",
    "list_with",
    "pairs_of",
    "plan",
    "run_batch",
    "start",
]
