"""Every option of the front ends, defined once: the magic's and the CLI's parsers are built
from :data:`OPTIONS` (standard library only; both front ends stand on it, never on each other).

An option is named by its Python keyword, as :func:`omni_nb.create_drafts` and the other
public functions spell it (``document_col``, ``include_archived``, ``rate_limit``...); a
name only the front ends know (``output``, ``from_``, ``yes``...) is named the same way. Its
one flag is derived from that name (:func:`flag_of`): ``--document-col``, ``--rate-limit``,
``--from`` (a trailing ``_`` dodges a Python keyword). Spellings the front ends used before
stay as aliases (``--rate``, ``--branch``, ``--run``, the CLI's ``--archived``) and parse to
the same value. Adding an option to a front end is one entry here.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_options(parser, "drafts")
    >>> args = parser.parse_args(["doc-a", "--archived", "--document-col", "identifier"])
    >>> (args.items, args.include_archived, args.document_col)
    (['doc-a'], True, 'identifier')
    >>> spelling("document_col", "magic"), spelling("document_col", "python")
    ('--document-col', 'document_col=')
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CLI_COMMANDS", "MAGIC", "OPTIONS", "Option", "add_options", "argument_specs", "clash",
    "flag_of", "given", "in_words", "option", "options_for", "spelling",
]

#: The magic's one command; the CLI's commands that take options from the table.
MAGIC = "omni_draft"
CLI_COMMANDS = ("demo", "draft", "discard", "drafts", "results", "budget")

Front = Literal["python", "magic", "cli"]
Kind = Literal["text", "int", "float", "path", "flag", "rate", "many"]

_TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "path": Path}


def flag_of(name: str) -> str:
    """The one flag spelling of a keyword name: dashes for underscores, ``--`` in front; a
    trailing ``_`` (``from_``, dodging a Python keyword) is dropped.

    Example:
        >>> flag_of("include_archived"), flag_of("from_")
        ('--include-archived', '--from')
    """
    return "--" + name.rstrip("_").replace("_", "-")


@dataclass(frozen=True, slots=True)
class Option:
    """One option of the front ends.

    ``kind``: ``text``, ``int``, ``float``, ``path``, ``flag`` (on/off), ``rate`` (text the
    front end converts: the CLI in its parser, the magic after it), ``many`` (the positional
    document ids). ``default``: the CLI's (and Python's) default; ``setting``: the magic's
    default is ``OmniNB.<setting>`` instead (the parser gives None). ``commands``: which take
    it (:data:`MAGIC` and the CLI's commands). ``helps``: a command's own help text, where
    the option means something a little different there. ``group``: CLI options that
    exclude each other share a group name. ``needs``: options of which it takes one (where
    the command takes any of them: ``--include-archived`` means something with ``--list``
    only); ``excludes``: options it cannot go with. :func:`clash` reads both, so no flag a
    command takes is ever silently ignored: it works, or the line is refused naming why.

    Example:
        >>> option("rate_limit").aliases
        ('--rate',)
    """

    name: str
    help: str
    commands: tuple[str, ...]
    kind: Kind = "text"
    metavar: str | None = None
    default: object = None
    aliases: tuple[str, ...] = ()
    short: str | None = None
    setting: str | None = None
    group: str | None = None
    helps: Mapping[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """The one spelling (``--document-col``); the positional ids have none (``DOC``)."""
        return (self.metavar or "DOC") if self.kind == "many" else flag_of(self.name)

    def help_for(self, command: str) -> str:
        """The help text for ``command`` (its own, or the option's)."""
        return self.helps.get(command, self.help)

    def spec(self, command: str, types: Mapping[str, Callable[[str], Any]] | None = None,
             ) -> tuple[tuple[str, ...], dict[str, Any]]:
        """``(flags, keywords)`` for ``add_argument`` (argparse's and IPython's alike).

        Example:
            >>> option("concurrency").spec("draft")[0]
            ('--concurrency',)
        """
        kw: dict[str, Any] = {"help": self.help_for(command)}
        if self.kind == "many":
            return (self.name,), {**kw, "nargs": "*", "metavar": self.metavar or "DOC"}
        flags = tuple(f for f in (self.short, self.flag, *self.aliases) if f)
        kw["dest"] = self.name
        if self.kind == "flag":
            return flags, {**kw, "action": "store_true"}
        kind_type = (types or {}).get(self.kind) or _TYPES.get(self.kind)
        if kind_type is not None:
            kw["type"] = kind_type
        kw["metavar"] = self.metavar
        kw["default"] = None if command == MAGIC and self.setting else self.default
        return flags, kw


def _o(name: str, text: str, *commands: str, **kw: Any) -> Option:
    return Option(name, text, commands, **kw)


_CLI_IDS = ("draft", "discard", "drafts")
_CONNECT = (MAGIC, *_CLI_IDS)
#: Where a column option means something: documents read from a table (the magic's
#: variable, the CLI's file); typed ids have no columns.
_FROM = ("from_", "from_csv")

#: Every option, in the order the help lists them.
OPTIONS: tuple[Option, ...] = (
    _o("items", "document ids (or identifier slugs)", *_CONNECT, kind="many", helps={
        "draft": "document ids or identifier slugs (or use --from-csv)",
        "discard": "document ids whose active draft to discard", "drafts": "document ids"}),
    _o("branch_id", "branch for every document without its own", MAGIC, "draft", "discard",
       metavar="UUID", aliases=("--branch",), excludes=("list",),
       helps={"discard": "the branch's draft, for documents without their own"}),
    _o("output", "store the results table in VAR and print a one-line summary", MAGIC,
       metavar="VAR", short="-o"),
    _o("from_", "take documents from a DataFrame or list in the user namespace", MAGIC,
       metavar="VAR"),
    _o("from_csv", "UTF-8 CSV with a document_id column (and optionally branch_id; "
       "--document-col/--branch-col name others)", *_CLI_IDS, kind="path", metavar="FILE"),
    _o("document_col", "column of document ids in the --from-csv file (default document_id)",
       *_CONNECT, metavar="COL", default="document_id", needs=_FROM,
       helps={MAGIC: "--from DataFrame column of document ids (default document_id)"}),
    _o("branch_col", "column of branch ids in the --from-csv file (default branch_id, if "
       "present)", MAGIC, "draft", "discard", metavar="COL", needs=_FROM, excludes=("list",),
       helps={MAGIC: "--from DataFrame column of branch ids (default branch_id, if present)"}),
    _o("instance", "Omni instance name: acme -> https://acme.omniapp.co/api", *_CONNECT, "budget",
       metavar="NAME", group="where", excludes=("base_url",)),
    _o("base_url", "API root instead, e.g. https://acme.omniapp.co/api", *_CONNECT, "budget",
       metavar="URL", group="where"),
    _o("playground", "--instance is a playground instance (*.playground.exploreomni.dev)",
       *_CONNECT, "budget", kind="flag", needs=("instance",)),
    _o("concurrency", "requests in flight, 1 to 64 (default 8)", MAGIC, "draft", "discard",
       "demo", kind="int", metavar="N", default=8, setting="concurrency",
       helps={MAGIC: "requests in flight (default: OmniNB.concurrency)",
              "demo": "requests in flight (default 8)"}),
    _o("rate_limit", "client-side rate limit, e.g. 60/60 (Omni's default) or off", MAGIC,
       "draft", "discard", kind="rate", metavar="N/SECONDS", default="60/60",
       aliases=("--rate",), setting="rate",
       helps={MAGIC: "client-side rate limit, like 60/60, or off (default: OmniNB.rate)"}),
    _o("max_retries", "retries of a 429, 5xx or dropped connection (default 6; 0: fail fast)",
       MAGIC, kind="int", metavar="N"),
    _o("resume", "copy pairs already ok in the ledger instead of sending them again", MAGIC,
       "draft", kind="flag", excludes=("list", "dry_run")),  # a dry run shows every send
    _o("dry_run", "validate and show what would be sent; send nothing", MAGIC, kind="flag",
       excludes=("background",)),
    _o("discard", "discard (archive) the drafts instead: of the documents given, or, for a "
       "results table (--from) or a run (--run-id), only the drafts that run made", MAGIC,
       kind="flag", excludes=("list",)),
    _o("run_id", "with --discard: undo that run (its ok creates, carefully)", MAGIC,
       "discard", "results", metavar="RUN_ID", aliases=("--run",), group="which",
       needs=("discard",),
       helps={"discard": "undo this run (see results --last)",
              "results": "one batch's rows (its run id)"}),
    _o("trust_old_ledger", "undo rows an older omni_nb recorded with several attempts or "
       "before requested_at meant the first send, taking their whole call for the request's "
       "time (they are skipped otherwise)", MAGIC, "discard", kind="flag",
       needs=("discard",)),
    _o("list", "list the documents' drafts instead (a DataFrame, one row per draft)", MAGIC,
       kind="flag"),
    _o("include_archived", "archived drafts too", MAGIC, "drafts", kind="flag",
       aliases=("--archived",), needs=("list",), helps={MAGIC: "with --list: archived drafts too"}),
    _o("background", "return at once with a live handle (.wait(), .cancel(), .table); the "
       "kernel stays free", MAGIC, kind="flag"),
    _o("out", "also write the table to FILE.csv or FILE.parquet", *_CLI_IDS, "results",
       kind="path", metavar="FILE",
       helps={"drafts": "also write the listing to FILE.csv or FILE.parquet",
              "results": "write every matching row to FILE.csv or FILE.parquet"}),
    _o("yes", "discard without asking", "discard", kind="flag"),
    _o("last", "the latest batch's rows", "results", kind="flag", group="which"),
    _o("since", "rows requested at or after this time, e.g. 2026-11-27T09:30 (UTC)",
       "results", metavar="ISO"),
    _o("limit", "rows to print (default 15; --out writes all)", "results", kind="int",
       metavar="N", default=15, excludes=("out",)),  # --out prints no rows to limit
    _o("ledger", "read this ledger file (default: OMNI_NB_LEDGER or the usual one)",
       "results", "demo", "draft", "discard", kind="path", metavar="PATH",
       helps={"demo": "where the demo's rows go (default: demo.sqlite3 beside the ledger)",
              "draft": "record the rows in this ledger file (default: OMNI_NB_LEDGER or the "
                       "usual one)",
              "discard": "the ledger to read the run from and record the rows in (default: "
                         "OMNI_NB_LEDGER or the usual one)"}),
    # Text, not a path: a redis:// address would lose a slash to Path.
    _o("budget", "the budget store to read, a file or a redis:// address (default: "
       "OMNI_NB_BUDGET or the usual one)", "budget", kind="text", metavar="PATH|URL"),
    _o("clear", "drop the configured keys' stale state (leases, pause, learned limit, "
       "sends) before showing", "budget", kind="flag"),
    _o("all_keys", "with --clear: every key in the store, not only the configured ones",
       "budget", kind="flag", needs=("clear",)),
    _o("documents", "how many sandbox documents (default 300; 3 failing ids are added)",
       "demo", kind="int", metavar="N", default=300),
    _o("latency", "sandbox answer latency (default 0.05)", "demo", kind="float",
       metavar="SECONDS", default=0.05),
)

_BY_NAME = {o.name: o for o in OPTIONS}


def option(name: str) -> Option:
    """The table's entry for a keyword name (KeyError for a name it does not have).

    Example:
        >>> option("include_archived").flag
        '--include-archived'
    """
    return _BY_NAME[name]


def options_for(command: str) -> Iterator[Option]:
    """The options ``command`` takes (:data:`MAGIC` or a CLI command), in table order.

    Example:
        >>> [o.name for o in options_for("demo")]
        ['concurrency', 'ledger', 'documents', 'latency']
    """
    return (o for o in OPTIONS if command in o.commands)


def argument_specs(command: str, types: Mapping[str, Callable[[str], Any]] | None = None,
                   ) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """``(flags, keywords)`` of every option of ``command``, for ``add_argument`` (IPython's
    ``magic_arguments.argument`` takes the same).

    Example:
        >>> flags, keywords = argument_specs("results")[0]
        >>> flags, keywords["dest"], keywords["help"]
        (('--run-id', '--run'), 'run_id', "one batch's rows (its run id)")
    """
    return [o.spec(command, types) for o in options_for(command)]


def add_options(parser: argparse.ArgumentParser, command: str,
                types: Mapping[str, Callable[[str], Any]] | None = None) -> None:
    """Add ``command``'s options to an argparse parser (options of one ``group`` exclude
    each other); ``types`` converts a kind the table leaves as text (the CLI's ``rate``).

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_options(p, "draft", {"rate": str.upper})
        >>> p.parse_args(["--rate", "off"]).rate_limit
        'OFF'
    """
    groups: dict[str, Any] = {}
    for opt in options_for(command):
        target: Any = parser
        if opt.group is not None:
            if opt.group not in groups:
                groups[opt.group] = parser.add_mutually_exclusive_group()
            target = groups[opt.group]
        flags, kw = opt.spec(command, types)
        target.add_argument(*flags, **kw)


def given(command: str, values: Mapping[str, object]) -> list[str]:
    """The options of ``command`` given a value of their own in ``values`` (a parsed
    namespace's ``vars``): a switch turned on, ids, a value other than the default.

    Example:
        >>> given("drafts", {"items": ["a"], "include_archived": False,
        ...                  "document_col": "document_id", "out": None})
        ['items']
    """
    found = []
    for opt in options_for(command):
        value = values.get(opt.name)
        default = opt.spec(command)[1].get("default")
        # A default the parser converted (the CLI's rate) counts as given: no rule names it.
        if value not in (None, False, [], default):
            found.append(opt.name)
    return found


def clash(command: str, values: Mapping[str, object]) -> str | None:
    """What is wrong with the options given to ``command`` (``values``: a parsed
    namespace's ``vars``), in one line naming the flags, or None: an option given without
    one of those it ``needs`` (among those the command takes), or with one it ``excludes``.

    Example:
        >>> clash(MAGIC, {"list": True, "dry_run": True})
        >>> clash(MAGIC, {"include_archived": True, "items": ["a"]})
        '--include-archived goes with --list'
        >>> clash(MAGIC, {"discard": True, "dry_run": True, "background": True})
        'give --dry-run or --background, not both'
        >>> clash("draft", {"document_col": "identifier", "items": ["a"]})
        '--document-col goes with --from-csv'
    """
    names = given(command, values)
    offered = {opt.name for opt in options_for(command)}
    for name in names:
        opt = _BY_NAME[name]
        needed = [other for other in opt.needs if other in offered]
        if needed and not any(other in names for other in needed):
            return f"{opt.flag} goes with {' or '.join(_BY_NAME[n].flag for n in needed)}"
        for other in opt.excludes:
            if other in names:
                return f"give {opt.flag} or {_BY_NAME[other].flag}, not both"
    return None


def spelling(name: str, front: Front) -> str:
    """How ``front`` spells a keyword in what it says: ``document_col=`` in Python, the
    flag in the magic and the CLI (the same table builds both).

    Example:
        >>> spelling("rate_limit", "cli"), spelling("branch_id", "python")
        ('--rate-limit', 'branch_id=')
    """
    if front == "python":
        return f"{name}="
    return _BY_NAME[name].flag if name in _BY_NAME else flag_of(name)


_KEYWORD = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(o.name) for o in OPTIONS if o.kind != "many")
    + r")=(True\b|\S?)"
)
#: A message about a connection setting opens with its name (config's ``base_url 'x' is not
#: an http(s) URL``): the option it is about, said as a flag too.
_SUBJECT = re.compile(
    r"^(" + "|".join(re.escape(o.name) for o in OPTIONS if o.group == "where") + r")(?= )"
)


