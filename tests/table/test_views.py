"""What the displays of rows say: discards worded as discards, the order a view shows, a
headline for a refused token, messages cut at a word, the drafts listing in the same compact
style (the HTML a notebook and the form show, the text the CLI prints)."""

from __future__ import annotations

import contextlib
import html
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from omni_nb import sandbox
from omni_nb.batch import create_drafts, discard_drafts, list_drafts
from omni_nb.cli import main
from omni_nb.ledger import open_ledger, results
from omni_nb.rows import Row
from omni_nb.table import (
    DraftListing,
    compact_html,
    cut_at_word,
    drafts_frame,
    frame_from_rows,
    headline,
    listing_html,
    text_view,
)
from omni_nb.widget.panel import RunPanel

from ..jupyterlab import code_notebook, serve


def _row(doc: str, status: str = "ok", message: str = "", *, action: str = "create",
         http: int | None = 200, when: int = 0) -> Row:
    return Row(doc, None, "d" + doc[-2:], status, http, message, 1, 0.1, when,
               "https://a/api", "r1", action=action)


def _cells(page: str) -> list[list[str]]:
    """The text of each body row's cells (the index heading left out)."""
    body = page.split("<tbody>", 1)[1]
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)</td>", tr)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body)]


def _headings(page: str) -> list[str]:
    return re.findall(r"<th[^>]*>([^<]+)</th>", page.split("<tbody>", 1)[0])


def _discarded(sb: sandbox.Sandbox) -> pd.DataFrame:
    """A run of three creates (one refused), then its careful discard: 2 archived."""
    made = create_drafts(["doc-0001", "doc-0002", "doc-0010"], base_url=sb.base_url,
                         token=sb.token, ledger="off", rate_limit=None)
    return discard_drafts(made, base_url=sb.base_url, token=sb.token, rate_limit=None)


# -- discards read as discards ----------------------------------------------------------------


def test_a_discard_reads_archived_in_the_notebook_table(sb: sandbox.Sandbox) -> None:
    """An ok discard row's status cell and the legend say "archived", an action column says
    "discard"; the status value stays "ok" so filters keep working."""
    undone = _discarded(sb)
    assert list(undone["status"]) == ["ok", "ok"]
    assert undone.summary() == "2 rows: 2 ok"  # the data's words are unchanged
    page = compact_html(undone)
    headings = _headings(page)
    assert headings[headings.index("status") - 1] == "action"
    rows = _cells(page)
    status_at = headings.index("status")  # the index column's empty heading is not listed
    assert [r[status_at] for r in rows] == ["archived", "archived"]
    assert [r[status_at - 1] for r in rows] == ["discard", "discard"]
    assert "2 archived" in page.split("<table", 1)[0]
    assert "2 ok" not in page.split("<table", 1)[0]


def test_a_skipped_discard_reads_skipped_with_its_reason() -> None:
    """A skipped discard stays "skipped" (not "archived"), its reason in the message."""
    why = "existed before the run: draft d1 was created before it"
    table = frame_from_rows([_row("doc-01", action="discard"),
                             _row("doc-02", "skipped", why, action="discard", http=None)])
    rows = _cells(compact_html(table))
    assert rows[0][3:5] == ["discard", "archived"]
    assert rows[1][3:5] == ["discard", "skipped"]
    assert rows[1][6].startswith("existed before the run")


def test_the_text_view_words_discards_and_names_the_action() -> None:
    """The CLI's text view: "N rows: N archived" and an action column; creates alone keep
    the view they had (no action column, "ok")."""
    undone = frame_from_rows([_row("doc-01", action="discard"), _row("doc-02", action="discard")])
    view = text_view(undone)
    head, columns, first = view.splitlines()[:3]
    assert head == "2 rows: 2 archived"
    assert columns.split() == ["document_id", "branch_id", "draft_id", "action", "status",
                               "http_status", "message"]
    assert first.split()[2:4] == ["discard", "archived"]
    made = text_view(frame_from_rows([_row("doc-01")]))
    assert made.splitlines()[0] == "1 row: 1 ok"
    assert "action" not in made


