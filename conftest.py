"""For every test, doctests included: the per-user data directory (where the default ledger
and the default rate-budget store live) is a temporary one, so no example ever writes the
developer's own files (``resolve_settings(..., environ={})`` in an example reads no
``OMNI_NB_*`` variable and would otherwise reach them). ``tests/conftest.py`` isolates the
rest of the settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_data_dir(monkeypatch: pytest.MonkeyPatch,
                      tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
