"""Every notebook in notebooks/ runs top to bottom offline, and is committed clean."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
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


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, offline_env: Path) -> None:
    """The notebook executes without error against its sandbox; no output shows a token."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert not _TOKEN.search(outputs), "a token appeared in a notebook output"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []


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
