"""The form's connection part: the fields (:class:`~.connection.Connection`), the Connect button,
the line naming the connection in use, and the listing that checks it.

A change of the fields checks the connection at once when they are complete (else the status
line asks for what is missing); Connect checks it again. A job calls :meth:`Connector.ready`
before it sends anything: one cheap listing proves the token and the host first. What a
listing found goes to ``on_listed`` (the form fills its pickers from it).

Example:
    >>> from omni_nb.batch import BatchOptions
    >>> from omni_nb.widget.panel import RunPanel
    >>> from omni_nb.widget.worker import Worker
    >>> panel = RunPanel()
    >>> worker = Worker(panel, BatchOptions(rate_limit=None))
    >>> connector = Connector("https://acme.omniapp.co", "", worker=worker, panel=panel)
    >>> connector.changed()  # an empty token: an error line, nothing is listed
    >>> panel.error, worker.busy
    ('ConfigError: The Omni API token is empty.', False)
    >>> worker.close()
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable

import ipywidgets as w

from ..config import Settings
from ..errors import ConfigError
from .connection import Connection, Listing, list_instance
from .panel import RunPanel
from .worker import Worker

__all__ = ["Connector"]


class Connector:
    """The connection fields, the Connect button and the connection line of a form.

    ``address`` and ``token`` pre-fill the fields (see :class:`~.connection.Connection`);
    listings run on ``worker``'s queue and report to ``panel``; ``on_listed`` receives what a
    successful listing found. Nothing is checked before :meth:`changed` (the form calls it
    once its parts are built).

    Example:
        >>> from omni_nb import sandbox
        >>> from omni_nb.batch import BatchOptions
        >>> panel = RunPanel()
        >>> worker = Worker(panel, BatchOptions(rate_limit=None))
        >>> found = []
        >>> with sandbox.serve(documents=2, rate_limit=None) as sb:
        ...     connector = Connector(sb.base_url, sb.token, worker=worker, panel=panel,
        ...                           on_listed=found.append)
        ...     connector.refresh(wait=True)
        >>> panel.message.value
        '<span style="color:#1a7f37">Connected: 2 documents, 3 branches.</span>'
        >>> len(found[0].documents), "Connected to" in connector.info.value
        (2, True)
        >>> worker.close()
    """

    def __init__(self, address: str | None, token: str | None, *, worker: Worker,
                 panel: RunPanel, playground: bool = False,
                 on_listed: Callable[[Listing], None] | None = None) -> None:
        self._worker = worker
        self._panel = panel
        self._on_listed = on_listed
        #: The fields and the token (the settings they resolve to).
        self.connection = Connection(address, token, playground=playground,
                                     on_change=self.changed)
        self.connect = w.Button(description="Connect", icon="plug",
                                tooltip="check the connection and load documents and branches")
        #: The connection in use and where it comes from (never the token).
        self.info = w.HTML(value="")
        self.connect.on_click(lambda _: self.refresh())

    def settings(self) -> Settings:
        """The settings the fields resolve to (:class:`ConfigError` when they cannot).

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> Connector("acme", "t", worker=Worker(panel, BatchOptions()),
            ...           panel=panel).settings().api_root
            'https://acme.omniapp.co/api'
        """
        return self.connection.settings()

    def show(self) -> None:
        """Redraw the connection line (where the instance and the token come from).

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> connector = Connector("acme", None, worker=Worker(panel, BatchOptions()),
            ...                       panel=panel)
            >>> connector.show(); "no token yet" in connector.info.value
            True
        """
        line = html.escape(self.connection.describe())
        self.info.value = f'<span style="font-size:smaller;opacity:0.8">{line}</span>'

    def changed(self) -> None:
        """The fields changed (and the form's first check): an empty form asks for what it
        needs, a bad value is an error line, a complete one is listed at once. A running
        batch keeps its settings: the next job checks the new ones.

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> Connector("ftp://example.com", "t", worker=Worker(panel, BatchOptions()),
            ...           panel=panel).changed()
            >>> (panel.error or "").startswith("ConfigError: base_url")
            True
        """
        self.show()
        if self._worker.batch_running:
            return
        try:
            settings = self.connection.settings()
        except ConfigError as exc:
            hint = self.connection.hint()
            if hint is None:
                self._panel.fail(exc)
            else:
                self._panel.say(hint)
            return
        self._list(settings)

    def refresh(self, wait: bool = False) -> None:
        """The Connect button: check the connection and list the instance again.

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> Connector("ftp://example.com", "t", worker=Worker(panel, BatchOptions()),
            ...           panel=panel).refresh()
            >>> (panel.error or "").startswith("ConfigError: base_url")
            True
        """
        self.connection.show_sources()  # omni_nb.login() may have been called since
        self.show()
        try:
            settings = self.connection.settings()
        except ConfigError as exc:
            self._panel.fail(exc)
            return
        self._list(settings, wait=wait)

    def _list(self, settings: Settings, wait: bool = False) -> None:
        if self._worker.batch_running:
            self._panel.fail("A batch is running; Connect again when it ends.")
            return
        self._panel.say("Connecting…")
        if self._worker.queue(lambda: self.check(settings)) and wait:
            self._worker.wait()

    def check(self, settings: Settings) -> None:
        """List the instance with ``settings`` now, in this thread: the connection is
        verified, ``on_listed`` gets what was found, the status line says it. Raises for a
        refused token or an unreachable host.

        Example:
            ``connector.check(connector.settings())`` lists at once; the class example runs
            it on the worker through :meth:`refresh`.
        """
        options = self._worker.base_options
        found = list_instance(settings, rate_limit=options.rate_limit, timeout=options.timeout)
        self.connection.mark_verified(settings)
        self.show()
        if self._on_listed is not None:
            self._on_listed(found)
        if found.notes:
            self._panel.fail(found.line())
        else:
            self._panel.say(found.line(), ok=True)

    def ready(self, settings: Settings, cancel: threading.Event) -> bool:
        """Before a job sends anything: check ``settings`` unless already listed (a dead host
        then fails in a second, not after every item's retries); False when ``cancel`` was
        set meanwhile (the status line says nothing was sent).

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> connector = Connector("https://acme.omniapp.co", "t",
            ...                       worker=Worker(panel, BatchOptions()), panel=panel)
            >>> connector.connection.mark_verified(connector.settings())
            >>> cancel = threading.Event(); cancel.set()
            >>> connector.ready(connector.settings(), cancel), panel.message.value
            (False, '<span style="color:inherit">Cancelled before anything was sent.</span>')
        """
        if not self.connection.verified(settings):
            self._panel.say("Connecting…")
            self.check(settings)
        if cancel.is_set():
            self._panel.say("Cancelled before anything was sent.")
            return False
        return True

    def buttons(self, running: bool) -> None:
        """Connect is disabled while a job runs.

        Example:
            >>> from omni_nb.batch import BatchOptions
            >>> panel = RunPanel()
            >>> connector = Connector(None, None, worker=Worker(panel, BatchOptions()),
            ...                       panel=panel)
            >>> connector.buttons(True); connector.connect.disabled
            True
        """
        self.connect.disabled = running
