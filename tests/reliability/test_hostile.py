"""Hostile input, table-driven, across the entry points: the client, batches of lists and
DataFrames, the CLI, settings and client construction (and the magic and the widget).

Each bad input gets a clear error or an ``invalid`` row naming the item, and the sandbox's
request log proves nothing malformed was sent: no request at all for a bad input, and for its
valid neighbours a raw path of exactly ``/api/v1/documents/<id>/draft``.
"""

from __future__ import annotations

import collections
import json
import math
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import omni_nb
from omni_nb import (
    ConfigError,
    InvalidInputError,
    OmniClient,
    RateLimit,
    RetryPolicy,
    sandbox,
)
from omni_nb.cli import main as cli_main
from omni_nb.config import resolve_settings

from ..conftest import MakeSandbox
from .conftest import BRANCHES

BR = BRANCHES[0]
VALID_PATH = re.compile(r"^/api/v1/documents/doc-\d{4}/draft$")
LIST_PATHS = ("/api/v1/documents", "/api/v1/models")  # the widget's pickers list these
NEIGHBOURS = ("doc-0001", "doc-0002")

BAD_DOCUMENTS: dict[str, object] = {
    "dotdot-slash": "../x",
    "etc-passwd": "../../etc/passwd",
    "slash": "a/b",
    "query": "a?b=c",
    "fragment": "a#b",
    "pct-2F": "doc%2F0001",
    "pct-dotdot": "%2e%2e",
    "dotdot": "..",
    "dot": ".",
    "cyrillic-o-es": "d\u043e\u0441-0001",  # Cyrillic о and с look like o and c
    "cyrillic-a": "\u0430cme",
    "fullwidth": "\uff44\uff4f\uff43-0001",
    "zero-width-space": "doc\u200b-0001",
    "nbsp": "doc\u00a00001",
    "rtl-override": "doc-\u202e1000",
    "nul": "doc\x00-0001",
    "newline": "doc\n0001",
    "crlf-header-injection": "doc\r\nX-Evil: 1",
    "tab": "doc\t0001",
    "del": "doc\x7f",
    "space": "doc 0001",
    "backslash": "doc\\0001",
    "at": "user@doc",
    "semicolon": "doc;1",
    "10kB": "a" * 10_000,
    "empty": "",
    "blank": "   ",
    "int": 1234,
    "float": 1.5,
    "none": None,
    "bytes": b"doc-0001",
    "bool": True,
    "uuid-object": uuid.UUID(BR),
    "dict": {"id": "doc-0001"},
    "three-list": ["doc-0001", BR, "x"],
}

BAD_BRANCHES: dict[str, object] = {
    "not-uuid": "not-a-uuid",
    "short": BR[:-1],
    "braces": "{" + BR + "}",
    "path": BR + "/../x",
    "nul": BR[:10] + "\x00" + BR[11:],
    "urn": "urn:uuid:" + BR,
    "cyrillic-a": BR.replace("a", "\u0430"),
    "empty": "",
    "int": 42,
    "bytes": BR.encode(),
}

_tried: set[str] = set()


@pytest.fixture(scope="module")
def sb(make_module_sandbox: MakeSandbox) -> Iterator[sandbox.Sandbox]:
    """One sandbox for the module; after the module, its whole log shows that nothing
    malformed ever reached it."""
    server = make_module_sandbox(documents=30)
    yield server
    assert server.wait_idle()
    for r in server.requests():
        if r.method == "GET":
            assert r.path in LIST_PATHS, r.path
        else:
            assert VALID_PATH.match(r.path), r.path
            assert r.query == ""


def _tried_case(request: pytest.FixtureRequest, figures: collections.Counter[str]) -> None:
    if request.node.nodeid not in _tried:
        _tried.add(request.node.nodeid)
        figures["bad_inputs_tried"] += 1


@pytest.fixture
def bad_input(request: pytest.FixtureRequest, figures: collections.Counter[str]) -> None:
    """Counts this test as one bad input tried (for the figures in docs/reliability.md)."""
    _tried_case(request, figures)


