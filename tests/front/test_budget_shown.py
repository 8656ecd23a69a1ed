"""Where the budget setting shows (``%config OmniNB``, the magic's runs, ``omni-nb budget``,
warnings, errors), a Redis password never does: against a real ``redis-server``."""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.history import HistoryAccessor
from IPython.core.interactiveshell import InteractiveShell
from traitlets import TraitError

from omni_nb import ConfigError, sandbox
from omni_nb.cli import main
from omni_nb.magic import OmniNB

HistoryAccessor.enabled = False

PASSWORD = "s3cret-budget-pw"
READY = 20.0  # seconds at most for redis-server to answer: generous on a busy machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A throwaway redis-server on a free loopback port whose user ``team`` has PASSWORD."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis", reason="redis-py is not installed (pip install 'omni_nb[redis]')")
    port = _free_port()
    where = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(where), "--daemonize", "no",
         "--user", "team", "on", f">{PASSWORD}", "~*", "+@all"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY
        while not _answers(port):  # readiness, polled; nothing here measures time
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=READY)


def _url(port: int, password: str = PASSWORD, db: int = 0) -> str:
    return f"redis://team:{password}@127.0.0.1:{port}/{db}"


def _redis_keys(port: int) -> list[str]:
    import redis

    with redis.Redis.from_url(_url(port), decode_responses=True) as r:
        return sorted(str(k) for k in r.keys("omni_nb:*"))


