"""The form itself: its layout, the connection's state, submitting, and drawing the progress
and the results. The fields it composes live in :mod:`.connection` and :mod:`.picker`, its
background work in :mod:`.jobs`.

Example:
    >>> one_line("Could not\\n  list  ")
    'Could not list'
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import ipywidgets as w

from ..batch import CREATE_DRAFT, BatchOptions, run_batch
from ..client import RetryPolicy
from ..config import Settings
from ..errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigError,
    InvalidInputError,
    LedgerError,
    OmniError,
)
from ..ledger import Ledger
from ..progress.tally import Budget, Tally, line_for
from ..ratelimit import RateLimit
from .connection import Connection, list_instance
from .jobs import Jobs
from .lifecycle import Lifecycle
from .live import run_live
from .picker import BranchPicker, DocumentPicker

if TYPE_CHECKING:
    import pandas as pd

    from ..table import DraftResults

__all__ = ["DraftForm", "one_line"]

_LINE = 400  # characters at most in the form's message line

T = TypeVar("T")


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
        # How every batch of this form runs; Create fills in the concurrency shown then.
        self._options = BatchOptions(rate_limit=rate_limit, retry=RetryPolicy.of(max_retries),
                                     timeout=timeout, ledger=ledger)
        #: The last create run's results table (None before the first batch).
        self.result: DraftResults | None = None
        #: The last discard's results table (None before the first discard).
        self.discarded: DraftResults | None = None
        #: The last "Show drafts" listing (None before the first).
        self.drafts: pd.DataFrame | None = None
        #: The last error line shown in the form (None when the last action succeeded).
        self.error: str | None = None
        #: Seconds between progress redraws (the last result is always drawn).
        self.redraw_interval = 0.1
        self._jobs = Jobs(on_state=self._buttons, on_error=self._fail)
        self._connection = Connection(base_url if base_url is not None else instance, token,
                                      playground=bool(playground),
                                      on_change=self._connection_changed)
        self._documents_picker = DocumentPicker(add=self._add)
        self._branches = BranchPicker()
        self._lay_out(concurrency)
        self._connection_changed()

    def _lay_out(self, concurrency: int) -> None:
        # The composed parts' widgets are the form's attributes too (tests and users reach
        # them as form.token, form.picker, form.branch...).
        conn, docs = self._connection, self._documents_picker
        self.connection, self.playground, self.token = conn.field, conn.playground, conn.token
        self.search, self.picker, self.page_label = docs.search, docs.choices, docs.page_label
        self.prev_page, self.next_page = docs.prev_page, docs.next_page
        self.add_selected, self.add_all = docs.add_selected, docs.add_all
        self.branch, self.branch_uuid = self._branches.dropdown, self._branches.uuid
        self.connect = w.Button(description="Connect", icon="plug",
                                tooltip="check the connection and load documents and branches")
        self.documents = w.Textarea(
            placeholder="one document id per line", layout=w.Layout(width="300px", height="190px"),
        )
        self.concurrency = w.BoundedIntText(value=concurrency, min=1, max=100,
                                            description="Concurrency",
                                            style={"description_width": "initial"},
                                            layout=w.Layout(width="160px"))
        self.create = w.Button(description="Create drafts", button_style="primary",
                               icon="play")
        self.cancel = w.Button(description="Cancel", button_style="warning", icon="stop",
                               disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="300px"))
        self.counts = w.Label(value="")
        self.message = w.HTML(value="")
        #: The connection in use and where it comes from (never the token).
        self.connection_info = w.HTML(value="")
        self.output = w.Output(layout=w.Layout(max_height="420px", overflow="auto"))
        self.lifecycle = Lifecycle(self)
        life = self.lifecycle
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
            w.HBox([self.progress, self.counts]),
            self.message,
            life.question_row,
            self.output,
        ])
        self.connect.on_click(lambda _: self.refresh())
        self.create.on_click(lambda _: self.submit())
        self.cancel.on_click(lambda _: self.stop())

    # -- display -----------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"DraftForm(connection={self.connection.value!r}, busy={self.busy})"

    def close(self) -> None:
        """Cancel the batch, wait for the background work, close every widget of the form.

        Example:
            >>> # form.close()
        """
        self._jobs.close()
        for widget in _walk_widgets(self.widget):
            widget.close()

    # -- public actions ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a listing or a batch runs in the background."""
        return self._jobs.busy

    def refresh(self, wait: bool = False) -> None:
        """Check the connection and reload the document and branch lists (the Connect
        button).

        Example:
            >>> # form.refresh(wait=True)
        """
        self._connection.show_sources()  # omni_nb.login() may have been called since
        self._show_connection()
        try:
            settings = self._connection.settings()
        except ConfigError as exc:
            self._fail(exc)
            return
        self._list(settings, wait=wait)

    def submit(self, wait: bool = False) -> DraftResults | None:
        """Do what the Create button does; with ``wait=True`` block until the batch ends and
        return its table (None when the form showed an error instead).

        Example:
            >>> # table = form.submit(wait=True)
        """
        try:
            items = self.document_ids()
            if not items:
                raise InvalidInputError("Enter at least one document id (one per line).")
            branch = self.branch_id()
            settings, options = self._setup()
        except OmniError as exc:
            self._fail(exc)
            return None
        return self._start(lambda cancel: self._batch(items, branch, settings, options, cancel),
                           wait=wait)

    def stop(self) -> None:
        """Cancel the running batch (the Cancel button): results received so far are kept,
        the rest become ``cancelled`` rows.

        Example:
            >>> # form.stop()
        """
        self._jobs.stop()

    def discard(self, wait: bool = False, confirm: bool = False) -> pd.DataFrame | None:
        """The "Discard these drafts" button: undo the last run carefully (only drafts it
        created). Without ``confirm`` it is a dry run (listings only, no DELETE) ending in
        the confirmation line, and returns the dry-run table; with ``confirm=True`` it is
        the "Discard N drafts" button: the discard runs (with progress and Cancel) and
        returns its table, also ``form.discarded``. ``wait=False`` returns None at once.

        Example:
            >>> # check = form.discard(wait=True); table = form.discard(wait=True, confirm=True)
        """
        return self.lifecycle.discard(wait=wait, confirm=confirm)

    def show_drafts(self, wait: bool = False) -> pd.DataFrame | None:
        """The "Show drafts" button: list the drafts of the documents in the box (archived
        ones too when "include archived" is ticked); with ``wait=True`` return the listing
        (also ``form.drafts``), one row per draft.

        Example:
            >>> # drafts = form.show_drafts(wait=True)
        """
        return self.lifecycle.show_drafts(wait=wait)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background work ends; False if ``timeout`` passed first.

        Example:
            >>> # form.wait(timeout=60)
        """
        return self._jobs.wait(timeout)

    def document_ids(self) -> list[str]:
        """The ids in the documents box, one per line, blank lines skipped.

        Example:
            >>> # form.document_ids()
        """
        return [line.strip() for line in self.documents.value.splitlines() if line.strip()]

    def branch_id(self) -> str | None:
        """The chosen branch (None for no branch); raises :class:`InvalidInputError` for a
        typed value that is not a UUID.

        Example:
            >>> # form.branch_id()
        """
        return self._branches.branch_id()

    # -- background work --------------------------------------------------------------------

    def _connection_changed(self) -> None:
        # Also the form's first check: an empty form asks for what it needs, a bad value is
        # an error line, a complete one lists at once.
        self._show_connection()
        if self._jobs.batch_running:
            return  # the running batch keeps its settings; the next Create checks the new ones
        try:
            settings = self._connection.settings()
        except ConfigError as exc:
            hint = self._connection.hint()
            if hint is None:
                self._fail(exc)
            else:
                self._say(hint)
            return
        self._list(settings)

    def _list(self, settings: Settings, wait: bool = False) -> None:
        if self._jobs.batch_running:
            self._fail("A batch is running; Connect again when it ends.")
            return
        self._say("Connecting…")
        if self._jobs.start(lambda: self._load(settings)) is not None and wait:
            self.wait()

    def _load(self, settings: Settings) -> None:
        found = list_instance(settings, rate_limit=self._options.rate_limit,
                              timeout=self._options.timeout)
        self._connection.mark_verified(settings)
        self._show_connection()
        if found.branches is not None:
            self._branches.set_branches(found.branches)
        if found.documents is not None:
            self._documents_picker.set_documents(found.documents)
        if found.notes:
            self._fail(found.line())
        else:
            self._say(found.line(), ok=True)

    def _start(self, work: Callable[[threading.Event], T], *, wait: bool,
               batch: bool = True) -> T | None:
        # A job on the form's worker (a batch: Cancel stops it through the event); its
        # result when ``wait``, else None at once.
        cancel = threading.Event()
        self.error = None
        job = self._jobs.start(lambda: work(cancel), cancel=cancel if batch else None)
        if job is None:
            self._fail("A batch is already running; wait for it or Cancel it.")
            return None
        return job.result() if wait else None

    def _setup(self) -> tuple[Settings, BatchOptions]:
        # Resolved once per job, in the kernel's thread: the job uses these.
        settings = self._connection.settings()
        return settings, replace(self._options, concurrency=int(self.concurrency.value))

    def _ready(self, settings: Settings, cancel: threading.Event) -> bool:
        if not self._connection.verified(settings):
            # One cheap listing proves the token and the host before any draft is asked
            # for: a dead host fails in a second instead of after every item's retries.
            self._say("Connecting…")
            self._load(settings)
        if cancel.is_set():
            self._say("Cancelled before anything was sent.")
            return False
        return True

    def _batch(self, items: list[str], branch: str | None, settings: Settings,
               options: BatchOptions, cancel: threading.Event) -> DraftResults | None:
        if not self._ready(settings, cancel):
            return None
        try:
            table = run_live(
                self, f"Creating drafts for {len(items)} ids…", len(dict.fromkeys(items)),
                settings, options, lambda progress: run_batch(
                    CREATE_DRAFT, items, branch, settings=settings, options=options,
                    progress=progress, cancel=cancel))
        except LedgerError as failed:
            if failed.result is not None:  # a ledger write failed: keep and show the table
                self.result = failed.result
                self._show(failed.result)
                raise failed.kept_in("in form.result, shown below") from failed.__cause__
            raise
        self.result = table
        self.lifecycle.new_run()
        self._show(table)
        self._report(table, cancelled=cancel.is_set())
        return table

    # -- drawing -----------------------------------------------------------------------------

    def _buttons(self, running: bool, batch: bool) -> None:
        # Called by the jobs under their lock, so a job ending cannot cross a new one's start.
        self.create.disabled = running
        self.connect.disabled = running
        self.cancel.disabled = not (running and batch)
        self.lifecycle.buttons(running)

    def _draw(self, tally: Tally, budget: Budget | None = None) -> None:
        self.progress.max = max(tally.total, 1)
        self.progress.value = tally.settled
        self.counts.value = line_for(tally, budget)

    def _show(self, table: pd.DataFrame, html_text: str | None = None) -> None:
        # What Output.append_display_data does, without asking for an InteractiveShell (the
        # form also runs in scripts and tests); replacing ``outputs`` is safe from a thread.
        frame: Any = table  # a DraftResults or a plain DataFrame: both render themselves
        shown = html_text if html_text is not None else frame._repr_html_() or ""
        bundle = {"text/plain": repr(table), "text/html": shown}
        self.output.outputs = (
            {"output_type": "display_data", "data": bundle, "metadata": {}},
        )

    def _report(self, table: DraftResults, *, cancelled: bool, label: str = "") -> None:
        summary = table.summary()
        statuses = table["status"].astype(str)
        problems: list[str] = []
        for status, what in (("unauthorized", "The token was refused"),
                             ("network_error", "Could not reach the instance"),
                             ("invalid", "Invalid ids were not sent")):
            hits = table[statuses == status]
            if len(hits):
                problems.append(f"{what} ({len(hits)}): {hits['message'].iloc[0]}")
        ok = not problems and bool((statuses == "ok").all())
        self.progress.bar_style = "success" if ok else ("danger" if cancelled else "warning")
        # Cancelling is what the user asked for, not an error: the summary says what it left.
        head = f"Cancelled: {label}{summary}" if cancelled else label + summary
        if problems:
            self._fail(f"{head}. " + " · ".join(problems))
        else:
            self._say(head, ok=ok)

    def _show_connection(self) -> None:
        line = html.escape(self._connection.describe())
        self.connection_info.value = f'<span style="font-size:smaller;opacity:0.8">{line}</span>'

    def _say(self, text: str, ok: bool = False) -> None:
        self.error = None
        color = "#1a7f37" if ok else "inherit"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _fail(self, problem: BaseException | str) -> None:
        line = one_line(problem)
        self.error = line
        self.message.value = f'<span style="color:#cf222e">⚠ {html.escape(line)}</span>'

    def _add(self, identifiers: list[str]) -> None:
        present = self.document_ids()
        known = set(present)
        added = list(dict.fromkeys(i for i in identifiers if i not in known))
        if added:
            self.documents.value = "\n".join([*present, *added])
        total = len(dict.fromkeys([*present, *added]))
        noun = "document" if len(added) == 1 else "documents"
        self._say(f"Added {len(added)} {noun} ({total} in the box)"
                  + batch_time(total, self._options.rate_limit))


def batch_time(count: int, limit: RateLimit | None) -> str:
    """How long ``count`` drafts take at the rate limit, as the tail of a sentence ("." when
    the limit is off: then the concurrency and the server set the pace).

    The limit allows ``requests`` in any trailing window: with the window's budget unused
    the first ``requests`` go at once (the low end), with it spent every request waits its
    turn (the high end, ``count`` at the limit's rate).

    Example:
        >>> batch_time(300, RateLimit(60, 60))
        '; the batch takes 4–5 min at 60 requests per minute.'
        >>> batch_time(30, RateLimit(60, 60)), batch_time(300, None)
        ('; the batch takes up to 30 s at 60 requests per minute.', '.')
        >>> batch_time(9000, RateLimit(500, 60)), batch_time(5000, RateLimit(1, 10))
        ('; the batch takes 17–18 min at 500 requests per minute.', \
'; the batch takes about 14 h at 1 requests per 10 s.')
    """
    if limit is None or count == 0:
        return "."
    high = count * limit.per / limit.requests
    low = (math.ceil(count / limit.requests) - 1) * limit.per
    scale, unit = (1, "s") if high < 90 else (60, "min") if high < 5400 else (3600, "h")
    low_text, high_text = (str(round(x / scale)) for x in (low, high))
    if low == 0:
        took = f"up to {high_text} {unit}"
    elif low_text == high_text:
        took = f"about {high_text} {unit}"
    else:
        took = f"{low_text}–{high_text} {unit}"
    per = "minute" if limit.per == 60 else f"{limit.per:g} s"
    return f"; the batch takes {took} at {limit.requests} requests per {per}."


def one_line(problem: BaseException | str) -> str:
    """The form's error line for ``problem``: one line, at most 400 characters, saying what
    kind of trouble it is (a refused token, an unreachable host, a bug).

    Example:
        >>> one_line(AuthenticationError(403, "Invalid bearer token"))
        'The token was refused: AuthenticationError: HTTP 403: Invalid bearer token'
        >>> one_line(KeyError("x"))
        "Unexpected error: KeyError: 'x'"
    """
    if isinstance(problem, BaseException):
        prefix = ""
        if isinstance(problem, AuthenticationError):
            prefix = "The token was refused: "
        elif isinstance(problem, APIConnectionError):
            prefix = "Could not reach the instance: "
        elif not isinstance(problem, OmniError):
            prefix = "Unexpected error: "
        text = f"{prefix}{type(problem).__name__}: {problem}"
    else:
        text = problem
    line = " ".join(text.split())
    return line if len(line) <= _LINE else line[:_LINE - 1] + "…"


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
