"""The form itself: it composes its parts and wires them together, and keeps the form's public
API. Each part owns its widgets and its state:

* :class:`~.panel.RunPanel` (``form.panel``): the status line, the progress bar and counts, the
  output area, the last error line;
* :class:`~.worker.Worker` (``form.worker``): the background queue, the batch options and the
  concurrency box;
* :class:`~.connect.Connector` (``form.connector``): the connection fields, Connect, the
  connection line, the listing that checks the connection and fills the pickers;
* :class:`~.documents.DocumentBox` (``form.document_box``), :class:`~.picker.DocumentPicker`
  and :class:`~.picker.BranchPicker` (``form.document_picker``, ``form.branch_picker``);
* :class:`~.create.CreateRun` (``form.create_run``): Create, Cancel, the create batch and its
  table;
* :class:`~.lifecycle.AfterRun` (``form.lifecycle``): "Discard these drafts" and "Show drafts".

Example:
    >>> one_line("Could not\\n  list  ")
    'Could not list'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..batch import BatchOptions
from ..client import RetryPolicy
from ..ledger import Ledger
from ..ratelimit import RateLimit
from .connect import Connector
from .connection import Listing
from .create import CreateRun
from .documents import DocumentBox, batch_time
from .lifecycle import AfterRun
from .panel import RunPanel, one_line
from .picker import BranchPicker, DocumentPicker
from .worker import Worker

if TYPE_CHECKING:
    import pandas as pd

    from ..table import DraftResults

__all__ = ["DraftForm", "batch_time", "one_line"]


class DraftForm:
    """A form to create drafts for many documents, with live progress and a results table.

    ``base_url`` / ``instance`` and ``token`` pre-fill the connection (else the form uses
    :func:`omni_nb.login` or the environment, or what is typed into it). ``ledger``,
    ``rate_limit``, ``max_retries`` and ``timeout`` set how the batch runs, as for
    :func:`omni_nb.create_drafts`.

    Use it by displaying it (make it a cell's last expression), or from code:
    ``form.submit(wait=True)`` does what the Create button does and returns the table;
    ``form.result`` holds the last table, ``form.error`` the last error line (or None; a
    Cancel is no error: its summary goes to the status line, ``form.message``).
    ``form.connection_info`` says which instance is used and where it and the token come
    from (arguments, :func:`omni_nb.login`, the environment), never the token.

    After a run, "Discard these drafts" undoes it carefully: a dry run (listings only) first,
    then a confirmation naming how many drafts will be discarded and how many skipped (a
    draft the run did not create is never touched); ``form.discard(wait=True)`` does the
    dry run from code, ``form.discard(wait=True, confirm=True)`` the discard.
    ``form.result`` stays the create run's table; ``form.discarded`` holds the discard's.
    "Show drafts" (``form.show_drafts(wait=True)``) lists the drafts of the documents in the
    box into ``form.drafts``.
    The document and branch lists load in the background: ``form.wait()`` before choosing
    from them in code.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve(documents=3, rate_limit=None) as sb:
        ...     form = DraftForm(sb.base_url, sb.token, ledger="off")
        ...     loaded = form.wait()
        ...     form.documents.value = "doc-0001"
        ...     form.branch.value = sb.branches[0].id
        ...     form.submit(wait=True).loc[0, "status"]
        'ok'
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        instance: str | None = None,
        playground: bool | None = None,
        concurrency: int = 8,
        ledger: str | Path | Ledger | None = None,
        rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, safe to share
        max_retries: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        #: The status line, the progress bar and counts, the output area, the error line.
        self.panel = RunPanel()
        #: The background queue, the batch options, the concurrency box.
        self.worker = Worker(
            self.panel, BatchOptions(rate_limit=rate_limit, retry=RetryPolicy.of(max_retries),
                                     timeout=timeout, ledger=ledger),
            concurrency=concurrency, on_state=self._buttons)
        #: The connection fields, Connect, the connection line and its check.
        self.connector = Connector(base_url if base_url is not None else instance, token,
                                   worker=self.worker, panel=self.panel,
                                   playground=bool(playground), on_listed=self._listed)
        #: The documents box, and the pickers that fill it and choose the branch.
        self.document_box = DocumentBox(self.panel, rate_limit=rate_limit)
        self.document_picker = DocumentPicker(add=self.document_box.add)
        self.branch_picker = BranchPicker()
        #: "Discard these drafts" and "Show drafts" (it undoes the create part's table).
        self.lifecycle = AfterRun(self.worker, self.connector, self.panel,
                                  ids=self.document_box.ids, table=lambda: self.result)
        #: Create and Cancel, the create batch and its table.
        self.create_run = CreateRun(self.worker, self.connector, self.panel,
                                    ids=self.document_box.ids,
                                    branch=self.branch_picker.branch_id,
                                    on_result=self.lifecycle.new_run)
        self._lay_out()
        self.connector.changed()

    def _lay_out(self) -> None:
        # The parts' widgets are the form's attributes too (tests and users reach them as
        # form.token, form.picker, form.branch...).
        fields, docs, life = self.connector.connection, self.document_picker, self.lifecycle
        self.connection, self.playground, self.token = fields.field, fields.playground, \
            fields.token
        self.connect, self.connection_info = self.connector.connect, self.connector.info
        self.search, self.picker, self.page_label = docs.search, docs.choices, docs.page_label
        self.prev_page, self.next_page = docs.prev_page, docs.next_page
        self.add_selected, self.add_all = docs.add_selected, docs.add_all
        self.branch, self.branch_uuid = self.branch_picker.dropdown, self.branch_picker.uuid
        self.documents = self.document_box.text
        self.concurrency = self.worker.concurrency
        self.create, self.cancel = self.create_run.create, self.create_run.cancel
        self.progress, self.counts = self.panel.progress, self.panel.counts
        self.message, self.output = self.panel.message, self.panel.output
        self.discard_button, self.show_button = life.discard_button, life.show_button
        self.include_archived = life.include_archived
        self.widget = w.VBox([
            w.HTML("<b>Omni: create drafts</b>"),
            w.HBox([self.connection, self.playground]),
            w.HBox([self.token, self.connect]),
            self.connection_info,
            w.HBox([self.documents, docs.box]),
            w.HBox([self.branch, self.branch_uuid]),
            w.HBox([self.concurrency, self.create, self.cancel]),
            life.row,
            self.panel.bar_row,
            self.message,
            life.question_row,
            self.output,
        ])

    # -- wiring ------------------------------------------------------------------------------

    def _buttons(self, running: bool, batch: bool) -> None:
        # Called by the queue under its lock, so a job ending cannot cross a new one's start.
        self.create_run.buttons(running, batch)
        self.connector.buttons(running)
        self.lifecycle.buttons(running)

    def _listed(self, found: Listing) -> None:
        if found.branches is not None:
            self.branch_picker.set_branches(found.branches)
        if found.documents is not None:
            self.document_picker.set_documents(found.documents)

    # -- display -----------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"DraftForm(connection={self.connection.value!r}, busy={self.busy})"

    def close(self) -> None:
        """Cancel the batch, wait for the background work, close every widget of the form.

        Example:
            >>> form = DraftForm("ftp://example.com", "t")  # a bad URL: nothing is listed
            >>> form.close(); form.widget.comm is None
            True
        """
        self.worker.close()
        for widget in _walk_widgets(self.widget):
            widget.close()

    # -- what the parts keep -----------------------------------------------------------------

    @property
    def result(self) -> DraftResults | None:
        """The last create run's results table (None before the first batch)."""
        return self.create_run.result

    @result.setter
    def result(self, table: DraftResults | None) -> None:
        self.create_run.result = table

    @property
    def discarded(self) -> DraftResults | None:
        """The last discard's results table (None before the first discard)."""
        return self.lifecycle.discarded

    @discarded.setter
    def discarded(self, table: DraftResults | None) -> None:
        self.lifecycle.discarded = table

    @property
    def drafts(self) -> pd.DataFrame | None:
        """The last "Show drafts" listing (None before the first)."""
        return self.lifecycle.drafts

    @drafts.setter
    def drafts(self, frame: pd.DataFrame | None) -> None:
        self.lifecycle.drafts = frame

    @property
    def error(self) -> str | None:
        """The last error line shown in the form (None when the last action succeeded)."""
        return self.panel.error

    @error.setter
    def error(self, line: str | None) -> None:
        self.panel.error = line

    @property
    def redraw_interval(self) -> float:
        """Seconds between progress redraws (the last result is always drawn)."""
        return self.panel.redraw_interval

    @redraw_interval.setter
    def redraw_interval(self, seconds: float) -> None:
        self.panel.redraw_interval = seconds

    # -- public actions ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a listing or a batch runs in the background."""
        return self.worker.busy

    def refresh(self, wait: bool = False) -> None:
        """Check the connection and reload the document and branch lists (the Connect
        button).

        Example:
            >>> form = DraftForm("ftp://example.com", "t")
            >>> form.refresh(wait=True); form.error.startswith("ConfigError: base_url")
            True
            >>> form.close()
        """
        self.connector.refresh(wait=wait)

    def submit(self, wait: bool = False) -> DraftResults | None:
        """Do what the Create button does; with ``wait=True`` block until the batch ends and
        return its table (None when the form showed an error instead).

        Example:
            >>> form = DraftForm("ftp://example.com", "t")
            >>> form.submit(wait=True) is None, form.error
            (True, 'InvalidInputError: Enter at least one document id (one per line).')
            >>> form.close()
        """
        return self.create_run.submit(wait=wait)

    def stop(self) -> None:
        """Cancel the running batch (the Cancel button): results received so far are kept,
        the rest become ``cancelled`` rows.

        Example:
            >>> form = DraftForm("ftp://example.com", "t")
            >>> form.stop(); form.busy  # nothing ran: nothing to stop
            False
            >>> form.close()
        """
        self.create_run.stop()

    def discard(self, wait: bool = False, confirm: bool = False) -> pd.DataFrame | None:
        """The "Discard these drafts" button: undo the last run carefully (only drafts it
        created). Without ``confirm`` it is a check (listings only, no DELETE, with progress
        and Cancel) ending in a short list of what will be archived and what skipped and
        why, and the confirmation line; it returns the dry-run table (also
        ``form.lifecycle.checked``). With ``confirm=True`` it is
        the "Discard N drafts" button: the discard runs (with progress and Cancel) and
        returns its table, also ``form.discarded``. ``wait=False`` returns None at once.

        Example:
            >>> form = DraftForm("ftp://example.com", "t")
            >>> form.discard(wait=True) is None, form.error
            (True, 'Nothing to discard: create drafts first.')
            >>> form.close()
        """
        return self.lifecycle.discard(wait=wait, confirm=confirm)

    def show_drafts(self, wait: bool = False) -> pd.DataFrame | None:
        """The "Show drafts" button: list the drafts of the documents in the box (archived
        ones too when "include archived" is ticked); with ``wait=True`` return the listing
        (also ``form.drafts``), one row per draft.

        Example:
            >>> form = DraftForm("ftp://example.com", "t")
            >>> form.show_drafts(wait=True) is None, form.error
            (True, 'Enter at least one document id (one per line) to list its drafts.')
            >>> form.close()
        """
        return self.lifecycle.show_drafts(wait=wait)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background work ends; False if ``timeout`` passed first.

        Example:
            >>> form = DraftForm("ftp://example.com", "t")
            >>> form.wait(timeout=60)
            True
            >>> form.close()
        """
        return self.worker.wait(timeout)

    def document_ids(self) -> list[str]:
        """The ids in the documents box, one per line, blank lines skipped.

        Example:
            >>> form = DraftForm("ftp://example.com", "t")
            >>> form.documents.value = "doc-1\\n\\n doc-2 "
            >>> form.document_ids()
            ['doc-1', 'doc-2']
            >>> form.close()
        """
        return self.document_box.ids()

    def branch_id(self) -> str | None:
        """The chosen branch (None for no branch); raises :class:`InvalidInputError` for a
        typed value that is not a UUID.

        Example:
            >>> form = DraftForm("ftp://example.com", "t")
            >>> form.branch_id() is None  # "no branch" until one is chosen
            True
            >>> form.close()
        """
        return self.branch_picker.branch_id()


def _walk_widgets(root: Any) -> list[Any]:
    """Every widget reachable from ``root`` through widget-valued traits (children,
    layout, style), root first.

    Example:
        >>> len(_walk_widgets(w.VBox([w.Label("a")]))) >= 2
        True
    """
    seen: dict[str, Any] = {}
    stack = [root]
    while stack:
        widget = stack.pop()
        if widget.model_id in seen:
            continue
        seen[widget.model_id] = widget
        for name in widget.keys:
            value = getattr(widget, name, None)
            values = value if isinstance(value, tuple | list) else (value,)
            stack.extend(v for v in values if isinstance(v, w.Widget))
    return list(seen.values())