class Log:
    """The sandbox's requests since this object was made."""

    def __init__(self, sb: sandbox.Sandbox) -> None:
        self.sb, self.start = sb, len(sb.requests())

    def new(self) -> list[Any]:
        return self.sb.requests()[self.start:]

    def assert_only(self, *docs: str, branch: str | None = None) -> None:
        """Exactly one request per valid neighbour, each with the exact raw path and body."""
        got = [r for r in self.new() if r.method != "GET" or r.path not in LIST_PATHS]
        assert sorted(r.path for r in got) == sorted(f"/api/v1/documents/{d}/draft" for d in docs)
        for r in got:
            assert r.query == ""
            body = json.loads(r.body)
            assert body == ({} if branch is None else {"branchId": branch})


def _client(sb: sandbox.Sandbox) -> OmniClient:
    return OmniClient(sb.base_url, sb.token, rate_limit=None, retry=RetryPolicy(max_retries=0))


def _batch(items: Any, sb: sandbox.Sandbox, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"rate_limit": None, "ledger": "off", **kwargs}
    return omni_nb.create_drafts(items, base_url=sb.base_url, token=sb.token, **options)


def _invalid_row(table: Any, position: int) -> None:
    """Row ``position`` (0-based) is invalid and its message names the item."""
    row = table.iloc[position]
    assert row["status"] == "invalid"
    assert f"item {position + 1}:" in row["message"]
    assert re.search(r"(document|branch) id", row["message"])
    assert pd.isna(row["draft_id"])
    assert row["attempts"] == 0


# -- the client ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_DOCUMENTS.values(), ids=BAD_DOCUMENTS.keys())
def test_client_refuses_bad_document_ids_before_sending(
    bad: object, sb: sandbox.Sandbox, bad_input: None
) -> None:
    """OmniClient.create_draft raises InvalidInputError naming the document id; nothing sent."""
    log = Log(sb)
    with _client(sb) as client:
        with pytest.raises(InvalidInputError, match=r"^document id ") as info:
            client.create_draft(bad)  # type: ignore[arg-type]
        assert len(str(info.value)) < 300  # a 10 kB id is not echoed whole
        assert client.create_draft("doc-0001").document_id == "doc-0001"
    log.assert_only("doc-0001")


@pytest.mark.parametrize("bad", BAD_BRANCHES.values(), ids=BAD_BRANCHES.keys())
def test_client_refuses_bad_branch_ids_before_sending(
    bad: object, sb: sandbox.Sandbox, bad_input: None
) -> None:
    """A branch that is not a UUID raises InvalidInputError naming the branch; nothing sent."""
    log = Log(sb)
    with _client(sb) as client, pytest.raises(InvalidInputError, match=r"^branch id "):
        client.create_draft("doc-0001", bad)  # type: ignore[arg-type]
    assert log.new() == []


# -- batches: lists and DataFrames -----------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_DOCUMENTS.values(), ids=BAD_DOCUMENTS.keys())
def test_batch_list_gives_an_invalid_row_and_sends_the_neighbours(
    bad: object, sb: sandbox.Sandbox, bad_input: None
) -> None:
    """In a list, a bad id is an invalid row naming item 2; only its neighbours are sent."""
    log = Log(sb)
    table = _batch([NEIGHBOURS[0], bad, NEIGHBOURS[1]], sb)
    assert list(table["status"]) == ["ok", "invalid", "ok"]
    _invalid_row(table, 1)
    log.assert_only(*NEIGHBOURS)


FRAME_DOCUMENTS = {
    **{k: v for k, v in BAD_DOCUMENTS.items() if k in (
        "dotdot-slash", "pct-2F", "cyrillic-o-es", "nul", "10kB", "empty", "int", "bytes")},
    "nan": float("nan"),
    "pd-NA": pd.NA,
    "none": None,
    "numpy-int": pd.Series([7]).iloc[0],
    "timestamp": pd.Timestamp("2026-01-01"),
}


