"""The sandbox's drafts: at most one active per (document, branch), and the archived ones.

A draft is created by ``POST .../draft`` and archived by ``DELETE .../draft``;
archived drafts stay (Omni keeps them 30 days, the sandbox for its life) and a
later create makes a new draft with a new identifier. :mod:`.state` decides
the answers; this module only keeps the records, behind one lock.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable

from .data import SandboxDraft

__all__ = ["DraftStore"]

DraftKey = tuple[str, str | None]


class DraftStore:
    """Every draft the sandbox made, in creation order; thread-safe.

    ``clock`` gives the creation and archiving times (``time.time`` unless a
    test passes its own).

    Example:

        >>> store = DraftStore(seed=0, clock=lambda: 1735689600.0)
        >>> first = store.get_or_create("doc-0001", None)
        >>> store.get_or_create("doc-0001", None) == first, len(store)
        (True, 1)
        >>> store.archive("doc-0001", None).status, store.archive("doc-0001", None)
        ('archived', None)
        >>> again = store.get_or_create("doc-0001", None)
        >>> again.identifier != first.identifier, len(store), len(store.records())
        (True, 1, 2)
    """

    def __init__(self, seed: int, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        # Draft ids come from their own stream so that creating drafts does
        # not shift the fault sequence a seed is meant to reproduce.
        self._rng = random.Random(f"omni_nb.sandbox drafts {seed}")
        # identifier -> draft, in creation order; an archived draft keeps its place.
        self._records: dict[str, SandboxDraft] = {}
        # (document, branch) -> identifier of its active draft.
        self._active: dict[DraftKey, str] = {}

    def get_or_create(self, document_id: str, branch_id: str | None) -> SandboxDraft:
        """The active draft of (document, branch), created now if there is none."""
        with self._lock:
            identifier = self._active.get((document_id, branch_id))
            if identifier is not None:
                return self._records[identifier]
            identifier = self._new_id()
            draft = SandboxDraft(identifier, document_id, branch_id, created_at=self._clock())
            self._records[identifier] = draft
            self._active[(document_id, branch_id)] = identifier
            return draft

    def make(self, document_id: str, branch_id: str | None, by: str,
             created_at: float | None = None) -> SandboxDraft:
        """A new active draft of (document, branch) made by user ``by`` (at ``created_at``,
        default now): the active one, if any, is archived first (that user discarded it)."""
        with self._lock:
            now = self._clock()
            old = self._active.pop((document_id, branch_id), None)
            if old is not None:
                self._records[old] = dataclasses.replace(self._records[old], archived_at=now)
            identifier = self._new_id()
            draft = SandboxDraft(identifier, document_id, branch_id,
                                 created_at=now if created_at is None else created_at,
                                 created_by=by)
            self._records[identifier] = draft
            self._active[(document_id, branch_id)] = identifier
            return draft

    def _new_id(self) -> str:
        # Called with the lock held. Ids are never reused, archived drafts
        # included, as Omni's are not.
        while True:
            identifier = f"{self._rng.getrandbits(32):08x}"
            if identifier not in self._records:
                return identifier

    def archive(self, document_id: str, branch_id: str | None) -> SandboxDraft | None:
        """Archive the active draft of (document, branch); None when there is none."""
        with self._lock:
            identifier = self._active.pop((document_id, branch_id), None)
            if identifier is None:
                return None
            draft = dataclasses.replace(self._records[identifier], archived_at=self._clock())
            self._records[identifier] = draft
            return draft

    def of_document(self, document_id: str, archived: bool) -> list[SandboxDraft]:
        """A document's active drafts (and its archived ones too when ``archived``)."""
        with self._lock:
            return [
                d
                for d in self._records.values()
                if d.document_id == document_id and (archived or d.active)
            ]

    def records(self) -> list[SandboxDraft]:
        """Every draft, active and archived, in creation order (a copy)."""
        with self._lock:
            return list(self._records.values())

    def ids(self) -> dict[DraftKey, str]:
        """``{(document identifier, branch id or None): active draft id}``, a copy."""
        with self._lock:
            return dict(self._active)

    def __len__(self) -> int:
        """How many drafts are active."""
        return len(self._active)
