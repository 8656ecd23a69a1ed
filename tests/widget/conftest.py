"""Fixtures of the widget tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omni_nb.widget import DraftForm


@pytest.fixture
def forms() -> Iterator[list[DraftForm]]:
    """Forms made in a test are stopped and closed after it."""
    made: list[DraftForm] = []
    yield made
    for form in made:
        form.close()
