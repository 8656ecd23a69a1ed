"""Redaction after decoding (issue 19, point 7): a server that echoes a key of the pool in a
403, 400 or 500 answer, JSON-``\\u``-escaped, percent-encoded, as HTML character references,
in a mix of those, escaped twice, cut to twelve characters or in a UTF-16 JSON body, puts no
key (and no run of twelve of its characters) in the table, the ledger, the exception (its
``str``, ``repr``, traceback and pickle), the magic's error line or the CLI's output.

The scan is test_secrets's, extended: every artefact is read as stored and as the standard
library's decoders read it, for any run of twelve characters of each key.
"""

from __future__ import annotations

import collections
import json
import random
import string
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import omni_nb
from omni_nb import OmniClient, OmniError, sandbox
from omni_nb._text import redact_bytes
from omni_nb.cli import main as cli_main

from ..conftest import MakeSandbox
from .test_secrets import POOL, Artefacts, readings, scanning, shows_a_run

KEYS = POOL[:2]  # the pool: the key that sends first, and the other one


def _each(escape: Callable[[str], str], every: int = 1) -> Callable[[str], str]:
    """A disguise escaping every ``every``-th character of the key with ``escape``."""
    return lambda key: "".join(escape(c) if i % every == 0 else c for i, c in enumerate(key))


def _mixed(key: str) -> str:
    forms = (lambda c: f"\\u{ord(c):04x}", lambda c: f"%{ord(c):02X}",
             lambda c: f"&#{ord(c)};", lambda c: f"&#x{ord(c):X};", lambda c: c)
    return "".join(forms[i % len(forms)](c) for i, c in enumerate(key))


#: How a server may echo a key inside a JSON string (raw text: its escapes are not decoded).
DISGUISES: dict[str, Callable[[str], str]] = {
    "plain": lambda key: key,
    "json first char": lambda key: f"\\u{ord(key[0]):04x}{key[1:]}",  # \u006fmni_osk_...
    "json every char": _each(lambda c: f"\\u{ord(c):04X}"),
    "json every 3rd": _each(lambda c: f"\\u{ord(c):04x}", 3),
    "percent every char": _each(lambda c: f"%{ord(c):02x}"),
    "percent every 2nd": _each(lambda c: f"%{ord(c):02X}", 2),
    "html decimal": _each(lambda c: f"&#{ord(c)};"),
    "html hex, no semicolon": _each(lambda c: f"&#x{ord(c):x}"),
    "html named": _each(lambda c: "&lowbar;" if c == "_" else f"&#{ord(c):03d};"),
    "mixed": _mixed,
    "escaped twice": _each(lambda c: f"%25{ord(c):02x}" if c.isdigit() else f"&amp;#{ord(c)};"),
    "a run of twelve": lambda key: f"{key[3:15]} ... {key[-12:]}",
}


def _body(status: int, disguise: str) -> tuple[bytes, str]:
    """An answer of ``status`` echoing both keys in ``disguise``, and its content type."""
    echoed = " and ".join(DISGUISES[disguise](key) for key in KEYS)
    if status == 500:
        page = f"<html><head><title>500 Bearer {echoed}</title></head><body>{echoed}</body>"
        return page.encode(), "text/html"
    # Written as raw JSON text: the disguise's escapes are the server's, not json.dumps's.
    if status == 403:
        raw = f'{{"error": {{"code": 403, "message": "Invalid bearer token: Bearer {echoed}"}}}}'
    else:
        raw = f'{{"error": "Bad Request", "message": "bad header: Bearer {echoed}"}}'
    return raw.encode(), "application/json"


@pytest.fixture(scope="module")
def sb(make_module_sandbox: MakeSandbox) -> sandbox.Sandbox:
    """A sandbox that accepts the two keys of the pool."""
    server = make_module_sandbox(documents=20, token=KEYS[0])
    server.add_token("editor", token=KEYS[1])
    return server


