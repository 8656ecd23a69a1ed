"""Several API keys (issue 10, item 4) and honest timing columns (item 6), over real sockets.

Pools: resolved from arguments, ``login()`` and ``OMNI_API_TOKENS`` with errors that name a
key's position, never its value; each request of a batch goes on a key of the pool, every
key is used, a refused key leaves the pool with a warning, all refused stops as one refused
token does. Timing: ``requested_at`` is the first send, ``queued_s`` holds the time the budget
(or a 429 pause) held an item back, ``elapsed_s`` the rest; lower bounds only, so a busy
machine cannot fail them. Ledger: an old file gains the new columns in place.
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from omni_nb import (
    ConfigError,
    KeyRefusedWarning,
    OmniClient,
    RateLimit,
    RetryPolicy,
    login,
    sandbox,
)
from omni_nb.batch import create_draft, create_drafts
from omni_nb.cli import main as cli_main
from omni_nb.config import Secret, resolve_settings
from omni_nb.ledger import SCHEMA_VERSION, Ledger, results
from omni_nb.ratelimit import Limiter
from omni_nb.rows import Row

from ..conftest import V0_CALLS_TABLE, FakeClock

ROOT = "https://acme.omniapp.co"
DOCS = [f"doc-{i:04d}" for i in range(1, 70) if i % 10][:60]  # every 10th is not eligible


def key_id(token: str) -> str:
    return Secret(token).key_id()


# -- settings: the pool ----------------------------------------------------------------------


def test_pool_from_argument_login_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """tokens= beats login(tokens=) beats OMNI_API_TOKENS beats OMNI_API_TOKEN; token is the
    pool's first key; one token is a pool of one."""
    env = {"OMNI_API_TOKENS": " omni_osk_e1 , omni_osk_e2,omni_osk_e3 ",
           "OMNI_API_TOKEN": "omni_osk_single"}
    from_env = resolve_settings(ROOT, environ=env)
    assert [t.get_secret_value() for t in from_env.tokens] == [
        "omni_osk_e1", "omni_osk_e2", "omni_osk_e3"]
    assert from_env.token.get_secret_value() == "omni_osk_e1"
    one = resolve_settings(ROOT, environ={"OMNI_API_TOKEN": "omni_osk_single"})
    assert one.tokens == (one.token,)
    login(tokens=["omni_osk_l1", "omni_osk_l2"], check=False)
    assert len(resolve_settings(ROOT, environ=env).tokens) == 2
    given = resolve_settings(ROOT, tokens=["omni_osk_a1", "omni_osk_a2"], environ=env)
    assert [t.get_secret_value() for t in given.tokens] == ["omni_osk_a1", "omni_osk_a2"]
    assert "omni_osk_a" not in repr(given)
    # The prompt takes several keys, comma-separated.
    monkeypatch.setattr("getpass.getpass", lambda prompt: "omni_osk_p1,omni_osk_p2")
    login(check=False)
    assert len(resolve_settings(ROOT, environ={}).tokens) == 2


BAD_POOLS = {
    "duplicate": (["omni_osk_dup1", "omni_osk_two", "omni_osk_dup1"],
                  "token 3 of 3 repeats token 1"),
    "empty": (["omni_osk_one", "  "], "token 2 of 2 is empty"),
    "malformed": (["omni_osk_one", "omni_osk_has space"], "token 2 of 2 contains spaces"),
    "not a string": (["omni_osk_one", 7], "token 2 of 2 must be a string"),
    "a string": ("omni_osk_whole", "must be a list of tokens"),
    "no keys": ([], "the token pool is empty"),
}


@pytest.mark.parametrize(("pool", "expected"), BAD_POOLS.values(), ids=BAD_POOLS.keys())
def test_bad_pool_is_one_clear_error_naming_the_position(pool: object, expected: str) -> None:
    """One ConfigError naming the key's position; no token value in it."""
    with pytest.raises(ConfigError, match=expected) as info:
        resolve_settings(ROOT, tokens=pool, environ={})  # type: ignore[arg-type]
    assert "omni_osk_" not in str(info.value)


@pytest.mark.parametrize("text", ["omni_osk_e1,,omni_osk_e2", "omni_osk_e1,omni_osk_e 2",
                                  "omni_osk_e1,omni_osk_e1", "omni_osk_e1,"])
