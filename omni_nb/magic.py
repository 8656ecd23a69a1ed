"""``%omni_draft`` / ``%%omni_draft``: create Omni drafts from a notebook cell.

::

    %omni_draft DOC [DOC ...] [--branch-id UUID] [-o VAR] [--from VAR]
                [--instance NAME [--playground] | --base-url URL]
                [--concurrency N] [--rate-limit N/SECONDS|off] [--max-retries N] [--resume]
                [--dry-run] [--document-col COL] [--branch-col COL] [--background]
    %omni_draft --discard (DOC ... | --from TABLE | --run-id RUN_ID) [--dry-run | --background]
                [--trust-old-ledger] [-o VAR]
    %omni_draft --list (DOC ... | --from VAR) [--include-archived] [--dry-run | --background]
                [-o VAR]

    %%omni_draft [same options]
    doc-a
    doc-b, 7c9e6679-7425-40de-944b-e07fc1f90ae7   # a document on a branch

Input (exactly one source): document ids on the line, one per cell line (``document`` or
``document, branch``; blank lines and ``#`` comments skipped), or ``--from VAR``: a DataFrame
(column ``document_id``, optional ``branch_id``; ``--document-col``/``--branch-col`` rename
them) or a list of ids / ``(id, branch)`` pairs from the user namespace.

Options (each defined once, with the CLI's, in :mod:`omni_nb.options`: one spelling derived
from the Python keyword, ``--branch-id`` for ``branch_id=``; the older ``--branch``, ``--run``
and ``--rate`` still work):

``--branch-id UUID``      branch for every document without its own
``-o VAR``                store the results table in ``VAR`` and print a one-line summary
                          (without it the table is returned, so it displays)
``--from VAR``            take the documents from a variable (a name only: assign an
                          expression such as ``d["x"]`` to a variable first)
``--instance NAME``       ``acme`` -> ``https://acme.omniapp.co/api`` (``--playground``: the
                          playground domain); ``--base-url URL`` gives the API root instead
``--concurrency N``       requests in flight (default ``OmniNB.concurrency``, 8)
``--rate-limit N/SECONDS`` client-side limit, e.g. ``60/60`` (Omni's default) or ``off``
                          (default ``OmniNB.rate``)
``--max-retries N``       retries of a 429, 5xx or dropped connection (default 6; 0 fails
                          fast, and ``--resume`` later sends only what is not ok yet)
``--resume``              copy pairs already ``ok`` in the ledger instead of sending them
                          (not with ``--dry-run``, whose table would show them as sent)
``--dry-run``             validate every input and show what would be sent; sends nothing
``--discard``             discard (archive) drafts instead of creating them: of the
                          documents given (as asked), or, with ``--from TABLE`` (a results
                          table) or ``--run-id RUN_ID``, only the drafts that run made (each is
                          listed first; a draft the run's requests did not make is
                          ``skipped``); with ``--dry-run``, what would happen (GETs only)
``--trust-old-ledger``    with ``--discard``: undo rows an older omni_nb recorded with several
                          attempts (or before ``requested_at`` meant the first send), taking
                          their whole call for the request's time (skipped otherwise)
``--list``                the documents' drafts (``--include-archived``: archived ones too),
                          a DataFrame, one row per draft; with ``--dry-run``, the GETs it
                          would send (nothing is sent)
``--background``          return at once with a live handle (``.wait()``, ``.cancel()``,
                          ``.table``, ``.done``), for a create, a ``--discard`` or a
                          ``--list``; the kernel stays free; rows reach the ledger as always

No flag is silently ignored: every combination works as the Python functions do
(``--dry-run`` and ``--background`` as their ``dry_run=`` and ``background=``), or the line
is refused in one line naming the clash (``--include-archived goes with --list``, ``give
--dry-run or --background, not both``); the rules are the option table's
(:func:`omni_nb.options.clash`).

The token is never an option (it would be saved in the notebook): it comes from
``omni_nb.login()`` (a getpass prompt, kept in the kernel only), ``OMNI_API_TOKENS``,
``OMNI_API_TOKEN`` / ``OMNI_API_KEY``, in that order. Several API keys (more throughput:
each has its own rate budget, ``--rate-limit`` is per key) come the same ways:
``omni_nb.login(tokens=[...])`` (or several typed at its prompt, comma-separated) or
``OMNI_API_TOKENS=key1,key2``; the table's ``key`` column names the key of each row.

Behaviour, decided here:

* **Always a table.** One document or many, the result is the batch's results table (one row
  per distinct input), so ``-o VAR`` always holds a DataFrame. Every run goes through
  :func:`omni_nb.create_drafts` (one code path; rows land in the ledger with a run id).
* **Errors.** Bad options or input typed on the line or in the cell raise ``UsageError``
  (one line, no traceback; a bad cell line is named by its line number). Settings errors
  raise :class:`omni_nb.ConfigError`. With **one** document, a failed call raises the typed
  error (``NotFoundError: HTTP 404: ...``, one line); with several, failures are rows, and
  only when **no** row is ``ok`` does the cell fail, with :class:`DraftsFailedError`, after
  showing (or storing) the table. So "Run all" stops whenever nothing was done.
  Invalid items inside ``--from`` data are rows with status ``invalid`` (batch semantics).
* **Expansion.** IPython expands ``$var`` and ``{expr}`` on the magic's line. The cell body
  is expanded too, line by line after comments are stripped (a document id can never
  contain ``$``, ``{`` or ``}``, so nothing valid is changed; ``$$`` is a literal ``$``).
* **Progress.** A live bar for more than one document (see :mod:`omni_nb.progress`); none for
  one.
* **Settings** users tweak are traitlets of ``OmniNB`` (``%config OmniNB``):
  ``autoload`` (read by the start-up file), ``concurrency``, ``rate``, ``progress``
  (``auto``, ``widget``, ``text``, ``off``), ``budget`` (where the key's rate budget is
  shared: ``OMNI_NB_BUDGET`` unless set; a Redis address shows with its password masked).

Importing this module (``%load_ext omni_nb``) imports no pandas, httpx or ipywidgets: they
load on the first ``%omni_draft``.

Example:
    In a notebook: ``%load_ext omni_nb`` (or the start-up file), then
    ``%omni_draft doc-0001 doc-0002 -o results``.
"""