@pytest.fixture
def produced(
    figures: collections.Counter[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Artefacts]:
    """test_secrets's scan: the artefacts and the test's DEBUG logs, free of every key."""
    yield from scanning(figures, caplog, Artefacts(KEYS))


def _answer(sb: sandbox.Sandbox, status: int, disguise: str, times: int = 1) -> None:
    body, content_type = _body(status, disguise)
    sb.enqueue(status, body, headers={"Content-Type": content_type}, times=times)


def _says_redacted(text: str) -> bool:
    """Whether a message shows the server's echo was there and was redacted (not dropped)."""
    return any("[redacted]" in reading for reading in readings(text))


STATUSES = [403, 400, 500]


@pytest.mark.parametrize("disguise", DISGUISES)
@pytest.mark.parametrize("status", STATUSES)
def test_a_batch_over_a_pool_keeps_no_echoed_key(
    sb: sandbox.Sandbox, produced: Artefacts, tmp_path: Path, status: int, disguise: str,
) -> None:
    """create_drafts over the pool with a ledger: the table, its error (str, repr,
    traceback, pickle), the ledger file and what results() reads back hold no key."""
    ledger = tmp_path / "l.sqlite3"
    # A 403 for a bad token refuses the key: the other key of the pool is answered alike.
    _answer(sb, status, disguise, times=len(KEYS) if status == 403 else 1)
    table = omni_nb.create_drafts(["doc-0001"], base_url=sb.base_url, tokens=list(KEYS),
                                  ledger=ledger, rate_limit=None, max_retries=0)
    assert table["status"].iloc[0] != "ok"
    assert _says_redacted(table["message"].iloc[0]), table["message"].iloc[0]
    produced.add("table csv", table.to_csv())
    produced.add("table repr", repr(table))
    produced.add("table html", table._repr_html_() or "")
    error = table.errors[0]
    assert isinstance(error, OmniError)
    produced.add_error("batch error", error)
    produced.add("error body", json.dumps(getattr(error, "body", None), default=repr))
    produced.add("ledger results", omni_nb.results(ledger=ledger).to_csv())
    for path in tmp_path.iterdir():
        produced.add(f"ledger file {path.name}", path.read_bytes())


@pytest.mark.parametrize("disguise", DISGUISES)
@pytest.mark.parametrize("status", STATUSES)
def test_a_raised_error_keeps_no_echoed_key(
    sb: sandbox.Sandbox, produced: Artefacts, status: int, disguise: str,
) -> None:
    """OmniClient.create_draft raising on the echo: the exception's str, repr, traceback,
    IPython line and pickle hold no key of the pool (the client knows the pool)."""
    _answer(sb, status, disguise)
    settings = omni_nb.config.resolve_settings(sb.base_url, tokens=list(KEYS), environ={})
    with OmniClient(settings=settings, rate_limit=None, max_retries=0) as client, \
            pytest.raises(OmniError) as info:
        client.create_draft("doc-0002")
    assert _says_redacted(str(info.value)), str(info.value)
    produced.add_error("raised", info.value)
    produced.add("pytest's traceback", str(info.getrepr(showlocals=True)))


def test_a_body_in_utf16_keeps_no_echoed_key(sb: sandbox.Sandbox, produced: Artefacts) -> None:
    """A JSON error body in UTF-16 (which JSON decoding reads as such): no key in the error."""
    body = json.dumps({"error": "Bad Request", "message": f"bad: {KEYS[0]} {KEYS[1]}"})
    sb.enqueue(400, body.encode("utf-16"), headers={"Content-Type": "application/json"})
    settings = omni_nb.config.resolve_settings(sb.base_url, tokens=list(KEYS), environ={})
    with OmniClient(settings=settings, rate_limit=None, max_retries=0) as client, \
            pytest.raises(OmniError) as info:
        client.create_draft("doc-0003")
    assert "bad: [redacted] [redacted]" in str(info.value)
    produced.add_error("utf-16", info.value)


@pytest.mark.parametrize("disguise", DISGUISES)
def test_the_cli_prints_no_echoed_key(
    sb: sandbox.Sandbox, produced: Artefacts, tmp_path: Path, disguise: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """`omni-nb draft` with the pool in OMNI_API_TOKENS, answered a 400 and then 403s that
    echo the keys: its output, its CSV and its ledger hold no key."""
    monkeypatch.setenv("OMNI_API_TOKENS", ",".join(KEYS))
    monkeypatch.setenv("OMNI_NB_LEDGER", str(tmp_path / "cli.sqlite3"))
    out_csv = tmp_path / "out.csv"
    for status in (400, 403):
        _answer(sb, status, disguise, times=len(KEYS) if status == 403 else 1)
        code = cli_main(["draft", "doc-0004", "--base-url", sb.base_url, "--rate", "off",
                         "--out", str(out_csv)])
        out = capsys.readouterr()
        assert code != 0
        assert _says_redacted(out.out + out.err), out
        produced.add(f"cli {status} stdout", out.out)
        produced.add(f"cli {status} stderr", out.err)
        produced.add(f"cli {status} csv", out_csv.read_bytes())
    for path in tmp_path.iterdir():
        produced.add(f"cli file {path.name}", path.read_bytes())


@pytest.mark.parametrize("disguise", DISGUISES)
def test_the_magic_error_line_shows_no_echoed_key(
    sb: sandbox.Sandbox, produced: Artefacts, tmp_path: Path, disguise: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """%omni_draft answered a 400, a 500 and 403s that echo the keys: its output, its error
    line and the error raised in the cell hold no key."""
    shell_mod = pytest.importorskip("IPython.core.interactiveshell")
    from IPython.core.history import HistoryAccessor

    HistoryAccessor.enabled = False
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKENS", ",".join(KEYS))
    monkeypatch.setenv("OMNI_NB_LEDGER", str(tmp_path / "magic.sqlite3"))
    ip = shell_mod.InteractiveShell.instance()
    ip.run_line_magic("load_ext", "omni_nb")
    for status in STATUSES:
        _answer(sb, status, disguise, times=len(KEYS) if status == 403 else 1)
        result = ip.run_cell("%omni_draft doc-0005 --rate off --max-retries 0 -o t")
        out = capsys.readouterr()
        assert result.error_in_exec is not None  # no row ok: the cell fails, in one line
        produced.add_error(f"magic {status}", result.error_in_exec)
        produced.add(f"magic {status} out", out.out + out.err)
        assert _says_redacted(out.out + out.err), out
        produced.add(f"magic {status} table", ip.user_ns["t"].to_csv())
    for path in tmp_path.iterdir():
        produced.add(f"magic file {path.name}", path.read_bytes())


# -- the redaction itself, without sockets ---------------------------------------------------


def _disguise_at_random(key: str, rng: random.Random) -> str:
    forms = (lambda c: c, lambda c: f"\\u{ord(c):04x}", lambda c: f"\\u{ord(c):04X}",
             lambda c: f"%{ord(c):02x}", lambda c: f"&#{ord(c)};", lambda c: f"&#X{ord(c):x};",
             lambda c: "&UnderBar;" if c == "_" else c,
             lambda c: f"%25{ord(c):02X}", lambda c: f"&amp;#x{ord(c):x};",
             lambda c: f"\\u0025{ord(c):02x}")
    return "".join(rng.choice(forms)(c) for c in key)


def test_no_disguise_leaves_a_run_of_a_key_in_any_decoding() -> None:
    """Random keys of printable ASCII, each character disguised at random (one of ten forms,
    nested ones included), echoed in a JSON message: after redact_bytes, neither the
    JSON-decoded message nor its percent or HTML decodings hold twelve characters of a
    key, and the body is still the JSON it was."""
    rng = random.Random(19)
    alphabet = string.ascii_letters + string.digits + "_-.~!$*+=:@"
    for _ in range(500):
        keys = tuple("omni_osk_" + "".join(rng.choices(alphabet, k=rng.randint(3, 40)))
                     for _ in range(2))
        echoed = " / ".join(_disguise_at_random(key, rng) for key in keys)
        body = f'{{"error": "Bad Request", "message": "Bearer {echoed} is bad"}}'.encode()
        message = json.loads(redact_bytes(body, keys))["message"]
        assert message.startswith("Bearer [redacted]")
        assert not shows_a_run(message, keys), (keys, echoed, message)


def test_answers_without_a_key_are_left_as_they_are() -> None:
    """An ordinary answer, escapes and all, comes back byte for byte; so does one holding
    eleven characters of a key (less than a run)."""
    key = POOL[0]
    body = json.dumps({"records": [{"name": f"Q{i} & co \u00e9\n", "url": f"/x?a=%20{i}&b=2"}
                                   for i in range(50)], "note": key[:11]}).encode()
    assert redact_bytes(body, [key]) == body
    utf16 = json.dumps({"message": "nothing to hide"}).encode("utf-16")
    assert redact_bytes(utf16, [key]) == utf16
    invalid = b'{"message": "\xff\xfe not UTF-8 ' + key.encode() + b'"}'
    assert redact_bytes(invalid, [key]) == b'{"message": "\xff\xfe not UTF-8 [redacted]"}'
