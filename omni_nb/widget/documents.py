"""The form's documents box: the ids a run takes, one per line, and what the picker adds to it
(the status line then says how many and how long they take at the rate limit).

Example:
    >>> from omni_nb.widget.panel import RunPanel
    >>> box = DocumentBox(RunPanel(), rate_limit=None)
    >>> box.add(["doc-1", "doc-2", "doc-1"])
    >>> box.ids()
    ['doc-1', 'doc-2']
"""

from __future__ import annotations

import math

import ipywidgets as w

from ..ratelimit import RateLimit
from .panel import RunPanel

__all__ = ["DocumentBox", "batch_time"]


class DocumentBox:
    """The documents text box; :meth:`add` appends ids not yet in it and says so on the
    ``panel``'s status line, with how long the box's batch takes at ``rate_limit``.

    Example:
        >>> panel = RunPanel()
        >>> box = DocumentBox(panel, rate_limit=RateLimit(60, 60))
        >>> box.text.value = "a\\n\\n b \\n"
        >>> box.add(["b", "c"])
        >>> box.ids(), panel.message.value
        (['a', 'b', 'c'], '<span style="color:inherit">Added 1 document (3 in the box); \
the batch takes up to 3 s at 60 requests per minute.</span>')
    """

    def __init__(self, panel: RunPanel, *, rate_limit: RateLimit | None) -> None:
        self._panel = panel
        self._rate_limit = rate_limit
        self.text = w.Textarea(
            placeholder="one document id per line", layout=w.Layout(width="300px", height="190px"),
        )

    def ids(self) -> list[str]:
        """The ids in the box, one per line, blank lines skipped.

        Example:
            >>> box = DocumentBox(RunPanel(), rate_limit=None)
            >>> box.text.value = "x\\n  \\ny"
            >>> box.ids()
            ['x', 'y']
        """
        return [line.strip() for line in self.text.value.splitlines() if line.strip()]

    def add(self, identifiers: list[str]) -> None:
        """Append the ``identifiers`` not in the box yet (the picker's "Add" buttons).

        Example:
            >>> box = DocumentBox(RunPanel(), rate_limit=None)
            >>> box.add(["a"]); box.add(["a", "b"]); box.text.value
            'a\\nb'
        """
        present = self.ids()
        known = set(present)
        added = list(dict.fromkeys(i for i in identifiers if i not in known))
        if added:
            self.text.value = "\n".join([*present, *added])
        total = len(dict.fromkeys([*present, *added]))
        noun = "document" if len(added) == 1 else "documents"
        self._panel.say(f"Added {len(added)} {noun} ({total} in the box)"
                        + batch_time(total, self._rate_limit))


def batch_time(count: int, limit: RateLimit | None) -> str:
    """How long ``count`` drafts take at the rate limit, as the tail of a sentence ("." when
    the limit is off: then the concurrency and the server set the pace).

    The limit allows ``requests`` in any trailing window: with the window's budget unused
    the first ``requests`` go at once (the low end), with it spent every request waits its
    turn (the high end, ``count`` at the limit's rate).

    Example:
        >>> batch_time(300, RateLimit(60, 60))
        '; the batch takes 4–5 min at 60 requests per minute.'
        >>> batch_time(30, RateLimit(60, 60)), batch_time(300, None)
        ('; the batch takes up to 30 s at 60 requests per minute.', '.')
        >>> batch_time(9000, RateLimit(500, 60)), batch_time(5000, RateLimit(1, 10))
        ('; the batch takes 17–18 min at 500 requests per minute.', \
'; the batch takes about 14 h at 1 requests per 10 s.')
    """
    if limit is None or count == 0:
        return "."
    high = count * limit.per / limit.requests
    low = (math.ceil(count / limit.requests) - 1) * limit.per
    scale, unit = (1, "s") if high < 90 else (60, "min") if high < 5400 else (3600, "h")
    low_text, high_text = (str(round(x / scale)) for x in (low, high))
    if low == 0:
        took = f"up to {high_text} {unit}"
    elif low_text == high_text:
        took = f"about {high_text} {unit}"
    else:
        took = f"{low_text}–{high_text} {unit}"
    per = "minute" if limit.per == 60 else f"{limit.per:g} s"
    return f"; the batch takes {took} at {limit.requests} requests per {per}."