@pytest.mark.parametrize("bad", FRAME_DOCUMENTS.values(), ids=FRAME_DOCUMENTS.keys())
def test_dataframe_bad_cell_gives_an_invalid_row(
    bad: object, sb: sandbox.Sandbox, bad_input: None
) -> None:
    """A DataFrame cell that is NaN/None/NA, a number or a path trick is an invalid row."""
    log = Log(sb)
    frame = pd.DataFrame({"document_id": pd.Series([NEIGHBOURS[0], bad, NEIGHBOURS[1]],
                                                   dtype=object)})
    table = _batch(frame, sb)
    assert list(table["status"]) == ["ok", "invalid", "ok"]
    _invalid_row(table, 1)
    log.assert_only(*NEIGHBOURS)


@pytest.mark.parametrize("bad", BAD_BRANCHES.values(), ids=BAD_BRANCHES.keys())
def test_bad_branch_in_pairs_and_frames_gives_an_invalid_row(
    bad: object, sb: sandbox.Sandbox, bad_input: None
) -> None:
    """A bad branch in a (doc, branch) pair or a branch_id column is an invalid row; the
    neighbours (with a good branch, and with a missing one) are sent as they are."""
    log = Log(sb)
    table = _batch([(NEIGHBOURS[0], BR), ("doc-0003", bad), (NEIGHBOURS[1], BR)], sb)
    assert list(table["status"]) == ["ok", "invalid", "ok"]
    _invalid_row(table, 1)
    log.assert_only(*NEIGHBOURS, branch=BR)
    log = Log(sb)
    frame = pd.DataFrame({"document_id": ["doc-0003", "doc-0004"],
                          "branch_id": pd.Series([bad, float("nan")], dtype=object)})
    table = _batch(frame, sb)
    assert list(table["status"]) == ["invalid", "ok"]
    _invalid_row(table, 0)
    log.assert_only("doc-0004")


def _raises(exc: type[BaseException], pattern: str) -> Callable[[Callable[[], Any]], None]:
    def check(call: Callable[[], Any]) -> None:
        with pytest.raises(exc, match=pattern):
            call()
    return check


def _empty(call: Callable[[], Any]) -> None:
    assert len(call()) == 0


BATCH_CALLS: dict[str, tuple[Callable[[sandbox.Sandbox], Any], Callable[..., None]]] = {
    "single-string": (lambda sb: _batch("doc-0001", sb),
                      _raises(InvalidInputError, "single string")),
    "int-items": (lambda sb: _batch(42, sb), _raises(InvalidInputError, "not int")),
    "none-items": (lambda sb: _batch(None, sb), _raises(InvalidInputError, "NoneType")),
    "empty-list": (lambda sb: _batch([], sb), _empty),
    "empty-frame": (lambda sb: _batch(pd.DataFrame({"document_id": []}), sb), _empty),
    "frame-without-column": (lambda sb: _batch(pd.DataFrame({"doc": ["doc-0001"]}), sb),
                             _raises(InvalidInputError, "document_id")),
    "frame-missing-branch-col": (
        lambda sb: _batch(pd.DataFrame({"document_id": ["doc-0001"]}), sb, branch_col="br"),
        _raises(InvalidInputError, "br")),
    "batch-wide-bad-branch": (lambda sb: _batch(["doc-0001"], sb, branch_id="main"),
                              _raises(InvalidInputError, "branch id")),
    "concurrency-zero": (lambda sb: _batch(["doc-0001"], sb, concurrency=0),
                         _raises(InvalidInputError, "concurrency")),
    "concurrency-str": (lambda sb: _batch(["doc-0001"], sb, concurrency="8"),
                        _raises(InvalidInputError, "concurrency")),
    "concurrency-bool": (lambda sb: _batch(["doc-0001"], sb, concurrency=True),
                         _raises(InvalidInputError, "concurrency")),
    "rate-limit-tuple": (lambda sb: _batch(["doc-0001"], sb, rate_limit=(60, 60)),
                         _raises(TypeError, "RateLimit")),
    "timeout-negative": (lambda sb: _batch(["doc-0001"], sb, timeout=-1),
                         _raises(ValueError, "timeout")),
    "max-retries-negative": (lambda sb: _batch(["doc-0001"], sb, max_retries=-1),
                             _raises(ValueError, "max_retries")),
}


