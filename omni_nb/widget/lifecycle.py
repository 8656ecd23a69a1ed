"""The form's after-a-run part: "Discard these drafts" (a dry run, a confirmation, then the
careful discard) and "Show drafts" (the drafts of the documents in the box).

Nothing is discarded without the confirmation: pressing "Discard these drafts" sends only
listings (a dry run of :func:`omni_nb.discard_drafts`, with its own bar and Cancel), shows
a short list of the drafts it will archive and of those it will skip and why
(:mod:`.preview`), and asks; "Discard N drafts" sends the DELETEs, "Keep
them" drops the question. The discard undoes the run carefully: a draft the run did not
create (one that existed before it, one made since) is a ``skipped`` row, never archived.

Example:
    >>> question({"discard": 4, "skipped": 1}, {"existed before the run": 1})
    'Discard 4 drafts this run created? 1 will be skipped (existed before the run).'
"""

from __future__ import annotations

import html
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ipywidgets as w

from .._text import plural
from ..batch import BatchOptions, discard_drafts, list_drafts
from ..batch.preview import DiscardPreview
from ..config import Settings
from ..errors import OmniError
from .connect import Connector
from .live import run_live
from .panel import RunPanel
from .worker import Worker

if TYPE_CHECKING:
    import pandas as pd

    from ..table import DraftResults
    from .form import DraftForm

__all__ = ["AfterRun", "Lifecycle", "check_counts", "drafts_line", "question"]

@dataclass(frozen=True)
class _Pending:
    """A discard waiting for its confirmation: the table it undoes, the settings and options
    the dry run used (the discard uses the same), how many drafts it will discard."""

    table: DraftResults
    settings: Settings
    options: BatchOptions
    count: int


