"""A limiter's link to the budget store: usable, down for a while, or made anew.

A store step that fails (locked past the busy timeout, an I/O error, the file deleted or
replaced) does not drop the store for good: the link is *down*, is tried again every
:data:`RETRY_S` (with a short busy timeout, so a locked store never stalls the callers for
long) and is *up* again at the first step that works. A deleted or replaced file, or a Redis
that lost its data (a restart), is opened anew (a fresh store: the limiter seeds it with its
own sends of the window and its leases).
A path that never held a usable store (a directory, another program's file, a read-only
place) is refused when opened (:func:`omni_nb.ratelimit.open_store`) and never retried.
"""

from __future__ import annotations

import math
from enum import Enum

from .store import Store, StoreError

__all__ = ["RETRY_S", "LinkState", "StoreLink"]

RETRY_S = 0.25  # a store that failed is tried again this often
HEAR_S = 1.0  # after an outage, how long a process still unheard may be on its share
REFERENCE_WINDOW = 60.0  # a process seen this long before an outage may still be sending
PATIENT_S, QUICK_S = 1.0, 0.05  # busy timeouts: while up, and while trying again
GONE = "was deleted or replaced"


class LinkState(Enum):
    """What :meth:`StoreLink.ready` found."""

    UP = "up"  # use the store
    FRESH = "fresh"  # use the store, made anew: seed it first
    DOWN = "down"  # do not try now: this process is on its share


class StoreLink:
    """One limiter's view of whether its store can be used now.

    Example:
        >>> import tempfile, os
        >>> from omni_nb.ratelimit.store import BudgetStore
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     link = StoreLink(BudgetStore(os.path.join(tmp, "b.sqlite3")))
        ...     state = link.ready(0.0)
        ...     link.close()
        >>> state
        <LinkState.UP: 'up'>
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.where  # as it may be shown (a Redis address's password masked)
        self.down_since = -math.inf  # -inf while up
        self.reason = ""  # why it is down, in words
        self._retry_at = -math.inf
        self.outages = 0  # how many times it went down
        self.last_outage = (-math.inf, -math.inf)  # (began, ended) of the last one
        self._warned = self._reopened = False

    def clock(self) -> float:
        """The store's time now (a Redis server's, or this machine's wall clock)."""
        return self.store.clock()

    @property
    def gone(self) -> bool:
        """True while down because the file was deleted or replaced."""
        return not self.up and self.reason == GONE

    @property
    def up(self) -> bool:
        """True unless the last step failed."""
        return self.down_since == -math.inf

    def ready(self, now: float) -> LinkState:
        """Whether to try the store now; reopens a deleted or replaced file when it is time."""
        if self.up:
            return LinkState.UP
        if now < self._retry_at:
            return LinkState.DOWN
        self._retry_at = now + RETRY_S
        try:
            moved = self.store.identity() != self.store.opened
        except OSError:
            moved = True  # the file is gone
        except StoreError:
            return LinkState.DOWN  # a server that does not answer: nothing to make anew yet
        if not moved:
            return LinkState.UP
        try:
            fresh = self.store.reopen()
        except StoreError:
            self._reopened = False  # it cannot be made anew now: this outage is a real one
            return LinkState.DOWN
        old, self.store = self.store, fresh
        old.close()
        return LinkState.FRESH

    def failed(self, exc: StoreError, now: float) -> None:
        """Mark the link down after ``exc``; a deleted or replaced file is opened anew at the
        next step (no wait: the store is not busy, it is gone)."""
        if self.up:
            self.outages += 1
            self.down_since = now
            self._warned = False
            text = str(exc)
            gone = "deleted" in text
            self._reopened = gone  # made anew at the next step, it is no outage to speak of
            said = text.removeprefix(f"budget store {self.path}").lstrip(": ")
            self.reason = ("is locked" if "locked" in text or "busy" in text
                           else GONE if gone
                           else said if said.startswith("cannot be reached")
                           else f"cannot be used ({said})")
            self.store.patience(QUICK_S)
            if gone:
                self._retry_at = now
                return
        self._retry_at = now + RETRY_S

    def should_warn(self) -> bool:
        """True once per outage (but not for a deleted file about to be made anew)."""
        if self.up or self._warned or self._reopened:
            return False
        self._warned = True
        return True

    def worked(self, now: float) -> bool:
        """Mark the link up after a step that worked (at ``now``); True when this ends an
        outage."""
        if self.up:
            return False
        self.last_outage = (self.down_since, now)
        self.down_since = -math.inf
        self.store.patience(PATIENT_S)
        return True

    def counted_from(self, procs: dict[str, tuple[float, float]], me: str, now: float
                     ) -> float | None:
        """The moment whose window the processes sharing the key are counted from for this
        process's share, or None when it need not keep to a share. While the store is down:
        when the outage began (the others do not stop because this process no longer sees
        them). For a moment after it (:data:`HEAR_S`, four retries), the same while a
        process seen before it has not written since: that one may still be on its share,
        unseen.

        Example:
            >>> import tempfile, os
            >>> from omni_nb.ratelimit.store import BudgetStore
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     link = StoreLink(BudgetStore(os.path.join(tmp, "b.sqlite3")))
            ...     link.failed(StoreError("database is locked"), 10.0)
            ...     down = link.counted_from({}, "me", 12.0)
            ...     _ = link.worked(13.0)
            ...     after = [link.counted_from({"other": (9.0, 0.0)}, "me", 13.5),
            ...              link.counted_from({"other": (13.2, 0.0)}, "me", 13.5)]
            ...     link.close()
            >>> down, after
            (10.0, [10.0, None])
        """
        if not self.up:
            return min(now, self.down_since)
        began, ended = self.last_outage
        if now >= ended + HEAR_S:
            return None
        unheard = any(label != me and began - REFERENCE_WINDOW < seen < ended
                      for label, (seen, _) in procs.items())
        return began if unheard else None

    def close(self) -> None:
        """Close the store's connection."""
        self.store.close()
