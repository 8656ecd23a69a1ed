"""Running a batch in the form with its progress live: the bar, the counts per status, the
waiting line (the rate budget, a 429 pause) redrawn every second. Creating, discarding and
listing drafts all run through :func:`run_live`, which draws on a :class:`~.panel.RunPanel`.

Example:
    >>> from omni_nb.batch import BatchOptions
    >>> from omni_nb.config import resolve_settings
    >>> panel = RunPanel()
    >>> run_live(panel, "Nothing to do…", 0, resolve_settings("https://a.omniapp.co", "t"),
    ...          BatchOptions(rate_limit=None), lambda progress: "done")
    'done'
    >>> panel.message.value
    '<span style="color:inherit">Nothing to do…</span>'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..batch import BatchOptions, Progress
from ..batch.budget import budget_for
from ..config import Settings
from .panel import RunPanel

if TYPE_CHECKING:
    from .form import DraftForm

__all__ = ["run_live"]

T = TypeVar("T")


def run_live(panel: RunPanel | DraftForm, doing: str, total: int, settings: Settings,
             options: BatchOptions, work: Callable[[Progress], T]) -> T:
    """Run ``work(progress)`` (in a job's thread) with the panel's output cleared, its status
    line saying ``doing`` and its bar and counts live, waits included (what the keys of
    ``settings`` allow at ``options.rate_limit``); the last result is drawn.

    Passing the form instead of its panel (``run_live(form, ...)``, as before the form was
    split into parts) still works, with a :class:`DeprecationWarning`: pass ``form.panel``.

    Example:
        >>> from omni_nb.batch import BatchOptions
        >>> from omni_nb.config import resolve_settings
        >>> run_live(RunPanel(), "Listing…", 1, resolve_settings("https://a.omniapp.co", "t"),
        ...          BatchOptions(rate_limit=None), lambda progress: 7)
        7
    """
    if not isinstance(panel, RunPanel):
        warnings.warn("run_live(form, ...) is deprecated: pass form.panel, the form's "
                      "RunPanel", DeprecationWarning, stacklevel=2)
        panel = panel.panel
    return panel.run(doing, total, work, budget_for(settings, options.rate_limit))
