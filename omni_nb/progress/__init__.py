"""Progress displays, one family: one renderer per medium, one tally, one colour rule.

* :mod:`.tally`: :class:`Tally` (done/total, counts per status, rate), :class:`Throttle`
  (redraw at most every N seconds), :class:`Ticker`: standard library only.
* :mod:`.style`: the colour rule (a tone per row status, the bar's tone for a batch) and how
  HTML and a terminal say a tone.
* :mod:`.text`: :class:`TextProgress`, the text renderer (terminals, headless runs).
* :mod:`.live`: :class:`WidgetProgress`, the widget renderer, and the magic's
  :class:`~omni_nb.progress.live.LiveProgress`, which picks one of the two.

Both renderers share one interface: ``start(total, budget)``, ``update(done, total, row)``
(also their call, so a renderer is a batch's ``progress=`` callback), ``tick()`` (redraw
now), ``finish(status=None, ...)``.

A front end with its own layout (the form) uses :class:`WidgetProgress` so: build one
(``WidgetProgress(description="drafts", interval=form.redraw_interval)``), put its ``box``
in the layout once, and for each batch call ``start(total, budget)``, pass the renderer as
``progress=``, and call ``finish(status)`` when the batch returns (``"done"``, or
``"cancelled"`` after a Cancel): the bar's value, colour and line, the ticker while sending
waits, and the throttle are the renderer's. ipywidgets is imported only when ``box`` is
first used.

A batch whose caller gave no ``progress=`` shows :func:`.live.watching`'s choice: the widget
bar in a notebook front end, a text bar on a terminal, a few whole lines in a headless
notebook run, nothing in a script with no terminal. A widget bar shown in a kernel ends as a
static summary (HTML and text), so a saved notebook holds no widget whose model is gone.

Example:
    >>> from omni_nb.progress import Tally
    >>> Tally(total=3).line()
    '0/3'
"""

from .live import WidgetProgress
from .tally import Tally, Throttle
from .text import TextProgress

__all__ = ["Tally", "TextProgress", "Throttle", "WidgetProgress"]
