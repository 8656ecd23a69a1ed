"""Secret hygiene: with a recognisable token, run the representative scenarios (client success
and every error class, a batch with faults, the CLI with the token in the environment, the
ledger, DEBUG logging of omni_nb/httpx/httpcore, exception messages, reprs and pickles), then
scan everything they produced. The token must appear nowhere. And the token is only ever sent
to the API root it was configured for: a cross-origin redirect never carries it.
"""

from __future__ import annotations

import base64
import collections
import html
import logging
import pickle
import re
import secrets
import traceback
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import omni_nb
from omni_nb import (
    APIConnectionError,
    APITimeoutError,
    AsyncOmniClient,
    AuthenticationError,
    InvalidInputError,
    NotEligibleError,
    NotFoundError,
    OmniClient,
    OmniError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
    sandbox,
)
from omni_nb.cli import main as cli_main
from omni_nb.config import Secret, resolve_settings
from omni_nb.ledger import open_ledger

from ..conftest import MakeSandbox
from .conftest import BRANCHES, closed_port, fast_retry, posts, settle

TOKEN = "omni_osk_LEAKCHECK_" + secrets.token_hex(12)
#: Keys of a pool (issue 10): two more the sandbox accepts, one it refuses.
POOL = (TOKEN, "omni_osk_LEAKPOOL2_" + secrets.token_hex(12),
        "omni_osk_LEAKPOOL3_" + secrets.token_hex(12))
REFUSED = "omni_osk_LEAKREFUSED_" + secrets.token_hex(12)


def _needles(token: str) -> tuple[str, ...]:
    return (token, token.removeprefix("omni_osk_"), base64.b64encode(token.encode()).decode())


NEEDLES = tuple(n for token in (*POOL, REFUSED) for n in _needles(token))
#: No run of this many characters of a key may show anywhere (issue 19, point 7).
RUN = 12
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _decoders() -> tuple[Any, ...]:
    """How a reader could decode an artefact: JSON ``\\u`` escapes, percent-encoding, HTML
    character references (the standard library's own decoders, not omni_nb's)."""
    return (lambda t: _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), t),
            urllib.parse.unquote, html.unescape)


def readings(text: str, depth: int = 2) -> set[str]:
    """``text`` and what each decoder, and each pair of them, makes of it."""
    found, layer = {text}, {text}
    for _ in range(depth):
        layer = {decode(t) for t in layer for decode in _decoders()} - found
        found |= layer
    return found


def runs_of(token: str) -> tuple[set[str], set[str]]:
    """Every run of :data:`RUN` characters of ``token``, and anchors (its aligned runs of
    half that) of which every such run holds one: a text holding no anchor holds no run."""
    half = RUN // 2
    runs = {token[i:i + RUN] for i in range(len(token) - RUN + 1)}
    anchors = {token[i:i + half] for i in range(0, len(token) - half + 1, half)}
    return runs, anchors


def shows_a_run(text: str, tokens: tuple[str, ...]) -> bool:
    """Whether ``text``, as stored or decoded, shows a run of :data:`RUN` characters of a
    token."""
    for reading in readings(text):
        for token in tokens:
            runs, anchors = runs_of(token)
            if any(a in reading for a in anchors) and any(r in reading for r in runs):
                return True
    return False


class Artefacts:
    """Everything the scenarios produced, by name, to be scanned at the end: for the keys'
    needles as they are, and (:meth:`disguised`) for any run of :data:`RUN` characters of a
    key in what the artefact shows once its escapes are decoded."""

    def __init__(self, tokens: tuple[str, ...] = (*POOL, REFUSED)) -> None:
        self.items: list[tuple[str, str | bytes]] = []
        self.tokens = tokens

    def add(self, name: str, value: object) -> None:
        if isinstance(value, bytes | str):
            self.items.append((name, value))
        else:
            self.items.append((name, repr(value)))

    def add_error(self, name: str, exc: BaseException) -> None:
        """The error's message, repr, traceback, IPython rendering, pickle and body."""
        self.add(f"{name}: str", str(exc))
        self.add(f"{name}: repr", repr(exc))
        self.add(f"{name}: traceback", "".join(traceback.format_exception(exc)))
        self.add(f"{name}: args", repr(exc.args))
        self.add(f"{name}: dict", repr(vars(exc)))
        if isinstance(exc, OmniError):
            self.add(f"{name}: ipython", "\n".join(exc._render_traceback_()))
        self.add(f"{name}: pickle", pickle.dumps(exc))
        self.add(f"{name}: unpickled", repr(vars(pickle.loads(pickle.dumps(exc)))))  # noqa: S301

    def leaks(self) -> list[str]:
        found = []
        for name, value in self.items:
            for needle in NEEDLES:
                raw = needle.encode() if isinstance(value, bytes) else needle
                if raw in value:  # type: ignore[operator]
                    found.append(name)
        return found + self.disguised()

    def disguised(self) -> list[str]:
        """The artefacts showing a run of a key, as stored or once decoded (bytes read as
        UTF-8: what SQLite files and pickles store text as)."""
        return [f"{name} (a run of {RUN}, or escaped)" for name, value in self.items
                if shows_a_run(value.decode("utf-8", "replace") if isinstance(value, bytes)
                               else value, self.tokens)]


