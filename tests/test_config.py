"""Settings: argument > login() > environment, and what is refused."""

from __future__ import annotations

import pickle

import pytest

import omni_nb
from omni_nb import ConfigError, login, logout, sandbox
from omni_nb.config import Secret, resolve_settings

TOKEN = "omni_osk_CONFIGTEST_0123456789"


@pytest.mark.parametrize(
    ("kwargs", "env", "root"),
    [
        ({"base_url": "https://acme.omniapp.co"}, {}, "https://acme.omniapp.co/api"),
        ({"base_url": "https://acme.omniapp.co/api/"}, {}, "https://acme.omniapp.co/api"),
        ({"base_url": "HTTPS://Acme.OmniApp.co:443/api"}, {}, "https://acme.omniapp.co:443/api"),
        ({"instance": "acme"}, {}, "https://acme.omniapp.co/api"),
        ({"instance": "acme", "playground": True}, {},
         "https://acme.playground.exploreomni.dev/api"),
        ({}, {"OMNI_BASE_URL": "https://x.omniapp.co"}, "https://x.omniapp.co/api"),
        ({}, {"OMNI_INSTANCE": "beta"}, "https://beta.omniapp.co/api"),
        ({}, {"OMNI_INSTANCE": "beta", "OMNI_PLAYGROUND": "1"},
         "https://beta.playground.exploreomni.dev/api"),
        ({}, {"OMNI_BASE_URL": "https://x.omniapp.co", "OMNI_INSTANCE": "beta"},
         "https://x.omniapp.co/api"),
        ({"instance": "arg"}, {"OMNI_BASE_URL": "https://x.omniapp.co"},
         "https://arg.omniapp.co/api"),
        ({"base_url": "http://127.0.0.1:8787"}, {}, "http://127.0.0.1:8787/api"),
        ({"base_url": "http://localhost:1/api"}, {}, "http://localhost:1/api"),
        ({"base_url": "http://[::1]:9/api"}, {}, "http://[::1]:9/api"),
    ],
)
def test_api_root_resolution(kwargs: dict[str, object], env: dict[str, str], root: str) -> None:
    """The API root comes from the argument, else OMNI_BASE_URL, else OMNI_INSTANCE."""
    s = resolve_settings(token=TOKEN, environ=env, **kwargs)  # type: ignore[arg-type]
    assert s.api_root == root


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"OMNI_API_TOKEN": "a"}, "a"), ({"OMNI_API_KEY": "b"}, "b"),
     ({"OMNI_API_TOKEN": "a", "OMNI_API_KEY": "b"}, "a")],
)
def test_token_from_environment(env: dict[str, str], expected: str) -> None:
    """OMNI_API_TOKEN wins over OMNI_API_KEY."""
    s = resolve_settings(instance="acme", environ=env)
    assert s.token.get_secret_value() == expected


def test_argument_token_wins_and_login_beats_environment() -> None:
    """An explicit token wins; login() wins over the environment."""
    env = {"OMNI_API_TOKEN": "from-env", "OMNI_INSTANCE": "acme"}
    assert resolve_settings(token="arg", environ=env).token.get_secret_value() == "arg"
    login("from-login", instance="other", check=False)
    s = resolve_settings(environ=env)
    assert s.token.get_secret_value() == "from-login"
    assert s.api_root == "https://other.omniapp.co/api"
    logout()
    assert resolve_settings(environ=env).token.get_secret_value() == "from-env"


def test_missing_root_names_every_way() -> None:
    """No root: the error names the argument, login and both variables."""
    with pytest.raises(ConfigError) as info:
        resolve_settings(token=TOKEN, environ={})
    for way in ("base_url", "instance", "OMNI_BASE_URL", "OMNI_INSTANCE", "login"):
        assert way in str(info.value)