def test_the_plain_text_repr_words_discards_as_the_html_does() -> None:
    """repr() (a terminal, a saved notebook's text/plain) reads "archived" too."""
    text = repr(frame_from_rows([_row("doc-01", action="discard")]))
    assert text.splitlines()[0] == "1 row: 1 archived"
    assert "archived" in text.splitlines()[2]
    assert "discard" in text.splitlines()[2]


def test_a_mixed_ledger_view_tells_creates_from_discards() -> None:
    """Creates and discards read back together: creates say ok, discards archived, each
    row names its action."""
    table = frame_from_rows([_row("doc-01"), _row("doc-01", action="discard")])
    assert text_view(table).splitlines()[0] == "2 rows: 1 ok, 1 archived"
    rows = _cells(compact_html(table))
    assert [r[3:5] for r in rows] == [["create", "ok"], ["discard", "archived"]]


def test_the_forms_table_words_a_discard_as_the_notebook_does(sb: sandbox.Sandbox) -> None:
    """The form's output area shows a discard with the same words as a notebook cell."""
    undone = _discarded(sb)
    panel = RunPanel()
    panel.show(undone)
    shown = panel.output.outputs[0]["data"]["text/html"]
    assert shown == compact_html(undone)
    assert ">archived</td>" in shown
    assert ">discard</td>" in shown


# -- the order a view shows -------------------------------------------------------------------


def test_results_are_oldest_first_and_the_text_view_says_newest_first(tmp_path: Path) -> None:
    """results() gives the oldest rows first (its head); the ledger's text view lists the
    newest first and says so, and names what --limit left out as older."""
    ledger = tmp_path / "l.sqlite3"
    open_ledger(ledger).record([_row("doc-01", when=1_000_000), _row("doc-02", when=2_000_000),
               _row("doc-03", when=3_000_000)])
    table = results(ledger=ledger)
    assert list(table["document_id"]) == ["doc-01", "doc-02", "doc-03"]
    view = text_view(table, 1, newest_first=True)
    lines = view.splitlines()
    assert lines[0] == "3 rows: 3 ok (newest first)"
    assert "doc-03" in lines[2]
    assert "doc-01" not in view
    assert lines[-1] == "… 2 more rows not shown: the older ones"


