"""The public surface: exported names, and a light ``import omni_nb``.

Lint and types (ruff, mypy --strict) run as their own step in ``.ci/run``, before the tests:
they judge the code, not its behaviour, and fail in seconds instead of after the suite.
"""

from __future__ import annotations

import subprocess
import sys

import omni_nb


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
