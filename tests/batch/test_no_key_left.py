"""A pool with no key left (issue 19, point 6): every key of a pool refused mid-batch ends as
one refused key does, with a table holding a row per input, the unsent ones ``cancelled``
with the reason; in the sync, async and background forms, over real sockets.

The keys are revoked mid-batch by scripting the sandbox's answers: from the sixth row on,
every Create-draft answer is Omni's 403 for an unknown token. With each key held to two
requests a second, the batch always has a worker waiting for a key's slot when the last key
is refused: the moment the pool used to fail on (``min()`` of no key), with one key too.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from omni_nb import AuthenticationError, KeyRefusedWarning, RateLimit, sandbox
from omni_nb.batch import acreate_drafts, create_drafts
from omni_nb.batch.pool import Key, KeyPool
from omni_nb.ledger import results
from omni_nb.rows import Row
from omni_nb.table import DraftResults

from ..conftest import MakeSandbox

DOCS = [f"doc-{i:04d}" for i in range(1, 120) if i % 10][:100]  # every 10th is not eligible
BAD_TOKEN = {"error": {"code": 403, "message": "Invalid bearer token"}}
REASON = "not sent: every key of the pool was refused (HTTP 403: Invalid bearer token)"
REASON_ONE = "not sent: the token was refused (HTTP 403: Invalid bearer token)"
REVOKE_AFTER = 6  # rows answered before every key is revoked


@pytest.fixture
def pool_sb(make_sandbox: MakeSandbox) -> tuple[sandbox.Sandbox, list[str]]:
    """A sandbox answering slowly enough that requests are in flight, and three keys."""
    sb = make_sandbox(documents=150, latency=0.2)
    return sb, [sb.token, sb.add_token("editor"), sb.add_token("editor")]


def revoking(sb: sandbox.Sandbox) -> Callable[[int, int, Row], None]:
    """A progress callback that revokes every key once :data:`REVOKE_AFTER` rows are in."""
    revoked = threading.Event()

    def progress(done: int, total: int, row: Row) -> None:
        if done >= REVOKE_AFTER and not revoked.is_set():
            revoked.set()
            sb.enqueue(403, BAD_TOKEN, times=len(DOCS))

    return progress


def batch_keywords(sb: sandbox.Sandbox, pool: list[str], ledger: Path) -> dict[str, Any]:
    return {"base_url": sb.base_url, "tokens": pool, "rate_limit": RateLimit(2, 1.0),
            "concurrency": 8, "ledger": ledger, "progress": revoking(sb)}


@pytest.fixture
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KeyRefusedWarning)
        yield


def check_every_input_has_its_row(table: DraftResults, sb: sandbox.Sandbox,
                                  ledger: Path, reason: str = REASON) -> None:
    """One row per input in input order; what was answered keeps its answer, the rest are
    cancelled naming the refusal; the ledger holds the same rows; no cancelled input has a
    draft on the server."""
    assert list(table["document_id"]) == DOCS
    statuses = set(table["status"])
    assert statuses <= {"ok", "unauthorized", "cancelled"}, statuses
    assert "unauthorized" in statuses
    cancelled = table[table["status"] == "cancelled"]
    assert len(cancelled) >= len(DOCS) // 2  # the keys went long before the end
    assert set(cancelled["message"]) == {reason}
    stored = results(ledger=ledger, run_id=table["run_id"].iloc[0])
    assert sorted(zip(stored["document_id"], stored["status"], strict=True)) == sorted(
        zip(table["document_id"], table["status"], strict=True))
    sb.wait_idle()
    made = {doc for doc, _ in sb.drafts()}
    assert not made & set(cancelled["document_id"])


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("keys", [3, 1])
def test_every_key_revoked_mid_batch_gives_a_row_per_input(
    pool_sb: tuple[sandbox.Sandbox, list[str]], tmp_path: Path, keys: int,
) -> None:
    """create_drafts: three keys (or one) revoked mid-batch; a table, not a ValueError."""
    sb, pool = pool_sb
    ledger = tmp_path / "l.sqlite3"
    table = create_drafts(DOCS, **batch_keywords(sb, pool[:keys], ledger))
    check_every_input_has_its_row(table, sb, ledger, REASON if keys > 1 else REASON_ONE)


@pytest.mark.usefixtures("quiet")
def test_every_key_revoked_mid_batch_async_gives_a_row_per_input(
    pool_sb: tuple[sandbox.Sandbox, list[str]], tmp_path: Path,
) -> None:
    """acreate_drafts: the same, awaited."""
    sb, pool = pool_sb
    ledger = tmp_path / "l.sqlite3"
    table = asyncio.run(acreate_drafts(DOCS, **batch_keywords(sb, pool, ledger)))
    check_every_input_has_its_row(table, sb, ledger)


@pytest.mark.usefixtures("quiet")
def test_every_key_revoked_mid_batch_in_the_background_gives_a_row_per_input(
    pool_sb: tuple[sandbox.Sandbox, list[str]], tmp_path: Path,
) -> None:
    """create_drafts(background=True): the handle ends with the table, not an error."""
    sb, pool = pool_sb
    ledger = tmp_path / "l.sqlite3"
    run = create_drafts(DOCS, background=True, **batch_keywords(sb, pool, ledger))
    table = run.wait(timeout=120)
    assert run.error is None
    assert table is not None
    check_every_input_has_its_row(table, sb, ledger)


# -- the pool itself -------------------------------------------------------------------------


class Busy:
    """A key's limiter with a limit in force and a slot a moment away: the pool waits."""

    effective_limit = RateLimit(1, 1.0)
    paused_until = 0.0

    def next_send_in(self, ahead: int = 0) -> float:
        return 0.001


def busy_pool(n: int) -> KeyPool:
    return KeyPool([Key(SimpleNamespace(limiter=Busy()), i, f"k{i}")  # type: ignore[arg-type]
                    for i in range(1, n + 1)])


def test_a_pool_refused_while_ready_waits_raises_the_refusal() -> None:
    """ready() waiting for a slot when the last key is refused raises an AuthenticationError
    naming the last refusal (which the engine turns into cancelled rows), not a ValueError."""
    pool = busy_pool(3)
    refusal = AuthenticationError(403, "Invalid bearer token")

    async def scenario() -> None:
        waiting = asyncio.create_task(pool.ready())
        await asyncio.sleep(0)  # ready() looked once: no key free, it waits
        assert not waiting.done()
        for key in pool.keys:
            pool.refuse(key, refusal)
        with pytest.raises(AuthenticationError, match="Invalid bearer token") as info:
            await waiting
        assert info.value is not refusal  # a new error: the refusal is its own row's

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KeyRefusedWarning)
        asyncio.run(scenario())
    with pytest.raises(AuthenticationError, match="no key of the pool is left"):
        asyncio.run(pool.ready())  # asked again, once no key is left
