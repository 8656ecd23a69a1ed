"""%omni_draft in a real InteractiveShell, against the sandbox (real sockets)."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import textwrap
import time
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.history import HistoryAccessor
from IPython.core.interactiveshell import InteractiveShell

from omni_nb import ConfigError, NotFoundError, RateLimit, sandbox
from omni_nb.batch.budget import KeysBudget
from omni_nb.errors import DraftsFailedError, LedgerError
from omni_nb.ledger import open_ledger
from omni_nb.magic import OmniNB
from omni_nb.progress.live import LiveProgress, choose_mode, make_progress
from omni_nb.progress.tally import Hold
from omni_nb.ratelimit import Limiter
from omni_nb.rows import Row

from ..conftest import MakeSandbox

HistoryAccessor.enabled = False


@pytest.fixture(scope="module")
def sb(make_module_sandbox: MakeSandbox) -> sandbox.Sandbox:
    """One sandbox for the module (tests use distinct documents; each clears the log)."""
    return make_module_sandbox(documents=60)


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "omni_nb")
    return ip


@pytest.fixture
def ip(
    shell: InteractiveShell, sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch
) -> InteractiveShell:
    """The shell with the magic freshly loaded and the sandbox configured through the
    environment (the isolation fixture has cleared everything else and set a private ledger)."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    shell.config.pop("OmniNB", None)  # %config in one test must not leak into the next
    shell.run_line_magic("reload_ext", "omni_nb")
    settings(shell).rate = "off"  # the sandbox has no limit here; keep tests from waiting
    sb.clear_requests()
    return shell


def settings(ip: InteractiveShell) -> Any:
    return next(c for c in ip.configurables if isinstance(c, OmniNB))


def sent(sb: sandbox.Sandbox) -> list[tuple[str | None, str | None]]:
    return [(r.document_id, r.branch_id) for r in sb.requests()]


def run_failing(ip: InteractiveShell, source: str, capsys: pytest.CaptureFixture[str]) -> Any:
    result = ip.run_cell(source)
    out = capsys.readouterr()
    return result, out.out + out.err


# -- line form ---------------------------------------------------------------------------------


def test_line_form_returns_one_row_per_document_in_order(ip: InteractiveShell, sb: Any) -> None:
    """Several documents on the line give the results table, one row each, in input order."""
    table = ip.run_line_magic("omni_draft", "doc-0001 doc-0010 nope")
    assert list(table["document_id"]) == ["doc-0001", "doc-0010", "nope"]
    assert list(table["status"]) == ["ok", "not_eligible", "not_found"]
    assert sorted(d for d, _ in sent(sb)) == ["doc-0001", "doc-0010", "nope"]


def test_single_document_returns_a_one_row_table(ip: InteractiveShell) -> None:
    """One document still returns the results table (one row, status ok)."""
    table = ip.run_line_magic("omni_draft", "doc-0002")
    assert isinstance(table, pd.DataFrame)
    assert len(table) == 1
    assert table["status"].iloc[0] == "ok"


def test_branch_option_applies_to_every_document(ip: InteractiveShell, sb: Any) -> None:
    """--branch is sent for every document."""
    branch = sb.branches[0].id
    ip.run_line_magic("omni_draft", f"doc-0003 doc-0004 --branch {branch}")
    assert sorted(sent(sb)) == [("doc-0003", branch), ("doc-0004", branch)]


def test_one_spelling_and_the_old_one_reach_the_batch_alike(ip: InteractiveShell, sb: Any) -> None:
    """--branch-id (the one spelling, from branch_id=) and --branch (the old one) send the same
    branch; --rate-limit and --rate both parse."""
    branch = sb.branches[0].id
    ip.run_line_magic("omni_draft", f"doc-0045 doc-0046 --branch-id {branch} --rate-limit off")
    ip.run_line_magic("omni_draft", f"doc-0047 doc-0048 --branch {branch} --rate off")
    assert {b for _, b in sent(sb)} == {branch}
    assert len(sent(sb)) == 4