def in_words(text: str, front: Front) -> str:
    """A message from the Python layer (``pass document_col=``) said in ``front``'s words
    (``pass --document-col``): each ``keyword=`` of the table becomes its spelling, and a
    switch turned on (``resume=True``) its flag alone. A keyword the front end has no option
    for stays as Python spells it (the magic has no ``--ledger``: ``ledger=PATH`` is still
    true in a notebook, a flag it does not take would not be). A message that opens with a
    connection setting's name (``base_url 'x' is not...``) opens with its flag.

    Example:
        >>> in_words("run_id='x': no such run (branch_col=)", "magic")
        "--run-id 'x': no such run (--branch-col)"
        >>> in_words("rerun with resume=True", "cli")
        'rerun with --resume'
        >>> in_words("use ledger=PATH", "magic"), in_words("use ledger=PATH", "cli")
        ('use ledger=PATH', 'use --ledger PATH')
        >>> in_words("instance 'a.b' is not an instance name", "cli")
        "--instance 'a.b' is not an instance name"
    """
    if front == "python":
        return text
    text = _SUBJECT.sub(lambda match: spelling(match.group(1), front), text)

    def say(match: re.Match[str]) -> str:
        after, known = match.group(2), _BY_NAME[match.group(1)]
        offered = (MAGIC in known.commands if front == "magic"
                   else any(command != MAGIC for command in known.commands))
        if not offered:
            return match.group(0)
        if after == "True" and known.kind == "flag":
            return spelling(match.group(1), front)
        gap = " " if after and after not in ")],;." else ""
        return spelling(match.group(1), front) + gap + after

    return _KEYWORD.sub(say, text)
