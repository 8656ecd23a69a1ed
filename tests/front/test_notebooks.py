"""Every notebook in notebooks/ runs top to bottom offline, and is committed clean."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
_TOKEN = re.compile(r"omni_osk_\w+")


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The kernel inherits the isolated environment (no OMNI_* variable, so each notebook
    starts its embedded sandbox; a throwaway ledger) and gets a throwaway IPython profile."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return tmp_path


def test_there_are_notebooks() -> None:
    """The quickstart and batch-analysis notebooks exist."""
    names = {p.name for p in NOTEBOOKS}
    assert {"01-quickstart.ipynb", "02-batch-analysis.ipynb"} <= names


@pytest.fixture
def cli_sandbox(offline_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`omni-nb sandbox` in its own process, and the environment it tells users to export."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "omni_nb.cli", "sandbox", "--port", "0", "--rate-limit", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        exported: dict[str, str] = {}
        for line in proc.stdout:
            if line.strip().startswith("export "):
                name, _, value = line.strip()[len("export "):].partition("=")
                exported[name] = value
            if "OMNI_API_TOKEN" in exported:
                break
        assert set(exported) == {"OMNI_BASE_URL", "OMNI_API_TOKEN"}, exported
        for name, value in exported.items():
            monkeypatch.setenv(name, value)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _execute(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    return nb


def _check_outputs(nb: nbformat.NotebookNode) -> None:
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert not _TOKEN.search(outputs), "a token appeared in a notebook output"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, offline_env: Path) -> None:
    """With nothing configured the notebook runs on its embedded sandbox; no token shows."""
    _check_outputs(_execute(path))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_where_omni_nb_sandbox_points(path: Path, cli_sandbox: None) -> None:
    """With the environment `omni-nb sandbox` prints, the notebook finds that sandbox's
    documents through the list call and runs top to bottom."""
    _check_outputs(_execute(path))


@pytest.mark.slow
def test_notebook_pointed_elsewhere_stops_with_one_line(
    offline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pointed at something that is not a sandbox, with no document ids, the notebook stops
    right after its parameters with one line saying what to set."""
    monkeypatch.setenv("OMNI_BASE_URL", "http://127.0.0.1:9/api")  # nothing listens there
    monkeypatch.setenv("OMNI_API_TOKEN", "omni_osk_not_used")
    with pytest.raises(CellExecutionError) as info:
        _execute(NOTEBOOKS[0])
    text = str(info.value)
    assert "ConfigError: This notebook points at an Omni instance: set document_ids" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_is_clean(path: Path) -> None:
    """A committed notebook has no outputs and no execution counts."""
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert dirty == [], f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_first_code_cell_is_tagged_parameters(path: Path) -> None:
    """The first code cell is tagged 'parameters' (papermill-compatible)."""
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])
