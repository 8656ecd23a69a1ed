"""`omni-nb budget` and omni_nb.rate_budget: each key's shared budget, by short name, never
the token; --clear drops a key's stale state. Each test runs on a SQLite file and on a real
Redis (``store_path`` is then its address, under the test's own prefix)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import omni_nb
from omni_nb import RateLimit
from omni_nb.budget_url import RedisAddress, is_redis_url
from omni_nb.cli import main
from omni_nb.config import resolve_settings
from omni_nb.ratelimit import Caller, shared_limiter
from omni_nb.ratelimit.redis_store import open_at
from omni_nb.ratelimit.store import key_of

TOKEN = "omni_osk_reportsecret0123456789"
ROOT = "https://acme.omniapp.co"


@pytest.fixture(params=["sqlite", "redis"])
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's setting: a file's path, or a Redis address (the session's server)."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_address"))
    return str(tmp_path / "budget.sqlite3")


#: The callers held() left live, closed when their test ends (their renewals stop before the
#: store, a test's Redis prefix or the session's server, goes).
LIVE: list[Caller] = []


@pytest.fixture(autouse=True)
def _close_callers() -> Iterator[None]:
    yield
    while LIVE:
        LIVE.pop().close()


def held(store_path: str) -> None:
    """A live caller of the key with an explicit limit, one send, a pause and another key's
    state beside it."""
    settings = resolve_settings(ROOT, TOKEN, environ={}, budget=store_path)
    assert settings.budget is not None
    limiter = shared_limiter(settings.api_root, settings.token.fingerprint(), None,
                             budget=settings.budget)
    caller = limiter.caller(RateLimit(5, 2.0))
    caller.acquire(lambda s: None)
    caller.sent()
    caller.pause_for(30.0)
    LIVE.append(caller)
    store = open_at(settings.budget)
    store.update(key_of("https://other.omniapp.co/api", "f" * 16),
                 lambda b: b.sends.append((1e12, 0)))
    store.close()


def test_the_report_names_the_key_its_limit_and_holder_never_the_token(
        store_path: str) -> None:
    held(store_path)
    settings = resolve_settings(ROOT, TOKEN, environ={}, budget=store_path)
    report = omni_nb.rate_budget(settings)
    mine = [k for k in report.keys if k.api_root == settings.api_root]
    assert len(mine) == 1
    key = mine[0]
    assert key.key == settings.token.key_id()
    assert [lease.limit for lease in key.leases] == [RateLimit(5, 2.0)]
    assert key.sends >= 1
    assert key.paused_for is not None
    assert key.paused_for > 20
    text = str(report)
    assert "5 per 2 s held by pid" in text
    assert "paused for" in text
    assert "(not configured here)" in text  # the other key, by digest
    assert TOKEN not in text
    assert TOKEN not in repr(report)
    assert TOKEN[-12:] not in text


def test_clear_drops_the_configured_keys_state_and_leaves_the_others(
        store_path: str) -> None:
    held(store_path)
    settings = resolve_settings(ROOT, TOKEN, environ={}, budget=store_path)
    report = omni_nb.rate_budget(settings, clear=True)
    assert report.cleared == 1
    assert [k.api_root for k in report.keys] == [None]  # only the other key is left
    everything = omni_nb.rate_budget(settings, clear=True, every_key=True)
    assert everything.cleared == 1
    assert everything.keys == ()


def test_a_store_that_does_not_exist_is_reported_never_created(store_path: str) -> None:
    """Nothing shared yet: no key reported, and no store made (a file) or no budget written
    (Redis)."""
    settings = resolve_settings(ROOT, TOKEN, environ={}, budget=store_path)
    report = omni_nb.rate_budget(settings, clear=True)
    assert report.keys == ()
    if is_redis_url(store_path):
        address = RedisAddress.parse(store_path)
        raw = redis.Redis.from_url(address.url)
        # No key's budget written (opening the store sets its instance marker, no more).
        written = list(raw.scan_iter(match=f"{address.prefix}*"))
        assert written == [f"{address.prefix}instance".encode()]
        raw.close()
    else:
        assert "no budget store there yet" in str(report)
        assert not Path(store_path).exists()


def test_budget_off_says_nothing_is_shared() -> None:
    settings = resolve_settings(ROOT, TOKEN, environ={}, budget="off")
    assert "off" in str(omni_nb.rate_budget(settings))


def test_the_command_shows_the_key_and_clears_it(
        store_path: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    held(store_path)
    monkeypatch.setenv("OMNI_API_TOKEN", TOKEN)
    monkeypatch.setenv("OMNI_BASE_URL", ROOT)
    monkeypatch.setenv("OMNI_NB_BUDGET", store_path)
    assert main(["budget"]) == 0
    shown = capsys.readouterr().out
    assert "5 per 2 s held by" in shown
    assert TOKEN not in shown
    assert main(["budget", "--clear"]) == 0
    cleared = capsys.readouterr().out
    assert "cleared the state of 1 key" in cleared
    assert "5 per 2 s" not in cleared


def test_the_command_refuses_to_clear_with_no_key_configured(
        store_path: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    held(store_path)
    for name in ("OMNI_API_TOKEN", "OMNI_API_KEY", "OMNI_API_TOKENS", "OMNI_BASE_URL",
                 "OMNI_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("omni_nb.config.resolve_settings",
                        _no_key, raising=True)
    assert main(["budget", "--budget", store_path, "--clear"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--all-keys" in err
    assert main(["budget", "--budget", store_path]) == 0
    assert capsys.readouterr().out.count("(not configured here)") == 2
    assert main(["budget", "--all-keys"]) == 2  # --all-keys needs --clear: refused
    assert "--clear" in capsys.readouterr().err


def _no_key(*args: object, **kwargs: object) -> object:
    from omni_nb.errors import ConfigError

    raise ConfigError("no API token")
