"""The draft families: create, discard and list drafts of many documents, each one sync
function and its async twin with the same keywords (:class:`~.keywords.BatchKeywords`),
``dry_run=`` on all of them and ``background=`` on the sync ones.

Each function resolves its keywords once, prepares its operation and items (a discard finds
what a run or a table recorded; a listing folds documents), and hands both to
:func:`.api.run_resolved` / :func:`.api.arun_resolved`, which plan once and run.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

from ..client import Draft, OmniClient
from ..config import Settings, resolve_settings
from ..errors import InvalidInputError
from ..ledger import open_ledger
from ..ratelimit import RateLimit, shared_limiter
from .api import arun_resolved, run_resolved
from .background import BatchRun
from .keywords import BatchKeywords, Resolved, SendKeywords, resolve
from .ops import CREATE_DRAFT, DiscardDraft, ListDrafts
from .plan import pairs_of
from .run import BatchOptions, Progress, ledger_of
from .undo import undo_targets

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from ..ledger import Ledger
    from ..table import DraftResults

__all__ = [
    "acreate_drafts",
    "adiscard_drafts",
    "alist_drafts",
    "create_draft",
    "create_drafts",
    "discard_drafts",
    "discard_with",
    "list_drafts",
    "list_with",
]


# -- create -----------------------------------------------------------------------------------


@overload
def create_drafts(
    items: Any, branch_id: str | None = None, *, dry_run: Literal[False] = False,
    background: Literal[False] = False, **keywords: Unpack[BatchKeywords],
) -> DraftResults: ...
@overload
def create_drafts(
    items: Any, branch_id: str | None = None, *, dry_run: Literal[False] = False,
    background: Literal[True], **keywords: Unpack[BatchKeywords],
) -> BatchRun: ...
@overload
def create_drafts(
    items: Any, branch_id: str | None = None, *, dry_run: Literal[True],
    background: Literal[False] = False, **keywords: Unpack[BatchKeywords],
) -> pd.DataFrame: ...
@overload
def create_drafts(
    items: Any, branch_id: str | None = None, *, dry_run: bool = False,
    background: bool = False, **keywords: Unpack[BatchKeywords],
) -> DraftResults | BatchRun | pd.DataFrame: ...
def create_drafts(
    items: Any, branch_id: str | None = None, *, dry_run: bool = False,
    background: bool = False, **keywords: Unpack[BatchKeywords],
) -> DraftResults | BatchRun | pd.DataFrame:
    """Create drafts for many documents; returns the results table.

    ``items``: document ids, ``(document_id, branch_id)`` pairs, or a DataFrame with a
    ``document_id`` column (``document_col=``) and optionally a ``branch_id`` column
    (``branch_col=``). A pair's missing branch means ``branch_id`` (default: no branch).
    Duplicate pairs are sent once. Per-item failures are rows, never exceptions; settings
    errors (no token, unsafe URL) raise before anything is sent.

    Keywords (every batch function takes them): ``base_url``/``instance``/``playground``,
    ``token``/``tokens`` (or resolved ``settings=``); ``concurrency`` (8), ``rate_limit``
    (per key), ``max_retries`` or ``retry=RetryPolicy(...)``, ``timeout`` (30 s),
    ``resume``, ``ledger`` (or built ``options=BatchOptions(...)``); ``progress`` (a callable
    ``(done, total, row)``), ``cancel`` (a ``threading.Event``: set, it stops the batch and
    the table is returned), ``document_col``, ``branch_col``, ``labels``.

    Columns: ``document_id``, ``branch_id``, ``draft_id``, ``status``, ``http_status``,
    ``message``, ``attempts``, ``queued_s``, ``elapsed_s``, ``requested_at``, ``key``,
    ``api_root``, ``run_id``, ``from_ledger``, ``action``. ``resume=True`` copies ``ok``
    rows from the ledger instead of sending.

    ``tokens=[...]`` (or ``login(tokens=...)``, or ``OMNI_API_TOKENS``) gives a pool of API
    keys, each with its own rate budget (``rate_limit`` is per key): each request goes on the
    key that can send soonest, ``key`` names it (a short digest, never the token). A key the
    server refuses leaves the pool with a :class:`omni_nb.KeyRefusedWarning`; the batch
    stops only when no key is left. ``dry_run=True`` returns what would be sent (nothing is);
    ``background=True`` returns a :class:`~omni_nb.batch.BatchRun` at once (the kernel stays
    free; ``.wait()`` gives the table, ``.cancel()`` stops it).

    Progress: with ``progress=None`` (the default) the batch shows what the magic shows where
    a person watches: a live widget bar in a notebook (a static summary once it ends), a
    text bar on a terminal, a few lines in a headless run (nbclient, papermill), and nothing
    in a script or test with no terminal. ``progress=False`` shows nothing anywhere; a
    callable ``(done, total, row)`` is called for each result instead (from the batch's
    thread), and nothing else is shown.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     t = create_drafts(["doc-0001", "doc-0010", "nope"], base_url=sb.base_url,
        ...                       token=sb.token, ledger="off")
        >>> list(t["status"])
        ['ok', 'not_eligible', 'not_found']
    """
    result: DraftResults | BatchRun | pd.DataFrame = run_resolved(
        CREATE_DRAFT, items, branch_id, resolve(keywords), dry_run=dry_run,
        background=background)
    return result


async def acreate_drafts(
    items: Any, branch_id: str | None = None, *, dry_run: bool = False,
    **keywords: Unpack[BatchKeywords],
) -> DraftResults:
    """Async :func:`create_drafts` (one row per distinct input, in input order).

    Example:
        >>> import asyncio
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     t = asyncio.run(acreate_drafts(["doc-0001"], base_url=sb.base_url,
        ...                                    token=sb.token, ledger="off"))
        >>> t["draft_id"].notna().all()
        np.True_
    """
    result: DraftResults = await arun_resolved(CREATE_DRAFT, items, branch_id,
                                               resolve(keywords), dry_run=dry_run)
    return result


def create_draft(
    document_id: str,
    branch_id: str | None = None,
    *,
    base_url: str | None = None,
    token: str | None = None,
    tokens: Sequence[str] | None = None,
    instance: str | None = None,
    playground: bool | None = None,
    rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, safe to share
    ledger: str | Path | Ledger | None = None,
    timeout: float = 30.0,
) -> Draft:
    """One draft, recorded in the ledger; raises the typed error on failure. With a pool
    (``tokens=``), it is sent on the key that can send soonest.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     create_draft("doc-0001", base_url=sb.base_url, token=sb.token,
        ...                  ledger="off").document_id
        'doc-0001'
    """
    settings = resolve_settings(base_url, token, tokens=tokens, instance=instance,
                                playground=playground, ledger=ledger)
    store = open_ledger(settings)
    key = min(settings.tokens, key=lambda secret: shared_limiter(
        settings.api_root, secret.fingerprint(), rate_limit,
        budget=settings.budget).caller(rate_limit).next_send_in())
    with OmniClient(
        settings=settings.for_key(key), rate_limit=rate_limit, timeout=timeout,
        on_result=store.record_outcome,
    ) as client:
        return client.create_draft(document_id, branch_id)


# -- discard ----------------------------------------------------------------------------------


def _careful(items: Any, run_id: str | None, branch_id: str | None,
             resolved: Resolved, trust_old_ledger: bool = False,
             ) -> tuple[DiscardDraft, Any, Resolved]:
    """The discard operation, its items and their labels for ``discard_drafts``' input."""
    targets = undo_targets(items, run_id, ledger=ledger_of(resolved.settings, resolved.options),
                           api_root=resolved.settings.api_root,
                           trust_old_ledger=trust_old_ledger)
    if branch_id is not None and (run_id is not None or targets.labels is not None):
        raise InvalidInputError(
            "branch_id= applies to document ids and pairs; a run or a results table names "
            "each row's branch")
    if targets.labels is not None:  # a table's rows are named by their position in it
        from dataclasses import replace

        resolved = replace(resolved, labels=targets.labels)
    return DiscardDraft(targets.recorded), targets.items, resolved


