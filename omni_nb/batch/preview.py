"""The discard check's preview: a short list of the drafts a discard will archive and of those
it will skip, grouped by why, read from the check's dry-run table (one row per document it
listed; each message says "would discard draft X" or why not).

The form and ``omni-nb discard`` show it instead of the dry-run table before they ask: an
analyst deciding whether to confirm needs which documents lose a draft and why the others
keep theirs, not the requests. The table itself stays available (``form.lifecycle.checked``,
``discard_drafts(..., dry_run=True)``).

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"document_id": ["doc-1", "doc-2"], "branch_id": [None, None],
    ...     "message": ["would discard draft 1a2b3c4d",
    ...                 "would skip: made before the run: draft 9f8e7d6c was created ..."]})
    >>> print(DiscardPreview.of(frame).text())
    Will archive 1 draft: doc-1 (draft 1a2b3c4d)
    Will skip 1 document:
      made before the run: doc-2
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._text import plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LISTED", "DiscardPreview", "reason_of"]

#: Documents named per group at most; the rest are counted ("and 12 more").
LISTED = 8

_DISCARD = "would discard draft "
#: Reasons as the check words them, and as the preview says them.
_SAID = {"listing its drafts": "its drafts could not be listed"}


def reason_of(message: str) -> tuple[str, str]:
    """Why a checked row will not be discarded, and the rest of its message: the text before
    the message's first colon, once "would skip: " or "would not send: " is dropped.

    Example:
        >>> reason_of("would skip: replaced since: the active draft is b2, not a1 (the run's)")
        ('replaced since', "the active draft is b2, not a1 (the run's)")
        >>> reason_of("")
        ('no reason given', '')
    """
    text = message.removeprefix("would skip: ").removeprefix("would not send: ")
    reason, _, detail = text.partition(":")
    return reason.strip() or "no reason given", detail.strip()


@dataclass(frozen=True, slots=True)
class DiscardPreview:
    """What a discard will do, from its check: ``archive`` holds (document, draft) pairs,
    ``skip`` the documents it leaves alone (a draft it did not make, or none to archive), by
    reason (commonest first).

    Example:
        >>> import pandas as pd
        >>> p = DiscardPreview.of(pd.DataFrame({"document_id": ["a"], "message": [
        ...     "would not send: no active draft: draft x1 is already archived"]}))
        >>> p.archive, p.skip
        ([], {'no active draft': ['a']})
    """

    archive: list[tuple[str, str]] = field(default_factory=list)
    skip: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> DiscardPreview:
        """Read a discard's dry-run table: its ``message`` column, and ``document_id`` and
        ``branch_id`` to name the documents (when present)."""
        archive: list[tuple[str, str]] = []
        skip: dict[str, list[str]] = {}
        absent = [None] * len(frame)
        docs, branches = (list(frame[c]) if c in frame.columns else absent
                          for c in ("document_id", "branch_id"))
        for doc, branch, message in zip(docs, branches, frame["message"].astype(str),
                                        strict=True):
            name = _name(doc, branch)
            if message.startswith(_DISCARD):
                archive.append((name, message.removeprefix(_DISCARD).split()[0]))
            else:
                skip.setdefault(reason_of(message)[0], []).append(name)
        ranked = dict(sorted(skip.items(), key=lambda kv: -len(kv[1])))
        return cls(archive, ranked)

    def reasons(self) -> Counter[str]:
        """How many documents each reason skips.

        Example:
            >>> DiscardPreview([], {"replaced since": ["a", "b"]}).reasons()
            Counter({'replaced since': 2})
        """
        return Counter({reason: len(docs) for reason, docs in self.skip.items()})

    def text(self) -> str:
        """The preview as plain text (a saved notebook, a terminal).

        Example:
            >>> print(DiscardPreview([("a", "d1")], {}).text())
            Will archive 1 draft: a (draft d1)
        """
        archive = _listed([f"{doc} (draft {d})" for doc, d in self.archive])
        lines = [f"Will archive {plural(len(self.archive), 'draft')}: {archive}"
                 if self.archive else "Nothing will be archived."]
        skipped = sum(len(docs) for docs in self.skip.values())
        if skipped:
            lines.append(f"Will skip {plural(skipped, 'document')}:")
            lines += [f"  {_SAID.get(r, r)}: {_listed(docs)}" for r, docs in self.skip.items()]
        return "\n".join(lines)

    def html(self) -> str:
        """The preview as HTML (escaped), for the form's output area.

        Example:
            >>> "<li>replaced since (1): a</li>" in DiscardPreview([], {"replaced since":
            ...     ["a"]}).html()
            True
        """
        archive = _listed([f"{doc} (draft {d})" for doc, d in self.archive])
        parts = [f"<b>Will archive {plural(len(self.archive), 'draft')}</b> the run "
                 f"created: {html.escape(archive)}" if self.archive else
                 "<b>Nothing will be archived.</b>"]
        skipped = sum(len(docs) for docs in self.skip.values())
        if skipped:
            items = "".join(
                f"<li>{html.escape(_SAID.get(r, r))} ({len(docs)}): "
                f"{html.escape(_listed(docs))}</li>" for r, docs in self.skip.items())
            parts.append(f"<b>Will skip {plural(skipped, 'document')}</b>, and why:"
                         f"<ul style='margin:2px 0'>{items}</ul>")
        parts.append("<small>Nothing is archived until you confirm. Each document's "
                     "reason: <code>form.lifecycle.checked</code>.</small>")
        return "<div>" + "<br>".join(parts) + "</div>"


def _name(doc: object, branch: object) -> str:
    # A branch id is a UUID: its first group names it well enough in a short list.
    text = str(doc)
    if isinstance(branch, str) and branch:
        text += f" (branch {branch.split('-')[0]})"
    return text


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")