def test_missing_token_names_every_way() -> None:
    """No token: the error names token=, login(), OMNI_API_TOKEN and OMNI_API_KEY."""
    with pytest.raises(ConfigError) as info:
        resolve_settings(instance="acme", environ={})
    for way in ("token=", "login()", "OMNI_API_TOKEN", "OMNI_API_KEY"):
        assert way in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"base_url": "http://acme.omniapp.co/api"}, "plain http"),
        ({"base_url": "http://10.0.0.5/api"}, "plain http"),
        ({"base_url": "ftp://acme.omniapp.co"}, "not an http(s) URL"),
        ({"base_url": "acme.omniapp.co"}, "not an http(s) URL"),
        ({"base_url": "https://user:pw@acme.omniapp.co"}, "credentials"),
        ({"base_url": "https://acme.omniapp.co/api?x=1"}, "query"),
        ({"base_url": "https://acme.omniapp.co/a pi"}, "spaces"),
        ({"base_url": "https://acme.omniapp.co:99999"}, "not a valid URL"),
        ({"instance": "https://acme.omniapp.co"}, "pass it as base_url"),
        ({"instance": "acme.omniapp.co"}, "pass it as base_url"),
        ({"instance": "user:pw@acme"}, "not an instance name"),
        ({"instance": "-acme"}, "not an instance name"),
        ({"instance": "a" * 64}, "not an instance name"),
        ({"instance": ""}, "not an instance name"),
        ({"instance": "acme", "base_url": "https://x.omniapp.co"}, "not both"),
    ],
)
def test_unsafe_or_malformed_roots_are_refused(kwargs: dict[str, object], fragment: str) -> None:
    """http to non-loopback, credentials, queries and non-DNS-label instances raise."""
    with pytest.raises(ConfigError, match=None) as info:
        resolve_settings(token=TOKEN, environ={}, **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("bad", ["", "   ", "omni osk", "tok\nen", "tök"])
def test_malformed_tokens_are_refused_without_echo(bad: str) -> None:
    """Empty, spaced, control or non-ASCII tokens raise, and the message never quotes them."""
    with pytest.raises(ConfigError) as info:
        resolve_settings(instance="acme", token=bad, environ={})
    if bad.strip():
        assert bad.strip() not in str(info.value)


def test_token_never_shows() -> None:
    """repr, str, f-strings of settings and secrets hide the token; pickling refuses."""
    s = resolve_settings(instance="acme", token=TOKEN, environ={})
    for text in (repr(s), str(s), f"{s.token}", repr(s.token), str(s.token), f"{s}"):
        assert TOKEN not in text
    with pytest.raises(TypeError):
        pickle.dumps(Secret(TOKEN))


def test_login_checks_the_token_and_says_where(
    sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """login() with a good token prints the API root it connected to (never the token)."""
    omni_nb.login(sb.token, base_url=sb.base_url)
    out = capsys.readouterr().out
    assert f"Logged in to {sb.base_url}: the token is accepted" in out
    assert sb.token not in out
    assert [r.method for r in sb.requests()] == ["GET"]  # one cheap call
    assert resolve_settings().token.get_secret_value() == sb.token


def test_login_with_a_refused_token_raises_one_line_and_keeps_nothing(
    sb: sandbox.Sandbox,
) -> None:
    """A token the server refuses: AuthenticationError (one line), and nothing is kept."""
    with pytest.raises(omni_nb.AuthenticationError) as info:
        omni_nb.login("omni_osk_not_a_real_token", base_url=sb.base_url)
    assert info.value._render_traceback_() == [f"AuthenticationError: {info.value}"]
    with pytest.raises(ConfigError):
        resolve_settings()


def test_login_with_a_viewer_token_connects(
    sb: sandbox.Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A viewer's token is a valid token: login says where, and that drafting needs Editor."""
    omni_nb.login(sb.viewer_token, base_url=sb.base_url)
    assert "needs Editor rights" in capsys.readouterr().out


def test_login_check_false_sends_nothing(sb: sandbox.Sandbox) -> None:
    """login(check=False) keeps the token without a request."""
    omni_nb.login(sb.token, base_url=sb.base_url, check=False)
    assert sb.requests() == []
