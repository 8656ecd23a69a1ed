"""The form's connection: the instance (or URL), playground and token fields, the settings they
resolve to, and the listing that checks them.

The token is kept here only, as a :class:`~omni_nb.config.Secret`: :class:`_TokenField` is
emptied as soon as a typed value reaches the kernel and never echoes it back, so no widget
state (the browser's, a saved notebook's) ever holds it.

Example:
    >>> conn = Connection("https://acme.omniapp.co", "omni_osk_example")
    >>> conn.settings().api_root
    'https://acme.omniapp.co/api'
    >>> conn.token.value
    ''
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import ipywidgets as w
from traitlets import Unicode

from ..budget_url import RedisAddress
from ..client import OmniClient
from ..config import (
    Secret,
    Settings,
    budget_path,
    describe_sources,
    resolve_api_root,
    resolve_settings,
)
from ..errors import APIStatusError, AuthenticationError, ConfigError, OmniError
from ..ratelimit import RateLimit

__all__ = ["Connection", "Listing", "list_instance"]

T = TypeVar("T")

_LIST_RETRIES = 1  # listing is also the connection check: fail fast on a dead host
_LIST_TIMEOUT = 15.0  # seconds at most per listing request, whatever the batch's timeout

#: Short placeholders (they must fit the 420 px boxes); the detail is in the tooltips.
INSTANCE_PLACEHOLDER = "acme or https://acme.omniapp.co"
INSTANCE_TOOLTIP = (
    "An instance name (acme → https://acme.omniapp.co/api; tick playground for "
    "acme.playground.exploreomni.dev) or a base URL. Leave empty to use omni_nb.login() "
    "or OMNI_BASE_URL / OMNI_INSTANCE."
)
#: The token box's tooltip.
KEY_BOX_HELP = (
    "The Omni API token. Read once and kept in the kernel's memory only: the box is emptied "
    "at once and the token is never shown or saved. Leave empty to use omni_nb.login() or "
    "OMNI_API_TOKEN / OMNI_API_KEY."
)


class _TokenField(w.Password):  # type: ignore[misc]
    """A password box whose value is never echoed back to the browser.

    ipywidgets 8 echoes every value the browser sends ("echo_update"); for the token that
    would send it straight back over the wire. :class:`Connection` empties the field on
    arrival anyway.
    """

    value = Unicode("", help="the token as typed; emptied by the form on arrival").tag(
        sync=True, echo_update=False
    )


class _Typed(NamedTuple):
    """What the fields say, as :func:`~omni_nb.config.resolve_settings` takes it."""

    base_url: str | None
    instance: str | None
    playground: bool | None
    token: str | None

    def resolve(self, token: str | None) -> Settings:
        return resolve_settings(self.base_url, token, instance=self.instance,
                                playground=self.playground)


class Connection:
    """The connection fields and the token; :meth:`settings` resolves them (once per job).

    ``address`` is an instance name or a base URL, as typed into the field. ``on_change`` is
    called after the instance, the playground box or the token changed
    (the form checks the new connection then).

    Example:
        >>> conn = Connection("acme", "t", playground=True)
        >>> conn.settings().api_root
        'https://acme.playground.exploreomni.dev/api'
        >>> Connection("user:pw@acme.omniapp.co").field.value  # never shown: it may be a secret
        ''
    """

    def __init__(self, address: str | None = None, token: str | None = None, *,
                 playground: bool = False, on_change: Callable[[], None] | None = None) -> None:
        # The token lives here only: a Secret, never in a widget trait.
        self._token: Secret | None = Secret(token.strip()) if isinstance(token, str) else None
        self._verified: tuple[str, str] | None = None  # (api_root, token fingerprint) listed OK
        self._on_change = on_change
        wide = w.Layout(width="420px")
        if address is not None and "@" in address:
            # It may carry user:password: never shown (the form then asks for an instance).
            address = None
        self._given = address or ""  # what DraftForm was given (the field may be retyped)
        self._token_given = self._token is not None
        #: Instance name or base URL (the form's ``connection``).
        self.field = w.Text(
            value=address or "", description="Instance", layout=wide, continuous_update=False,
            placeholder=INSTANCE_PLACEHOLDER, tooltip=INSTANCE_TOOLTIP,
        )
        self.playground = w.Checkbox(
            value=playground, description="playground", indent=False,
            layout=w.Layout(width="110px"),
        )
        self.token = _TokenField(
            description="Token", layout=wide, continuous_update=False,
            placeholder=self._token_hint(), tooltip=KEY_BOX_HELP,
        )
        self.token.observe(self._take_token, names="value")
        self.field.observe(self._changed, names="value")
        self.playground.observe(self._changed, names="value")
        self.show_sources()

    def settings(self) -> Settings:
        """The settings the fields resolve to; :class:`ConfigError` when incomplete or unsafe.

        Example:
            >>> Connection("acme", " ").settings()
            Traceback (most recent call last):
            ...
            omni_nb.errors.ConfigError: The Omni API token is empty.
        """
        typed = self._typed()
        return typed.resolve(typed.token)

    def hint(self) -> str | None:
        """What to ask for when :meth:`settings` failed for want of input (a form opened
        without an instance or a token); None when a given value is wrong.

        Example:
            >>> Connection("acme").hint()
            'Paste the API token (or call omni_nb.login()), then press Enter.'
            >>> Connection("ftp://example.com", "t").hint() is None  # settings() says why
            True
        """
        typed = self._typed()
        try:
            # The root alone: is it the instance that is missing, or only the token?
            typed.resolve(typed.token or "placeholder")
        except ConfigError:
            if typed.base_url is None and typed.instance is None:
                return "Enter the instance (or base URL) and the token, then Connect."
            return None
        if typed.token is None:
            return "Paste the API token (or call omni_nb.login()), then press Enter."
        return None

    def verified(self, settings: Settings) -> bool:
        """True when these settings were listed successfully since the fields last changed.

        Example:
            >>> conn = Connection("https://acme.omniapp.co", "t")
            >>> conn.mark_verified(conn.settings())
            >>> conn.verified(conn.settings())
            True
        """
        return self._verified == _key(settings)

    def mark_verified(self, settings: Settings) -> None:
        """Remember that a listing with these settings succeeded.

        Example:
            >>> Connection("https://acme.omniapp.co", "t").mark_verified(
            ...     resolve_settings("https://acme.omniapp.co", "t"))
        """
        self._verified = _key(settings)

    def describe(self) -> str:
        """The connection in use, whatever it came from, as one line of plain text: the API
        root and where it and the token come from (never the token itself), and, when the
        rate budget is shared on Redis (``OMNI_NB_BUDGET``), where (its password masked).

        Example:
            >>> conn = Connection("https://acme.omniapp.co", "t")
            >>> for part in conn.describe().split(" · "):
            ...     print(part)
            Connection: https://acme.omniapp.co/api (given to DraftForm)
            token given to DraftForm
        """
        root, root_from = self._root_source()
        token_from = self._token_source()
        token = f"token {token_from}" if token_from else "no token yet"
        if root is None:
            where = ("not a valid instance or URL" if self.field.value.strip()
                     else "no instance yet (type one, or call omni_nb.login())")
            return f"Connection: {where} · {token}"
        verified = self._verified is not None and self._verified[0] == root
        head = "Connected to" if verified and token_from else "Connection:"
        return f"{head} {root} ({root_from}) · {token}{_shared_budget()}"

    def show_sources(self) -> None:
        """Show where the connection comes from in the empty fields' placeholders: the API
        root from :func:`~omni_nb.login` or the environment, the token's source. The
        fields stay empty: what is typed into them wins, and a saved notebook keeps none
        of it.

        Example:
            >>> conn = Connection("acme", "t")
            >>> conn.show_sources(); conn.field.placeholder, conn.token.placeholder
            ('acme or https://acme.omniapp.co', 'kept in memory · type to replace')
        """
        root, _ = self._root_source()
        empty = not self.field.value.strip()
        self.field.placeholder = root if (empty and root) else INSTANCE_PLACEHOLDER
        self.token.placeholder = self._token_hint()

    def _root_source(self) -> tuple[str | None, str]:
        """(API root or None, where it comes from), as
        :func:`~omni_nb.config.describe_sources` and
        :func:`~omni_nb.config.resolve_api_root` say (they alone read the environment and
        know the order)."""
        typed = self._typed()
        try:
            root = resolve_api_root(typed.base_url, instance=typed.instance,
                                    playground=typed.playground)
        except OmniError:
            return None, ""
        if typed.base_url is not None or typed.instance is not None:
            given = self.field.value.strip() == self._given.strip()
            return root, "given to DraftForm" if given else "typed in the Instance box"
        source = describe_sources(playground=typed.playground)["api_root"]
        return root, "from omni_nb.login()" if source == "login()" else f"from {source}"

    def _token_source(self) -> str | None:
        if self._token is not None:
            return "given to DraftForm" if self._token_given else "typed in the Token box"
        source = describe_sources()["token"]
        if source is None:
            return None
        return "from omni_nb.login()" if source == "login()" else "from the environment"

    def _typed(self) -> _Typed:
        text = self.field.value.strip()
        base_url: str | None = None
        instance: str | None = None
        if "://" in text:
            base_url = text
        elif "." in text or "/" in text or ":" in text:
            base_url = "https://" + text  # "acme.omniapp.co" means the https site
        elif text:
            instance = text
        # The raw string (not the Secret) so that resolve_settings checks it: empty, spaces.
        token = self._token.get_secret_value() if self._token is not None else None
        return _Typed(base_url, instance, True if self.playground.value else None, token)

    def _token_hint(self) -> str:
        source = self._token_source()
        if source is None:
            return "paste the API token"
        if self._token is not None:
            return "kept in memory · type to replace"
        return f"{source} · type to replace"

    def _take_token(self, change: dict[str, Any]) -> None:
        value = change["new"]
        if not value:
            return
        # Read once, then empty the field at once: the token must not sit in widget state.
        self._token = Secret(value.strip())
        self._token_given = False
        self.token.value = ""
        self._changed(None)

    def _changed(self, _change: object) -> None:
        self._verified = None
        self.show_sources()
        if self._on_change is not None:
            self._on_change()


def _shared_budget() -> str:
    """`` · budget shared on redis://team:***@host:6379/0`` when the budget is on Redis; ""
    otherwise (a path or off: the line is as it always was)."""
    try:
        place = budget_path()
    except ConfigError:
        return ""  # a malformed OMNI_NB_BUDGET: Connect says so, in one line
    return f" · budget shared on {place.shown}" if isinstance(place, RedisAddress) else ""


def _key(settings: Settings) -> tuple[str, str]:
    return settings.api_root, settings.token.fingerprint()


@dataclass(frozen=True)
class Listing:
    """What a connection check found; None for a list the token may not read.

    Example:
        >>> Listing("https://a.omniapp.co/api", [{"identifier": "d"}], None,
        ...         ["branches not listed (x)"]).line()
        'Connected: 1 documents, no branches. branches not listed (x).'
    """

    api_root: str
    documents: list[dict[str, Any]] | None
    branches: list[dict[str, Any]] | None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one line the form shows (notes make it an error line)."""
        counts = (f"{len(self.documents) if self.documents is not None else 'no'} documents, "
                  f"{len(self.branches) if self.branches is not None else 'no'} branches")
        text = f"Connected: {counts}."  # the connection line above names the API root
        return f"{text} {'; '.join(self.notes)}." if self.notes else text


