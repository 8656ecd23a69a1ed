"""Progress displays, one family: the tally they all count with, a text bar, a live bar.

* :mod:`.tally`: :class:`Tally` (done/total, counts per status, rate) and :class:`Throttle`
  (redraw at most every N seconds): standard library only.
* :mod:`.text`: :class:`TextProgress`, a one-line text bar (terminals, headless runs).
* :mod:`.live`: :class:`LiveProgress`, the magic's display (a widget bar in a notebook front
  end, text elsewhere) with a countdown while the rate limiter pauses.

The form (:mod:`omni_nb.widget`) draws its own widgets from a :class:`Tally` and a
:class:`Throttle`.

Example:
    >>> from omni_nb.progress import Tally
    >>> Tally(total=3).line()
    '0/3'
"""

from .tally import Tally, Throttle
from .text import TextProgress

__all__ = ["Tally", "TextProgress", "Throttle"]
