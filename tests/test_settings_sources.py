"""Settings resolved once: the ledger's and budget's locations with the API root and keys,
where each value came from, and the code downstream taking them from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omni_nb import OmniClient, login
from omni_nb.config import (
    Settings,
    budget_path,
    default_ledger_path,
    describe_sources,
    resolve_api_root,
    resolve_ledger,
    resolve_settings,
)
from omni_nb.ledger import Ledger, open_ledger
from omni_nb.ratelimit import RateLimit, pause_key, shared_limiter

TOKEN = "omni_osk_SOURCESTEST_0123456789"
ROOT = "https://acme.omniapp.co"
#: Every word a source may be: argument names, variable names, login(), default.
VOCABULARY = {"base_url=", "instance=", "token=", "tokens=", "ledger=", "budget=", "login()",
              "default", "OMNI_BASE_URL", "OMNI_INSTANCE", "OMNI_API_TOKENS", "OMNI_API_TOKEN",
              "OMNI_API_KEY", "OMNI_NB_LEDGER", "OMNI_NB_BUDGET"}


@pytest.mark.parametrize(
    ("kwargs", "env", "login_root", "source"),
    [
        ({"base_url": ROOT}, {"OMNI_BASE_URL": "https://x.omniapp.co"}, True, "base_url="),
        ({"instance": "acme"}, {"OMNI_INSTANCE": "beta"}, True, "instance="),
        ({}, {"OMNI_BASE_URL": "https://x.omniapp.co"}, True, "login()"),
        ({}, {"OMNI_BASE_URL": "https://x.omniapp.co", "OMNI_INSTANCE": "b"}, False,
         "OMNI_BASE_URL"),
        ({}, {"OMNI_INSTANCE": "beta"}, False, "OMNI_INSTANCE"),
    ],
    ids=["argument-base_url", "argument-instance", "login", "env-base-url", "env-instance"],
)
def test_api_root_source_is_reported(
    kwargs: dict[str, Any], env: dict[str, str], login_root: bool, source: str
) -> None:
    """sources['api_root'] names the argument, login() or the variable that gave the root."""
    if login_root:
        login(TOKEN, instance="kept", check=False)
    settings = resolve_settings(token=TOKEN, environ=env, **kwargs)
    assert settings.sources["api_root"] == source
    assert describe_sources(token=TOKEN, environ=env, **kwargs)["api_root"] == source
    assert resolve_api_root(environ=env, **kwargs) == settings.api_root


@pytest.mark.parametrize(
    ("kwargs", "env", "source", "count"),
    [
        ({"token": TOKEN}, {"OMNI_API_TOKEN": "omni_osk_env"}, "token=", 1),
        ({"tokens": [TOKEN, "omni_osk_b"]}, {"OMNI_API_TOKEN": "omni_osk_env"}, "tokens=", 2),
        ({}, {"OMNI_API_TOKENS": f"{TOKEN},omni_osk_b", "OMNI_API_TOKEN": "omni_osk_e"},
         "OMNI_API_TOKENS", 2),
        ({}, {"OMNI_API_TOKEN": TOKEN, "OMNI_API_KEY": "omni_osk_k"}, "OMNI_API_TOKEN", 1),
        ({}, {"OMNI_API_KEY": TOKEN}, "OMNI_API_KEY", 1),
    ],
    ids=["argument-token", "argument-tokens", "env-pool", "env-token", "env-key"],
)
def test_token_source_is_reported(
    kwargs: dict[str, Any], env: dict[str, str], source: str, count: int
) -> None:
    """sources['token'] and ['tokens'] name the argument or variable that gave the key(s)."""
    settings = resolve_settings(ROOT, environ=env, **kwargs)
    assert settings.token.get_secret_value() == TOKEN
    assert len(settings.tokens) == count
    assert (settings.sources["token"], settings.sources["tokens"]) == (source, source)
    described = describe_sources(ROOT, environ=env, **kwargs)
    assert (described["token"], described["tokens"]) == (source, source)


def test_token_kept_by_login_is_reported_as_login() -> None:
    """A key kept by login() wins over the environment and is reported as login()."""
    login(tokens=[TOKEN, "omni_osk_b"], check=False)
    settings = resolve_settings(ROOT, environ={"OMNI_API_TOKEN": "omni_osk_env"})
    assert settings.token.get_secret_value() == TOKEN
    assert settings.sources["token"] == settings.sources["tokens"] == "login()"


@pytest.mark.parametrize(
    ("ledger", "env", "expected", "source"),
    [
        ("{tmp}/arg.sqlite3", {"OMNI_NB_LEDGER": "{tmp}/env.sqlite3"}, "{tmp}/arg.sqlite3",
         "ledger="),
        ("off", {"OMNI_NB_LEDGER": "{tmp}/env.sqlite3"}, None, "ledger="),
        ("OFF", {}, None, "ledger="),
        (None, {"OMNI_NB_LEDGER": "{tmp}/env.sqlite3"}, "{tmp}/env.sqlite3", "OMNI_NB_LEDGER"),
        (None, {"OMNI_NB_LEDGER": " off "}, None, "OMNI_NB_LEDGER"),
        (None, {}, "default", "default"),
        (None, {"OMNI_NB_LEDGER": "  "}, "default", "default"),
    ],
    ids=["argument", "argument-off", "argument-OFF", "env", "env-off", "default",
         "env-blank"],
)
def test_ledger_location_and_source(
    ledger: str | None, env: dict[str, str], expected: str | None, source: str,
    tmp_path: Path,
) -> None:
    """The ledger: ledger= (off: memory only, None), else OMNI_NB_LEDGER, else the default."""
    env = {name: value.format(tmp=tmp_path) for name, value in env.items()}
    given = None if ledger is None else ledger.format(tmp=tmp_path)
    settings = resolve_settings(ROOT, TOKEN, ledger=given, environ=env)
    want = (None if expected is None else default_ledger_path() if expected == "default"
            else Path(expected.format(tmp=tmp_path)))
    assert settings.ledger == want
    assert settings.sources["ledger"] == source
    assert describe_sources(ledger=given, environ=env)["ledger"] == source
    assert resolve_ledger(given, environ=env) == want


def test_a_ledger_object_is_kept_as_it_is() -> None:
    """ledger=Ledger(...) is carried by the settings and opened as that very object."""
    own = Ledger(None)
    settings = resolve_settings(ROOT, TOKEN, ledger=own, environ={"OMNI_NB_LEDGER": "off"})
    assert settings.ledger is own
    assert settings.sources["ledger"] == "ledger="
    assert describe_sources(ledger=own, environ={})["ledger"] == "ledger="
    assert open_ledger(settings) is own


@pytest.mark.parametrize(
    ("budget", "env", "expected", "source"),
    [
        ("{tmp}/arg.sqlite3", {"OMNI_NB_BUDGET": "{tmp}/env.sqlite3"}, "{tmp}/arg.sqlite3",
         "budget="),
        ("off", {"OMNI_NB_BUDGET": "{tmp}/env.sqlite3"}, None, "budget="),
        (None, {"OMNI_NB_BUDGET": "{tmp}/env.sqlite3"}, "{tmp}/env.sqlite3", "OMNI_NB_BUDGET"),
        (None, {"OMNI_NB_BUDGET": "off"}, None, "OMNI_NB_BUDGET"),
        (None, {"OMNI_NB_BUDGET": "No"}, None, "OMNI_NB_BUDGET"),
        (None, {}, "default", "default"),
    ],
    ids=["argument", "argument-off", "env", "env-off", "env-no", "default"],
)
def test_budget_location_and_source(
    budget: str | None, env: dict[str, str], expected: str | None, source: str,
    tmp_path: Path,
) -> None:
    """The budget store: budget= (off: per process, None), else OMNI_NB_BUDGET, else the
    per-user default; budget_path() agrees for what the environment says."""
    env = {name: value.format(tmp=tmp_path) for name, value in env.items()}
    given = None if budget is None else budget.format(tmp=tmp_path)
    settings = resolve_settings(ROOT, TOKEN, budget=given, environ=env)
    want = (None if expected is None
            else default_ledger_path().with_name("budget.sqlite3") if expected == "default"
            else Path(expected.format(tmp=tmp_path)))
    assert settings.budget == want
    assert settings.sources["budget"] == source
    assert describe_sources(budget=given, environ=env)["budget"] == source
    if budget is None:
        assert budget_path(env) == want


def test_describe_sources_says_none_for_what_is_given_nowhere_and_never_raises() -> None:
    """Nothing given: None for the root and keys, the defaults for the locations; a malformed
    argument is still its source (resolve_settings is the one that refuses it)."""
    assert describe_sources(environ={}) == {
        "api_root": None, "token": None, "tokens": None, "ledger": "default",
        "budget": "default"}
    bad = describe_sources("ftp://user:pw@x", "has space", instance="also", environ={})
    assert (bad["api_root"], bad["token"]) == ("base_url=", "token=")
    both = describe_sources(token=TOKEN, tokens=[TOKEN], environ={})
    assert both["token"] == "tokens="


def test_no_token_in_sources_repr_or_str() -> None:
    """Whatever gave the keys, no key appears in sources, repr, str or the description."""
    pool = [TOKEN, "omni_osk_OTHERKEY_987"]
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"token": TOKEN}, {}), ({"tokens": pool}, {}),
        ({}, {"OMNI_API_TOKENS": ",".join(pool)}), ({}, {"OMNI_API_TOKEN": TOKEN}),
        ({}, {"OMNI_API_KEY": TOKEN})]
    for kwargs, env in cases:
        settings = resolve_settings(ROOT, environ=env, **kwargs)
        one = settings.for_key(settings.tokens[-1])
        shown = [repr(settings), str(settings), repr(one), repr(dict(settings.sources)),
                 repr(describe_sources(ROOT, environ=env, **kwargs))]
        for key in pool:
            assert not any(key in text for text in shown), kwargs or env
        assert set(settings.sources.values()) <= VOCABULARY


class CountingEnviron(dict[str, str]):
    """An injected environment that counts each variable's reads."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.reads: dict[str, int] = {}

    def get(self, key: str, default: Any = None) -> Any:
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.reads[key] = self.reads.get(key, 0) + 1
        return super().__getitem__(key)