def list_instance(
    settings: Settings, *, rate_limit: RateLimit | None, timeout: float
) -> Listing:
    """List branches and documents: the connection check, too.

    Raises for a refused token (:class:`AuthenticationError`) or an unreachable instance
    (:class:`~omni_nb.errors.APIConnectionError`); any other listing failure (a token
    allowed to create drafts but not to list) only leaves a note.

    Example:
        >>> from omni_nb import sandbox
        >>> with sandbox.serve(documents=2) as sb:
        ...     found = list_instance(resolve_settings(sb.base_url, sb.token),
        ...                           rate_limit=None, timeout=5)
        >>> len(found.documents or [])
        2
    """
    notes: list[str] = []

    def listed(call: Callable[[], T], note: str) -> T | None:
        try:
            return call()
        except AuthenticationError:
            raise
        except APIStatusError as exc:
            notes.append(note.format(exc))
            return None

    with OmniClient(settings=settings, rate_limit=rate_limit, max_retries=_LIST_RETRIES,
                    timeout=min(timeout, _LIST_TIMEOUT)) as client:
        branches = listed(client.list_branches,
                          "branches not listed ({}); type a branch UUID instead")
        documents = listed(client.list_documents, "documents not listed ({})")
    return Listing(settings.api_root, documents, branches, notes)
