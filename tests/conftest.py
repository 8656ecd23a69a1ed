"""Shared fixtures: a sandbox per test, a private ledger, no user settings leaking in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from omni_nb import logout, sandbox


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reads the developer's Omni settings or writes the real ledger."""
    for name in ("OMNI_BASE_URL", "OMNI_INSTANCE", "OMNI_PLAYGROUND", "OMNI_API_TOKEN",
                 "OMNI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMNI_NB_LEDGER", str(tmp_path / "ledger.sqlite3"))
    # The rate budget every process of a key shares: private to the test, and outside
    # tmp_path (tests check what a batch wrote there).
    budget = tmp_path_factory.mktemp("budget") / "budget.sqlite3"
    monkeypatch.setenv("OMNI_NB_BUDGET", str(budget))
    logout()
    yield
    logout()


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    """A fresh sandbox with no rate limit and no faults."""
    with sandbox.serve(rate_limit=None) as server:
        yield server


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock() -> FakeClock:
    """An injected clock: retries and rate-limit waits take no real time."""
    return FakeClock()