@overload
def discard_drafts(
    items: Any = None, *, run_id: str | None = None, branch_id: str | None = None,
    dry_run: Literal[False] = False, background: Literal[False] = False,
    trust_old_ledger: bool = False, **keywords: Unpack[BatchKeywords],
) -> DraftResults: ...
@overload
def discard_drafts(
    items: Any = None, *, run_id: str | None = None, branch_id: str | None = None,
    dry_run: Literal[False] = False, background: Literal[True],
    trust_old_ledger: bool = False, **keywords: Unpack[BatchKeywords],
) -> BatchRun: ...
@overload
def discard_drafts(
    items: Any = None, *, run_id: str | None = None, branch_id: str | None = None,
    dry_run: Literal[True], background: Literal[False] = False,
    trust_old_ledger: bool = False, **keywords: Unpack[BatchKeywords],
) -> pd.DataFrame: ...
@overload
def discard_drafts(
    items: Any = None, *, run_id: str | None = None, branch_id: str | None = None,
    dry_run: bool = False, background: bool = False, trust_old_ledger: bool = False,
    **keywords: Unpack[BatchKeywords],
) -> DraftResults | BatchRun | pd.DataFrame: ...
def discard_drafts(
    items: Any = None, *, run_id: str | None = None, branch_id: str | None = None,
    dry_run: bool = False, background: bool = False, trust_old_ledger: bool = False,
    **keywords: Unpack[BatchKeywords],
) -> DraftResults | BatchRun | pd.DataFrame:
    """Discard (archive) drafts; returns the results table, ``action`` ``discard``.

    ``items``: document ids or ``(document_id, branch_id)`` pairs (or a DataFrame of them,
    as for :func:`create_drafts`): each pair's active draft is discarded, as asked. Or a
    results table (any DataFrame with ``document_id``, ``status`` and ``draft_id`` columns,
    filtered or not), or ``run_id=`` (a run in the ledger): their ``ok`` creates (and a
    run's requests in flight when it was cancelled) are undone carefully: a pair's drafts
    are listed first, and its DELETE is sent only when the active draft is the one recorded
    and its ``createdAt`` falls inside one of the run's requests to Omni, in Omni's time
    (the ledger's evidence, :mod:`omni_nb.evidence`); otherwise the row is ``skipped`` with
    the reason ("made before the run", "made while the run waited out a 429", "replaced
    since"...), or ``not_found`` when no draft is active. Rows that were not ``ok`` creates
    send nothing. ``draft_id`` of an ``ok`` row is the draft that was archived. Rows an
    older omni_nb recorded with several attempts (or before ``requested_at`` meant the first
    send) are skipped unless ``trust_old_ledger=True``.

    ``dry_run=True`` lists and decides, sends no DELETE, and returns the dry-run table (what
    each input would do). ``resume=True`` copies the pairs whose latest ``ok`` row in the
    ledger is a discard. The keywords are :func:`create_drafts`'.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     kw = dict(base_url=sb.base_url, token=sb.token, ledger="off")
        ...     made = create_drafts(["doc-0001", "nope"], **kw)
        ...     t = discard_drafts(made, **kw)
        >>> list(t["status"]), list(t["action"])
        (['ok'], ['discard'])
    """
    op, todo, resolved = _careful(items, run_id, branch_id, resolve(keywords), trust_old_ledger)
    result: DraftResults | BatchRun | pd.DataFrame = run_resolved(
        op, todo, branch_id, resolved, dry_run=dry_run, background=background)
    return result


