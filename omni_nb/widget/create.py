"""The form's create part: the Create and Cancel buttons, the batch they run (with its progress
live in the run panel) and the results table it keeps.

Example:
    >>> from omni_nb import sandbox
    >>> from omni_nb.batch import BatchOptions
    >>> from omni_nb.widget.connect import Connector
    >>> from omni_nb.widget.panel import RunPanel
    >>> from omni_nb.widget.worker import Worker
    >>> panel = RunPanel()
    >>> worker = Worker(panel, BatchOptions(rate_limit=None, ledger="off"))
    >>> with sandbox.serve(documents=3, rate_limit=None) as sb:
    ...     connector = Connector(sb.base_url, sb.token, worker=worker, panel=panel)
    ...     run = CreateRun(worker, connector, panel, ids=lambda: ["doc-0001"],
    ...                     branch=lambda: None)
    ...     table = run.submit(wait=True)
    >>> list(table["status"]), run.result is table
    (['ok'], True)
    >>> worker.close()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as w

from ..batch import BatchOptions, create_drafts
from ..config import Settings
from ..errors import InvalidInputError, LedgerError, OmniError
from .connect import Connector
from .live import run_live
from .panel import RunPanel
from .worker import Worker

if TYPE_CHECKING:
    from ..table import DraftResults

__all__ = ["CreateRun"]


class CreateRun:
    """Create drafts for the documents ``ids()`` names on ``branch()``: the Create button
    (:meth:`submit`) and Cancel (:meth:`stop`). The batch runs on ``worker``'s queue after
    ``connector`` checked the connection, its progress and table in ``panel``; ``result``
    keeps the last table, and ``on_result`` is told each time a run ends with one.

    Example:
        >>> from omni_nb.batch import BatchOptions
        >>> panel = RunPanel()
        >>> worker = Worker(panel, BatchOptions())
        >>> run = CreateRun(worker, Connector(None, None, worker=worker, panel=panel), panel,
        ...                 ids=lambda: [], branch=lambda: None)
        >>> run.create.click()
        >>> panel.error
        'InvalidInputError: Enter at least one document id (one per line).'
    """

    def __init__(self, worker: Worker, connector: Connector, panel: RunPanel, *,
                 ids: Callable[[], list[str]], branch: Callable[[], str | None],
                 on_result: Callable[[], None] | None = None) -> None:
        self._worker = worker
        self._connector = connector
        self._panel = panel
        self._ids = ids
        self._branch = branch
        self._on_result = on_result
        #: The last create run's results table (None before the first batch).
        self.result: DraftResults | None = None
        self.create = w.Button(description="Create drafts", button_style="primary",
                               icon="play")
        self.cancel = w.Button(description="Cancel", button_style="warning", icon="stop",
                               disabled=True)
        self.create.on_click(lambda _: self.submit())
        self.cancel.on_click(lambda _: self.stop())

    def submit(self, wait: bool = False) -> DraftResults | None:
        """The Create button: check the ids and the branch, then run the batch; with
        ``wait=True`` block until it ends and return its table (None when the panel shows
        an error instead).

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> worker = Worker(panel, BatchOptions())
            >>> connector = Connector("ftp://example.com", "t", worker=worker, panel=panel)
            >>> CreateRun(worker, connector, panel, ids=lambda: ["d"],
            ...           branch=lambda: None).submit() is None
            True
            >>> (panel.error or "").startswith("ConfigError: base_url")
            True
        """
        try:
            items = self._ids()
            if not items:
                raise InvalidInputError("Enter at least one document id (one per line).")
            branch = self._branch()
            # Resolved once per job, in the kernel's thread: the job uses these.
            settings, options = self._connector.settings(), self._worker.options()
        except OmniError as exc:
            self._panel.fail(exc)
            return None
        return self._worker.start(
            lambda cancel: self._batch(items, branch, settings, options, cancel), wait=wait)

    def stop(self) -> None:
        """The Cancel button: stop the running batch (a create's or a discard's); results so
        far are kept, the rest become ``cancelled`` rows.

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> worker = Worker(panel, BatchOptions())
            >>> CreateRun(worker, Connector(None, None, worker=worker, panel=panel), panel,
            ...           ids=list, branch=lambda: None).stop()
        """
        self._worker.stop()

    def buttons(self, running: bool, batch: bool) -> None:
        """Create is disabled while a job runs, Cancel enabled while a batch runs.

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> worker = Worker(panel, BatchOptions())
            >>> run = CreateRun(worker, Connector(None, None, worker=worker, panel=panel),
            ...                 panel, ids=list, branch=lambda: None)
            >>> run.buttons(True, True); run.create.disabled, run.cancel.disabled
            (True, False)
        """
        self.create.disabled = running
        self.cancel.disabled = not (running and batch)

    def _batch(self, items: list[str], branch: str | None, settings: Settings,
               options: BatchOptions, cancel: threading.Event) -> DraftResults | None:
        if not self._connector.ready(settings, cancel):
            return None
        try:
            table = run_live(
                self._panel, f"Creating drafts for {len(items)} ids…",
                len(dict.fromkeys(items)), settings, options, lambda progress: create_drafts(
                    items, branch, settings=settings, options=options, progress=progress,
                    cancel=cancel))
        except LedgerError as failed:
            if failed.result is not None:  # a ledger write failed: keep and show the table
                self.result = failed.result
                self._panel.show(failed.result)
                raise failed.kept_in("in form.result, shown below") from failed.__cause__
            raise
        self.result = table
        if self._on_result is not None:
            self._on_result()
        self._panel.show(table)
        self._panel.report(table, cancelled=cancel.is_set())
        return table