@pytest.fixture(scope="module")
def sb(make_module_sandbox: MakeSandbox) -> sandbox.Sandbox:
    """One sandbox for the module that accepts only the recognisable keys of POOL."""
    server = make_module_sandbox(documents=40, token=TOKEN)
    for key in POOL[1:]:
        server.add_token("editor", token=key)  # recognisable keys, scanned for too
    return server


@pytest.fixture
def produced(
    figures: collections.Counter[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Artefacts]:
    """Collects artefacts plus every DEBUG log record of the test, and scans them at the end."""
    yield from scanning(figures, caplog, Artefacts())


def scanning(figures: collections.Counter[str], caplog: pytest.LogCaptureFixture,
             art: Artefacts) -> Iterator[Artefacts]:
    """The body of a scanning fixture (:func:`produced`; test_redaction's, with its keys):
    yields ``art`` to fill, then adds the test's DEBUG log records and asserts no leak."""
    caplog.set_level(logging.DEBUG)
    for name in ("omni_nb", "httpx", "httpcore", "omni_nb.sandbox"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield art
    records = caplog.get_records("call")  # in teardown, .records would be teardown's own
    for i, record in enumerate(records):
        art.add(f"log {i} {record.name}", record.getMessage())
        art.add(f"log {i} args", repr(record.args))
        if record.exc_info:
            art.add(f"log {i} exc", "".join(traceback.format_exception(*record.exc_info)))
    handler = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    art.add("formatted logs", "\n".join(handler.format(r) for r in records))
    assert records, "DEBUG logging captured nothing: the scan would prove nothing"
    leaks = art.leaks()
    figures["artefacts_scanned"] += len(art.items)
    figures["token_leaks"] += len(leaks)
    assert not leaks, f"the token leaked into: {leaks}"


def test_the_scanner_finds_a_planted_token() -> None:
    """The scan is not vacuous: the token in text, in bytes or base64-encoded is found."""
    art = Artefacts()
    art.add("text", f"Authorization: Bearer {TOKEN}")
    art.add("bytes", b"x" + TOKEN.encode() + b"y")
    art.add("basic", base64.b64encode(TOKEN.encode()))
    art.add("clean", "nothing here")
    assert art.leaks() == ["text", "text", "bytes", "bytes", "basic",
                           "text (a run of 12, or escaped)", "bytes (a run of 12, or escaped)"]
    pool = Artefacts()
    for key in (*POOL[1:], REFUSED):
        pool.add("a pool key", f"x{key}y")
    # each key, and each without its prefix
    assert pool.leaks()[:6] == ["a pool key"] * 6


def test_the_scanner_finds_a_run_of_a_key_and_its_escaped_forms() -> None:
    """Twelve characters of a key, or the key JSON-escaped, percent-encoded, as HTML
    references or in two of those at once, are found; eleven characters are not."""
    token = POOL[1]
    art = Artefacts()
    art.add("run", f"...{token[7:19]}...")
    art.add("short run", f"...{token[7:18]}...")
    art.add("json", "".join(f"\\u{ord(c):04x}" for c in token))
    art.add("percent", "".join(f"%{ord(c):02X}" for c in token))
    art.add("html", "".join(f"&#{ord(c)};" for c in token))
    art.add("percent of json", urllib.parse.quote("\\u006f" + token[1:], safe=""))
    art.add("bytes", token[-12:].encode())
    assert art.disguised() == [f"{name} (a run of 12, or escaped)" for name in
                               ("run", "json", "percent", "html", "percent of json", "bytes")]


def _client(base_url: str, **kwargs: Any) -> OmniClient:
    options: dict[str, Any] = {"rate_limit": None, "retry": fast_retry(0), **kwargs}
    return OmniClient(base_url, TOKEN, **options)


ERROR_SCENARIOS: dict[str, tuple[Any, type[OmniError]]] = {
    "not_eligible": (("doc-0010", None), NotEligibleError),
    "not_found": (("doc-9999", None), NotFoundError),
    "branch_not_found": (("doc-0001", "00000000-0000-4000-8000-000000000000"), NotFoundError),
    "401": ((401, {"error": "Unauthorized", "message": "Missing API key"}, {}),
            AuthenticationError),
    "403_bad_token": ((403, {"error": {"code": 403, "message": "Invalid bearer token"}}, {}),
                      AuthenticationError),
    "403_role": ((403, {"error": "Forbidden", "message": "EDITOR role required"}, {}),
                 PermissionDeniedError),
    "429": ((429, {"error": "Too Many Requests", "message": "slow down"},
             {"Retry-After": "soon", "X-Omni-Waf-Action": "block"}), RateLimitError),
    "503": ((503, "upstream down", {}), ServerError),
    "502_html": ((502, "<html><title>502 Bad Gateway</title></html>",
                  {"Content-Type": "text/html"}), ServerError),
    "200_no_identifier": ((200, {"unexpected": True}, {}), UnexpectedResponseError),
    "200_not_json": ((200, "{trunc", {}), UnexpectedResponseError),
    "418": ((418, "teapot", {}), UnexpectedResponseError),
}


@pytest.mark.parametrize(("how", "expected"), ERROR_SCENARIOS.values(),
                         ids=ERROR_SCENARIOS.keys())
def test_client_errors_never_carry_the_token(
    how: Any, expected: type[OmniError], sb: sandbox.Sandbox, produced: Artefacts
) -> None:
    """Every error class's message, repr, traceback, pickle and body are free of the token."""
    if len(how) == 3:
        status, body, headers = how
        sb.enqueue(status, body, headers=headers)
        doc, branch = "doc-0001", None
    else:
        doc, branch = how
    with _client(sb.base_url) as client:
        produced.add("client repr", client)
        with pytest.raises(expected) as info:
            client.create_draft(doc, branch)
        outcome_error = info.value
        produced.add_error(expected.__name__, outcome_error)


def test_success_and_transport_errors_never_carry_the_token(
    sb: sandbox.Sandbox, produced: Artefacts
) -> None:
    """A success, a refused connection, a dropped one and a timeout: nothing shows the token."""
    with _client(sb.base_url) as client:
        draft = client.create_draft("doc-0002")
        produced.add("draft", draft)
        produced.add("outcome", client.create_draft_outcome("doc-0003"))
    with _client(f"http://127.0.0.1:{closed_port()}/api") as client:
        with pytest.raises(APIConnectionError) as refused:
            client.create_draft("doc-0001")
        produced.add_error("refused", refused.value)
    sb.configure(drop_rate=1.0)
    try:
        with _client(sb.base_url) as client, pytest.raises(APIConnectionError) as dropped:
            client.create_draft("doc-0004")
        produced.add_error("dropped", dropped.value)
    finally:
        sb.configure(drop_rate=0.0)
    sb.configure(slow_rate=1.0, slow_seconds=0.5)
    try:
        with _client(sb.base_url, timeout=0.1) as client, pytest.raises(APITimeoutError) as slow:
            client.create_draft("doc-0005")
        produced.add_error("timeout", slow.value)
    finally:
        sb.configure(slow_rate=0.0)


def test_reprs_and_pickles_of_settings_clients_and_sandbox_hide_the_token(
    sb: sandbox.Sandbox, produced: Artefacts
) -> None:
    """repr/str/format of Settings, Secret, clients, sandbox and ledger hide the token, and
    pickling the settings refuses instead of writing it out."""
    settings = resolve_settings(sb.base_url, TOKEN, environ={})
    secret = settings.token
    for value in (settings, secret, str(secret), f"{secret}", f"{secret!s:>40}", sb,
                  open_ledger("off"), fast_retry()):
        produced.add("repr", value)
    with _client(sb.base_url) as client:
        produced.add("client", client)
        produced.add("draft", client.create_draft("doc-0014"))
        produced.add("client vars", {k: repr(v) for k, v in vars(client).items()}
                     if hasattr(client, "__dict__") else "")
    produced.add("async client", AsyncOmniClient(sb.base_url, TOKEN, rate_limit=None))
    with pytest.raises(TypeError) as info:
        pickle.dumps(settings)
    produced.add_error("pickle settings", info.value)
    with pytest.raises(TypeError):
        pickle.dumps(Secret(TOKEN))


def test_batch_with_faults_ledger_and_logs_hide_the_token(
    sb: sandbox.Sandbox, produced: Artefacts, tmp_path: Path
) -> None:
    """A faulty batch: its table, summary, ledger file bytes (db, WAL) and DEBUG logs are
    free of the token."""
    ledger = tmp_path / "ledger.sqlite3"
    sb.configure(fail_rate=0.3, drop_rate=0.1)
    try:
        table = omni_nb.create_drafts(
            [f"doc-{i:04d}" for i in range(1, 41)] + ["../x", "missing"], base_url=sb.base_url,
            token=TOKEN, rate_limit=None, retry=fast_retry(4), timeout=2.0, ledger=ledger,
            concurrency=8,
        )
    finally:
        sb.configure(fail_rate=0.0, drop_rate=0.0)
    settle(sb)
    produced.add("table csv", table.to_csv())
    produced.add("table repr", repr(table))
    produced.add("table html", table._repr_html_() or "")
    produced.add("summary", table.summary())
    produced.add("attrs", table.attrs)
    for path in tmp_path.iterdir():  # the db, and its -wal / -shm files
        produced.add(f"ledger file {path.name}", path.read_bytes())
    assert ledger.exists()
    produced.add("ledger results", omni_nb.results(ledger=ledger).to_csv())


def test_pool_batch_settings_and_errors_hide_every_key(
    sb: sandbox.Sandbox, produced: Artefacts, tmp_path: Path
) -> None:
    """A faulty batch over a pool of three good keys and a refused one: its table, ledger
    bytes, the refusal warning, DEBUG logs, the pool's settings repr and the errors for a bad
    pool hold none of the four keys."""
    ledger = tmp_path / "pool.sqlite3"
    settings = resolve_settings(sb.base_url, tokens=[*POOL, REFUSED], environ={})
    produced.add("pool settings", settings)
    produced.add("pool keys", [(k, k.key_id(), k.fingerprint()) for k in settings.tokens])
    sb.configure(fail_rate=0.2, drop_rate=0.05)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = omni_nb.create_drafts(
                [f"doc-{i:04d}" for i in range(1, 31)] + ["../x"], base_url=sb.base_url,
                tokens=[*POOL, REFUSED], rate_limit=None, retry=fast_retry(4), timeout=2.0,
                ledger=ledger, concurrency=8,
            )
    finally:
        sb.configure(fail_rate=0.0, drop_rate=0.0)
    settle(sb)
    sb.clear_requests()  # the refused key's requests are not the later tests' to judge
    assert any(issubclass(w.category, omni_nb.KeyRefusedWarning) for w in caught)
    produced.add("pool warnings", [str(w.message) for w in caught])
    assert table["key"].nunique() == 3  # every good key answered, the refused one none
    produced.add("pool table csv", table.to_csv())
    produced.add("pool table repr", repr(table))
    produced.add("pool table html", table._repr_html_() or "")
    for path in tmp_path.iterdir():
        produced.add(f"pool ledger file {path.name}", path.read_bytes())
    produced.add("pool ledger results", omni_nb.results(ledger=ledger).to_csv())
    for bad in ([POOL[0], POOL[1], POOL[0]], [POOL[0], POOL[1] + " x"], POOL[0]):
        with pytest.raises(omni_nb.ConfigError) as info:
            resolve_settings(sb.base_url, tokens=bad, environ={})  # type: ignore[arg-type]
        produced.add_error("bad pool", info.value)
    with pytest.raises(omni_nb.ConfigError) as env_info:
        resolve_settings(sb.base_url, environ={"OMNI_API_TOKENS": f"{POOL[1]},{POOL[1]}"})
    produced.add_error("bad env pool", env_info.value)


def test_cli_and_magic_with_an_env_pool_print_no_key(
    sb: sandbox.Sandbox, produced: Artefacts, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """`omni-nb draft` and %omni_draft with OMNI_API_TOKENS (three good keys, one refused):
    their output, the written CSV, the ledger and the user namespace hold no key."""
    monkeypatch.setenv("OMNI_API_TOKENS", ",".join([*POOL, REFUSED]))
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_NB_LEDGER", str(tmp_path / "pool-cli.sqlite3"))
    out_csv = tmp_path / "pool.csv"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli_main(["draft", *[f"doc-{i:04d}" for i in range(1, 13)], "--rate", "off",
                         "--out", str(out_csv)])
        out = capsys.readouterr()
        produced.add(f"pool cli exit {code} stdout", out.out)
        produced.add("pool cli stderr", out.err)
        produced.add("pool cli csv", out_csv.read_bytes())
        shell_mod = pytest.importorskip("IPython.core.interactiveshell")
        from IPython.core.history import HistoryAccessor

        HistoryAccessor.enabled = False
        ip = shell_mod.InteractiveShell.instance()
        ip.run_line_magic("load_ext", "omni_nb")
        result = ip.run_cell("%omni_draft doc-0021 doc-0022 doc-0023 nope --rate off -o pt")
        out = capsys.readouterr()
        produced.add("pool magic out", out.out + out.err)
        produced.add("pool magic result", result.result)
        produced.add("pool magic table", ip.user_ns["pt"].to_csv())
    produced.add("pool cli/magic warnings", [str(w.message) for w in caught])
    for path in tmp_path.iterdir():
        produced.add(f"pool cli file {path.name}", path.read_bytes())
    settle(sb)
    sb.clear_requests()  # the refused key's requests are not the later tests' to judge


def test_cli_with_env_token_prints_no_token(
    sb: sandbox.Sandbox, produced: Artefacts, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """`omni-nb draft` / `results` with OMNI_API_TOKEN set: stdout, stderr, the written CSV
    and the ledger hold no token, also when the call fails."""
    monkeypatch.setenv("OMNI_API_TOKEN", TOKEN)
    monkeypatch.setenv("OMNI_NB_LEDGER", str(tmp_path / "cli.sqlite3"))
    out_csv = tmp_path / "out.csv"
    runs = [
        ["draft", "doc-0006", "doc-0010", "nope", "../x", "--base-url", sb.base_url,
         "--rate", "off", "--out", str(out_csv)],
        ["results"],
        ["draft", "doc-0007", "doc-0008", "--base-url", sb.base_url, "--rate", "off"],
        ["draft", "doc-0008", "--base-url", "http://evil.example.com/api"],
    ]
    for n, argv in enumerate(runs):
        if n == 2:  # a refused token: the CLI's error path (the CLI has no retry option)
            sb.enqueue(403, {"error": {"code": 403, "message": "Invalid bearer token"}})
        code = cli_main(argv)
        out = capsys.readouterr()
        produced.add(f"cli {argv[0]} exit {code} stdout", out.out)
        produced.add(f"cli {argv[0]} stderr", out.err)
    produced.add("cli csv", out_csv.read_bytes())
    for path in tmp_path.iterdir():
        produced.add(f"cli file {path.name}", path.read_bytes())


def test_cross_origin_redirect_never_carries_the_token(
    sb: sandbox.Sandbox, make_sandbox: MakeSandbox, produced: Artefacts
) -> None:
    """A 307 to another origin is not followed (client and batch): the other server sees no
    Authorization header (no request at all), and the caller gets a clear error."""
    other = make_sandbox(documents=5)
    target = other.base_url + "/v1/documents/doc-0001/draft"
    for status in (301, 302, 307, 308):
        sb.enqueue(status, headers={"Location": target})
        with _client(sb.base_url) as client, pytest.raises(UnexpectedResponseError) as info:
            client.create_draft("doc-0001")
        assert "not followed" in str(info.value)
        assert other.url in str(info.value)  # it names where it would have gone
        produced.add_error(f"redirect {status}", info.value)
    sb.enqueue(307, headers={"Location": target}, times=3)
    table = omni_nb.create_drafts(["doc-0001", "doc-0002", "doc-0003"],
                                  base_url=sb.base_url, token=TOKEN, rate_limit=None,
                                  ledger="off", retry=fast_retry(0))
    produced.add("redirect table", table.to_csv())
    assert (table["status"] == "server_error").all()
    assert table["message"].str.contains("not followed").all()
    seen = settle(other)
    assert not [r for r in seen if r.has_authorization]
    assert seen == []


def test_token_goes_only_to_the_configured_origin(sb: sandbox.Sandbox) -> None:
    """Every request the client sent carried the token to the configured sandbox only, and a
    request built for another origin is refused before it is sent."""
    with _client(sb.base_url) as client:
        client.create_draft("doc-0009")
        # A document id that tries to climb out of the API root is refused before sending.
        with pytest.raises(InvalidInputError):
            client.create_draft("..")
    sent = posts(settle(sb))
    assert sent
    assert all(r.has_authorization and r.role == "editor" for r in sent)


# -- front ends that landed later: the magic, the widget, the notebooks ----------------------


def test_magic_output_and_errors_hide_the_token(
    sb: sandbox.Sandbox, produced: Artefacts, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """%omni_draft with OMNI_API_TOKEN set: its table, printed output and error lines, and the
    user namespace hold no token."""
    shell_mod = pytest.importorskip("IPython.core.interactiveshell")
    pytest.importorskip("omni_nb.magic")
    from IPython.core.history import HistoryAccessor

    HistoryAccessor.enabled = False
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", TOKEN)
    monkeypatch.setenv("OMNI_NB_LEDGER", str(tmp_path / "magic.sqlite3"))
    ip = shell_mod.InteractiveShell.instance()
    ip.run_line_magic("load_ext", "omni_nb")
    for source in ("%omni_draft doc-0011 doc-0020 nope --rate off -o t",
                   "%omni_draft doc-9999 --rate off",
                   f"%omni_draft doc-0012 --base-url http://127.0.0.1:{closed_port()}/api "
                   "--rate off --max-retries 0",
                   "%omni_draft ../x --rate off"):
        result = ip.run_cell(source)
        out = capsys.readouterr()
        produced.add(f"magic {source} out", out.out + out.err)
        produced.add(f"magic {source} result", result.result)
        if result.error_in_exec is not None:
            produced.add_error(f"magic {source}", result.error_in_exec)
    produced.add("magic table", ip.user_ns["t"].to_csv())
    produced.add("user_ns", {k: repr(v)[:2000] for k, v in ip.user_ns.items()
                             if not k.startswith("_")})
    for path in tmp_path.iterdir():
        produced.add(f"magic file {path.name}", path.read_bytes())


def test_widget_state_and_output_hide_the_token(
    sb: sandbox.Sandbox, produced: Artefacts, tmp_path: Path
) -> None:
    """DraftForm given the token: every widget's synced state, its repr and its results hold
    no token."""
    widget_mod = pytest.importorskip("omni_nb.widget")
    import ipywidgets

    form = widget_mod.DraftForm(sb.base_url, TOKEN, ledger=tmp_path / "w.sqlite3",
                                rate_limit=None)
    try:
        form.documents.value = "doc-0013\ndoc-0030\nnope\n../x"
        table = form.submit(wait=True)
        assert table is not None
        produced.add("widget table", table.to_csv())
        produced.add("widget repr", form)
        produced.add("widget error", form.error)
        states = ipywidgets.Widget.get_manager_state(drop_defaults=False)
        produced.add("widget manager state", repr(states))
        produced.add("widget bundle", repr(form._repr_mimebundle_()))
    finally:
        form.close()


NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_executed_notebooks_hold_no_token(
    path: Path, make_sandbox: MakeSandbox, produced: Artefacts,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Each example notebook, run against a sandbox (in this process) that only accepts the
    recognisable token, given through OMNI_API_TOKEN: no output, widget state or metadata of
    the executed notebook holds the token."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # The notebooks start their own sandbox (with its own random token) when OMNI_BASE_URL is
    # unset; pointing them at this sandbox makes every call carry the recognisable token.
    # The kernel inherits the isolated environment (no other OMNI_* variable, a private
    # ledger in tmp_path, which is scanned below) plus these.
    nb_sb = make_sandbox(documents=150, token=TOKEN)
    monkeypatch.setenv("OMNI_BASE_URL", nb_sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", TOKEN)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = nbformat.read(path, as_version=4)
    # Papermill-style: after the parameters cell, name documents this sandbox has.
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    # Few enough documents to stay inside the default 60/minute client limit's burst.
    params = nb.cells[first].source
    given = "document_ids = [f'doc-{i:04d}' for i in range(1, 13)]\n" * (
        "document_ids" in params) + f"branch_id = {BRANCHES[0]!r}\n" * ("branch_id" in params)
    if given:
        nb.cells.insert(first + 1, nbformat.v4.new_code_cell(given))
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    calls = [r for r in settle(nb_sb) if r.has_authorization]
    if "widget" not in path.name:  # the form only calls when a user clicks
        assert calls, "the notebook never called the sandbox: the scan would prove little"
    assert all(r.role == "editor" for r in calls)  # every call carried the token
    produced.add(f"{path.name} executed", nbformat.writes(nb))
    for path_ in tmp_path.rglob("*"):
        if path_.is_file():
            produced.add(f"{path.name} file {path_.name}", path_.read_bytes())
    # The fixture insists on at least one log record; the kernel's records are its own.
    logging.getLogger("omni_nb").debug("notebook %s scanned", path.name)