@pytest.mark.parametrize(("call", "check"), BATCH_CALLS.values(), ids=BATCH_CALLS.keys())
def test_bad_batch_calls_raise_clearly_and_send_nothing(
    call: Callable[[sandbox.Sandbox], Any], check: Callable[..., None], sb: sandbox.Sandbox,
    bad_input: None,
) -> None:
    """Wrong item containers, empty inputs and bad options: a clear error (or an empty table),
    and not one request."""
    log = Log(sb)
    check(lambda: call(sb))
    assert log.new() == []


# -- settings and client construction -------------------------------------------------------

SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "http-non-loopback": ({"base_url": "http://acme.omniapp.co/api"}, "plain http"),
    "http-private-ip": ({"base_url": "http://10.0.0.5:8080/api"}, "plain http"),
    "http-hex-loopback-trick": ({"base_url": "http://0x7f000001/api"}, "plain http"),
    "http-localhost-suffix": ({"base_url": "http://localhost.evil.com/api"}, "plain http"),
    "url-credentials": ({"base_url": "https://user:hunter2@acme.omniapp.co/api"},
                        "credentials"),
    "url-query": ({"base_url": "https://acme.omniapp.co/api?x=1"}, "query"),
    "url-fragment": ({"base_url": "https://acme.omniapp.co/api#x"}, "fragment"),
    "url-ftp": ({"base_url": "ftp://acme.omniapp.co/api"}, "http"),
    "url-javascript": ({"base_url": "javascript:alert(1)"}, "http"),
    "url-space": ({"base_url": "https://acme.omni app.co"}, "spaces"),
    "url-newline": ({"base_url": "https://acme.omniapp.co/\napi"}, "control"),
    "url-bad-port": ({"base_url": "https://acme.omniapp.co:99999/api"}, "valid URL"),
    "url-empty": ({"base_url": ""}, "http"),
    "url-int": ({"base_url": 8080}, "string"),
    "instance-url": ({"instance": "https://acme.omniapp.co"}, "looks like a URL"),
    "instance-dotted": ({"instance": "acme.omniapp.co"}, "not an instance name"),
    "instance-credentials": ({"instance": "user:hunter2@acme"}, "not shown"),
    "instance-cyrillic": ({"instance": "\u0430cme"}, "not an instance name"),
    "instance-path": ({"instance": "acme/../evil"}, "not an instance name"),
    "instance-leading-dash": ({"instance": "-acme"}, "not an instance name"),
    "instance-and-url": ({"instance": "acme", "base_url": "https://acme.omniapp.co"},
                         "not both"),
    "token-empty": ({"token": ""}, "empty"),
    "token-inner-newline": ({"token": "omni_osk_a\nb"}, "control"),
    "token-space": ({"token": "omni osk"}, "spaces"),
    "token-non-ascii": ({"token": "omni_osk_\u00e4"}, "non-ASCII"),
    "token-int": ({"token": 12345}, "string"),
    "no-token": ({"token": None}, "OMNI_API_TOKEN"),
    "no-root": ({"base_url": None}, "OMNI_BASE_URL"),
}