def test_bad_branch_option_is_a_usage_error(ip: InteractiveShell, sb: Any) -> None:
    """A --branch that is not a UUID fails with UsageError before anything is sent."""
    with pytest.raises(UsageError, match="--branch"):
        ip.run_line_magic("omni_draft", "doc-0001 --branch not-a-uuid")
    assert sent(sb) == []


def test_invalid_typed_document_names_its_argument(ip: InteractiveShell, sb: Any) -> None:
    """A malformed id typed on the line fails the cell naming its position; nothing is sent."""
    with pytest.raises(UsageError, match=r"argument 2: .*'/'"):
        ip.run_line_magic("omni_draft", "doc-0001 ../etc/passwd")
    assert sent(sb) == []


def test_no_documents_is_a_usage_error(ip: InteractiveShell) -> None:
    """The magic with no input fails with UsageError."""
    with pytest.raises(UsageError, match="no documents"):
        ip.run_line_magic("omni_draft", "")


def test_token_is_not_an_option(ip: InteractiveShell, sb: Any) -> None:
    """--token is refused (it would be saved in the notebook)."""
    with pytest.raises(UsageError):
        ip.run_line_magic("omni_draft", "doc-0001 --token abc")
    assert sent(sb) == []


# -- cell form ---------------------------------------------------------------------------------


def test_cell_form_skips_comments_and_blanks_and_reads_branches(
    ip: InteractiveShell, sb: Any
) -> None:
    """Cell lines are 'document' or 'document, branch'; blanks and # comments are skipped."""
    branch = sb.branches[1].id
    cell = f"# a comment\n\ndoc-0005\n  doc-0006 , {branch}  # inline comment\n\n"
    table = ip.run_cell_magic("omni_draft", "", cell)
    assert list(table["document_id"]) == ["doc-0005", "doc-0006"]
    assert list(table["branch_id"].astype(object).where(table["branch_id"].notna(), None)) == [
        None, branch,
    ]
    assert sorted(sent(sb), key=str) == sorted([("doc-0005", None), ("doc-0006", branch)], key=str)


def test_cell_line_branch_overrides_the_option(ip: InteractiveShell, sb: Any) -> None:
    """A branch on a cell line wins over --branch; other lines get --branch."""
    own, default = sb.branches[0].id, sb.branches[1].id
    ip.run_cell_magic("omni_draft", f"--branch {default}", f"doc-0007, {own}\ndoc-0008\n")
    assert sorted(sent(sb)) == [("doc-0007", own), ("doc-0008", default)]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("doc-0001\n\n# c\na, b, c\n", r"line 4: expected 'document' or 'document, branch'"),
        ("doc-0001\n, 7c9e6679-7425-40de-944b-e07fc1f90ae7\n", r"line 2: the document id is empty"),
        ("doc-0001,\n", r"line 1: a comma but no branch"),
        ("doc-0001\ndoc-0002, nope\n", r"line 2: .*branch"),
        ("doc 0001\n", r"line 1: "),
    ],
)
def test_bad_cell_line_is_reported_with_its_number(
    ip: InteractiveShell, sb: Any, cell: str, expected: str
) -> None:
    """A bad cell line fails with UsageError naming its line number; nothing is sent."""
    with pytest.raises(UsageError, match=expected):
        ip.run_cell_magic("omni_draft", "", cell)
    assert sent(sb) == []


def test_two_input_sources_are_refused(ip: InteractiveShell) -> None:
    """Documents on the line and in the cell at once is a UsageError."""
    with pytest.raises(UsageError, match="one place"):
        ip.run_cell_magic("omni_draft", "doc-0001", "doc-0002\n")


# -- -o and --from -----------------------------------------------------------------------------


