"""DraftForm: an ipywidgets form for creating drafts (the only module, with the magic's live
display, that imports ipywidgets).

The form has a connection (instance or base URL, a token field), documents (one id per line,
plus a searchable, paged picker filled from ``GET /v1/documents``), a branch (a dropdown
filled from ``GET /v1/models?modelKind=BRANCH``, "no branch", or a typed UUID), concurrency,
Create and Cancel buttons, a live progress bar with counts per status, and an output area
with the results table and its summary.

The token is never kept in a widget: the token field is emptied as soon as its value reaches
the kernel (and its value is not echoed back to the browser), so the notebook's saved widget
state never holds it. Work (listing, the batch) runs on a background thread, so the kernel
stays responsive and Cancel works; widget updates from that thread reach the browser live.

Example:
    >>> from omni_nb import sandbox
    >>> with sandbox.serve(documents=5, rate_limit=None) as sb:
    ...     form = DraftForm(sb.base_url, sb.token, ledger="off")
    ...     form.documents.value = "doc-0001\\ndoc-0002"
    ...     table = form.submit(wait=True)
    >>> list(table["status"])
    ['ok', 'ok']
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import Unicode

from .batch import create_drafts
from .client import OmniClient, check_branch_id
from .config import Secret, resolve_settings
from .errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConfigError,
    InvalidInputError,
    OmniError,
)
from .ledger import Ledger
from .progress import Tally
from .ratelimit import RateLimit
from .rows import Row

if TYPE_CHECKING:
    from .table import DraftResults

__all__ = ["DraftForm"]

log = logging.getLogger("omni_nb")

NO_BRANCH = ""
OTHER_BRANCH = "\x00other"  # cannot be a UUID, so it never collides with a real branch id
PICKER_PAGE = 50
_LIST_RETRIES = 1  # listing is also the connection check: fail fast on a dead host


class _TokenField(w.Password):  # type: ignore[misc]
    """A password box whose value is never echoed back to the browser.

    ipywidgets 8 echoes every value the browser sends ("echo_update"); for the token that
    would send it straight back over the wire. The form empties the field on arrival anyway.
    """

    value = Unicode("", help="the token as typed; emptied by the form on arrival").tag(
        sync=True, echo_update=False
    )


class DraftForm:
    """A form to create drafts for many documents, with live progress and a results table.

    ``base_url`` / ``instance`` and ``token`` pre-fill the connection (else the form uses
    :func:`omni_nb.login` or the environment, or what is typed into it). ``ledger``,
    ``rate_limit``, ``max_retries`` and ``timeout`` go to :func:`omni_nb.create_drafts`.

    Use it by displaying it (make it a cell's last expression), or from code:
    ``form.submit(wait=True)`` does what the Create button does and returns the table;
    ``form.result`` holds the last table, ``form.error`` the last error line (or None).
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
        self._ledger = ledger
        self._rate_limit = rate_limit
        self._max_retries = max_retries
        self._timeout = timeout
        # The token lives here only: a Secret, never in a widget trait.
        self._token: Secret | None = Secret(token.strip()) if isinstance(token, str) else None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None  # the latest job; it joins its predecessor
        self._batch_running = False
        self._last_run_made_table = False
        self._cancel: threading.Event | None = None
        self._verified: tuple[str, str] | None = None  # (api_root, token fingerprint) listed OK
        self._documents_found: list[dict[str, Any]] = []
        self._matches: list[tuple[str, str]] = []
        self._page = 0
        #: The last results table (None before the first batch).
        self.result: DraftResults | None = None
        #: The last error line shown in the form (None when the last action succeeded).
        self.error: str | None = None
        #: Seconds between progress redraws (the last result is always drawn).
        self.redraw_interval = 0.1

        wide = w.Layout(width="420px")
        # -- connection
        shown = base_url if base_url is not None else instance
        if shown is not None and "@" in shown:
            shown = None  # may carry user:password; the ConfigError below says why
        self.connection = w.Text(
            value=shown or "", description="Instance", layout=wide, continuous_update=False,
            placeholder="acme, https://acme.omniapp.co/api, or empty: login()/environment",
        )
        self.playground = w.Checkbox(
            value=bool(playground), description="playground", indent=False,
            layout=w.Layout(width="110px"),
        )
        self.token = _TokenField(
            description="Token", layout=wide, continuous_update=False,
            placeholder=self._token_hint(),
        )
        self.connect = w.Button(description="Connect", icon="plug",
                                tooltip="check the connection and load documents and branches")
        # -- documents
        self.documents = w.Textarea(
            placeholder="one document id per line", layout=w.Layout(width="300px", height="190px"),
        )
        self.search = w.Text(placeholder="search documents by name or id",
                             layout=w.Layout(width="380px"))
        self.picker = w.SelectMultiple(options=[], rows=8, layout=w.Layout(width="380px"))
        self.prev_page = w.Button(icon="chevron-left", tooltip="previous page",
                                  layout=w.Layout(width="36px"))
        self.next_page = w.Button(icon="chevron-right", tooltip="next page",
                                  layout=w.Layout(width="36px"))
        self.page_label = w.Label(value="no documents listed")
        self.add_selected = w.Button(description="Add selected", icon="plus",
                                     layout=w.Layout(width="120px"))
        self.add_all = w.Button(description="Add all matches", layout=w.Layout(width="130px"))
        # -- branch, concurrency, actions
        self.branch = w.Dropdown(options=self._branch_options([]), value=NO_BRANCH,
                                 description="Branch", layout=wide)
        self.branch_uuid = w.Text(placeholder="branch UUID", disabled=True,
                                  layout=w.Layout(width="320px"))
        self.concurrency = w.BoundedIntText(value=concurrency, min=1, max=100,
                                            description="Concurrency",
                                            style={"description_width": "initial"},
                                            layout=w.Layout(width="160px"))
        self.create = w.Button(description="Create drafts", button_style="primary",
                               icon="play")
        self.cancel = w.Button(description="Cancel", button_style="warning", icon="stop",
                               disabled=True)
        # -- progress and results
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="300px"))
        self.counts = w.Label(value="")
        self.message = w.HTML(value="")
        self.output = w.Output(layout=w.Layout(max_height="420px", overflow="auto"))

        picker_box = w.VBox([
            self.search, self.picker,
            w.HBox([self.prev_page, self.page_label, self.next_page]),
            w.HBox([self.add_selected, self.add_all]),
        ])
        self.widget = w.VBox([
            w.HTML("<b>Omni: create drafts</b>"),
            w.HBox([self.connection, self.playground]),
            w.HBox([self.token, self.connect]),
            w.HBox([self.documents, picker_box]),
            w.HBox([self.branch, self.branch_uuid]),
            w.HBox([self.concurrency, self.create, self.cancel]),
            w.HBox([self.progress, self.counts]),
            self.message,
            self.output,
        ])

        self.token.observe(self._take_token, names="value")
        self.connection.observe(self._connection_changed, names="value")
        self.playground.observe(self._connection_changed, names="value")
        self.branch.observe(self._branch_changed, names="value")
        self.search.observe(lambda _: self._filter(reset=True), names="value")
        self.prev_page.on_click(lambda _: self._turn(-1))
        self.next_page.on_click(lambda _: self._turn(+1))
        self.add_selected.on_click(lambda _: self._add(list(self.picker.value)))
        self.add_all.on_click(lambda _: self._add([i for _, i in self._matches]))
        self.connect.on_click(lambda _: self.refresh())
        self.create.on_click(lambda _: self.submit())
        self.cancel.on_click(lambda _: self.stop())
        self._filter(reset=True)

        try:
            self._connection_kwargs()
        except ConfigError as exc:
            self._hint_or_fail(exc)
        else:
            self.refresh()

    # -- display -----------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"DraftForm(connection={self.connection.value!r}, busy={self.busy})"

    def close(self) -> None:
        """Close every widget of the form (after :meth:`stop` and :meth:`wait`).

        Example:
            >>> # form.close()
        """
        self.stop()
        self.wait()
        for widget in _walk_widgets(self.widget):
            widget.close()

    # -- public actions ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a listing or a batch runs in the background."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def refresh(self, wait: bool = False) -> None:
        """Check the connection and reload the document and branch lists (the Connect
        button).

        Example:
            >>> # form.refresh(wait=True)
        """
        try:
            kwargs = self._connection_kwargs()
        except ConfigError as exc:
            self._fail(exc)
            return
        if self._batch_running:
            self._fail("A batch is running; Connect again when it ends.")
            return
        self._say("Connecting…")
        if self._start(lambda: self._load(kwargs), batch=False) and wait:
            self.wait()

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
            kwargs = self._connection_kwargs()
        except OmniError as exc:
            self._fail(exc)
            return None
        cancel = threading.Event()
        if not self._start(lambda: self._batch(items, branch, kwargs, cancel), batch=True,
                           cancel=cancel):
            self._fail("A batch is already running; wait for it or Cancel it.")
            return None
        if not wait:
            return None
        self.wait()
        return self.result if self._last_run_made_table else None

    def stop(self) -> None:
        """Cancel the running batch (the Cancel button): results received so far are kept,
        the rest become ``cancelled`` rows.

        Example:
            >>> # form.stop()
        """
        cancel = self._cancel
        if cancel is not None:
            cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background work ends; False if ``timeout`` passed first.

        Example:
            >>> # form.wait(timeout=60)
        """
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

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
        chosen = self.branch.value
        if chosen == OTHER_BRANCH:
            typed = self.branch_uuid.value.strip()
            if not typed:
                raise InvalidInputError("Enter the branch UUID, or pick a branch.")
            return check_branch_id(typed)
        return check_branch_id(chosen) if chosen else None

    # -- background work --------------------------------------------------------------------

    def _start(self, work: Callable[[], None], *, batch: bool,
               cancel: threading.Event | None = None) -> bool:
        """Run ``work`` on a new thread after the current job (a listing started by a
        connection change finishes first); refused while a batch runs."""
        with self._lock:
            if self._batch_running:
                return False
            previous = self._thread
            self.error = None
            self._last_run_made_table = False
            if batch:
                self._batch_running = True
                self._cancel = cancel
            self.create.disabled = True
            self.connect.disabled = True
            self.cancel.disabled = not batch
            thread = threading.Thread(target=self._guarded, args=(work, previous, batch),
                                      name="omni_nb-form", daemon=True)
            self._thread = thread
            thread.start()
            return True

    def _guarded(self, work: Callable[[], None], previous: threading.Thread | None,
                 batch: bool) -> None:
        try:
            if previous is not None:
                previous.join()
            work()
        except OmniError as exc:
            self._fail(exc)
        except Exception as exc:  # a form must show one line, never a traceback
            log.debug("DraftForm: unexpected error", exc_info=True)
            self._fail(f"Unexpected error: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                if batch:
                    self._batch_running = False
                    self._cancel = None
                if self._thread is threading.current_thread():  # no job queued behind us
                    self.cancel.disabled = True
                    self.connect.disabled = False
                    self.create.disabled = False

    def _client(self, kwargs: dict[str, Any]) -> OmniClient:
        return OmniClient(
            **kwargs, rate_limit=self._rate_limit, max_retries=_LIST_RETRIES,
            timeout=min(self._timeout, 15.0),
        )

    def _load(self, kwargs: dict[str, Any]) -> None:
        """List branches and documents; the connection check before a batch, too.

        Raises for a refused token or an unreachable instance; other list failures (a
        token allowed to create drafts but not to list) only leave a note.
        """
        settings = resolve_settings(**kwargs)
        notes: list[str] = []

        def listed(call: Callable[[], list[dict[str, Any]]], note: str) -> Any:
            # A refused token or unreachable host propagates (AuthenticationError and
            # APIConnectionError); any other listing failure only leaves a note.
            try:
                return call()
            except AuthenticationError:
                raise
            except APIStatusError as exc:
                notes.append(note.format(exc))
                return None

        with self._client(kwargs) as client:
            branches = listed(client.list_branches,
                              "branches not listed ({}); type a branch UUID instead")
            documents = listed(client.list_documents, "documents not listed ({})")
        self._verified = (settings.api_root, settings.token.fingerprint())
        if branches is not None:
            self._set_branches(branches)
        if documents is not None:
            self._documents_found = documents
            self._filter(reset=True)
        counts = (f"{len(documents) if documents is not None else 'no'} documents, "
                  f"{len(branches) if branches is not None else 'no'} branches")
        text = f"Connected to {settings.api_root}: {counts}."
        if notes:
            self._fail(text + " " + "; ".join(notes) + ".")
        else:
            self._say(text, ok=True)

    def _batch(self, items: list[str], branch: str | None, kwargs: dict[str, Any],
               cancel: threading.Event) -> None:
        settings = resolve_settings(**kwargs)
        if self._verified != (settings.api_root, settings.token.fingerprint()):
            # One cheap listing proves the token and the host before any draft is asked
            # for: a dead host fails in a second instead of after every item's retries.
            self._say("Connecting…")
            self._load(kwargs)
        if cancel.is_set():
            self._say("Cancelled before anything was sent.")
            return
        self.output.outputs = ()
        self.progress.bar_style = ""
        self.progress.max = max(len(dict.fromkeys(items)), 1)
        self.progress.value = 0
        tally = Tally(len(items))
        last_draw = [0.0]

        def on_progress(done: int, total: int, row: Row) -> None:
            # Runs in the batch's event-loop thread: count always, redraw at most every
            # redraw_interval (a resumed 100k batch must not flood the browser).
            tally.total = total
            tally.add(done, row)
            now = time.monotonic()
            if done == total or now - last_draw[0] >= self.redraw_interval:
                last_draw[0] = now
                self._draw(tally)

        self.counts.value = tally.line()
        self._say(f"Creating drafts for {len(items)} ids…")
        table = create_drafts(
            items, branch, **kwargs, concurrency=int(self.concurrency.value),
            rate_limit=self._rate_limit, ledger=self._ledger, progress=on_progress,
            max_retries=self._max_retries, timeout=self._timeout, cancel=cancel,
        )
        self.result = table
        self._last_run_made_table = True
        self._draw(tally)
        self._show(table)
        self._report(table, cancelled=cancel.is_set())

    # -- drawing -----------------------------------------------------------------------------

    def _draw(self, tally: Tally) -> None:
        self.progress.max = max(tally.total, 1)
        self.progress.value = tally.done
        self.counts.value = tally.line()

    def _show(self, table: DraftResults) -> None:
        # What Output.append_display_data does, without asking for an InteractiveShell (the
        # form also runs in scripts and tests); replacing ``outputs`` is safe from a thread.
        bundle = {"text/plain": repr(table), "text/html": table._repr_html_() or ""}
        self.output.outputs = (
            {"output_type": "display_data", "data": bundle, "metadata": {}},
        )

    def _report(self, table: DraftResults, *, cancelled: bool) -> None:
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
        if cancelled:
            problems.insert(0, "Cancelled")
        if problems:
            self._fail(f"{summary}. " + " · ".join(problems))
        else:
            self._say(summary, ok=ok)

    def _say(self, text: str, ok: bool = False) -> None:
        self.error = None
        color = "#1a7f37" if ok else "inherit"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _fail(self, problem: BaseException | str) -> None:
        if isinstance(problem, BaseException):
            prefix = ""
            if isinstance(problem, AuthenticationError):
                prefix = "The token was refused: "
            elif isinstance(problem, APIConnectionError):
                prefix = "Could not reach the instance: "
            text = f"{prefix}{type(problem).__name__}: {problem}"
        else:
            text = problem
        line = " ".join(text.split())
        line = line if len(line) <= 400 else line[:399] + "…"
        self.error = line
        self.message.value = f'<span style="color:#cf222e">⚠ {html.escape(line)}</span>'

    # -- inputs ------------------------------------------------------------------------------

    def _connection_kwargs(self) -> dict[str, Any]:
        """Arguments for resolve_settings/create_drafts; raises ConfigError when incomplete."""
        kwargs = self._raw_kwargs()
        resolve_settings(**kwargs)  # ConfigError now, in the form, not later in a thread
        return kwargs

    def _raw_kwargs(self) -> dict[str, Any]:
        text = self.connection.value.strip()
        base_url: str | None = None
        instance: str | None = None
        if "://" in text:
            base_url = text
        elif "." in text or "/" in text or ":" in text:
            base_url = "https://" + text  # "acme.omniapp.co" means the https site
        elif text:
            instance = text
        kwargs: dict[str, Any] = {
            "base_url": base_url, "instance": instance,
            "playground": True if self.playground.value else None,
            "token": self._token.get_secret_value() if self._token is not None else None,
        }
        return kwargs

    def _hint_or_fail(self, exc: ConfigError) -> None:
        """A form opened without a token or instance asks for them; a bad value is an error."""
        kwargs = self._raw_kwargs()
        try:
            resolve_settings(**{**kwargs, "token": kwargs["token"] or "placeholder"})
        except ConfigError as root_problem:
            if kwargs["base_url"] is None and kwargs["instance"] is None:
                self._say("Enter the instance (or base URL) and the token, then Connect.")
            else:
                self._fail(root_problem)
            return
        if kwargs["token"] is None:
            self._say("Paste the API token (or call omni_nb.login()), then press Enter.")
        else:
            self._fail(exc)

    def _token_hint(self) -> str:
        if self._token is not None:
            return "token kept in memory (type to replace)"
        return "paste the API token; empty: login()/OMNI_API_TOKEN"

    def _take_token(self, change: dict[str, Any]) -> None:
        value = change["new"]
        if not value:
            return
        # Read once, then empty the field at once: the token must not sit in widget state.
        self._token = Secret(value.strip())
        self.token.value = ""
        self.token.placeholder = self._token_hint()
        self._connection_changed(None)

    def _connection_changed(self, _change: object) -> None:
        self._verified = None
        if self._batch_running:
            return  # the running batch keeps its settings; the next Create checks the new ones
        try:
            self._connection_kwargs()
        except ConfigError as exc:
            self._hint_or_fail(exc)
            return
        self.refresh()

    def _branch_options(self, branches: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
        options = [("no branch", NO_BRANCH)]
        for record in branches:
            branch_id = record.get("id")
            if isinstance(branch_id, str) and branch_id:
                name = record.get("name") or "(unnamed)"
                options.append((f"{name} ({branch_id[:8]})", branch_id))
        options.append(("other: type a UUID…", OTHER_BRANCH))
        return options

    def _set_branches(self, branches: Sequence[dict[str, Any]]) -> None:
        keep = self.branch.value
        options = self._branch_options(branches)
        self.branch.options = options
        self.branch.value = keep if any(v == keep for _, v in options) else NO_BRANCH

    def _branch_changed(self, change: dict[str, Any]) -> None:
        self.branch_uuid.disabled = change["new"] != OTHER_BRANCH

    def _filter(self, reset: bool = False) -> None:
        query = self.search.value.strip().lower()
        matches: list[tuple[str, str]] = []
        for record in self._documents_found:
            identifier = record.get("identifier")
            if not isinstance(identifier, str) or not identifier:
                continue
            name = str(record.get("name") or "")
            if query and query not in name.lower() and query not in identifier.lower():
                continue
            matches.append((f"{name} · {identifier}" if name else identifier, identifier))
        self._matches = matches
        if reset:
            self._page = 0
        self._show_page()

    def _turn(self, step: int) -> None:
        self._page += step
        self._show_page()

    def _show_page(self) -> None:
        total = len(self._matches)
        pages = max(1, -(-total // PICKER_PAGE))
        self._page = min(max(self._page, 0), pages - 1)
        start = self._page * PICKER_PAGE
        chunk = self._matches[start:start + PICKER_PAGE]
        self.picker.options = chunk
        self.prev_page.disabled = self._page == 0
        self.next_page.disabled = self._page >= pages - 1
        if not self._documents_found:
            self.page_label.value = "no documents listed"
        elif not total:
            self.page_label.value = "no match"
        else:
            self.page_label.value = f"{start + 1}–{start + len(chunk)} of {total}"

    def _add(self, identifiers: list[str]) -> None:
        present = self.document_ids()
        known = set(present)
        added = [i for i in identifiers if i not in known]
        if added:
            self.documents.value = "\n".join([*present, *dict.fromkeys(added)])


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
