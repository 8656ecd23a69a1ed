"""The widget notebook in a real browser: JupyterLab driven by Playwright in Debian's Chromium.

Needs ``apt-get install chromium`` (``/usr/bin/chromium``) and ``pip install jupyterlab
playwright`` (the ``browser`` extra). Playwright's own browser download is never used.
The test skips, saying which, only when one of them is missing.

The notebook is copied to a temporary directory first, so the repository's copy never gets
outputs; the screenshot goes to ``artifacts/browser-widget.png``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "03-widget-form.ipynb"
SCREENSHOT = REPO / "artifacts" / "browser-widget.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
DOCUMENTS = ["doc-0001", "doc-0002", "doc-0003", "doc-0004", "doc-0005"]


def missing_requirement() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return "Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
    for module in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'omni-nb[browser]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on a free loopback port serving a copy of the notebook; yields
    the notebook's URL (with the server token)."""
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news or update toasts over the form (and no network calls for them).
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(
        OMNI_NB_LEDGER=str(tmp_path / "ledger.sqlite3"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    port, token = free_port(), secrets.token_hex(16)
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ip", "127.0.0.1", "--port", str(port), f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n"
                                + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(0.2)  # polling a subprocess that is starting up
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={token}"
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_widget_notebook_creates_drafts_in_jupyterlab(lab: str) -> None:
    """In JupyterLab + Chromium, running the notebook shows the form; picking a branch,
    entering ids and clicking Create shows a results table of ok rows."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1250})
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            page.goto(lab)
            # The toolbar's indicator says "idle" before a kernel exists; the status bar
            # names the kernel only once it is connected.
            page.locator(".jp-StatusBar-Widget", has_text="(ipykernel) | Idle").first.wait_for()
            page.keyboard.press("Control+b")  # hide the file browser: room for the form

            page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

            # The form connects on its own; the branch list comes from GET /v1/models.
            branch = page.locator(".widget-dropdown select")
            expect(branch.locator("option", has_text="feature-b")).to_have_count(1)
            expect(page.locator(".widget-html", has_text="Connected to")).to_be_visible()
            label = branch.locator("option", has_text="feature-b").inner_text()
            branch.select_option(label=label)
            page.locator(".widget-textarea textarea").fill("\n".join(DOCUMENTS))
            page.locator("button.widget-button", has_text="Create drafts").click()

            table = page.locator(".widget-output table.dataframe")
            table.wait_for()
            output = page.locator(".widget-output")
            expect(output).to_contain_text(f"{len(DOCUMENTS)} rows: {len(DOCUMENTS)} ok")
            rows = table.locator("tbody tr")
            expect(rows).to_have_count(len(DOCUMENTS))
            for i, doc in enumerate(DOCUMENTS):
                cells = rows.nth(i).locator("td")
                expect(cells.nth(0)).to_have_text(doc)
                expect(cells.nth(3)).to_have_text("ok")
            expect(page.locator(".widget-label", has_text=f"{len(DOCUMENTS)}/")).to_contain_text(
                f"ok {len(DOCUMENTS)}"
            )
            expect(page.locator("button.widget-button", has_text="Create drafts")).to_be_enabled()

            page.locator(".widget-output").scroll_into_view_if_needed()
            page.locator(".jp-Cell").nth(2).scroll_into_view_if_needed()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        except Exception:
            # What the browser showed when it failed, for the CI log's reader.
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT.with_name("browser-widget-failure.png")))
            raise
        finally:
            browser.close()