class AfterRun:
    """The after-a-run part of a form: "Discard these drafts" (the dry run, the question,
    the discard) and "Show drafts", with their buttons and what they found.

    ``table()`` is the run to undo (the form's last create run; None: nothing to discard),
    ``ids()`` the documents whose drafts "Show drafts" lists. Jobs run on ``worker``'s queue
    after ``connector`` checked the connection; progress, tables and lines go to ``panel``.
    ``discarded`` keeps the last discard's table, ``checked`` the last check's (dry run),
    ``drafts`` the last listing, ``pending`` the discard waiting for its confirmation.

    Example:
        >>> from omni_nb.batch import BatchOptions
        >>> from omni_nb.widget.connect import Connector
        >>> panel = RunPanel()
        >>> worker = Worker(panel, BatchOptions())
        >>> after = AfterRun(worker, Connector(None, None, worker=worker, panel=panel), panel,
        ...                  ids=list, table=lambda: None)
        >>> after.discard(wait=True) is None, panel.error
        (True, 'Nothing to discard: create drafts first.')
        >>> after.buttons(running=False); after.discard_button.disabled
        True
    """

    def __init__(self, worker: Worker, connector: Connector, panel: RunPanel, *,
                 ids: Callable[[], list[str]],
                 table: Callable[[], DraftResults | None]) -> None:
        self._worker = worker
        self._connector = connector
        self._panel = panel
        self._ids = ids
        self._table = table
        #: The last discard's results table (None before the first discard).
        self.discarded: DraftResults | None = None
        #: The last "Show drafts" listing (None before the first).
        self.drafts: pd.DataFrame | None = None
        #: The last discard check's dry-run table: each document's verdict in ``message``.
        self.checked: pd.DataFrame | None = None
        self.discard_button = w.Button(description="Discard these drafts", icon="trash",
                                       disabled=True, layout=w.Layout(width="auto"),
                                       tooltip="undo the last run: a check first, then a "
                                               "confirmation; only drafts it created")
        self.show_button = w.Button(description="Show drafts", icon="list",
                                    tooltip="list the drafts of the documents in the box")
        self.include_archived = w.Checkbox(value=False, description="include archived",
                                           indent=False, layout=w.Layout(width="auto"))
        self.question = w.HTML(value="")
        self.confirm_button = w.Button(description="Discard", button_style="danger",
                                       icon="trash", layout=w.Layout(width="auto"))
        self.keep_button = w.Button(description="Keep them")
        self.row = w.HBox([self.discard_button, self.show_button, self.include_archived])
        self.question_row = w.HBox([self.question, self.confirm_button, self.keep_button],
                                   layout=w.Layout(display="none"))
        #: The discard waiting for its confirmation (None: nothing asked).
        self.pending: _Pending | None = None
        self._undone = False  # the last run's discard ran to its end: nothing left to undo
        self.discard_button.on_click(lambda _: self.discard())
        self.confirm_button.on_click(lambda _: self.discard(confirm=True))
        self.keep_button.on_click(lambda _: self.keep())
        self.show_button.on_click(lambda _: self.show_drafts())

    # -- state -------------------------------------------------------------------------------

    def buttons(self, running: bool) -> None:
        """Enable what can be pressed now (called under the jobs' lock, like the form's).

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> from omni_nb.widget.connect import Connector
            >>> panel = RunPanel()
            >>> worker = Worker(panel, BatchOptions())
            >>> after = AfterRun(worker, Connector(None, None, worker=worker, panel=panel),
            ...                  panel, ids=list, table=lambda: None)
            >>> after.buttons(running=True); after.show_button.disabled
            True
        """
        self.discard_button.disabled = running or self._table() is None or self._undone
        self.show_button.disabled = running
        self.confirm_button.disabled = self.keep_button.disabled = running

    def new_run(self) -> None:
        """A create run ended: its drafts can be discarded, an older question is void.

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> from omni_nb.widget.connect import Connector
            >>> panel = RunPanel()
            >>> worker = Worker(panel, BatchOptions())
            >>> after = AfterRun(worker, Connector(None, None, worker=worker, panel=panel),
            ...                  panel, ids=list, table=lambda: None)
            >>> after.new_run(); after.pending is None
            True
        """
        self._undone = False
        self._ask(None)  # the job's end enables the button

    def keep(self) -> None:
        """The "Keep them" button: drop the question, send nothing.

        Example:
            ``form.lifecycle.keep()`` after ``form.discard(wait=True)`` asked (the form's
            tests press the button).
        """
        if self.pending is not None:
            self._ask(None)
            self._panel.say("Kept the drafts: nothing was discarded.")

    def _ask(self, pending: _Pending | None, line: str = "") -> None:
        self.pending = pending
        self.question.value = f"<b>{html.escape(line)}</b>" if line else ""
        if pending is not None:
            self.confirm_button.description = f"Discard {plural(pending.count, 'draft')}"
        self.question_row.layout.display = None if pending is not None else "none"

    # -- discard -----------------------------------------------------------------------------

    def discard(self, wait: bool = False, confirm: bool = False) -> pd.DataFrame | None:
        """See :meth:`DraftForm.discard`: a dry run and the question, or (``confirm``) the
        discard, with the dry run's settings when it asked, else resolved now.

        Example:
            ``form.lifecycle.discard(wait=True, confirm=True)`` is
            ``form.discard(wait=True, confirm=True)``.
        """
        pending = self.pending
        table = pending.table if confirm and pending is not None else self._table()
        if table is None:
            self._panel.fail("Nothing to discard: create drafts first.")
            return None
        try:
            settings, options = ((pending.settings, pending.options)
                                 if confirm and pending is not None else self._setup())
        except OmniError as exc:
            self._panel.fail(exc)
            return None
        if confirm:
            return self._worker.start(
                lambda cancel: self._discard(table, settings, options, cancel), wait=wait)
        # The check is a batch of listings: it has its bar and counts, and Cancel stops it.
        return self._worker.start(lambda cancel: self._check(table, settings, options, cancel),
                                  wait=wait)

    def _setup(self) -> tuple[Settings, BatchOptions]:
        # Resolved once per job, in the kernel's thread: the job uses these.
        return self._connector.settings(), self._worker.options()

    def _check(self, table: DraftResults, settings: Settings, options: BatchOptions,
               cancel: threading.Event) -> pd.DataFrame | None:
        self._ask(None)
        if not self._connector.ready(settings, cancel):
            return None
        total = int((table["status"].astype(str) == "ok").sum())
        frame = run_live(
            self._panel, "Checking which drafts the run created (listings only, nothing is "
            f"discarded): {plural(total, 'document')}…", total, settings, options,
            lambda progress: discard_drafts(table, dry_run=True, settings=settings,
                                            options=options, progress=progress,
                                            cancel=cancel))
        self.checked = frame
        if cancel.is_set():
            self._panel.finish(False, cancelled=True)
            listed = self._panel.tally.settled if self._panel.tally is not None else 0
            self._panel.say(f"Cancelled: the check listed {listed} of "
                            f"{plural(total, 'document')}; nothing was discarded.")
            return frame
        preview = DiscardPreview.of(frame)
        self._panel.show(frame, preview.html(), text=preview.text())
        self._panel.finish(True)
        line = question({"discard": len(preview.archive),
                         "skipped": sum(preview.reasons().values())}, preview.reasons())
        if preview.archive:
            self._ask(_Pending(table, settings, options, len(preview.archive)), line)
            self._panel.say("Confirm below, or keep them.")
        else:
            self._panel.say(line, ok=True)
        return frame

    def _discard(self, table: DraftResults, settings: Settings, options: BatchOptions,
                 cancel: threading.Event) -> pd.DataFrame | None:
        self._ask(None)
        if not self._connector.ready(settings, cancel):
            return None
        total = int((table["status"].astype(str) == "ok").sum())
        done = run_live(
            self._panel, f"Discarding the drafts of {plural(total, 'row')}…", total,
            settings, options,
            lambda progress: discard_drafts(table, settings=settings, options=options,
                                            progress=progress, cancel=cancel))
        result = done
        self.discarded = result
        self._undone = not cancel.is_set()
        self._panel.show(result)
        self._panel.report(result, cancelled=cancel.is_set(), label="Discard: ")
        return result

    # -- show drafts -------------------------------------------------------------------------

    def show_drafts(self, wait: bool = False) -> pd.DataFrame | None:
        """See :meth:`DraftForm.show_drafts`.

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> from omni_nb.widget.connect import Connector
            >>> panel = RunPanel()
            >>> worker = Worker(panel, BatchOptions())
            >>> after = AfterRun(worker, Connector(None, None, worker=worker, panel=panel),
            ...                  panel, ids=list, table=lambda: None)
            >>> after.show_drafts() is None, panel.error
            (True, 'Enter at least one document id (one per line) to list its drafts.')
        """
        ids = self._ids()
        if not ids:
            self._panel.fail(
                "Enter at least one document id (one per line) to list its drafts.")
            return None
        archived = bool(self.include_archived.value)
        try:
            settings, options = self._setup()
        except OmniError as exc:
            self._panel.fail(exc)
            return None
        return self._worker.start(
            lambda cancel: self._list(ids, archived, settings, options, cancel), wait=wait)

    def _list(self, ids: list[str], archived: bool, settings: Settings, options: BatchOptions,
              cancel: threading.Event) -> pd.DataFrame | None:
        if not self._connector.ready(settings, cancel):
            return None
        count = len(dict.fromkeys(ids))
        frame = run_live(
            self._panel, f"Listing the drafts of {plural(count, 'document')}…", count,
            settings, options,
            lambda progress: list_drafts(ids, include_archived=archived, settings=settings,
                                         options=options, progress=progress, cancel=cancel))
        self.drafts = frame
        # The summary is said once, in the status line below the table.
        self._panel.show(frame, drafts_html(frame, summary=False))
        failed = bool((frame["status"].astype(str) != "ok").any())
        self._panel.finish(not failed, cancelled=cancel.is_set())
        line = drafts_line(frame)
        self._panel.say(f"Cancelled: {line}" if cancel.is_set() else line, ok=not failed)
        return frame