def test_malformed_environment_pool_names_the_variable_and_position(text: str) -> None:
    """OMNI_API_TOKENS with an empty, malformed or repeated key: an error naming the variable
    and the key's position, never the value."""
    with pytest.raises(ConfigError, match=r"OMNI_API_TOKENS: token 2 of") as info:
        resolve_settings(ROOT, environ={"OMNI_API_TOKENS": text})
    assert "omni_osk_" not in str(info.value)
    with pytest.raises(ConfigError, match="token or tokens"):
        resolve_settings(ROOT, token="omni_osk_x", tokens=["omni_osk_y"], environ={})


def test_bad_pool_sends_nothing(sb: sandbox.Sandbox) -> None:
    """A batch given a duplicate key fails before anything is sent."""
    with pytest.raises(ConfigError, match="token 2 of 2 repeats token 1"):
        create_drafts(["doc-0001"], base_url=sb.base_url, tokens=[sb.token, sb.token],
                      rate_limit=None)
    assert sb.requests() == []


# -- the batch over a pool -------------------------------------------------------------------


def test_each_request_goes_on_a_key_and_every_key_is_used() -> None:
    """Three keys against a server limiting each to 10 per second: every row names one of the
    three keys, each key carries a share, no request is refused for the rate, and the keys'
    budgets hold the items back far less than one key's budget would."""
    with sandbox.serve(rate_limit=(10, 1.0)) as sb:
        pool = [sb.token, sb.add_token("editor"), sb.add_token("editor")]
        started = time.monotonic()
        table = create_drafts(DOCS, base_url=sb.base_url, tokens=pool,
                              rate_limit=RateLimit(10, 1.0), concurrency=8, ledger="off")
        took = time.monotonic() - started
        sent = [r for r in sb.requests() if r.method == "POST"]
    assert (table["status"] == "ok").all()
    assert set(table["key"]) == {key_id(t) for t in pool}
    assert table["key"].value_counts().min() >= 10
    assert not [r for r in sent if r.status == 429]
    assert all(r.role == "editor" for r in sent)
    # Time the budgets held items back, not the batch's time (a busy machine stretches that):
    # one budget for all would hold the 8 workers about 5 s each (~40 s), three about 1 s each
    # (~8 s). Slowness only lowers it: a slow sender leaves the budgets room.
    held = table["queued_s"].sum()
    assert held < 20, f"budgets held items {held:.1f} s in all (batch took {took:.2f} s)"


def test_a_refused_key_leaves_the_pool_and_the_batch_finishes() -> None:
    """Key 2 of 3 is unknown to the server: a warning names it by position and short name,
    the items it was refused for go to the other keys, and every row is ok."""
    with sandbox.serve(rate_limit=None) as sb:
        bad = "omni_osk_refused_" + "x" * 20
        pool = [sb.token, bad, sb.add_token("editor")]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = create_drafts(DOCS[:30], base_url=sb.base_url, tokens=pool,
                                  rate_limit=None, concurrency=4, ledger="off")
        refused = [r for r in sb.requests() if r.status == 403]
    messages = [str(w.message) for w in caught if issubclass(w.category, KeyRefusedWarning)]
    assert len(messages) == 1
    assert f"API key 2 of 3 ({key_id(bad)}) was refused" in messages[0]
    assert "goes on with 2 key(s)" in messages[0]
    assert bad not in messages[0]
    assert (table["status"] == "ok").all(), table["status"].value_counts()
    assert len(table) == 30
    assert key_id(bad) not in set(table["key"])
    assert 1 <= len(refused) <= 4  # at most what was in flight on it


def test_every_key_refused_stops_as_one_token_does(sb: sandbox.Sandbox) -> None:
    """Two unknown keys: each is refused once, then the batch stops; the first answer is its
    row, the rest are cancelled and not sent."""
    pool = ["omni_osk_bad_one_123", "omni_osk_bad_two_456"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KeyRefusedWarning)
        table = create_drafts(DOCS[:20], base_url=sb.base_url, tokens=pool, rate_limit=None,
                              concurrency=1)
    assert table["status"].iloc[0] == "unauthorized"
    assert set(table["status"].iloc[1:]) == {"cancelled"}
    assert table["message"].iloc[1].startswith("not sent: every key of the pool was refused")
    assert len(sb.requests()) == 2
    assert table["key"].iloc[0] == key_id(pool[1])
    assert table["key"].iloc[1:].isna().all()


