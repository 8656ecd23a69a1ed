"""The one colour rule of every progress display (stdlib only): each row status has a tone,
a batch's bar takes the worst tone it has seen, and each medium says a tone its own way (a
widget's ``bar_style`` and a CSS colour, an ANSI colour on a terminal).

Tones are ipywidgets' bar styles: ``""`` (running, nothing to say), ``success``, ``warning``,
``danger``. The rule:

* a row ``ok`` is ``success``; ``cancelled`` is ``danger`` (work that was not done); every
  other status (a failure, an ``invalid`` input, a ``skipped`` draft) is ``warning``;
* while the batch runs the bar says nothing, or ``warning`` while sending is held back (the
  rate budget, a 429 pause);
* at the end: ``danger`` when the batch was stopped (cancelled, failed, interrupted: fewer
  rows than items), else the worst tone of its rows.

Example:
    >>> from collections import Counter
    >>> outcome(Counter(ok=2, not_found=1), done=3, total=3, final=True)
    'warning'
    >>> paint_html("success", "ok 2")
    '<span style="color:#1a7f37">ok 2</span>'
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Literal

from ..rows import STATUSES

__all__ = ["ANSI", "CSS", "TONES", "Tone", "ended", "outcome", "paint_ansi", "paint_html",
           "tone_of"]

Tone = Literal["", "success", "warning", "danger"]

#: The tone of each row status (every one of :data:`omni_nb.rows.STATUSES`).
TONES: dict[str, Tone] = {
    s: "success" if s == "ok" else "danger" if s == "cancelled" else "warning" for s in STATUSES
}
#: How a web page says a tone (GitHub's palette: readable on light and dark themes).
CSS: dict[Tone, str] = {"": "inherit", "success": "#1a7f37", "warning": "#9a6700",
                        "danger": "#cf222e"}
#: How a terminal says a tone (SGR colour codes).
ANSI: dict[Tone, str] = {"": "", "success": "\x1b[32m", "warning": "\x1b[33m",
                         "danger": "\x1b[31m"}


def tone_of(status: str) -> Tone:
    """A row status's tone (a status this version does not know: ``warning``).

    Example:
        >>> tone_of("ok"), tone_of("cancelled"), tone_of("not_found")
        ('success', 'danger', 'warning')
    """
    return TONES.get(status, "warning")


def outcome(counts: Mapping[str, int], *, done: int, total: int, final: bool,
            held: bool = False, stopped: bool = False) -> Tone:
    """The tone of a batch's bar now: see the module docstring for the rule.

    Example:
        >>> outcome({"ok": 1}, done=1, total=3, final=False, held=True)
        'warning'
        >>> outcome({"ok": 3}, done=3, total=3, final=True)
        'success'
        >>> outcome({"ok": 1}, done=1, total=3, final=True)  # stopped early
        'danger'
    """
    if not final:
        return "warning" if held else ""
    tones = [tone_of(status) for status, n in counts.items() if n]
    # A cancelled row is work not done: the batch reads as stopped, as a short one does.
    stopped = stopped or done < total or "danger" in tones
    return ended(all(t == "success" for t in tones), stopped=stopped)


def ended(ok: bool, *, stopped: bool = False) -> Tone:
    """The tone of a finished batch from its verdict: ``danger`` when it was stopped, else
    ``success`` when every row was ok, else ``warning`` (the rule's last line, for a display
    that judged its rows itself).

    Example:
        >>> ended(True), ended(False), ended(True, stopped=True)
        ('success', 'warning', 'danger')
    """
    if stopped:
        return "danger"
    return "success" if ok else "warning"


def paint_html(tone: Tone, text: str) -> str:
    """``text`` (escaped) in the tone's colour, for an HTML line.

    Example:
        >>> paint_html("", "a<b")
        'a&lt;b'
    """
    if not tone:
        return html.escape(text)
    return f'<span style="color:{CSS[tone]}">{html.escape(text)}</span>'


def paint_ansi(tone: Tone, text: str) -> str:
    """``text`` in the tone's terminal colour (reset after it).

    Example:
        >>> paint_ansi("danger", "x") == "\\x1b[31mx\\x1b[0m"
        True
    """
    return f"{ANSI[tone]}{text}\x1b[0m" if tone else text