@pytest.mark.parametrize(("kwargs", "pattern"), SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("entry", ["resolve_settings", "OmniClient", "create_drafts"])
def test_unsafe_settings_raise_config_error_before_sending(
    kwargs: dict[str, Any], pattern: str, entry: str, sb: sandbox.Sandbox,
    request: pytest.FixtureRequest, figures: collections.Counter[str],
) -> None:
    """URLs with credentials, plain http off loopback, instance names that are URLs, bad
    tokens: ConfigError naming the problem (never echoing credentials); nothing sent."""
    _tried_case(request, figures)
    args: dict[str, Any] = {"token": "omni_osk_ok", **kwargs}
    if "base_url" not in args and "instance" not in args:
        args["base_url"] = "https://acme.omniapp.co"
    log = Log(sb)
    calls: dict[str, Callable[[], Any]] = {
        "resolve_settings": lambda: resolve_settings(environ={}, **args),
        "OmniClient": lambda: OmniClient(**args),
        "create_drafts": lambda: omni_nb.create_drafts(["doc-0001"], ledger="off", **args),
    }
    with pytest.raises(ConfigError, match=pattern) as info:
        calls[entry]()
    assert "hunter2" not in str(info.value)
    assert log.new() == []


CONSTRUCTION: dict[str, tuple[dict[str, Any], type[BaseException], str]] = {
    "timeout-zero": ({"timeout": 0}, ValueError, "timeout"),
    "timeout-inf": ({"timeout": math.inf}, ValueError, "timeout"),
    "timeout-str": ({"timeout": "5"}, ValueError, "timeout"),
    "max-retries-str": ({"max_retries": "3"}, TypeError, "max_retries"),
    "retry-and-max-retries": ({"max_retries": 1, "retry": RetryPolicy()}, TypeError, "not both"),
    "rate-limit-str": ({"rate_limit": "60/60"}, TypeError, "RateLimit"),
}


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), CONSTRUCTION.values(),
                         ids=CONSTRUCTION.keys())
def test_wrong_types_in_client_construction_raise(
    kwargs: dict[str, Any], exc: type[BaseException], pattern: str, sb: sandbox.Sandbox,
    bad_input: None,
) -> None:
    """Wrong option types or values fail at construction, naming the option."""
    with pytest.raises(exc, match=pattern):
        OmniClient(sb.base_url, sb.token, **kwargs)


@pytest.mark.parametrize(
    ("args", "exc"),
    [((0, 60), ValueError), ((60, 0), ValueError), ((60, math.nan), ValueError),
     (("60", 60), TypeError), ((True, 60), TypeError)],
    ids=["zero-requests", "zero-window", "nan-window", "str-requests", "bool-requests"],
)
def test_bad_rate_limits_raise(args: tuple[Any, Any], exc: type[BaseException],
                               bad_input: None) -> None:
    """RateLimit refuses a zero, NaN or mistyped limit."""
    with pytest.raises(exc):
        RateLimit(*args)


# -- the CLI -------------------------------------------------------------------------------


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = cli_main(argv)
    except SystemExit as stop:  # argparse usage errors; a str code would exit with status 1
        code = stop.code if isinstance(stop.code, int) else 1
    out = capsys.readouterr()
    return code, out.out + out.err


CLI_BAD_DOCS = ["../x", "a?b=c", "doc%2F0001", "d\u043e\u0441-0001", "doc\x01", "x" * 10_000]


@pytest.mark.parametrize("bad", CLI_BAD_DOCS, ids=["dotdot", "query", "pct", "cyrillic",
                                                    "control", "10kB"])
def test_cli_marks_bad_ids_invalid_and_exits_1(
    bad: str, sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], bad_input: None,
) -> None:
    """`omni-nb draft` with a bad id: an invalid row, exit code 1, only neighbours sent."""
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    log = Log(sb)
    code, out = _cli(["draft", NEIGHBOURS[0], bad, NEIGHBOURS[1], "--base-url", sb.base_url,
                      "--rate", "off"], capsys)
    assert code == 1
    assert "1 invalid" in out
    log.assert_only(*NEIGHBOURS)


