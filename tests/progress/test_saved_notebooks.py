"""Notebooks executed by a machine, then saved, stay clean: a throttled batch through the magic,
through the Python API and in the background leaves a few small outputs, no carriage-return
redraws, and no widget view without its static form (what a saved notebook, GitHub and
nbviewer show).

Two executions of one notebook with nbclient: headless, as nbclient, papermill and
``jupyter nbconvert --execute`` run it (the kernel is told its front end cannot prompt), and
as an interactive front end would (JupyterLab says it can), whose widget bars must end as
static summaries in the saved file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

WIDGET = "application/vnd.jupyter.widget-view+json"

#: A throttled batch (12 documents at 6 a second: the rate budget holds sending back) three
#: ways: the magic, the Python API with no progress=, and in the background.
CELLS = [
    "import os\n"
    "import omni_nb\n"
    "sb = omni_nb.sandbox.serve(documents=60, rate_limit=None)\n"
    "omni_nb.login(sb.token)\n"
    "os.environ['OMNI_BASE_URL'] = sb.base_url\n"
    "os.environ['OMNI_NB_LEDGER'] = 'off'\n"
    "rate = omni_nb.RateLimit(6, per=1)\n"
    "docs = [f'doc-{i:04d}' for i in range(1, 60) if i % 10]  # all eligible\n"
    "docs_magic = docs[:12]\n"
    "%load_ext omni_nb",
    "%omni_draft --from docs_magic --rate 6/1 -o via_magic",
    "docs_api = docs[12:24]\n"
    "via_api = omni_nb.create_drafts(docs_api, rate_limit=rate)\n"
    "via_api.summary()",
    "run = omni_nb.create_drafts(docs[24:36], rate_limit=rate, background=True)\nrun",
    "run.wait(120).summary()",
]


def _execute(path: Path, interactive: bool) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(path)}})
    with client.setup_kernel():
        assert client.kc is not None
        # JupyterLab's execute requests allow stdin; nbclient's do not (that is how the
        # kernel tells a person watching from a machine running the notebook).
        client.kc.allow_stdin = interactive
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    saved = path / ("interactive.ipynb" if interactive else "headless.ipynb")
    nbformat.write(nb, saved)
    return nbformat.read(saved, as_version=4)


def _outputs(nb: nbformat.NotebookNode) -> list[list[dict[str, Any]]]:
    return [list(cell.get("outputs", [])) for cell in nb.cells]


@pytest.fixture
def kernel_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The kernel inherits an isolated environment and a throwaway IPython profile."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return tmp_path


def _assert_clean(nb: nbformat.NotebookNode) -> None:
    outputs = _outputs(nb)
    flat = [o for cell in outputs for o in cell]
    assert [o for o in flat if o["output_type"] == "error"] == []
    for cell in outputs:
        streams = [o for o in cell if o["output_type"] == "stream"]
        assert len(streams) <= 3, streams  # a few lines, not one output per redraw
        assert all("\r" not in o["text"] for o in streams)
        assert [o for o in streams if o["name"] == "stderr"] == []  # nothing shown as an error
    # No widget view left: each display a batch made ends as its static summary.
    assert [o for o in flat if WIDGET in o.get("data", {})] == []
    size = len(json.dumps(outputs))
    assert size < 40_000, size  # the background run's table is most of it


def test_headless_execution_leaves_few_small_outputs_and_no_widget(kernel_env: Path) -> None:
    """nbclient (papermill, nbconvert --execute): whole lines on stderr for the magic and
    the API, the background handle as a static summary updated to how the run ended."""
    nb = _execute(kernel_env, interactive=False)
    _assert_clean(nb)
    outputs = _outputs(nb)
    magic, api, background = outputs[1], outputs[2], outputs[3]
    assert "12/12" in "".join(o.get("text", "") for o in magic)
    assert "12/12" in "".join(o.get("text", "") for o in api)
    (view,) = background
    assert view["data"]["text/plain"].startswith("done: 12/12")
    assert "<b>12 rows</b>" in view["data"]["text/html"]
    assert nb.metadata.get("widgets") is None  # no widget was ever built


def test_interactive_execution_saves_static_summaries_not_widgets(kernel_env: Path) -> None:
    """As JupyterLab runs it (widgets render): every bar was a live widget while its batch
    ran, and the saved notebook holds its static summary (HTML and text) instead."""
    nb = _execute(kernel_env, interactive=True)
    _assert_clean(nb)
    outputs = _outputs(nb)
    for cell in (outputs[1], outputs[2]):  # the magic's and the API's bar
        (bar,) = [o for o in cell if o["output_type"] == "display_data"]
        assert bar["data"]["text/plain"].startswith("12/12")
        assert "ok 12" in bar["data"]["text/html"]
        assert [o for o in cell if o.get("name") == "stderr"] == []  # no text bar
    (view,) = outputs[3]
    assert view["data"]["text/plain"].startswith("done: 12/12")
