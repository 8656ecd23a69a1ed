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

import omni_nb

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


def _execute(path: Path, **parameters: object) -> nbformat.NotebookNode:
    """Run the notebook top to bottom; ``parameters`` go in a cell after the one tagged
    'parameters', as papermill puts them."""
    nb = nbformat.read(path, as_version=4)
    if parameters:
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        lines = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(lines))
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


def _use_the_sandbox() -> None:
    """Leave the sandbox as some use would: the first 40 documents have had drafts made and
    discarded, and the first 20 have one again."""
    client = omni_nb.OmniClient(rate_limit=None)
    ids = sorted(d["identifier"] for d in client.list_documents())[:40]
    client.close()
    omni_nb.create_drafts(ids, rate_limit=None, ledger="off")
    omni_nb.discard_drafts(ids, rate_limit=None, ledger="off")
    omni_nb.create_drafts(ids[:20], rate_limit=None, ledger="off")


@pytest.mark.slow
def test_every_notebook_runs_twice_in_a_row_against_one_used_omni_nb_sandbox(
    cli_sandbox: None,
) -> None:
    """With the environment `omni-nb sandbox` prints, on a sandbox that has been used (its
    first documents have active and archived drafts), each notebook finds the sandbox's
    documents through the list call and runs top to bottom; then all of them again, on the
    same sandbox and ledger. 04's undo used to take the first documents, whose drafts all
    "existed before the run", and stop on a bare AssertionError. The sandbox has no rate
    limit and the notebooks are told so (``rate_per_minute``): both rounds take seconds."""
    _use_the_sandbox()
    for round_ in ("first", "second"):
        for path in NOTEBOOKS:
            try:
                nb = _execute(path, rate_per_minute=6000)
            except CellExecutionError as exc:
                pytest.fail(f"{path.name}, {round_} run: {exc}")
            _check_outputs(nb)


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