from __future__ import annotations

import builtins
import keyword
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument as _argument
from IPython.core.magic_arguments import magic_arguments as _magic_arguments
from IPython.core.magic_arguments import parse_argstring as _parse_argstring
from IPython.utils.text import DollarFormatter
from traitlets import Bool, Enum, Int, TraitError, Unicode, default, validate
from traitlets.config import Config, Configurable

from ._text import quoted
from .budget_url import RedisAddress, is_redis_url, mask_url
from .config import budget_path
from .errors import ConfigError, DraftsFailedError, LedgerError
from .options import MAGIC, argument_specs, clash, in_words, spelling
from .ratelimit import RateLimit

__all__ = ["OmniMagics", "OmniNB", "register", "unregister"]

# IPython's argparse helpers are untyped; one Any alias each keeps mypy --strict quiet.
argument: Any = _argument
magic_arguments: Any = _magic_arguments
parse_argstring: Any = _parse_argstring

_F = TypeVar("_F", bound=Callable[..., Any])
_MISSING_VALUE = object()
#: A missing setting, said in the magic's words (config's own words speak Python).
_MISSING = {
    "api_root": f"No Omni API root: add {spelling('instance', 'magic')} NAME "
                f"({spelling('playground', 'magic')} for a playground instance) or "
                f"{spelling('base_url', 'magic')} URL, call omni_nb.login(instance=...), or "
                "set OMNI_INSTANCE or OMNI_BASE_URL.",
    "token": "No Omni API token: run omni_nb.login() in a cell (it prompts, and the token "
             "stays in this kernel, never in the notebook), or set OMNI_API_TOKEN.",
}