def test_cli_csv_with_bad_rows_gives_invalid_rows(
    sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], bad_input: None,
) -> None:
    """--from-csv with bad ids, a bad branch and an empty cell: invalid rows, exit code 1."""
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    csv = tmp_path / "docs.csv"
    csv.write_text(f"document_id,branch_id\ndoc-0001,\n../x,\ndoc-0003,nope\n,\n"
                   f"doc-0002,{BR}\n", encoding="utf-8")
    log = Log(sb)
    code, out = _cli(["draft", "--from-csv", str(csv), "--base-url", sb.base_url, "--rate",
                      "off"], capsys)
    assert code == 1
    assert "3 invalid" in out
    got = sorted((r.path, r.body) for r in log.new())
    assert got == [("/api/v1/documents/doc-0001/draft", b"{}"),
                   ("/api/v1/documents/doc-0002/draft", json.dumps({"branchId": BR}).encode())]


CLI_USAGE: dict[str, tuple[list[str], str]] = {
    "no-documents": (["draft"], "give document ids"),
    "http-non-loopback": (["draft", "doc-0001", "--base-url", "http://evil.example.com/api"],
                          "plain http"),
    "url-credentials": (["draft", "doc-0001", "--base-url",
                         "https://u:hunter2@acme.omniapp.co"], "credentials"),
    "instance-url": (["draft", "doc-0001", "--instance", "https://acme.omniapp.co"],
                     "looks like a URL"),
    "instance-credentials": (["draft", "doc-0001", "--instance", "u:hunter2@acme"],
                             "not shown"),
    "bad-branch": (["draft", "doc-0001", "--branch", "main"], "branch id"),
    "bad-rate": (["draft", "doc-0001", "--rate", "lots"], "rate"),
    "bad-concurrency": (["draft", "doc-0001", "--concurrency", "0"], "concurrency"),
    "concurrency-not-int": (["draft", "doc-0001", "--concurrency", "many"], "invalid int"),
    "csv-without-column": (["draft", "--from-csv", "{csv}"], "no document_id column"),
    "unknown-command": (["publish", "doc-0001"], "invalid choice"),
}


@pytest.mark.parametrize(("argv", "pattern"), CLI_USAGE.values(), ids=CLI_USAGE.keys())
def test_cli_usage_and_settings_errors_exit_2_and_send_nothing(
    argv: list[str], pattern: str, sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_input: None,
) -> None:
    """Bad CLI usage or settings: exit code 2, a message naming the problem (no echoed
    credentials, no traceback), no request."""
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    csv = tmp_path / "x.csv"
    csv.write_text("doc\ndoc-0001\n", encoding="utf-8")
    argv = [a.replace("{csv}", str(csv)) for a in argv]
    if not any(a in ("--base-url", "--instance") for a in argv):
        argv += ["--base-url", sb.base_url] if argv[0] == "draft" else []
    log = Log(sb)
    code, out = _cli(argv, capsys)
    assert code == 2
    assert re.search(pattern, out), out
    assert "hunter2" not in out
    assert "Traceback" not in out
    assert log.new() == []


def test_cli_without_a_token_exits_2(
    sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str], bad_input: None
) -> None:
    """No token in the environment: exit 2 naming OMNI_API_TOKEN, nothing sent."""
    log = Log(sb)
    code, out = _cli(["draft", "doc-0001", "--base-url", sb.base_url], capsys)
    assert code == 2
    assert "OMNI_API_TOKEN" in out
    assert log.new() == []


DISTINCT_BAD_INPUTS = (
    len(BAD_DOCUMENTS) + len(BAD_BRANCHES) + len(FRAME_DOCUMENTS) + len(BATCH_CALLS)
    + len(SETTINGS) + len(CONSTRUCTION) + 5 + len(CLI_BAD_DOCS) + 1 + len(CLI_USAGE) + 1
)


def test_the_table_holds_at_least_forty_bad_inputs() -> None:
    """The tables above hold at least 40 distinct bad inputs (the issue's floor)."""
    assert DISTINCT_BAD_INPUTS >= 40


# -- the magic and the widget ----------------------------------------------------------------

