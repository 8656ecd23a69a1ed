"""The form's connection line names a Redis budget store masked, and nothing else changes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import ipywidgets
import pytest

from omni_nb import sandbox
from omni_nb.widget import DraftForm
from omni_nb.widget.connection import Connection

PASSWORD = "s3cret-form-pw"
WAIT = 20.0  # seconds; a generous bound that only a hung test reaches


def test_connection_line_names_a_redis_budget_masked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_NB_BUDGET", f"redis://team:{PASSWORD}@cache.internal:6379/0")
    line = Connection("https://acme.omniapp.co", "t").describe()
    assert line.endswith(" · budget shared on redis://team:***@cache.internal:6379/0")
    assert PASSWORD not in line


@pytest.mark.parametrize("budget", ["path", "off", None])
def test_connection_line_is_unchanged_for_a_path_or_off(
        budget: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A user who never sets OMNI_NB_BUDGET (or sets a path or off) sees today's line."""
    if budget is None:
        monkeypatch.delenv("OMNI_NB_BUDGET", raising=False)
    else:
        monkeypatch.setenv("OMNI_NB_BUDGET", str(tmp_path / "b.sqlite3") if budget == "path"
                           else budget)
    line = Connection("https://acme.omniapp.co", "t").describe()
    assert line == ("Connection: https://acme.omniapp.co/api (given to DraftForm) · "
                    "token given to DraftForm")


def test_a_malformed_redis_budget_leaves_the_line_as_it_was(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_NB_BUDGET", f"redis://team:{PASSWORD}@cache:port/0")
    line = Connection("https://acme.omniapp.co", "t").describe()
    assert "budget" not in line
    assert PASSWORD not in line


def test_form_state_and_repr_never_hold_the_redis_password(
        sb: sandbox.Sandbox, forms: list[DraftForm], monkeypatch: pytest.MonkeyPatch) -> None:
    """The form shows the masked address; no widget state, repr or attribute holds the
    password, after a create too (Redis is away here: the warning is masked as well)."""
    monkeypatch.setenv("OMNI_NB_BUDGET", f"redis://team:{PASSWORD}@127.0.0.1:1/0")
    # Around the whole form: the connection check opens the store (in the form's thread).
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        form = DraftForm(sb.base_url, sb.token, ledger="off")
        forms.append(form)
        assert form.wait(WAIT)
        form.documents.value = "doc-0001"
        form.submit(wait=True)
    assert any("redis://team:***@" in str(w.message) for w in seen)
    assert form.result is not None
    assert list(form.result["status"]) == ["ok"]
    state = json.dumps(ipywidgets.Widget.get_manager_state(drop_defaults=False), default=str)
    assert "budget shared on redis://team:***@127.0.0.1:1/0" in state
    shown = state + repr(form) + str(vars(form)) + "".join(str(w.message) for w in seen)
    assert PASSWORD not in shown
    assert sb.token not in shown