class OmniNB(Configurable):
    """Settings of the magic and the start-up file: ``%config OmniNB.concurrency = 4``.

    Example:
        >>> OmniNB().concurrency
        8
    """

    autoload = Bool(
        True, help="Load the omni_nb extension in every IPython kernel (read by the start-up "
        "file; OMNI_NB_AUTOLOAD=0 also turns it off)."
    ).tag(config=True)
    concurrency = Int(8, help="Default --concurrency of %omni_draft.").tag(config=True)
    rate = Unicode(
        "60/60", help="Default --rate-limit of %omni_draft: N/SECONDS, or 'off'."
    ).tag(config=True)
    progress = Enum(
        ["auto", "widget", "text", "off"], "auto",
        help="Progress display: auto (a widget bar in an interactive front end, text in a "
        "terminal or a headless run), widget, text or off.",
    ).tag(config=True)
    budget = Unicode(
        help="Where each key's rate budget is shared: a path (this machine's store), a Redis "
        "address (redis://[user:password@]host:port/db, rediss://, unix://: a team's "
        "machines) or 'off'. Default: OMNI_NB_BUDGET, else this machine's store. A password "
        "is kept aside and shows masked (prefer OMNI_NB_BUDGET: a cell keeps what is typed).",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        # Before super().__init__: the configuration (ipython_config.py) is loaded there.
        self._budget_given: str | RedisAddress | None = None
        super().__init__(**kwargs)

    @default("budget")
    def _budget_default(self) -> str:
        return _shown(budget_path())

    @validate("budget")
    def _budget_valid(self, proposal: Any) -> str:
        """Keep what was set aside (a Redis address whole) and show it masked."""
        text = str(proposal["value"]).strip()
        shown_default = self._budget_default()
        if not text or text == shown_default:
            self._budget_given = None  # the environment's, read again at each run
            return shown_default
        if not is_redis_url(text):
            self._budget_given = text
            return text
        address = _KEPT.get(text)
        if address is None:
            if "***" in text and mask_url(text) == text:
                raise TraitError("OmniNB.budget: the password shows masked (***) here; set "
                                 "the address with its password, or OMNI_NB_BUDGET")
            try:
                address = RedisAddress.parse(text, "OmniNB.budget")
            except ConfigError as exc:
                raise TraitError(str(exc)) from None  # said masked
            _KEPT[address.shown] = address
        self._budget_given = address
        return address.shown

    def budget_setting(self) -> str | RedisAddress | None:
        """What ``%omni_draft`` passes as ``budget=``: None when ``budget`` was not set (so
        ``OMNI_NB_BUDGET`` is read at each run), the Redis address set (password and all),
        or the path or ``off`` set.

        Example:
            >>> nb = OmniNB()
            >>> nb.budget = "redis://team:s3cret@cache:6379/0"
            >>> nb.budget, nb.budget_setting().url
            ('redis://team:***@cache:6379/0', 'redis://team:s3cret@cache:6379/0')
            >>> nb.budget = "off"; nb.budget_setting()
            'off'
        """
        return self._budget_given

    def update_config(self, config: Config) -> None:
        """Load ``config`` (``%config OmniNB.budget = ...``), then keep ``budget`` in the
        merged configuration as it shows: the line's value, password and all, would stay
        there (and in the shell's, which shares the section).

        Example:
            >>> from traitlets.config import Config
            >>> nb = OmniNB()
            >>> nb.update_config(Config({"OmniNB": {"budget": "redis://u:pw@cache/0"}}))
            >>> nb.config.OmniNB.budget
            'redis://u:***@cache/0'
        """
        super().update_config(config)
        section = self.config.get(type(self).__name__)
        if section is not None and "budget" in section:
            section["budget"] = self.budget


#: Redis addresses set on ``OmniNB.budget`` by their shown form, for the kernel's life: a
#: configuration that holds the shown form (a reloaded extension) finds the address again.
_KEPT: dict[str, RedisAddress] = {}


def _shown(place: object) -> str:
    """A budget store as ``%config`` shows it: an address masked, a path, or ``off``."""
    if place is None:
        return "off"
    return place.shown if isinstance(place, RedisAddress) else str(place)


@dataclass(frozen=True, slots=True)
class _Item:
    document: str
    branch: str | None
    where: str  # "line 3" / "argument 2": how the user finds it


def _parse_cell(cell: str, expand: Any) -> list[_Item]:
    """``document`` or ``document, branch`` per line; blanks and ``#`` comments skipped."""
    items: list[_Item] = []
    for number, raw in enumerate(cell.splitlines(), start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        text = expand(text).strip()
        fields = [f.strip() for f in text.split(",")]
        if len(fields) > 2:
            raise UsageError(
                f"line {number}: expected 'document' or 'document, branch', got {len(fields)} "
                f"comma-separated fields: {quoted(text, 80)}"
            )
        if not fields[0]:
            raise UsageError(f"line {number}: the document id is empty: {quoted(text, 80)}")
        branch = fields[1] if len(fields) == 2 else None
        if branch == "":
            raise UsageError(f"line {number}: a comma but no branch id: {quoted(text, 80)}")
        items.append(_Item(fields[0], branch, f"line {number}"))
    return items


def _check_typed(items: Sequence[_Item], *, documents: bool = True) -> None:
    """Typed input is the user's to fix: a bad id fails the cell naming where it is."""
    from .client import check_branch_id, check_document_id
    from .errors import InvalidInputError

    for item in items:
        try:
            if documents:
                check_document_id(item.document)
            check_branch_id(item.branch)
        except InvalidInputError as exc:
            raise UsageError(f"{item.where}: {exc}") from None


def _with_options(func: _F) -> _F:
    """Apply the magic's options from :data:`omni_nb.options.OPTIONS` (IPython's decorators,
    argparse underneath, untyped) in one typed step; ``%omni_draft?`` shows their help."""
    decorated: Any = func
    for flags, keywords in reversed(argument_specs(MAGIC)):
        decorated = argument(*flags, **keywords)(decorated)
    return cast(_F, magic_arguments()(decorated))


class Inputs:
    """What a ``%omni_draft`` line or cell names in the user's namespace: the documents (typed
    on the line, one per line of the cell, or ``--from VAR``), the ``-o`` variable, and the
    ``$var``/``{expr}`` expansion of a cell's lines. It reads the namespace and evaluates no
    expression.

    Example:
        >>> from types import SimpleNamespace
        >>> inputs = Inputs(SimpleNamespace(user_ns={"ids": ["doc-1", "doc-2"]}))
        >>> inputs.variable("ids")
        ['doc-1', 'doc-2']
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def for_lifecycle(self, args: Any, cell: str | None) -> tuple[Any, list[str] | None]:
        """A variable as it is (a results table is undone carefully), else the typed ids."""
        if args.from_ is not None:
            if args.items or (cell or "").strip():
                raise UsageError(_ONE_PLACE)
            return self.variable(args.from_), None
        pairs, labels, typed = self.pairs(args, cell)
        _check_typed(typed)
        return pairs, labels

    def output_name(self, text: str | None) -> str | None:
        """``-o NAME``: any Python variable name (normalised as Python does, so ``ﬁle`` is
        ``file``), never a keyword; a warning before it hides a builtin or replaces a value
        that is not a table."""
        if text is None:
            return None
        name = unicodedata.normalize("NFKC", text)
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(f"-o needs a Python variable name, not {quoted(text, 80)}")
        current = self.shell.user_ns.get(name, _MISSING_VALUE)
        if current is _MISSING_VALUE and hasattr(builtins, name):
            print(f"Warning: -o {name} hides the builtin {name}() in this notebook "
                  f"(del {name} brings it back)", file=sys.stderr)
        elif current is not _MISSING_VALUE and not _is_table(current):
            print(f"Warning: -o {name} replaces {name}, a {type(current).__name__}",
                  file=sys.stderr)
        return name

    def pairs(
        self, args: Any, cell: str | None
    ) -> tuple[list[tuple[object, object]], list[str], list[_Item]]:
        """(raw pairs, their labels, the typed items when they were typed)."""
        sources = [bool(args.items), cell is not None and bool(cell.strip()),
                   args.from_ is not None]
        if sum(sources) > 1:
            raise UsageError(_ONE_PLACE)
        if args.from_ is not None:
            pairs = self.from_variable(args)
            return pairs, [f"item {n}" for n in range(1, len(pairs) + 1)], []
        if cell is not None and cell.strip():
            typed = _parse_cell(cell, self.expander())
        else:
            typed = [_Item(doc, None, f"argument {n}") for n, doc in
                     enumerate(args.items, start=1)]
        if not typed:
            raise UsageError(
                "no documents: %omni_draft DOC [DOC ...], one per line in %%omni_draft, "
                "or --from VAR (see %omni_draft?)"
            )
        return [(i.document, i.branch) for i in typed], [i.where for i in typed], typed

    def from_variable(self, args: Any) -> list[tuple[object, object]]:
        """``--from VAR``: the variable's pairs, through the batch's own reading of input."""
        from .batch import pairs_of
        from .errors import InvalidInputError

        name = args.from_
        where = f"{_say('from_')} {name}"
        value = self.variable(name)
        if isinstance(value, str | bytes):
            raise UsageError(f"{where}: a single string; give a list or DataFrame")
        if hasattr(value, "tolist") and not hasattr(value, "columns"):  # a Series, an array
            value = value.tolist()
        try:
            pairs = pairs_of(value, args.document_col, args.branch_col)
        except InvalidInputError as exc:  # "pass document_col=": said as --document-col
            raise UsageError(f"{where}: {in_words(str(exc), 'magic')}") from None
        if not pairs:
            raise UsageError(f"{where}: no documents (it is empty)")
        return pairs

    def variable(self, name: str) -> Any:
        """The value of ``--from NAME``: a variable of the user namespace, never evaluated
        (an expression on a magic's line would run code the user did not mean to run)."""
        if not name.isidentifier():
            flag = _say("from_")
            raise UsageError(f"{flag} takes a variable name only, not {name}: assign it first "
                             f"(ids = {name}) and pass {flag} ids")
        if name not in self.shell.user_ns:
            raise UsageError(f"{_say('from_')} {name}: no such variable")
        return self.shell.user_ns[name]

    def expander(self) -> Any:
        # IPython expands the magic's line but not a cell body; the body gets the same
        # $var / {expr} expansion here, against the user namespace only (shell.var_expand
        # would also see this module's local variables).
        formatter = DollarFormatter()
        namespace = self.shell.user_ns

        def expand(text: str) -> str:
            if "$" not in text and "{" not in text:
                return text
            try:
                return str(formatter.vformat(text, args=[], kwargs=namespace))
            except Exception:
                return text  # as IPython does for the line: leave it as typed

        return expand


@magics_class
class OmniMagics(Magics):
    """The ``%omni_draft`` magic (see the module docstring).

    Example:
        >>> from IPython.core.interactiveshell import InteractiveShell
        >>> magics = OmniMagics(InteractiveShell.instance(), OmniNB())
        >>> "--document-col" in magics.omni_draft.__doc__
        True
    """

    def __init__(self, shell: Any, settings: OmniNB) -> None:
        super().__init__(shell)
        self.settings = settings
        self._shell: Any = shell  # Magics.shell is Optional in IPython's types
        #: What the line or cell names in the user's namespace.
        self.inputs = Inputs(shell)

    @_with_options
    @line_cell_magic
    def omni_draft(self, line: str, cell: str | None = None) -> Any:
        """Create Omni drafts for documents; returns the results table.

        Line form::

            %omni_draft doc-0001
            %omni_draft doc-0001 doc-0002 --branch-id 7c9e6679-7425-40de-944b-e07fc1f90ae7 -o res
            %omni_draft --from docs --document-col identifier --resume -o res
            %omni_draft $doc {other_doc} --dry-run

        Cell form (``document`` or ``document, branch`` per line; ``#`` comments)::

            %%omni_draft -o res --concurrency 4
            doc-0001
            doc-0002, 7c9e6679-7425-40de-944b-e07fc1f90ae7   # on a branch

        One document: a failed call fails the cell with one line (``NotFoundError: ...``).
        Several: failures are rows; the cell fails only when no row is ok. The token (or a
        pool of them) comes from omni_nb.login() or OMNI_API_TOKENS / OMNI_API_TOKEN, never
        from an option.
        """
        try:
            args = parse_argstring(cast(Any, self).omni_draft, line)
        except ValueError as exc:  # unbalanced quotes in arg_split
            raise UsageError(f"%omni_draft: {exc}") from None
        return self._run(args, cell)

    # -- the one code path -----------------------------------------------------------------

    def _run(self, args: Any, cell: str | None) -> Any:
        # Every flag works or the line is refused, before anything else (no silent flags).
        problem = clash(MAGIC, vars(args))
        if problem is not None:
            raise UsageError(problem)
        args.output = self.inputs.output_name(args.output)
        options = self._options(args)
        if args.branch_id is not None:
            _check_typed([_Item("", args.branch_id, _say("branch_id"))], documents=False)
        if args.discard or args.list:
            return self._lifecycle(args, cell, options)
        pairs, labels, typed = self.inputs.pairs(args, cell)
        settings = self._settings(args)
        if args.dry_run:
            from .batch import create_drafts
            from .errors import InvalidInputError

            try:
                frame = create_drafts(pairs, args.branch_id, dry_run=True, settings=settings,
                                      options=options, labels=labels)
            except InvalidInputError as exc:  # the batch refuses the input as a whole
                raise UsageError(in_words(str(exc), "magic")) from None
            return self._finish(args, frame)
        if typed:
            _check_typed(typed)
        from .ledger import open_ledger

        open_ledger(options.ledger)  # a ledger that is not ours fails here, before any bar
        if args.background:
            return self._start(args, pairs, labels, settings, options)
        return self._send(args, pairs, labels, settings, options)

    def _settings(self, args: Any) -> Any:
        """Settings once, first: a missing token or unsafe URL fails the cell before anything
        else, and the same resolved settings go down to the batch and the client."""
        from .config import resolve_settings
        from .errors import ConfigError

        try:
            return resolve_settings(
                args.base_url, None, instance=args.instance, playground=args.playground or None,
                budget=self.settings.budget_setting(),
            )
        except ConfigError as exc:
            # Said with the magic's options, not Python keywords.
            said = _MISSING.get(exc.missing or "") or in_words(str(exc), "magic")
            raise ConfigError(said, missing=exc.missing) from None

    def _lifecycle(self, args: Any, cell: str | None, options: Any) -> Any:
        """``--discard`` (documents, a results table with ``--from``, or ``--run-id``) and
        ``--list``: the rest of a draft's life, with the same inputs and options, and
        ``--dry-run`` and ``--background`` as :func:`omni_nb.discard_drafts` and
        :func:`omni_nb.list_drafts` take them."""
        from .batch import BatchInterrupted, discard_drafts, list_drafts
        from .errors import InvalidInputError

        if args.run_id is not None and (args.items or args.from_ or (cell or "").strip()):
            raise UsageError(f"{_say('run_id')} undoes a whole run: give no documents with it")
        items, labels = (self.inputs.for_lifecycle(args, cell) if args.run_id is None
                         else (None, None))
        settings = self._settings(args)
        common: dict[str, Any] = dict(dry_run=args.dry_run, background=args.background,
                                      settings=settings, options=options,
                                      document_col=args.document_col)
        table: Any
        try:
            if args.list:
                table = list_drafts(items, include_archived=args.include_archived, **common)
            else:
                table = discard_drafts(items, run_id=args.run_id, branch_id=args.branch_id,
                                       labels=labels, branch_col=args.branch_col,
                                       trust_old_ledger=args.trust_old_ledger, **common)
        except InvalidInputError as exc:
            raise UsageError(in_words(str(exc), "magic")) from None
        except BatchInterrupted as stop:
            if args.output is None:
                raise
            self._shell.push({args.output: stop.result})
            raise BatchInterrupted(stop.result, where=f"in {args.output}") from None
        except LedgerError as failed:
            self._keep_failed(args, failed)
        if args.background:
            return self._handle(args, table)
        return self._finish(args, table)

    def _keep_failed(self, args: Any, failed: LedgerError) -> NoReturn:
        """A ledger write failed mid-batch: the table goes to ``-o`` (as after an interrupt)
        and the cell fails with one line naming the rows not in the ledger."""
        if failed.result is None or args.output is None:
            raise failed
        self._shell.push({args.output: failed.result})
        raise failed.kept_in(f"in {args.output}") from failed.__cause__

    def _start(self, args: Any, pairs: list[tuple[object, object]], labels: list[str],
               settings: Any, options: Any) -> Any:
        """``--background``: the batch runs on; the handle is returned (or stored)."""
        from .batch import create_drafts
        from .errors import InvalidInputError

        try:
            run = create_drafts(pairs, args.branch_id, background=True, settings=settings,
                                options=options, labels=labels)
        except InvalidInputError as exc:
            raise UsageError(in_words(str(exc), "magic")) from None
        return self._handle(args, run)

    def _handle(self, args: Any, run: Any) -> Any:
        """A background run's handle: returned, or stored in ``-o VAR`` with one line."""
        if args.output is None:
            return run
        self._shell.push({args.output: run})
        print(f"running in the background -> {args.output} ({args.output}.wait() gives the "
              f"table, {args.output}.cancel() stops it)")
        return None

    def _options(self, args: Any) -> Any:
        """The batch options from the line and the ``OmniNB`` defaults (UsageError if bad)."""
        from .batch import BatchOptions
        from .client import RetryPolicy
        from .errors import InvalidInputError

        concurrency = self.settings.concurrency if args.concurrency is None else args.concurrency
        if concurrency < 1:
            raise UsageError(f"{_say('concurrency')} must be at least 1, not {concurrency}")
        if args.max_retries is not None and args.max_retries < 0:
            raise UsageError(f"{_say('max_retries')} must be 0 or more, not {args.max_retries}")
        rate_text = self.settings.rate if args.rate_limit is None else args.rate_limit
        try:
            rate = RateLimit.parse(rate_text)
        except ValueError as exc:
            raise UsageError(f"{_say('rate_limit')}: {exc}") from None
        try:
            return BatchOptions(concurrency=concurrency, rate_limit=rate,
                                retry=RetryPolicy.of(args.max_retries), resume=args.resume)
        except InvalidInputError as exc:
            raise UsageError(f"{_say('concurrency')}: {in_words(str(exc), 'magic')}") from None

    def _send(self, args: Any, pairs: list[tuple[object, object]], labels: list[str],
              settings: Any, options: Any) -> Any:
        from .batch import BatchInterrupted, create_drafts
        from .batch.budget import budget_for
        from .errors import InvalidInputError
        from .progress.live import make_progress

        bar = make_progress(self.shell, _count(pairs), wanted=self.settings.progress,
                            budget=budget_for(settings, options.rate_limit))
        try:
            # No bar (one document, or progress off): False, or the batch would pick its own.
            table = create_drafts(pairs, args.branch_id, settings=settings, options=options,
                                  progress=bar if bar is not None else False, labels=labels)
        except BatchInterrupted as stop:
            if args.output is None:
                raise
            self._shell.push({args.output: stop.result})
            raise BatchInterrupted(stop.result, where=f"in {args.output}") from None
        except LedgerError as failed:
            self._keep_failed(args, failed)
        except InvalidInputError as exc:
            # The batch refuses the input as a whole (a bad default branch).
            raise UsageError(in_words(str(exc), "magic")) from None
        finally:
            if bar is not None:
                bar.close()
        self._raise_if_nothing_done(args, table)
        return self._finish(args, table)

    def _raise_if_nothing_done(self, args: Any, table: Any) -> None:
        """One document that failed raises its own error; a batch with no ``ok`` row fails
        the cell after the table is shown or stored, so "Run all" stops."""
        if len(table) == 1 and table.iloc[0]["status"] != "ok":
            row = table.iloc[0]
            if args.output is not None:
                self._shell.push({args.output: table})
            error = table.errors[0]
            if row["status"] == "invalid":
                raise UsageError(str(row["message"]))
            if error is None:  # cancelled: the call was never answered
                raise DraftsFailedError(f"not sent: {in_words(row['message'], 'magic')}")
            raise error  # the client's own error, body and retry hint included
        if len(table) > 1 and not (table["status"] == "ok").any():
            where = f"stored in {args.output}" if args.output else "shown above"
            if args.output is not None:
                self._shell.push({args.output: table})
            else:
                from IPython import display as ipd

                show: Any = ipd.display
                show(table)
            raise DraftsFailedError(f"no draft created: {table.summary()} (the table is {where})")

    def _finish(self, args: Any, table: Any) -> Any:
        summary = table.attrs.get("summary") or (
            table.summary() if hasattr(table, "summary") else f"{len(table)} rows (drafts)")
        if args.output is not None:
            self._shell.push({args.output: table})
            print(f"{summary} -> {args.output}")
            return None
        if args.dry_run:
            print(summary)
        return table


_ONE_PLACE = "give documents in one place: on the line, in the cell, or with --from VAR"


def _say(name: str) -> str:
    """An option as the magic spells it in its messages (``--run-id`` for ``run_id``)."""
    return spelling(name, "magic")


def _is_table(value: object) -> bool:
    # A DataFrame (a table from an earlier run, say) is what -o is expected to replace.
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def _count(items: Any) -> int:
    """How many rows the batch will have: distinct pairs (a duplicate is sent once)."""
    if isinstance(items, list):
        try:
            return len(set(items))
        except TypeError:  # unhashable items: the batch reports them; the bar self-corrects
            return len(items)
    return len(items) if hasattr(items, "__len__") else 0


# -- extension hooks -------------------------------------------------------------------------


def register(ipython: Any) -> None:
    """Register ``%omni_draft`` and the ``OmniNB`` configurable (idempotent).

    Example:
        ``omni_nb.magic.register(get_ipython())``, as ``%load_ext omni_nb`` does.
    """
    unregister(ipython)  # %reload_ext and a second %load_ext start clean
    settings = OmniNB(parent=ipython)
    ipython.configurables.append(settings)
    ipython.register_magics(OmniMagics(ipython, settings))


def unregister(ipython: Any) -> None:
    """Remove ``%omni_draft`` and the ``OmniNB`` configurable (IPython has no public API).

    Example:
        ``omni_nb.magic.unregister(get_ipython())``, as ``%unload_ext omni_nb`` does.
    """
    magics = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        found = magics[kind].get(MAGIC)
        # By class name: after importlib.reload the old instances' class is another object.
        owner = getattr(found, "__self__", None)
        if owner is not None and type(owner).__name__ == OmniMagics.__name__:
            del magics[kind][MAGIC]
    ipython.magics_manager.registry.pop(OmniMagics.__name__, None)
    ipython.configurables[:] = [
        c for c in ipython.configurables if type(c).__name__ != OmniNB.__name__
        or type(c).__module__ != __name__
    ]
