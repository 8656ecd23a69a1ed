"""The batch room: many inputs -> one result, every row in the ledger as it arrives.

* :mod:`.plan`: the one planner (inputs in any form -> checked, de-duplicated pairs).
* :mod:`.ops`: :class:`Operation` (what is done to each pair) and its registry:
  :data:`CREATE_DRAFT`, :class:`DiscardDraft` (careful undo), :class:`ListDrafts`.
* :mod:`.keywords`: the keywords every batch function takes, resolved once.
* :mod:`.api`: :func:`run_operation` / :func:`arun_operation` (any operation: plan once,
  then dry run, background or run), :class:`BatchInterrupted`, :func:`last_result`.
* :mod:`.drafts`: the draft families (:func:`create_drafts`, :func:`discard_drafts`,
  :func:`list_drafts`, their async twins, :func:`create_draft`).
* :mod:`.undo`: what a discard touches (ids, a run's or a table's ``ok`` creates).
* :mod:`.run`: the engine, generic over the operation, and :class:`BatchOptions`.
* :mod:`.background`: :class:`BatchRun`, a batch that does not hold the kernel.

Example:
    >>> from omni_nb.batch import plan
    >>> [i.sent for i in plan(["doc-1", "doc-1"]).inputs]
    [True, False]
"""

from .api import (
    BatchInterrupted,
    arun_batch,
    arun_operation,
    dry_run,
    last_result,
    run_batch,
    run_operation,
)
from .background import BatchRun, start
from .drafts import (
    acreate_drafts,
    adiscard_drafts,
    alist_drafts,
    create_draft,
    create_drafts,
    discard_drafts,
    discard_with,
    list_drafts,
    list_with,
)
from .keywords import BatchKeywords, SendKeywords
from .ops import (
    CLOCK_SKEW_S,
    CREATE_DRAFT,
    CreateDraft,
    DiscardDraft,
    ListDrafts,
    Operation,
    Recorded,
    operations,
    register,
)
from .plan import Plan, Planned, pairs_of, plan
from .run import BatchOptions, Progress

#: :func:`register` under the name the package root exports.
register_operation = register

__all__ = [
    "CLOCK_SKEW_S",
    "CREATE_DRAFT",
    "BatchInterrupted",
    "BatchKeywords",
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
    "SendKeywords",
    "acreate_drafts",
    "adiscard_drafts",
    "alist_drafts",
    "arun_batch",
    "arun_operation",
    "create_draft",
    "create_drafts",
    "discard_drafts",
    "discard_with",
    "dry_run",
    "last_result",
    "list_drafts",
    "list_with",
    "operations",
    "pairs_of",
    "plan",
    "register",
    "register_operation",
    "run_batch",
    "run_operation",
    "start",
]