def test_single_call_and_cli_take_the_pool(
    sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """create_draft(tokens=) sends on a key of the pool; the CLI reads OMNI_API_TOKENS and
    spreads its requests over the keys."""
    pool = [sb.token, sb.add_token("editor")]
    draft = create_draft("doc-0001", base_url=sb.base_url, tokens=pool, rate_limit=None)
    assert draft.document_id == "doc-0001"
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKENS", ",".join(pool))
    assert cli_main(["draft", *DOCS[:8], "--rate", "off", "--concurrency", "2"]) == 0
    assert not any(t in capsys.readouterr().out for t in pool)
    table = results()
    assert set(table["key"].dropna()) == {key_id(t) for t in pool}


# -- timing columns --------------------------------------------------------------------------


def test_requested_at_is_the_first_send_and_queued_s_holds_the_budget(
    sb: sandbox.Sandbox,
) -> None:
    """Six items at 2 per second, all taken at once: the budget holds four of them back, by
    at least one and two windows; their requested_at is when they were finally sent."""
    before = pd.Timestamp.now(tz="UTC")
    table = create_drafts(DOCS[:6], base_url=sb.base_url, token=sb.token,
                          rate_limit=RateLimit(2, 1.0), concurrency=6)
    assert (table["status"] == "ok").all()
    held = table.sort_values("requested_at")
    queued = list(held["queued_s"])
    # Windows of 1.05 s (1 s plus the limiter's margin); less 0.5 s for a slow start of the
    # workers on a busy machine (an item reserved late is held less).
    assert min(queued[4:]) >= 1.5, queued
    assert min(queued[2:4]) >= 0.5, queued
    # The budget cannot let them go earlier, however busy the machine.
    assert held["requested_at"].iloc[2] - before >= pd.Timedelta(seconds=1.0)
    assert held["requested_at"].iloc[4] - before >= pd.Timedelta(seconds=2.0)
    assert (table["elapsed_s"] >= 0).all()
    # The ledger holds the same figures.
    stored = results(run_id=table["run_id"].iloc[0])
    assert sorted(stored["queued_s"]) == sorted(table["queued_s"])
    assert set(stored["key"]) == {key_id(sb.token)}


def test_queued_s_with_an_injected_clock(sb: sandbox.Sandbox, clock: FakeClock) -> None:
    """Sequential calls on a 2-per-10-s limiter with a fake clock: the third and fifth are held
    ten (fake) seconds each, the others not at all; requested_at is each call's send."""
    limiter = Limiter(RateLimit(2, 10.0), clock=clock, margin=0.0)
    with OmniClient(sb.base_url, sb.token, limiter=limiter, sleep=clock.sleep) as client:
        before = pd.Timestamp.now(tz="UTC")
        outcomes = [client.create_draft_outcome(doc) for doc in DOCS[:5]]
    queued = [o.queued_s for o in outcomes]
    assert [q >= 10.0 for q in queued] == [False, False, True, False, True], queued
    assert max(queued[2], queued[4]) < 10.5
    assert max(queued[:2] + queued[3:4]) < 0.5
    assert all(o.requested_at >= before for o in outcomes)
    assert [o.key for o in outcomes] == [key_id(sb.token)] * 5


def test_a_429_pause_is_queued_and_a_backoff_is_elapsed(sb: sandbox.Sandbox) -> None:
    """A 429 with Retry-After: 1 holds the item in the key's pause (queued_s); a 503's backoff
    is time after the first send (elapsed_s). requested_at stays the first send."""
    retry = RetryPolicy(max_retries=2, backoff=0.6, backoff_cap=0.6)
    sb.enqueue(429, {"error": "Too Many Requests", "message": "slow"},
               headers={"Retry-After": "1"})
    paused = create_drafts(["doc-0001"], base_url=sb.base_url, token=sb.token,
                           rate_limit=None, retry=retry, ledger="off")
    finished = pd.Timestamp.now(tz="UTC")
    assert paused["attempts"].iloc[0] == 2
    assert paused["queued_s"].iloc[0] >= 0.9
    assert finished - paused["requested_at"].iloc[0] >= pd.Timedelta(seconds=0.9)
    sb.enqueue(503, "down")
    backed_off = create_drafts(["doc-0002"], base_url=sb.base_url, token=sb.token,
                               rate_limit=None, retry=retry, ledger="off")
    assert backed_off["attempts"].iloc[0] == 2
    assert backed_off["elapsed_s"].iloc[0] >= 0.3  # jitter: 0.5-1 x 0.6 s
    assert backed_off["queued_s"].iloc[0] < 0.3


def test_unsent_rows_have_no_key_and_no_queue(sb: sandbox.Sandbox) -> None:
    """Invalid items: queued_s 0 and key missing."""
    table = create_drafts(["a/b"], base_url=sb.base_url, token=sb.token, rate_limit=None)
    assert table["queued_s"].iloc[0] == 0.0
    assert pd.isna(table["key"].iloc[0])


# -- the ledger's schema ---------------------------------------------------------------------

OLD_SCHEMA = V0_CALLS_TABLE
# What an omni_nb from before the change runs: it names its eleven columns.
OLD_INSERT = ("INSERT INTO calls (document_id, branch_id, draft_id, status, http_status, "
              "message, attempts, elapsed_s, requested_at_us, api_root, run_id) "
              "VALUES (?, NULL, ?, 'ok', 200, '', 1, 0.5, ?, 'https://a/api', ?)")
OLD_SELECT = ("SELECT document_id, branch_id, draft_id, status, http_status, message, "
              "attempts, elapsed_s, requested_at_us, api_root, run_id FROM calls")


def test_an_old_ledger_gains_the_columns_in_place(tmp_path: Path) -> None:
    """A ledger written before queued_s/key: opening it adds them (old rows: 0 and missing),
    sets user_version, keeps its rows; an older omni_nb's INSERT and SELECT still work."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.execute(OLD_INSERT, ("doc-1", "d1", 1, "old"))
    conn.commit()
    conn.close()
    ledger = Ledger(path)
    ledger.record([Row("doc-2", None, "d2", "ok", 200, "", 1, 0.1, 2, "https://a/api", "new",
                       queued_s=1.5, key="abcd1234")])
    table = ledger.results()
    assert list(table["run_id"]) == ["old", "new"]
    assert list(table["queued_s"]) == [0.0, 1.5]
    assert pd.isna(table["key"].iloc[0])
    assert table["key"].iloc[1] == "abcd1234"
    ledger.close()
    Ledger(path).close()  # a second open finds nothing to do
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    conn.execute(OLD_INSERT, ("doc-3", "d3", 3, "older"))  # an older omni_nb still writes
    assert len(conn.execute(OLD_SELECT).fetchall()) == 3  # and reads
    conn.commit()
    conn.execute("PRAGMA user_version = 7")  # a newer omni_nb's ledger is not downgraded
    conn.commit()
    conn.close()
    Ledger(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    conn.close()


def test_ready_gives_the_key_that_may_send_now_and_takes_turns() -> None:
    """Key B's window is full and key A has a slot: ready() gives A at once (no wait); with
    both free, the key with fewer requests sent goes, so equally free keys take turns."""
    import asyncio
    from types import SimpleNamespace

    from omni_nb.batch.pool import Key, KeyPool

    clock = FakeClock()
    a = Limiter(RateLimit(2, 2.0), clock=clock, margin=0.0)
    b = Limiter(RateLimit(2, 2.0), clock=clock, margin=0.0)
    b.acquire(clock.sleep)
    b.acquire(clock.sleep)  # B: full until its window ends
    key_a = Key(SimpleNamespace(limiter=a), 1, "a")  # type: ignore[arg-type]
    key_b = Key(SimpleNamespace(limiter=b), 2, "b")  # type: ignore[arg-type]
    pool = KeyPool([key_b, key_a])
    assert key_b.free_in() > 0
    assert asyncio.run(pool.ready()) == (key_a, 0.0)
    clock.now += 2.5  # both windows over: both free
    key_a.sent = 1
    assert asyncio.run(pool.ready()) == (key_b, 0.0)