class Lifecycle(AfterRun):
    """Deprecated: ``Lifecycle(form)`` built the after-a-run part from a form's internals.
    The form now builds its own :class:`AfterRun` (``form.lifecycle``); this one is wired
    to the same form's public parts and warns.

    Example:
        ``form.lifecycle`` is the form's part; ``Lifecycle(form)`` warns and builds a
        second one reporting to ``form.panel``.
    """

    def __init__(self, form: DraftForm) -> None:
        warnings.warn("Lifecycle(form) is deprecated: use form.lifecycle, or build an "
                      "AfterRun from the form's parts", DeprecationWarning, stacklevel=2)
        super().__init__(form.worker, form.connector, form.panel, ids=form.document_ids,
                         table=lambda: form.result)


def check_counts(frame: pd.DataFrame) -> tuple[Counter[str], Counter[str]]:
    """From a discard's dry-run table: how many drafts it would discard and skip, and the
    skips' reasons (the part of a message before its first colon).

    Example:
        >>> import pandas as pd
        >>> counts, why = check_counts(pd.DataFrame({"message": [
        ...     "would discard draft a1", "would skip: existed before the run: draft b2 ..."]}))
        >>> dict(counts), dict(why)
        ({'discard': 1, 'skipped': 1}, {'existed before the run': 1})
    """
    preview = DiscardPreview.of(frame)
    counts: Counter[str] = Counter(discard=len(preview.archive),
                                   skipped=sum(preview.reasons().values()))
    return counts, preview.reasons()


