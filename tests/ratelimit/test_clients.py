"""The clients take a caller of their key's limiter: their limit is a lease while they are
open, closing them ends it, and a client on None or the default never loosens it."""

from __future__ import annotations

from omni_nb import OmniClient, RateLimit, sandbox
from omni_nb.ratelimit import Caller


def test_a_client_holds_the_key_with_its_limit_until_it_is_closed() -> None:
    """A client at 1 per 60 s sends once: a second client on None (login's check) on the
    same key waits for it and says why, also once the first is closed (its send is still in
the window)."""
    with sandbox.serve(rate_limit=None) as sb:
        docs = [d.identifier for d in sb.documents if d.eligible]
        strict = OmniClient(base_url=sb.base_url, token=sb.token, rate_limit=RateLimit(1, 60.0))
        loose = OmniClient(base_url=sb.base_url, token=sb.token, rate_limit=None)
        try:
            assert isinstance(strict.limiter, Caller)
            assert strict.limiter.limit == RateLimit(1, 60.0)
            strict.create_draft(docs[0])
            assert loose.limiter.next_send_in() > 59
            assert loose.limiter.holding() == "another caller's 1 per 60 s"
            strict.close()
            # Its send is still in the window: the lease runs out one window after it.
            assert loose.limiter.next_send_in() > 58
        finally:
            strict.close()
            loose.close()
