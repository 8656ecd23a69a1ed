"""A Redis budget store's address (``OMNI_NB_BUDGET=redis://…``): its password never shows
(user info, a ``password=`` parameter; redis, rediss, unix), the settings carry it as a
RedisAddress, and its errors name where the setting came from."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from omni_nb.budget_url import DEFAULT_PREFIX, RedisAddress, is_redis_url, mask_url
from omni_nb.config import resolve_settings
from omni_nb.errors import ConfigError

SECRET = "s3cr3t-Pw"
ROOT = "https://acme.omniapp.co"


@pytest.mark.parametrize(("text", "shown"), [
    (f"redis://team:{SECRET}@cache:6379/0", "redis://team:***@cache:6379/0"),
    (f"redis://:{SECRET}@cache:6379/0", "redis://:***@cache:6379/0"),
    (f"rediss://team:{SECRET}@cache.example:6380/2", "rediss://team:***@cache.example:6380/2"),
    (f"redis://cache:6379/0?password={SECRET}", "redis://cache:6379/0?password=***"),
    (f"rediss://cache/1?username=team&password={SECRET}",
     "rediss://cache/1?username=team&password=***"),
    (f"unix:///run/redis.sock?db=1&password={SECRET}", "unix:///run/redis.sock?db=1&password=***"),
    (f"unix://team:{SECRET}@/run/redis.sock?db=1", "unix://team:***@/run/redis.sock?db=1"),
    ("redis://cache:6379/0", "redis://cache:6379/0"),
])
def test_the_password_is_masked_in_every_form(text: str, shown: str) -> None:
    """User info's password, a password= parameter, over redis, rediss and unix: masked by
    mask_url, in the address's shown, str, repr and f-string; kept in .url only."""
    assert mask_url(text) == shown
    address = RedisAddress.parse(text)
    for said in (address.shown, str(address), repr(address), f"{address}", f"{address!r}"):
        assert SECRET not in said
    assert address.shown == shown
    assert (SECRET in address.url) == (SECRET in text)


def test_the_prefix_is_omni_nbs_own_taken_out_of_the_url_and_shown() -> None:
    """?prefix= names the keys' prefix (default omni_nb:), never reaches redis-py's URL, and
    shows (a non-default one) with the masked address."""
    address = RedisAddress.parse(f"redis://team:{SECRET}@cache:6379/0?prefix=team-a:&db=0")
    assert address.prefix == "team-a:"
    assert "prefix" not in address.url
    assert address.shown == "redis://team:***@cache:6379/0?db=0&prefix=team-a:"
    assert RedisAddress.parse("redis://cache").prefix == DEFAULT_PREFIX


def test_an_address_is_never_pickled() -> None:
    """It holds a password: pickling it (a process pool, a cache) is refused."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(RedisAddress.parse(f"redis://team:{SECRET}@cache"))


@pytest.mark.parametrize(("text", "redis"), [
    ("redis://cache:6379/0", True), ("REDIS://cache", True), ("rediss://cache", True),
    ("unix:///run/redis.sock", True), ("/tmp/budget.sqlite3", False), ("off", False),
    ("redis.sqlite3", False), ("https://cache", False)])
def test_is_redis_url_tells_an_address_from_a_path(text: str, redis: bool) -> None:
    assert is_redis_url(text) is redis


@pytest.mark.parametrize(("text", "said"), [
    ("redis://cache?prefix=a b", "the Redis key prefix 'a b' may hold only"),
    ("redis://cache?prefix=a*", "the Redis key prefix 'a*' may hold only"),
    ("redis://cache?prefix=" + "p" * 65, "at most 64"),
    (f"redis://team:{SECRET}@/0", "names no host"),
    (f"redis://team:{SECRET}@cache:port/0", "port that is not a number"),
    ("unix://", "names no socket"),
])
@pytest.mark.parametrize("source", ["OMNI_NB_BUDGET", "budget="])
def test_a_bad_address_is_one_config_error_naming_its_source(
        text: str, said: str, source: str) -> None:
    """A prefix with glob characters or spaces or over 64, no host, a port that is not a
    number, no socket: one ConfigError naming where the setting came from, and never the
    password."""
    argument = source == "budget="
    with pytest.raises(ConfigError) as raised:
        resolve_settings(ROOT, "t", environ={} if argument else {"OMNI_NB_BUDGET": text},
                         budget=text if argument else None)
    message = str(raised.value)
    assert message.startswith(f"{source}: ")
    assert said in message
    assert SECRET not in message
    assert "\n" not in message


def test_the_settings_carry_a_redis_address_from_the_argument_or_the_environment() -> None:
    """budget="redis://…" and OMNI_NB_BUDGET=redis://… both give a RedisAddress, sourced;
    the argument wins; a path stays a path."""
    by_argument = resolve_settings(ROOT, "t", environ={"OMNI_NB_BUDGET": "/tmp/b.sqlite3"},
                                   budget=f"redis://team:{SECRET}@cache:6379/1")
    assert isinstance(by_argument.budget, RedisAddress)
    assert by_argument.budget.url == f"redis://team:{SECRET}@cache:6379/1"
    assert by_argument.sources["budget"] == "budget="
    by_env = resolve_settings(ROOT, "t", environ={
        "OMNI_NB_BUDGET": f"rediss://team:{SECRET}@cache:6380/0?prefix=acme:"})
    assert by_env.budget == RedisAddress(f"rediss://team:{SECRET}@cache:6380/0", "acme:")
    assert by_env.sources["budget"] == "OMNI_NB_BUDGET"
    given = RedisAddress.parse("redis://cache")
    assert resolve_settings(ROOT, "t", environ={}, budget=given).budget is given
    assert resolve_settings(ROOT, "t", environ={"OMNI_NB_BUDGET": "/tmp/b.sqlite3"}
                            ).budget == Path("/tmp/b.sqlite3")


def test_the_settings_never_show_the_password() -> None:
    """repr, str and the sources of Settings with a Redis budget: the address masked."""
    settings = resolve_settings(ROOT, "t", environ={
        "OMNI_NB_BUDGET": f"redis://team:{SECRET}@cache:6379/0"})
    for said in (repr(settings), str(settings), f"{settings}", repr(settings.sources)):
        assert SECRET not in said
    assert "redis://team:***@cache:6379/0" in repr(settings)
