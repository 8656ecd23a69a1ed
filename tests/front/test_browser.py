"""The widget notebook in a real browser: JupyterLab driven by Playwright in Debian's Chromium.

Needs ``apt-get install chromium`` (``/usr/bin/chromium``) and jupyterlab + playwright, which
the ``test`` extra carries (``pip install -e '.[test]'``). Playwright's own browser download
is never used. The test skips, saying which, only when one of them is missing.

The notebook is copied to a temporary directory first (with two cells added that show a
results table from a plain cell), so the repository's copy never gets outputs. Screenshots
go to ``artifacts/`` (ignored by git): ``form-before.png`` (the form, connected, before a
batch), ``form-results.png`` (after a batch with failures), ``table-cell.png`` and
``table-filtered.png`` (a table displayed by a plain cell, and a filter of it). Besides
looking at them, the test checks what they show: placeholders that fit their boxes, tables
that fit their output areas, one line per row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..jupyterlab import CHROMIUM, CHROMIUM_ARGS, serve

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "03-widget-form.ipynb"
ARTIFACTS = REPO / "artifacts"
DOCUMENTS = [f"doc-{i:04d}" for i in range(1, 21)]  # the sandbox refuses doc-0010, doc-0020
#: Cells added to the copy: a results table displayed by a plain cell, and a filter of it.
TABLE_CELLS = [
    "t = omni_nb.create_drafts([f\"doc-{i:04d}\" for i in range(1, 26)],\n"
    "                          base_url=sb.base_url, token=sb.token)\nt",
    't[t.status != "ok"]',
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on a free loopback port serving a copy of the notebook; yields
    the notebook's URL (with the server token)."""
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    notebook["cells"] += [
        {"cell_type": "code", "id": f"added-{n}", "metadata": {}, "source": source,
         "outputs": [], "execution_count": None}
        for n, source in enumerate(TABLE_CELLS)
    ]
    with serve(tmp_path, {NOTEBOOK.name: notebook}) as url:
        yield url.format(NOTEBOOK.name)


# Measures, in the page, what a reader would see cut off.
PLACEHOLDER_FITS = """el => {
    const style = getComputedStyle(el);
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.font = style.font;
    const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return ctx.measureText(el.placeholder).width <= room;
}"""
OVERFLOW = "el => el.scrollWidth - el.clientWidth"
ROW_HEIGHTS = "el => Array.from(el.querySelectorAll('tbody tr')).map(r => r.offsetHeight)"


def check_fits(area: Any) -> None:
    """A results table in ``area`` fits it (no sideways scrolling) and every row is one
    line high (a long message is cut with an ellipsis, a branch is short)."""
    assert area.evaluate(OVERFLOW) <= 1
    heights = area.locator("table.dataframe").evaluate(ROW_HEIGHTS)
    assert heights
    assert max(heights) - min(heights) <= 2, heights


def test_widget_notebook_creates_drafts_in_jupyterlab(lab: str) -> None:
    """In JupyterLab + Chromium, running the notebook shows the form, its placeholders whole;
    picking a branch, entering ids and clicking Create shows a compact results table that
    fits the form's output box; a plain cell's table fits its output area too."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1250})
        try:
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            run_notebook(page, lab, expect)
            form = page.locator(".jp-Cell").nth(2).locator(".jp-Cell-outputArea")
            for box in form.locator("input[placeholder], textarea[placeholder]").all():
                assert box.evaluate(PLACEHOLDER_FITS), box.get_attribute("placeholder")
            form.screenshot(path=str(ARTIFACTS / "form-before.png"))

            create_in_form(page, expect)
            output = form.locator(".widget-output")
            check_fits(output)
            form.screenshot(path=str(ARTIFACTS / "form-results.png"))

            # "Add all": the count on the button, the count and the time in the status line.
            page.locator(".widget-text input[placeholder^='search']").fill("overview 003")
            page.locator("button.widget-button", has_text="Add all 10").click()
            expect(form.locator(".widget-html", has_text="Added 10 documents (30 in the box); "
                                "the batch takes up to 30 s at 60 requests per minute.")
                   ).to_have_count(1)
            form.screenshot(path=str(ARTIFACTS / "form-add-all.png"))

            last = page.locator(".jp-Cell").count() - 1
            for n, name in ((last - 1, "table-cell.png"), (last, "table-filtered.png")):
                shown = page.locator(".jp-Cell").nth(n).locator(".jp-Cell-outputArea")
                expect(shown.locator("table.dataframe")).to_have_count(1)
                check_fits(shown)
                page.locator(".jp-Cell").nth(n).screenshot(path=str(ARTIFACTS / name))
        except Exception:
            # What the browser showed when it failed, for the CI log's reader.
            page.screenshot(path=str(ARTIFACTS / "browser-widget-failure.png"))
            raise
        finally:
            browser.close()


def run_notebook(page: Any, lab: str, expect: Any) -> None:
    """Open the notebook, run every cell, wait until the form has connected."""
    page.goto(lab)
    # The toolbar's indicator says "idle" before a kernel exists; the status bar names the
    # kernel only once it is connected.
    page.locator(".jp-StatusBar-Widget", has_text="(ipykernel) | Idle").first.wait_for()
    page.keyboard.press("Control+b")  # hide the file browser: room for the form
    page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    # The form connects on its own; the branch list comes from GET /v1/models.
    expect(page.locator(".widget-html", has_text="Connected to")).to_be_visible()
    expect(page.locator(".widget-html", has_text="Connected: 120 documents")).to_be_visible()
    # The plain cells' table (25 rows, doc-0010 and doc-0020 not eligible): the two cells
    # this test appends, the notebook's last two.
    cells = page.locator(".jp-Cell")
    expect(cells.nth(cells.count() - 2)).to_contain_text("25 rows")


def create_in_form(page: Any, expect: Any) -> None:
    """Pick a branch, enter the ids, Create; wait for the table and check its rows."""
    branch = page.locator(".widget-dropdown select")
    label = branch.locator("option", has_text="feature-b").inner_text()
    branch.select_option(label=label)
    page.locator(".widget-textarea textarea").fill("\n".join(DOCUMENTS))
    page.locator("button.widget-button", has_text="Create drafts").click()

    table = page.locator(".widget-output table.dataframe")
    table.wait_for()
    expect(page.locator(".widget-html", has_text="20 rows: 18 ok, 2 not_eligible")).to_have_count(1)
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(DOCUMENTS))
    for i, doc in enumerate(DOCUMENTS):
        cells = rows.nth(i).locator("td")
        expect(cells.nth(0)).to_have_text(doc)
        expect(cells.nth(3)).to_have_text("not_eligible" if doc.endswith("0") else "ok")
    expect(page.locator(".widget-html", has_text=f"{len(DOCUMENTS)}/")).to_contain_text("ok 18")
    expect(page.locator("button.widget-button", has_text="Create drafts")).to_be_enabled()