def test_cli_results_says_it_lists_the_newest_first(
    sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """omni-nb results: the summary line says "newest first", and the newest row leads."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    assert main(["draft", "doc-0001", "doc-0002", "--rate", "off", "--concurrency", "1"]) == 0
    capsys.readouterr()
    assert main(["results"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 rows: 2 ok (newest first)"
    assert "doc-0002" in lines[2]


# -- a refused token --------------------------------------------------------------------------


def _refused(sb: sandbox.Sandbox, n: int = 30) -> pd.DataFrame:
    return create_drafts([f"doc-{i:04d}" for i in range(1, n + 1)], base_url=sb.base_url,
                         token="omni_osk_wrong", ledger="off", rate_limit=None)


def test_a_refused_token_is_a_headline_above_the_notebook_table(sb: sandbox.Sandbox) -> None:
    """Every row unauthorized or cancelled: the HTML opens with "The token was refused:" and
    the server's words, before the summary and the table; the token never appears."""
    table = _refused(sb)
    server_words = str(table.loc[table["status"] == "unauthorized", "message"].iloc[0])
    page = compact_html(table)
    before_table = page.split("<table", 1)[0]
    line = headline(table)
    assert line.startswith(f"The token was refused: {server_words.rstrip('.')}. Check the API key")
    assert html.escape(line) in before_table
    assert before_table.index("The token was refused") < before_table.index("<b>30 rows</b>")
    assert "omni_osk_wrong" not in page


def test_a_refused_token_is_the_first_line_the_cli_prints(
    sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """omni-nb draft with a refused token: the headline leads the printed table, exit 1."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", "omni_osk_wrong")
    assert main(["draft", "doc-0001", "doc-0002", "doc-0003", "--rate", "off"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("The token was refused: ")
    assert "omni_osk_wrong" not in out


def test_a_table_that_worked_has_no_headline() -> None:
    """Failures of single documents are rows, not a headline."""
    table = frame_from_rows([_row("doc-01"), _row("doc-02", "not_found", "no such", http=404)])
    assert headline(table) == ""
    assert "<p style=\"color" not in compact_html(table)
    assert text_view(table).splitlines()[0] == "2 rows: 1 ok, 1 not_found"


def test_an_unreachable_instance_is_a_headline_when_nothing_worked() -> None:
    """Every sent row a network error (the batch stopped): the headline names the host
    problem; one network error among ok rows is just a row."""
    lost = "host acme-typo.omniapp.co not found: check the instance name 'acme-typo' (x)"
    dead = frame_from_rows([_row("doc-01", "network_error", lost, http=None),
                            _row("doc-02", "cancelled", "not sent", http=None)])
    assert headline(dead) == f"Could not reach the instance: {lost}."
    assert text_view(dead).splitlines()[0] == headline(dead)
    mostly = frame_from_rows([_row("doc-01"), _row("doc-02", "network_error", lost, http=None)])
    assert headline(mostly) == ""


# -- messages cut at a word -------------------------------------------------------------------


def test_a_long_message_is_cut_at_a_word_with_the_whole_text_on_hover() -> None:
    """The cell shows whole words then an ellipsis, short enough for one line of a 960 px
    cell; the title attribute holds the whole message."""
    message = ("host acme-typo.omniapp.co not found: check the instance name 'acme-typo' "
               "([Errno -2] Name or service not known)")
    page = compact_html(frame_from_rows([_row("doc-01", "network_error", message, http=None)]))
    title, shown = re.findall(r'<td title="([^"]*)" style="max-width[^>]*>([^<]*)</td>',
                              page)[0]
    assert html.unescape(title) == message
    shown = html.unescape(shown)
    assert shown.endswith("…")
    assert len(shown) <= 50
    assert message.startswith(shown[:-1])
    assert message[len(shown) - 1] in " ,;:"  # the cut falls between two words


def test_cut_at_word_cuts_mid_word_only_when_one_word_fills_the_room() -> None:
    """A single long word is cut where it must be; short text is left whole."""
    assert cut_at_word("short", 10) == "short"
    assert cut_at_word("x" * 30, 10) == "x" * 9 + "…"
    assert cut_at_word("one two three", 8) == "one two…"


# -- the drafts listing -----------------------------------------------------------------------


def _listing() -> DraftListing:
    created = datetime(2026, 12, 5, 8, 6, 18, tzinfo=UTC)
    return drafts_frame([
        ("doc-0001", "a1b2c3d4", None, None, "active", False, created, created, "Ann",
         "Ann", "ok", ""),
        ("nope", None, None, None, None, None, None, None, None, None, "not_found",
         "Document with identifier nope not found"),
    ])


def test_the_listing_is_compact_with_blanks_and_minute_times() -> None:
    """The listing's HTML: its summary, DRAFT_SHOWN's columns, blanks (no <NA>), a time to
    the minute with the exact one on hover, statuses coloured, a message cut at a word."""
    page = listing_html(_listing())
    assert "<b>1 draft of 2 documents: 1 active; 1 listing failed (not_found).</b>" in page
    assert "NA" not in page.replace("NAME", "")
    assert 'title="2026-12-05T08:06:18+00:00"' in page
    assert ">2026-12-05 08:06</td>" in page
    assert _headings(page)[:3] == ["document", "draft", "branch"]
    assert _headings(page)[-1] == "listing"  # status and message, one column
    assert 'title="not_found: Document with identifier nope not found"' in page
    assert "class=\"omni-nb-drafts\"" in page


def test_long_names_in_a_listing_are_cut_with_the_whole_on_hover() -> None:
    """A long branch name or creator is cut at a word, whole on hover; every listing that
    worked leaves no "listing" column (the summary says they worked)."""
    branch = "feature/quarterly-revenue-dashboard-refresh"
    page = listing_html(drafts_frame([("doc-0001", "a1b2c3d4", None, branch, "active", False,
                                       None, None, "Alexandra Konstantinopoulou", None, "ok",
                                       "")]))
    cells = dict(re.findall(r'<td title="([^"]*)"[^>]*>([^<]*)</td>', page))
    assert cells[branch].endswith("…")
    assert len(cells[branch]) <= 14
    assert cells["Alexandra Konstantinopoulou"] == "Alexandra…"
    assert "listing" not in _headings(page)


def test_a_listing_displays_compactly_wherever_it_is_shown(sb: sandbox.Sandbox) -> None:
    """list_drafts returns a listing whose notebook view (what the magic's --list shows) is
    listing_html; a filter of it still is; its summary() is the listing's line."""
    create_drafts(["doc-0001"], base_url=sb.base_url, token=sb.token, ledger="off",
                  rate_limit=None)
    listed = list_drafts(["doc-0001", "doc-0002"], base_url=sb.base_url, token=sb.token,
                         rate_limit=None)
    assert isinstance(listed, DraftListing)
    assert listed._repr_html_() == listing_html(listed)
    assert listed.summary() == "1 draft of 1 document: 1 active."  # doc-0002 has none
    active = listed[listed["draft_status"] == "active"]
    assert isinstance(active, DraftListing)
    assert active._repr_html_() == listing_html(active)
    assert "<NA>" not in repr(listed)


def test_show_drafts_says_its_summary_once(sb: sandbox.Sandbox) -> None:
    """The form's "Show drafts": the listing's line is the status line, not also the
    table's heading."""
    from omni_nb.widget import DraftForm

    form = DraftForm(sb.base_url, sb.token, rate_limit=None, ledger="off")
    try:
        form.documents.value = "doc-0001"
        assert form.submit(wait=True) is not None
        form.documents.value = "doc-0001\nnope"
        listed = form.show_drafts(wait=True)
        assert listed is not None
        line = "1 draft of 2 documents: 1 active; 1 listing failed (not_found)."
        shown = form.output.outputs[0]["data"]["text/html"]
        assert line in form.message.value
        assert shown.count("listing failed") == 0
        assert 'class="omni-nb-drafts"' in shown
    finally:
        form.close()


# -- in JupyterLab: the tables fit a 960 px cell ----------------------------------------------

#: A notebook showing each kind of table: a discard (archived and skipped rows), a create
#: run (the sandbox refuses doc-0010: a long message), a refused token, a misspelt instance,
#: the widest rows the compact table and the listing can have, the magic's listing.
BROWSER_CELLS = [
    "import os\nimport omni_nb\nsb = omni_nb.sandbox.serve(documents=60, rate_limit=None)\n"
    "os.environ.update(OMNI_BASE_URL=sb.base_url, OMNI_API_TOKEN=sb.token)\n"
    "# Drafts made before the run (by more than the discard's clock-skew margin, 2 s): the\n"
    "# discard below skips them.\n"
    "import time\n"
    "before = omni_nb.create_drafts(['doc-0001', 'doc-0002'], rate_limit=None, ledger='off')\n"
    "time.sleep(2.5)",
    "made = omni_nb.create_drafts([f'doc-{i:04d}' for i in range(1, 13)], rate_limit=None)\n"
    "made",
    "omni_nb.discard_drafts(made, rate_limit=None)",
    "omni_nb.create_drafts([f'doc-{i:04d}' for i in range(20, 50)], token='omni_osk_wrong',\n"
    "                      rate_limit=None)",
    "omni_nb.create_drafts(['doc-0001', 'doc-0002', 'doc-0003'], rate_limit=None,\n"
    "                      base_url='https://acme-typo.omniapp.invalid/api')",
    "from omni_nb.rows import Row\nfrom omni_nb.table import frame_from_rows\n"
    "words = 'Document is not eligible for publishing because ' * 6\n"
    "frame_from_rows([Row(f'doc-{i:04d}', '0b1c2d3e-aaaa-bbbb-cccc-123456789abc', 'd93874a8',\n"
    "                     status, 503, words, 10, 123.456, 0, 'https://a/api', 'r', action=a)\n"
    "                 for i, (status, a) in enumerate([('network_error', 'discard'),\n"
    "                                                  ('not_eligible', 'create')])])",
    "from omni_nb.table import drafts_frame\nfrom datetime import datetime, UTC\n"
    "now = datetime.now(UTC)\nname = 'feature/quarterly-revenue-dashboard-refresh'\n"
    "drafts_frame([('quarterly-revenue-overview-2026', 'd93874a8', None, name, 'archived',\n"
    "               True, now, now, 'Alexandra Konstantinopoulou', None, 'ok', ''),\n"
    "              ('doc-0002', None, None, None, None, None, None, None, None, None,\n"
    "               'server_error', 'Internal server error while listing the drafts ' * 3)])",
    "%reload_ext omni_nb\n%omni_draft --list doc-0001 doc-0002 doc-0003 doc-0004 nope "
    "--include-archived",
]
#: Where the screenshots go (not committed): the artifacts folder, or SCREENSHOTS_DIR.
SHOTS = ("discard", "created", "refused-token", "misspelt-instance", "widest",
         "widest-listing", "listing")
FIT = """el => ({table: el.querySelector('table.dataframe').getBoundingClientRect().width,
    area: el.clientWidth, overflow: el.scrollWidth - el.clientWidth,
    rows: Array.from(el.querySelectorAll('table.dataframe tbody tr')).map(r => r.offsetHeight)})"""


@pytest.mark.browser
def test_every_table_fits_a_960px_cell_in_jupyterlab(tmp_path: Path) -> None:
    """JupyterLab 1400 px wide with the file browser open: a discard, a refused token, a
    misspelt instance and the listing each fit their output area and 960 px (the cell an
    analyst had with a wider file browser), one line per row, with the words pinned above."""
    from playwright.sync_api import expect, sync_playwright

    from ..jupyterlab import CHROMIUM, CHROMIUM_ARGS, missing_requirement

    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    shots = Path(os.environ.get("SCREENSHOTS_DIR", Path(__file__).parents[2] / "artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    with _lab(tmp_path, BROWSER_CELLS) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # Tall, so each table is drawn whole (JupyterLab draws only the cells in view).
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        try:
            page.goto(url)
            page.locator(".jp-StatusBar-Widget", has_text="(ipykernel) | Idle").first.wait_for()
            page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
            cells = page.locator(".jp-Cell")
            expect(cells.nth(len(BROWSER_CELLS) - 1).locator("table.dataframe")).to_have_count(1)
            expected = {"discard": "made before the run", "created": "not_eligible",
                        "refused-token": "The token was refused", "misspelt-instance":
                        "host acme-typo.omniapp.invalid not found", "widest": "network_error",
                        "widest-listing": "server_error", "listing": "draft status"}
            for name, n in zip(SHOTS, (2, 1, 3, 4, 5, 6, 7), strict=True):
                area = cells.nth(n).locator(".jp-Cell-outputArea")
                expect(area).to_contain_text(expected[name])
                fit = area.evaluate(FIT)
                print(f"{name}: table {fit['table']:.0f} px in a {fit['area']} px area")
                cells.nth(n).screenshot(path=str(shots / f"i20-display-{name}.png"))
                assert fit["table"] <= min(960, fit["area"]), (name, fit)
                assert fit["overflow"] <= 1, (name, fit)
                assert max(fit["rows"]) - min(fit["rows"]) <= 2, (name, fit)
            page.screenshot(path=str(shots / "i20-display-lab.png"))
        except Exception:
            page.screenshot(path=str(shots / "i20-display-failure.png"))
            raise
        finally:
            browser.close()


@contextlib.contextmanager
def _lab(tmp_path: Path, sources: list[str]) -> Iterator[str]:
    """JupyterLab on a free loopback port serving a notebook of ``sources``; yields its URL."""
    with serve(tmp_path, {"tables.ipynb": code_notebook(sources)}) as url:
        yield url.format("tables.ipynb")
