"""The codebase stays typed and linted: mypy --strict and ruff run as part of the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import omni_nb

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / "pyproject.toml").exists(),
                    reason="needs the source tree")
def test_mypy_strict_is_clean() -> None:
    """mypy (strict, configured in pyproject) finds no error in omni_nb/."""
    out = _run("mypy")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_is_clean() -> None:
    """ruff finds nothing in the package, tests, benchmarks and notebooks."""
    out = _run("ruff", "check", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_public_names_are_exported_and_sorted() -> None:
    """__all__ is sorted, and every name in it resolves."""
    assert omni_nb.__all__ == sorted(omni_nb.__all__)
    for name in omni_nb.__all__:
        assert getattr(omni_nb, name) is not None


def test_import_is_light() -> None:
    """import omni_nb pulls in neither pandas, httpx nor ipywidgets."""
    code = ("import sys, omni_nb; "
            "print(sorted(m for m in ('pandas', 'httpx', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"