@pytest.fixture
def ip(sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    """A shell with the magic freshly loaded and the sandbox in the environment."""
    monkeypatch.setenv("OMNI_BASE_URL", sb.base_url)
    monkeypatch.setenv("OMNI_API_TOKEN", sb.token)
    shell = InteractiveShell.instance()
    shell.config.pop("OmniNB", None)
    shell.run_line_magic("reload_ext", "omni_nb")
    return shell


def _settings(shell: InteractiveShell) -> OmniNB:
    return next(c for c in shell.configurables if isinstance(c, OmniNB))


def _printed(shell: InteractiveShell, line: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        value = shell.run_line_magic("config", line)
    return out.getvalue() + repr(value)


# -- %config OmniNB ---------------------------------------------------------------------------


def test_config_shows_a_set_redis_address_masked_and_keeps_it_whole(
        ip: InteractiveShell) -> None:
    """%config OmniNB.budget = redis://…: the traitlet, %config OmniNB, %config
    OmniNB.budget and the shell's configuration show it masked; the magic keeps it whole."""
    ip.run_line_magic("config", f"OmniNB.budget = '{_url(6399)}'")
    nb = _settings(ip)
    assert nb.budget == "redis://team:***@127.0.0.1:6399/0"
    shown = _printed(ip, "OmniNB") + _printed(ip, "OmniNB.budget")
    assert "Current: 'redis://team:***@127.0.0.1:6399/0'" in shown
    assert PASSWORD not in shown
    assert PASSWORD not in repr(ip.config) + repr(nb.config)
    given = nb.budget_setting()
    assert given is not None
    assert not isinstance(given, str)
    assert given.url == _url(6399)


def test_config_default_shows_omni_nb_budget_masked_and_reads_it_at_each_run(
        ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not set: the value shows OMNI_NB_BUDGET masked, and the magic passes None (the
    environment decides at each run)."""
    monkeypatch.setenv("OMNI_NB_BUDGET", _url(6398))
    ip.run_line_magic("reload_ext", "omni_nb")
    nb = _settings(ip)
    assert nb.budget == "redis://team:***@127.0.0.1:6398/0"
    assert PASSWORD not in _printed(ip, "OmniNB")
    assert nb.budget_setting() is None


def test_config_default_without_the_variable_is_the_machines_store(
        ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OMNI_NB_BUDGET: the machine's store path; ``off`` shows as off."""
    monkeypatch.delenv("OMNI_NB_BUDGET")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert OmniNB().budget.endswith("budget.sqlite3")
    monkeypatch.setenv("OMNI_NB_BUDGET", "off")
    assert OmniNB().budget == "off"


def test_reloaded_extension_finds_the_address_from_its_masked_configuration(
        ip: InteractiveShell) -> None:
    """The configuration holds the masked form; %reload_ext still has the address."""
    ip.run_line_magic("config", f"OmniNB.budget = '{_url(6397)}'")
    ip.run_line_magic("reload_ext", "omni_nb")
    given = _settings(ip).budget_setting()
    assert given is not None
    assert not isinstance(given, str)
    assert given.url == _url(6397)


def test_a_masked_address_never_set_before_is_refused() -> None:
    """``***`` cannot be a password to use: refused, saying why, not sent to Redis."""
    nb = OmniNB()
    with pytest.raises(TraitError, match="masked"):
        nb.budget = "redis://team:***@elsewhere:6379/0"


def test_a_malformed_address_is_refused_masked() -> None:
    nb = OmniNB()
    with pytest.raises(TraitError) as caught:
        nb.budget = f"redis://team:{PASSWORD}@cache:port/0"
    assert "not a number" in str(caught.value)
    assert PASSWORD not in str(caught.value)


# -- the magic's runs -------------------------------------------------------------------------


def test_magic_shares_the_budget_on_the_address_set_in_config(
        ip: InteractiveShell, redis_port: int, recwarn: pytest.WarningsRecorder,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The kept address (password and all) reaches the batch: the key's state is in Redis."""
    ip.run_line_magic("config", f"OmniNB.budget = '{_url(redis_port)}'")
    _settings(ip).progress = "off"
    ip.run_line_magic("omni_draft", "doc-0001 doc-0002 --rate-limit 100/1 -o res")
    assert list(ip.user_ns["res"]["status"]) == ["ok", "ok"]
    assert any(k.startswith("omni_nb:{") for k in _redis_keys(redis_port))
    assert not [w for w in recwarn if "budget" in str(w.message)]
    assert PASSWORD not in capsys.readouterr().out


def test_magic_on_an_unreachable_redis_warns_once_masked(
        ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    """Redis away at the start: one warning naming the address masked; rows still ok."""
    ip.run_line_magic("config", f"OmniNB.budget = '{_url(_free_port())}'")
    _settings(ip).progress = "off"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ip.run_line_magic("omni_draft", "doc-0003 doc-0004 --rate-limit 100/1 -o res")
    assert list(ip.user_ns["res"]["status"]) == ["ok", "ok"]
    texts = [str(w.message) for w in seen if "budget store" in str(w.message)]
    assert len(texts) == 1
    assert "redis://team:***@127.0.0.1" in texts[0]
    assert PASSWORD not in "".join(str(w.message) for w in seen) + capsys.readouterr().out


def test_magic_with_a_refused_password_is_one_config_error_without_it(
        ip: InteractiveShell, sb: sandbox.Sandbox, redis_port: int) -> None:
    """A wrong password: ConfigError before anything is sent; the password not in it."""
    wrong = "not-the-" + PASSWORD
    ip.run_line_magic("config", f"OmniNB.budget = '{_url(redis_port, wrong)}'")
    sb.clear_requests()
    with pytest.raises(ConfigError) as caught:
        ip.run_line_magic("omni_draft", "doc-0005 doc-0006 --rate-limit 100/1")
    assert "\n" not in str(caught.value)
    assert wrong not in str(caught.value)
    assert "redis://team:***@" in str(caught.value)
    assert not [r for r in sb.requests() if r.method == "POST"]


# -- omni-nb budget ---------------------------------------------------------------------------


def test_cli_budget_option_takes_a_redis_address_and_shows_it_masked(
        redis_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["budget", "--budget", _url(redis_port)]) == 0
    out, err = capsys.readouterr()
    assert f"rate budget store: redis://team:***@127.0.0.1:{redis_port}/0" in out
    assert PASSWORD not in out + err


def test_cli_budget_reads_a_redis_address_from_omni_nb_budget(
        redis_port: int, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OMNI_NB_BUDGET", _url(redis_port))
    assert main(["budget"]) == 0
    out, err = capsys.readouterr()
    assert "rate budget store: redis://team:***@" in out
    assert PASSWORD not in out + err


@pytest.mark.parametrize("db", [0, 7])
def test_cli_budget_with_a_refused_password_is_one_line_without_it(
        redis_port: int, db: int, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "not-the-" + PASSWORD
    assert main(["budget", "--budget", _url(redis_port, wrong, db)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("omni-nb: ")
    assert "redis://team:***@" in err
    assert wrong not in err
    assert PASSWORD not in err


def test_cli_budget_on_an_unreachable_redis_is_one_line_masked(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["budget", "--budget", _url(_free_port())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot be reached" in err
    assert PASSWORD not in err


def test_cli_draft_with_redis_away_warns_masked_on_stderr(
        sb: sandbox.Sandbox, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    """``omni-nb draft`` in a process of its own: its whole output, warnings included."""
    env: dict[str, Any] = {"OMNI_NB_BUDGET": _url(_free_port()), "OMNI_BASE_URL": sb.base_url,
                           "OMNI_API_TOKEN": sb.token, "OMNI_NB_LEDGER": "off"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = subprocess.run(["omni-nb", "draft", "doc-0007", "--rate-limit", "100/1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "redis://team:***@127.0.0.1" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert sb.token not in done.stdout + done.stderr