async def adiscard_drafts(
    items: Any = None, *, run_id: str | None = None, branch_id: str | None = None,
    dry_run: bool = False, trust_old_ledger: bool = False, **keywords: Unpack[BatchKeywords],
) -> DraftResults | pd.DataFrame:
    """Async :func:`discard_drafts`.

    Example:
        >>> import asyncio
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     t = asyncio.run(adiscard_drafts(["doc-0001"], dry_run=True, ledger="off",
        ...                                     base_url=sb.base_url, token=sb.token))
        >>> t["message"].tolist()
        ['no active draft is listed: Omni would answer 404']
    """
    op, todo, resolved = _careful(items, run_id, branch_id, resolve(keywords), trust_old_ledger)
    result: DraftResults | pd.DataFrame = await arun_resolved(op, todo, branch_id, resolved,
                                                               dry_run=dry_run)
    return result


# -- list -------------------------------------------------------------------------------------


def _documents(documents: Any, resolved: Resolved) -> list[tuple[Any, None]]:
    """One listing per document: branches in the input are dropped (documents fold)."""
    return [(doc, None) for doc, _ in pairs_of(documents, resolved.document_col, None)]


@overload
def list_drafts(
    documents: Any, *, include_archived: bool = False, dry_run: Literal[False] = False,
    background: Literal[False] = False, **keywords: Unpack[SendKeywords],
) -> pd.DataFrame: ...
@overload
def list_drafts(
    documents: Any, *, include_archived: bool = False, dry_run: Literal[False] = False,
    background: Literal[True], **keywords: Unpack[SendKeywords],
) -> BatchRun: ...
@overload
def list_drafts(
    documents: Any, *, include_archived: bool = False, dry_run: Literal[True],
    background: Literal[False] = False, **keywords: Unpack[SendKeywords],
) -> pd.DataFrame: ...
@overload
def list_drafts(
    documents: Any, *, include_archived: bool = False, dry_run: bool = False,
    background: bool = False, **keywords: Unpack[SendKeywords],
) -> pd.DataFrame | BatchRun: ...
def list_drafts(
    documents: Any, *, include_archived: bool = False, dry_run: bool = False,
    background: bool = False, **keywords: Unpack[SendKeywords],
) -> pd.DataFrame | BatchRun:
    """The drafts of many documents: a DataFrame, one row per draft.

    ``documents``: ids, or a DataFrame with a ``document_id`` column (``document_col=``; a
    results table works: its branches are ignored, every draft of the document is listed).
    Columns: :data:`omni_nb.rows.DRAFT_COLUMNS` (``document_id``, ``draft_id``,
    ``branch_id``, ``branch_name``, ``draft_status`` (Omni's: active, archived),
    ``out_of_date``, ``created_at``, ``updated_at`` (UTC), ``created_by``,
    ``last_edited_by``, and the listing's ``status`` and ``message``): a document whose
    listing failed (or an invalid id) is one row with its outcome and no draft; a document
    with no draft has no row. ``include_archived=True`` lists archived drafts too. Requests
    share the batch's rate budget and report to ``progress`` per document; nothing is
    recorded in the ledger. ``dry_run=True`` shows the GETs and sends nothing;
    ``background=True`` returns a :class:`~omni_nb.batch.BatchRun` whose ``wait()`` gives
    the drafts table. One document's drafts: ``OmniClient().list_drafts(document_id)``.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     kw = dict(base_url=sb.base_url, token=sb.token)
        ...     _ = create_drafts(["doc-0001"], ledger="off", **kw)
        ...     d = list_drafts(["doc-0001", "nope"], **kw)
        >>> list(d["status"]), d["draft_status"].tolist()[0], d["message"].iloc[1]
        (['ok', 'not_found'], 'active', 'Document with identifier nope not found')
    """
    resolved = resolve(keywords, SendKeywords)
    result: pd.DataFrame | BatchRun = run_resolved(
        ListDrafts(include_archived), _documents(documents, resolved), None, resolved,
        dry_run=dry_run, background=background)
    return result


