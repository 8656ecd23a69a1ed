"""One JupyterLab for the browser tests: a server on a free loopback port, with no news or
update toasts and no ``OMNI_*`` variable of the caller's, serving a directory of notebooks;
and what a test needs to drive it in Debian's Chromium with Playwright (never Playwright's
own browser download).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
#: Seconds JupyterLab may take to answer its first request (two busy cores).
START_S = 60


def missing_requirement() -> str | None:
    """Why a browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return "Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
    for module in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[test]')"
    return None


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def code_notebook(sources: list[str]) -> dict[str, object]:
    """A notebook of code cells, without outputs, for the python3 kernel."""
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernel},
            "cells": [{"cell_type": "code", "id": f"c{n}", "metadata": {}, "source": source,
                       "outputs": [], "execution_count": None}
                      for n, source in enumerate(sources)]}


@contextlib.contextmanager
def serve(tmp_path: Path, notebooks: dict[str, dict[str, object]]) -> Iterator[str]:
    """JupyterLab serving ``notebooks`` (name -> notebook) from ``tmp_path / "root"``; yields
    the URL of its tree with the token as ``{base}/lab/tree/{{}}?token=...`` (format it with a
    notebook's name). Skips the test, saying why, where Chromium, Playwright or JupyterLab is
    missing."""
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path / "root"
    root.mkdir()
    for name, notebook in notebooks.items():
        (root / name).write_text(json.dumps(notebook), encoding="utf-8")
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news or update toasts over what is looked at (and no network calls for them).
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(OMNI_NB_LEDGER=str(tmp_path / "ledger.sqlite3"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               IPYTHONDIR=str(tmp_path / "ipython"))
    port, token = free_port(), secrets.token_hex(16)
    with (tmp_path / "lab.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
             "--ip", "127.0.0.1", "--port", str(port), f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_S
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.flush()
                        pytest.fail("JupyterLab did not start:\n"
                                    + (tmp_path / "lab.log").read_text()[-3000:])
                    time.sleep(0.2)  # polling a server that is starting up
            yield f"{base}/lab/tree/{{}}?token={token}"
        finally:
            proc.terminate()  # the server shuts its kernels down on SIGTERM
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