def test_the_environment_is_read_once_per_resolve(tmp_path: Path) -> None:
    """One resolve reads each variable once, from environ= only (os.environ, set by the
    test's fixture to other places, is not consulted)."""
    env = CountingEnviron({"OMNI_INSTANCE": "acme", "OMNI_API_TOKEN": TOKEN,
                           "OMNI_NB_LEDGER": str(tmp_path / "l.sqlite3"),
                           "OMNI_NB_BUDGET": str(tmp_path / "b.sqlite3")})
    settings = resolve_settings(environ=env)
    assert env.reads
    assert set(env.reads.values()) == {1}
    assert settings.ledger == tmp_path / "l.sqlite3"
    assert settings.budget == tmp_path / "b.sqlite3"


def test_code_given_settings_reads_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client built with settings= and open_ledger(settings) use the resolved locations,
    whatever the environment says afterwards."""
    settings = resolve_settings(ROOT, TOKEN, ledger=tmp_path / "mine.sqlite3",
                                budget=tmp_path / "budget.sqlite3", environ={})
    monkeypatch.setenv("OMNI_NB_LEDGER", "off")
    monkeypatch.setenv("OMNI_NB_BUDGET", "off")
    with OmniClient(settings=settings, rate_limit=RateLimit()) as client:
        assert client.limiter.shared
    assert (tmp_path / "budget.sqlite3").exists()
    assert open_ledger(settings).path == tmp_path / "mine.sqlite3"


def test_a_client_follows_a_budget_of_off_in_its_settings() -> None:
    """budget='off' gives the client a per-process budget although OMNI_NB_BUDGET (the
    fixture's temporary store) names a shared one."""
    shared = resolve_settings(ROOT, "omni_osk_budget_on")
    off = resolve_settings(ROOT, "omni_osk_budget_off", budget="off")
    assert off.budget is None
    assert off.sources["budget"] == "budget="
    with OmniClient(settings=off) as client:
        assert not client.limiter.shared
    with OmniClient(settings=shared) as client:
        assert client.limiter.shared


def test_off_in_the_settings_means_memory_while_none_means_the_configured_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_ledger(settings) with ledger='off' is the memory ledger; open_ledger(None),
    without settings, still resolves OMNI_NB_LEDGER from the environment, at that call."""
    settings = resolve_settings(ROOT, TOKEN, ledger="off")
    assert settings.ledger is None
    assert open_ledger(settings).path is None
    monkeypatch.setenv("OMNI_NB_LEDGER", str(tmp_path / "configured.sqlite3"))
    assert open_ledger(None).path == tmp_path / "configured.sqlite3"
    assert open_ledger().path == tmp_path / "configured.sqlite3"


def test_for_key_keeps_locations_and_sources(tmp_path: Path) -> None:
    """Settings.for_key keeps the ledger, the budget and the sources."""
    settings = resolve_settings(ROOT, tokens=[TOKEN, "omni_osk_b"], ledger="off",
                                environ={"OMNI_NB_BUDGET": str(tmp_path / "b.sqlite3")})
    one = settings.for_key(settings.tokens[1])
    assert (one.ledger, one.budget) == (None, tmp_path / "b.sqlite3")
    assert dict(one.sources) == dict(settings.sources)
    assert one.token == settings.tokens[1]


def test_settings_built_directly_take_locations_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings(api_root, token) built by hand: ledger and budget from the environment (as
    before they were resolved), no sources; sources given cannot be changed afterwards."""
    monkeypatch.setenv("OMNI_NB_LEDGER", "off")
    monkeypatch.setenv("OMNI_NB_BUDGET", str(tmp_path / "b.sqlite3"))
    token = resolve_settings(ROOT, TOKEN, environ={}).token
    settings = Settings(api_root="https://acme.omniapp.co/api", token=token)
    assert (settings.ledger, settings.budget) == (None, tmp_path / "b.sqlite3")
    assert dict(settings.sources) == {}
    with pytest.raises(TypeError):
        settings.sources["ledger"] = "x"  # type: ignore[index]


def test_a_key_gets_one_limiter_per_budget_store_and_a_pause_holds_them_all(
    tmp_path: Path,
) -> None:
    """Settings naming another store for a key get another limiter; shared_limiter without
    budget= is the environment's store's; a 429's pause holds every limiter of the key."""
    root, fingerprint = "https://pause.omniapp.co/api", "sources-test"
    local = shared_limiter(root, fingerprint, RateLimit(), budget=None)
    stored = shared_limiter(root, fingerprint, RateLimit(), budget=tmp_path / "b.sqlite3")
    assert local is not stored
    assert (local.shared, stored.shared) == (False, True)
    assert shared_limiter(root, fingerprint, RateLimit()) is shared_limiter(
        root, fingerprint, RateLimit(), budget=budget_path())
    pause_key(root, fingerprint, 600.0)
    assert local.next_send_in() > 500
    assert stored.next_send_in() > 500
