"""The race an undo cannot close (Discard draft takes no draft id), kept to a round trip: a
discard's listing and its DELETE take their two slots of the rate budget at once, so under a
tight limit the DELETE follows its listing's answer at once instead of a window later, and
another user's draft made half a second after the listing is never the one archived.

Real time over real sockets: bounds with generous margins, never a speed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import omni_nb
from omni_nb import RateLimit, RetryPolicy, sandbox
from omni_nb.ratelimit import Limiter

pytestmark = pytest.mark.slow

DOCS = [f"doc-{n:04d}" for n in range(1, 17) if n != 10]  # 15 eligible documents


def pairing_claims_two() -> bool:
    """Whether the rate budget's paired claim takes two slots at once (the budget of the
    core branch); the interface alone lets each acquire wait for its own slot."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = Limiter(RateLimit(2, 10.0), clock=lambda: now[0], margin=0.0)
    limiter.acquire(sleep)
    with limiter.paired():
        return limiter.acquire(sleep) > 0  # one slot left: a pair of slots must wait


class AnotherUser:
    """Replaces each document's draft ``after`` seconds after the undo's first listing of it
    was answered (the sandbox's request log says when)."""

    def __init__(self, sb: sandbox.Sandbox, after: float) -> None:
        self.sb, self.after = sb, after
        self.made: dict[str, str] = {}
        self.timers: list[threading.Timer] = []
        self.stop = threading.Event()
        self.seen: set[str] = set()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        while not self.stop.wait(0.01):
            for r in self.sb.requests():
                doc = r.document_id
                if r.method == "GET" and doc is not None and doc not in self.seen:
                    self.seen.add(doc)
                    due = max(0.0, r.answered_at + self.after - time.time())
                    timer = threading.Timer(due, self.replace, (doc,))
                    self.timers.append(timer)
                    timer.start()

    def replace(self, doc: str) -> None:
        self.made[doc] = self.sb.make_draft(doc)

    def __enter__(self) -> AnotherUser:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        for timer in self.timers:
            timer.join()


@pytest.mark.skipif(not pairing_claims_two(), reason="needs the rate budget's paired claims")
def test_the_delete_follows_its_listing_within_a_round_trip_under_a_tight_limit(
    sb: sandbox.Sandbox, tmp_path: Path,
) -> None:
    """Undo of 15 documents at RateLimit(10, 10), each draft replaced by another user 0.5 s
    after its listing: every DELETE is sent well within that half second of its listing's
    answer (the issue measured a 10 s median), and no draft of the other user is archived."""
    kw = {"base_url": sb.base_url, "token": sb.token, "ledger": str(tmp_path / "l.sqlite3"),
          "retry": RetryPolicy(backoff=0.01, backoff_cap=0.05)}
    # The run goes on a key of its own: the undo's key starts with its RateLimit(10, 10).
    made = omni_nb.create_drafts(DOCS, rate_limit=None, **{**kw, "token": sb.add_token()})
    sb.clear_requests()
    with AnotherUser(sb, after=0.5) as other:
        undone = omni_nb.discard_drafts(run_id=made["run_id"].iloc[0],
                                        rate_limit=RateLimit(10, 10.0), **kw)
    assert set(undone["status"]) == {"ok"}
    listed = {r.document_id: r.answered_at for r in reversed(sb.requests()) if r.method == "GET"}
    sent = {r.document_id: r.received_at for r in sb.requests() if r.method == "DELETE"}
    gaps = [sent[doc] - listed[doc] for doc in DOCS]
    assert max(gaps) < 2.0, sorted(gaps)
    archived = {d.identifier for d in sb.archived_drafts()}
    assert archived.isdisjoint(other.made.values())
    assert sorted(sb.drafts().values()) == sorted(other.made.values())