MAGIC_BAD: dict[str, tuple[str, str]] = {
    "line-dotdot": ("%omni_draft ../x", "document id"),
    "line-query": ("%omni_draft a?b=c", "document id"),
    "line-bad-branch": ("%omni_draft doc-0001 --branch main", "branch id"),
    "line-http-url": ("%omni_draft doc-0001 --base-url http://evil.example.com/api",
                      "plain http"),
    "line-instance-url": ("%omni_draft doc-0001 --instance https://acme.omniapp.co",
                          "looks like a URL"),
    "line-credentials": ("%omni_draft doc-0001 --base-url https://u:hunter2@acme.omniapp.co",
                         "credentials"),
    "cell-cyrillic": ("%%omni_draft\ndoc-0001\nd\u043e\u0441-0002\n", "line 2"),
    "cell-bad-branch": ("%%omni_draft\ndoc-0001, not-a-uuid\n", "branch id"),
    "no-input": ("%omni_draft", ""),
}


@pytest.mark.parametrize(("source", "pattern"), MAGIC_BAD.values(), ids=MAGIC_BAD.keys())
def test_magic_refuses_bad_typed_input_in_one_line(
    source: str, pattern: str, sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], bad_input: None,
) -> None:
    """%omni_draft with a bad id, branch or setting typed in: the cell fails with one line
    naming the problem (no traceback, no echoed credentials), and nothing is sent."""
    shell_mod = pytest.importorskip("IPython.core.interactiveshell")
    pytest.importorskip("omni_nb.magic")
    from IPython.core.history import HistoryAccessor

    HistoryAccessor.enabled = False
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    ip = shell_mod.InteractiveShell.instance()
    ip.run_line_magic("load_ext", "omni_nb")
    log = Log(sb)
    result = ip.run_cell(source + ("" if "\n" in source else " --rate off"))
    out = capsys.readouterr()
    text = out.out + out.err
    assert not result.success
    assert re.search(pattern, text), text
    assert "Traceback" not in text
    assert "hunter2" not in text
    assert log.new() == []


def test_magic_from_dataframe_gives_invalid_rows(
    sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch, bad_input: None
) -> None:
    """%omni_draft --from VAR with NaN, ints and path tricks: invalid rows naming the item,
    only the valid neighbours sent."""
    shell_mod = pytest.importorskip("IPython.core.interactiveshell")
    pytest.importorskip("omni_nb.magic")
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    ip = shell_mod.InteractiveShell.instance()
    ip.run_line_magic("load_ext", "omni_nb")
    ip.user_ns["hostile"] = pd.DataFrame({"document_id": pd.Series(
        ["doc-0001", float("nan"), 7, "../x", "doc-0002"], dtype=object)})
    log = Log(sb)
    table = ip.run_line_magic("omni_draft", "--from hostile --rate off")
    assert list(table["status"]) == ["ok", "invalid", "invalid", "invalid", "ok"]
    for position in (1, 2, 3):
        _invalid_row(table, position)
    log.assert_only(*NEIGHBOURS)


def test_widget_marks_bad_lines_and_sends_only_good_ones(
    sb: sandbox.Sandbox, tmp_path: Path, bad_input: None
) -> None:
    """DraftForm with path tricks and look-alikes among its lines: never a malformed request;
    the bad lines are refused or become invalid rows."""
    widget_mod = pytest.importorskip("omni_nb.widget")
    form = widget_mod.DraftForm(sb.base_url, sb.token, ledger=tmp_path / "w.sqlite3",
                                rate_limit=None)
    log = Log(sb)
    try:
        form.documents.value = "doc-0001\n../x\na?b=c\nd\u043e\u0441-0003\ndoc-0002"
        table = form.submit(wait=True)
    finally:
        form.close()
    if table is None:  # refused as a whole, with an error line naming the problem
        assert form.error
        assert log.new() == []
    else:
        assert (table["status"] == "invalid").sum() == 3
        log.assert_only(*NEIGHBOURS)