def question(counts: Counter[str] | dict[str, int], reasons: Counter[str] | dict[str, int]
             ) -> str:
    """The confirmation line: how many drafts will be discarded, how many skipped and why
    (the three commonest reasons).

    Example:
        >>> question({"discard": 0, "skipped": 2}, {"replaced since": 2})
        'Nothing to discard: 2 drafts will be skipped (replaced since).'
    """
    found, skipped = counts.get("discard", 0), counts.get("skipped", 0)
    why = ", ".join(f"{reason}: {n}" if len(reasons) > 1 else reason
                    for reason, n in Counter(reasons).most_common(3))
    tail = f" ({why})" if why else ""
    if not found:
        return f"Nothing to discard: {plural(skipped, 'draft')} will be skipped{tail}."
    head = f"Discard {plural(found, 'draft')} this run created?"
    return f"{head} {skipped} will be skipped{tail}." if skipped else head


def drafts_line(frame: pd.DataFrame) -> str:
    """The status line of a listing: drafts, documents, how many active and archived, and the
    listings that failed (:func:`omni_nb.table.listing_summary`).

    Example:
        >>> import pandas as pd
        >>> drafts_line(pd.DataFrame({"document_id": ["a", "a", "b"],
        ...     "draft_id": ["x", "y", None], "draft_status": ["active", "archived", None],
        ...     "status": ["ok", "ok", "not_found"]}))
        '2 drafts of 2 documents: 1 active, 1 archived; 1 listing failed (not_found).'
    """
    from ..table import listing_summary  # a listing exists, so pandas is loaded

    return listing_summary(frame)


def drafts_html(frame: pd.DataFrame, *, summary: bool = True) -> str:
    """The listing as the magic's ``--list`` shows it (:func:`omni_nb.table.listing_html`):
    the summary (unless ``summary=False``), then the main columns in the results table's
    compact style. Escaped.

    Example:
        >>> import pandas as pd
        >>> "<table" in drafts_html(pd.DataFrame({"document_id": ["a"], "draft_id": ["x"],
        ...     "draft_status": ["active"], "status": ["ok"], "message": [""]}))
        True
    """
    from ..table import listing_html

    return listing_html(frame, summary=summary)