def test_output_var_stores_table_and_prints_summary(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o VAR stores the table in VAR, returns None and prints one summary line."""
    assert ip.run_line_magic("omni_draft", "doc-0011 doc-0020 -o res") is None
    assert list(ip.user_ns["res"]["status"]) == ["ok", "not_eligible"]
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "2 rows: 1 ok, 1 not_eligible -> res"
    )


def test_output_needs_an_identifier(ip: InteractiveShell) -> None:
    """-o with something that is not a variable name is a UsageError."""
    with pytest.raises(UsageError, match="-o needs a Python variable name"):
        ip.run_line_magic("omni_draft", "doc-0001 -o 1x")


def test_from_dataframe_with_branch_column(ip: InteractiveShell, sb: Any) -> None:
    """--from takes a DataFrame with document_id and branch_id columns."""
    branch = sb.branches[0].id
    ip.user_ns["docs"] = pd.DataFrame(
        {"document_id": ["doc-0012", "doc-0013"], "branch_id": [branch, None]}
    )
    table = ip.run_line_magic("omni_draft", "--from docs")
    assert list(table["status"]) == ["ok", "ok"]
    assert sorted(sent(sb), key=str) == sorted([("doc-0012", branch), ("doc-0013", None)], key=str)


def test_from_dataframe_other_column_and_invalid_rows(ip: InteractiveShell, sb: Any) -> None:
    """--document-col picks the column; an invalid value in the data is a row, not an error."""
    ip.user_ns["docs"] = pd.DataFrame({"identifier": ["doc-0014", "bad/id"]})
    table = ip.run_line_magic("omni_draft", "--from docs --document-col identifier")
    assert list(table["status"]) == ["ok", "invalid"]
    assert sent(sb) == [("doc-0014", None)]


def test_from_list(ip: InteractiveShell) -> None:
    """--from takes a list of ids from the user namespace."""
    ip.user_ns["ids"] = ["doc-0015", "doc-0016"]
    table = ip.run_line_magic("omni_draft", "--from ids")
    assert list(table["document_id"]) == ["doc-0015", "doc-0016"]


@pytest.mark.parametrize(
    ("setup", "line", "expected"),
    [
        ({}, "--from missing", "no such variable"),
        ({"v": pd.DataFrame({"x": ["a"]})}, "--from v", "no 'document_id' column"),
        ({"v": "doc-0001"}, "--from v", "a single string"),
        ({"v": []}, "--from v", "empty"),
        ({"v": 3}, "--from v", "or a DataFrame, not int"),
        ({"v": ["doc-0001"]}, "--from v doc-0002", "one place"),
    ],
)
def test_bad_from_is_a_usage_error(
    ip: InteractiveShell, sb: Any, setup: dict[str, Any], line: str, expected: str
) -> None:
    """--from with a missing, empty, wrong-typed or columnless variable is a UsageError."""
    ip.user_ns.update(setup)
    with pytest.raises(UsageError, match=expected):
        ip.run_line_magic("omni_draft", line)
    assert sent(sb) == []


# -- --dry-run ---------------------------------------------------------------------------------


def test_dry_run_sends_nothing_and_shows_what_would_be_sent(
    ip: InteractiveShell, sb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run validates every input, shows the requests, and sends nothing."""
    branch = sb.branches[0].id
    frame = ip.run_cell_magic(
        "omni_draft", "--dry-run", f"doc-0001\ndoc-0001\nbad/id\ndoc-0002, {branch}\n"
    )
    assert sb.requests() == []
    assert list(frame["valid"]) == [True, True, False, True]
    assert list(frame["input"]) == ["line 1", "line 2", "line 3", "line 4"]
    assert frame["request"].iloc[0] == f"POST {sb.base_url}/v1/documents/doc-0001/draft {{}}"
    assert frame["request"].iloc[3].endswith(f'{{"branchId": "{branch}"}}')
    assert "duplicate of line 1" in frame["message"].iloc[1]
    assert "2 requests would be sent" in capsys.readouterr().out


def test_dry_run_with_instance_never_touches_the_network(ip: InteractiveShell, sb: Any) -> None:
    """--dry-run --instance shows the production URL and sends nothing."""
    ip.run_line_magic("omni_draft", "doc-0001 --instance acme --dry-run -o plan")
    plan = ip.user_ns["plan"]
    assert plan["request"].iloc[0].startswith("POST https://acme.omniapp.co/api/v1/documents/")
    assert sb.requests() == []


# -- options -----------------------------------------------------------------------------------


def test_base_url_option_overrides_environment(
    ip: InteractiveShell, sb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--base-url gives the API root when the environment has none."""
    monkeypatch.delenv("OMNI_BASE_URL")
    table = ip.run_line_magic("omni_draft", f"doc-0017 --base-url {sb.base_url}")
    assert table["api_root"].iloc[0] == sb.base_url


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("doc-0001 --instance a --base-url https://a.omniapp.co", "not both"),
        ("doc-0001 --playground", "--playground goes with --instance"),
        ("doc-0001 --concurrency 0", "at least 1"),
        ("doc-0001 --concurrency x", "invalid int"),
        ("doc-0001 --rate 5/x", "--rate"),
        ("doc-0001 --max-retries -1", "0 or more"),
        ("doc-0001 'unbalanced", "%omni_draft"),
    ],
)
def test_bad_options_are_usage_errors(
    ip: InteractiveShell, sb: Any, line: str, expected: str
) -> None:
    """Bad options fail with the exact UsageError class before anything is sent."""
    with pytest.raises(UsageError, match=expected) as info:
        ip.run_line_magic("omni_draft", line)
    assert type(info.value) is UsageError
    assert sent(sb) == []


def _last_post_after(sb: Any, started: float) -> float:
    """Seconds from ``started`` (``time.time()``) to the sandbox stamping the last POST.

    At 1 request/s the client may send its second POST only a full second after its first,
    and it sent the first after ``started``: so the last arrival is at least a second after
    ``started`` however loaded the machine is (load only adds to it). Gaps between arrivals
    would not do: a first request delayed on its way shortens the gap the server sees."""
    return max(r.received_at for r in sb.requests() if r.method == "POST") - started


def test_rate_and_concurrency_reach_the_batch(ip: InteractiveShell, sb: Any) -> None:
    """--rate 1/1 makes the client wait a second before its second send, even with
    --concurrency 2: the limit reached the client."""
    started = time.time()
    table = ip.run_line_magic("omni_draft", "doc-0018 doc-0019 --rate 1/1 --concurrency 2")
    assert list(table["status"]) == ["ok", "ok"]
    assert _last_post_after(sb, started) >= 0.95


def test_config_defaults_are_used(ip: InteractiveShell, sb: Any) -> None:
    """%config OmniNB.rate sets the default rate of the magic."""
    ip.run_line_magic("config", "OmniNB.rate = '1/1'")
    started = time.time()
    ip.run_line_magic("omni_draft", "doc-0021 doc-0022")
    assert _last_post_after(sb, started) >= 0.95


def test_max_retries_zero_fails_fast(ip: InteractiveShell, sb: Any) -> None:
    """--max-retries 0 sends a failing request once and reports the 5xx as a row."""
    sb.enqueue(503, {"message": "maintenance"}, times=1)
    table = ip.run_line_magic("omni_draft", "doc-0032 doc-0033 --max-retries 0 --concurrency 1")
    assert sorted(table["status"].astype(str)) == ["ok", "server_error"]
    assert len(sb.requests()) == 2


def test_resume_copies_ok_rows_from_the_ledger(ip: InteractiveShell, sb: Any) -> None:
    """--resume does not resend pairs already ok in the ledger."""
    ip.run_line_magic("omni_draft", "doc-0022 doc-0023")
    sb.clear_requests()
    table = ip.run_line_magic("omni_draft", "doc-0022 doc-0023 doc-0024 --resume")
    assert list(table["from_ledger"]) == [True, True, False]
    assert sent(sb) == [("doc-0024", None)]


# -- variable expansion ------------------------------------------------------------------------


def test_line_and_cell_expand_variables(ip: InteractiveShell, sb: Any) -> None:
    """$var and {expr} expand on the line and in the cell body (not in comments)."""
    ip.user_ns.update(one="doc-0025", n=26, branch=sb.branches[0].id)
    ip.run_cell("%omni_draft $one doc-00{n} -o a")
    assert list(ip.user_ns["a"]["document_id"]) == ["doc-0025", "doc-0026"]
    ip.run_cell("%%omni_draft -o b\n# {undefined_name}\n{one}, $branch\ndoc-00{n + 1}\n")
    assert list(ip.user_ns["b"]["document_id"]) == ["doc-0025", "doc-0027"]
    assert ip.user_ns["b"]["branch_id"].iloc[0] == sb.branches[0].id


# -- errors in a notebook ----------------------------------------------------------------------


def test_single_failure_is_one_line_naming_the_class(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed single call fails the cell with one line: class and server message."""
    result, shown = run_failing(ip, "%omni_draft nope", capsys)
    assert isinstance(result.error_in_exec, NotFoundError)
    lines = [x for x in shown.splitlines() if x.strip()]
    assert lines == ["NotFoundError: HTTP 404: Document with identifier nope not found"]


def test_single_failure_raises_the_clients_own_error(ip: InteractiveShell) -> None:
    """The error raised is the client's, with the server's parsed body, not a rebuilt one."""
    with pytest.raises(NotFoundError) as info:
        ip.run_line_magic("omni_draft", "nope")
    assert info.value.body == {"error": "Not Found",
                               "message": "Document with identifier nope not found"}
    assert info.value.attempts == 1


def test_single_failure_still_stores_the_table(ip: InteractiveShell) -> None:
    """With -o, a failed single call leaves its one-row table in VAR before failing."""
    with pytest.raises(NotFoundError):
        ip.run_line_magic("omni_draft", "nope -o r")
    assert list(ip.user_ns["r"]["status"]) == ["not_found"]


def test_usage_error_is_one_line_without_traceback(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input shows 'UsageError: ...' on one line, no traceback, and the cell fails."""
    result, shown = run_failing(ip, "%%omni_draft\ndoc-1\na,b,c\n", capsys)
    assert type(result.error_in_exec) is UsageError
    assert "Traceback" not in shown
    assert [x for x in shown.splitlines() if x.strip()] == [
        "UsageError: line 2: expected 'document' or 'document, branch', got 3 "
        "comma-separated fields: 'a,b,c'"
    ]


def test_config_error_is_one_line_and_sends_nothing(
    ip: InteractiveShell, sb: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No token: ConfigError on one line naming the ways to give one; nothing sent."""
    monkeypatch.delenv("OMNI_API_TOKEN")
    result, shown = run_failing(ip, "%omni_draft doc-0001 doc-0002", capsys)
    assert isinstance(result.error_in_exec, ConfigError)
    lines = [x for x in shown.splitlines() if x.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("ConfigError: No Omni API token")
    assert "Traceback" not in shown
    assert sent(sb) == []


def test_batch_with_nothing_done_fails_the_cell(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch where no row is ok shows the table and fails with one DraftsFailedError line."""
    result, shown = run_failing(ip, "%omni_draft doc-0030 nope", capsys)
    assert isinstance(result.error_in_exec, DraftsFailedError)
    assert "Traceback" not in shown
    assert [x for x in shown.splitlines() if "Error" in x] == [
        "DraftsFailedError: no draft created: 2 rows: 1 not_eligible, 1 not_found "
        "(the table is shown above)"
    ]
    assert "nope" in shown  # the table was shown before the cell failed


def test_batch_with_some_failures_returns_rows(ip: InteractiveShell) -> None:
    """Per-item failures in a batch with an ok row are rows, not errors."""
    table = ip.run_line_magic("omni_draft", "doc-0031 nope")
    assert list(table["status"]) == ["ok", "not_found"]


def test_refused_token_is_one_line_and_never_shown(
    ip: InteractiveShell, sb: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused token fails the single call with AuthenticationError; the token never shows."""
    secret = "omni_osk_NOT_A_REAL_TOKEN_123"
    monkeypatch.setenv("OMNI_API_TOKEN", secret)
    result, shown = run_failing(ip, "%omni_draft doc-0001", capsys)
    assert type(result.error_in_exec).__name__ == "AuthenticationError"
    assert secret not in shown
    assert sb.token not in shown


# -- help, load, unload ------------------------------------------------------------------------


def test_help_shows_options_and_examples(ip: InteractiveShell) -> None:
    """%omni_draft? documents every option with examples."""
    doc = ip.find_line_magic("omni_draft").__doc__
    for text in ("--branch", "--from", "-o", "--dry-run", "--resume", "--rate", "--concurrency",
                 "--instance", "--base-url", "%%omni_draft", "doc-0001"):
        assert text in doc


def test_unload_and_reload(shell: InteractiveShell) -> None:
    """%unload_ext removes the magic and its config; %reload_ext brings back exactly one."""
    shell.run_line_magic("unload_ext", "omni_nb")
    assert shell.find_line_magic("omni_draft") is None
    assert shell.find_cell_magic("omni_draft") is None
    assert not any(isinstance(c, OmniNB) for c in shell.configurables)
    shell.run_line_magic("load_ext", "omni_nb")
    shell.run_line_magic("reload_ext", "omni_nb")
    assert shell.find_line_magic("omni_draft") is not None
    assert shell.find_cell_magic("omni_draft") is not None
    assert sum(isinstance(c, OmniNB) for c in shell.configurables) == 1


def test_loading_imports_no_heavy_modules() -> None:
    """%load_ext omni_nb imports neither pandas, httpx nor ipywidgets."""
    code = textwrap.dedent(
        """
        import sys
        from IPython.core.history import HistoryAccessor
        HistoryAccessor.enabled = False
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "omni_nb")
        assert ip.find_line_magic("omni_draft") is not None
        print(sorted(m for m in ("pandas", "httpx", "ipywidgets") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# -- the progress display ----------------------------------------------------------------------


def _row(status: str = "ok") -> Row:
    return Row("d", None, "x", status, 200, "", 1, 0.1, 0, "https://a/api", "r")


class _Kernel:
    """ipykernel's public view of the current request: get_parent() (ipykernel >= 6)."""

    def __init__(self, allow_stdin: bool) -> None:
        self.allow_stdin = allow_stdin

    def get_parent(self) -> dict[str, Any]:
        return {"header": {"msg_type": "execute_request"},
                "content": {"allow_stdin": self.allow_stdin}}


class _Shell:
    def __init__(self, kernel: _Kernel | None) -> None:
        self.kernel = kernel


@pytest.mark.parametrize(
    ("shell_obj", "wanted", "mode"),
    [
        (None, "auto", "text"),
        (_Shell(None), "auto", "text"),
        (_Shell(_Kernel(allow_stdin=False)), "auto", "text"),
        (_Shell(_Kernel(allow_stdin=True)), "auto", "widget"),
        (_Shell(_Kernel(allow_stdin=True)), "text", "text"),
        (None, "widget", "widget"),
        (None, "off", "off"),
    ],
)
def test_progress_mode_detection(shell_obj: Any, wanted: str, mode: str) -> None:
    """Widget bar only for an interactive kernel front end (allow_stdin); text otherwise."""
    assert choose_mode(shell_obj, wanted) == mode


def test_no_progress_for_a_single_call() -> None:
    """make_progress gives no display for one item."""
    assert make_progress(None, 1) is None
    assert make_progress(None, 2, wanted="off") is None


class _Budget:
    """A rate budget a test sets by hand (a Budget for the displays)."""

    def __init__(self) -> None:
        self.hold: Hold | None = None
        self.rate: float | None = 1.0

    def held(self) -> Hold | None:
        return self.hold

    def per_second(self) -> float | None:
        return self.rate


def test_widget_bar_says_why_and_how_long_sending_waits() -> None:
    """The widget bar shows done/total; while the budget holds sending back it says so, with
    the seconds to the next send and an ETA from the budget; the final draw drops both."""
    shown: list[Any] = []
    budget = _Budget()
    bar = LiveProgress(3, mode="widget", budget=budget, tick=None, display=shown.append)
    bar(1, 3, _row())
    label, progress = shown[0].children[1], shown[0].children[0]
    assert (progress.value, progress.max) == (1, 3)
    assert label.value.startswith("1/3")
    assert "ETA 2 s" in label.value  # 2 left at 1 request/s
    budget.hold = Hold("the rate budget", 41.5)
    bar.refresh()
    assert "waiting for the rate budget: next send in 42 s" in label.value
    assert "ETA 44 s" in label.value
    assert progress.bar_style == "warning"
    budget.hold = Hold("a 429 pause", 6.5)
    bar.refresh()
    assert "waiting for a 429 pause: next send in 7 s" in label.value
    budget.hold = None
    bar(2, 3, _row())
    bar(3, 3, _row("not_found"))
    bar.close()
    assert "waiting" not in label.value
    assert "ETA" not in label.value
    assert progress.value == 3
    assert progress.bar_style == "warning"  # one row failed


class _Terminal(io.StringIO):
    """A terminal, where the text bar redraws in place (a captured stream gets a few lines)."""

    def isatty(self) -> bool:
        return True


def test_text_bar_redraws_the_wait_without_new_results() -> None:
    """The text bar redraws the countdown on refresh (the ticker's call), no result needed."""
    out = _Terminal()
    budget = _Budget()
    budget.hold = Hold("the rate budget", 3.0)
    bar = LiveProgress(2, mode="text", budget=budget, stream=out, tick=None)
    bar(1, 2, _row())
    before = out.getvalue().count("next send in 3 s")
    bar.refresh()
    assert out.getvalue().count("next send in 3 s") == before + 1
    bar.close()


def test_the_ticker_redraws_every_second_on_its_own() -> None:
    """With a budget, the bar redraws about once a second while no result arrives."""
    out = _Terminal()
    budget = _Budget()
    budget.hold = Hold("the rate budget", 30.0)
    bar = LiveProgress(2, mode="text", budget=budget, stream=out, tick=0.05)
    deadline = time.monotonic() + 10
    while out.getvalue().count("next send in") < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    bar.close()
    assert out.getvalue().count("next send in 30 s") >= 3


def test_keys_budget_reads_the_limiters() -> None:
    """The batch's view of its keys: held by the budget once a key's window is full, with
    the rate all keys allow together."""
    now = [1000.0]
    limiters = [Limiter(RateLimit(2, 60.0), clock=lambda: now[0], margin=0.0)
                for _ in range(2)]
    view = KeysBudget(limiters)
    assert view.per_second() == pytest.approx(2 * 2 / 60)
    assert view.held() is None
    for limiter in limiters:
        limiter.acquire(lambda s: None)
        limiter.acquire(lambda s: None)
    hold = view.held()
    assert hold is not None
    assert hold.reason == "the rate budget"
    assert 55 < hold.seconds <= 61


# -- the ledger --------------------------------------------------------------------------------


def test_a_ledger_that_is_not_ours_is_one_line_and_sends_nothing(
    ip: InteractiveShell, sb: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ledger file that is not ours fails the cell with one LedgerError line naming the path
    and the ways out, before anything is sent (the background form too)."""
    path = tmp_path / "other.sqlite3"
    path.write_bytes(b"plain text, not a database\n" * 10)
    monkeypatch.setenv("OMNI_NB_LEDGER", str(path))
    for line in ("%omni_draft doc-0040 doc-0041", "%omni_draft doc-0040 --background"):
        result, shown = run_failing(ip, line, capsys)
        assert isinstance(result.error_in_exec, LedgerError)
        lines = [x for x in shown.splitlines() if x.strip()]
        assert len(lines) == 1
        assert lines[0].startswith(f"LedgerError: ledger {path}: not an SQLite database")
        assert "OMNI_NB_LEDGER=off" in lines[0]
    assert sent(sb) == []


def test_a_ledger_write_that_fails_mid_batch_keeps_the_table_in_o(
    ip: InteractiveShell, sb: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The ledger locked by another connection past its busy timeout: the cell fails with one
    line naming the rows not in the ledger and saying the table is in the -o variable, where
    every input has its row."""
    path = tmp_path / "l.sqlite3"
    monkeypatch.setenv("OMNI_NB_LEDGER", str(path))
    open_ledger()._conn.execute("PRAGMA busy_timeout = 10")  # a real lock, waited on briefly
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result, shown = run_failing(ip, "%omni_draft doc-0042 doc-0043 doc-0044 -o kept",
                                    capsys)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(result.error_in_exec, LedgerError)
    assert "Traceback" not in shown
    lines = [x for x in shown.splitlines() if "Error" in x]  # the text bar aside
    assert len(lines) == 1
    assert "database is locked" in lines[0]
    assert "the table is in kept" in lines[0]
    kept = ip.user_ns["kept"]
    assert list(kept["document_id"]) == ["doc-0042", "doc-0043", "doc-0044"]
    made = {doc: draft for (doc, _), draft in sb.drafts().items()}
    for doc, _, draft in result.error_in_exec.unrecorded:
        assert made[doc] == draft
        assert f"{doc} (draft {draft})" in lines[0]


# -- messages in the magic's own words ---------------------------------------------------------


def test_from_an_expression_says_from_takes_a_variable_name(ip: InteractiveShell, sb: Any) -> None:
    """--from other['a'] is one line saying --from takes a variable name only (and how to
    give one), not "no such variable"; nothing is evaluated or sent."""
    ip.user_ns["other"] = {"a": ["doc-0001"]}
    with pytest.raises(UsageError) as raised:
        ip.run_line_magic("omni_draft", "--from other['a']")
    said = str(raised.value)
    assert "--from takes a variable name only" in said
    assert "no such variable" not in said
    assert "\n" not in said
    assert sent(sb) == []


def test_a_frame_without_document_id_names_the_magics_option(ip: InteractiveShell) -> None:
    """A DataFrame with no document_id column: the message names --document-col, never the
    Python keyword, for a create, a dry run, a discard and a listing alike."""
    ip.user_ns["docs"] = pd.DataFrame({"identifier": ["doc-0001"]})
    for line in ("--from docs", "--from docs --dry-run", "--discard --from docs",
                 "--list --from docs"):
        with pytest.raises(UsageError) as raised:
            ip.run_line_magic("omni_draft", line)
        assert "pass --document-col" in str(raised.value), line
        assert "document_col=" not in str(raised.value), line


def test_an_instance_that_looks_like_a_url_names_the_magics_base_url(
        ip: InteractiveShell, sb: Any) -> None:
    """--instance acme.omniapp.co: the settings error says --base-url, not base_url."""
    with pytest.raises(ConfigError) as raised:
        ip.run_line_magic("omni_draft", "doc-0001 --instance acme.omniapp.co")
    assert str(raised.value).startswith("--instance 'acme.omniapp.co' is not an instance name")
    assert "pass it as --base-url" in str(raised.value)
    assert "base_url" not in str(raised.value)
    assert sent(sb) == []