async def alist_drafts(
    documents: Any, *, include_archived: bool = False, dry_run: bool = False,
    **keywords: Unpack[SendKeywords],
) -> pd.DataFrame:
    """Async :func:`list_drafts`.

    Example:
        >>> import asyncio
        >>> from omni_nb import sandbox
        >>> with sandbox.serve() as sb:
        ...     d = asyncio.run(alist_drafts(["doc-0001"], base_url=sb.base_url,
        ...                                  token=sb.token))
        >>> len(d)
        0
    """
    resolved = resolve(keywords, SendKeywords)
    result: pd.DataFrame = await arun_resolved(
        ListDrafts(include_archived), _documents(documents, resolved), None, resolved,
        dry_run=dry_run)
    return result


# -- the entries front ends used before every family took settings= and options= -----------


def discard_with(
    items: Any = None, *, run_id: str | None = None, branch_id: str | None = None,
    dry_run: bool = False, settings: Settings, options: BatchOptions,
    progress: Progress | None = None, document_col: str = "document_id",
    branch_col: str | None = None, cancel: threading.Event | None = None,
    background: bool = False, labels: Sequence[str] | None = None,
) -> DraftResults | BatchRun | pd.DataFrame:
    """Deprecated: :func:`discard_drafts` with ``settings=`` and ``options=``.

    Example:
        >>> import warnings
        >>> from omni_nb import sandbox
        >>> from omni_nb.batch import BatchOptions
        >>> from omni_nb.config import resolve_settings
        >>> with sandbox.serve() as sb, warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     s = resolve_settings(sb.base_url, sb.token)
        ...     t = discard_with(["nope"], settings=s, options=BatchOptions(ledger="off"))
        >>> t["status"].tolist()
        ['not_found']
    """
    warnings.warn("discard_with() is deprecated: call discard_drafts(settings=, options=)",
                  DeprecationWarning, stacklevel=2)
    return discard_drafts(
        items, run_id=run_id, branch_id=branch_id, dry_run=dry_run, background=background,
        settings=settings, options=options, progress=progress, document_col=document_col,
        branch_col=branch_col, cancel=cancel, labels=labels)


def list_with(
    documents: Any, *, include_archived: bool = False, settings: Settings,
    options: BatchOptions, progress: Progress | None = None,
    document_col: str = "document_id", cancel: threading.Event | None = None,
) -> pd.DataFrame:
    """Deprecated: :func:`list_drafts` with ``settings=`` and ``options=``.

    Example:
        >>> import warnings
        >>> from omni_nb.batch import BatchOptions
        >>> from omni_nb.config import resolve_settings
        >>> s = resolve_settings("https://a.omniapp.co", "t", environ={})
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     list_with([None], settings=s, options=BatchOptions())["status"].tolist()
        ['invalid']
    """
    warnings.warn("list_with() is deprecated: call list_drafts(settings=, options=)",
                  DeprecationWarning, stacklevel=2)
    return list_drafts(documents, include_archived=include_archived, settings=settings,
                       options=options, progress=progress, document_col=document_col,
                       cancel=cancel)
