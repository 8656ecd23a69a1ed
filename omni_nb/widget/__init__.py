"""DraftForm: an ipywidgets form for creating drafts (the only package, with the magic's live
display, that imports ipywidgets).

The form has a connection (instance or base URL, a token field, a line saying which instance
is used and where it and the token come from), documents (one id per line,
plus a searchable, paged picker filled from ``GET /v1/documents``), a branch (a dropdown
filled from ``GET /v1/models?modelKind=BRANCH``, "no branch", or a typed UUID), concurrency,
Create and Cancel buttons, a live progress bar with counts per status, and an output area
with the results table and its summary; after a run, "Discard these drafts" and "Show
drafts".

The token is never kept in a widget: the token field is emptied as soon as its value reaches
the kernel (and its value is not echoed back to the browser), so the notebook's saved widget
state never holds it. Work (listing, the batch) runs on a background worker, so the kernel
stays responsive and Cancel works; widget updates from that thread reach the browser live.

The form is a composition of parts, each owning its widgets and its state; they talk
through a few public methods and callbacks that :class:`DraftForm` wires together:

* :mod:`.form`: :class:`DraftForm`: composes the parts, lays them out, keeps the public API.
* :mod:`.panel`: :class:`~.panel.RunPanel`: the status line, the progress bar and counts,
  the output area; every part reports through it.
* :mod:`.worker`: :class:`~.worker.Worker`: the background queue (:mod:`.jobs`: one job at a
  time on a single-worker executor), the batch options and the concurrency box.
* :mod:`.connect`: :class:`~.connect.Connector`: the connection fields (:mod:`.connection`:
  the settings they resolve to, the listing that checks them), Connect, the connection line.
* :mod:`.documents` and :mod:`.picker`: the documents box; the document picker (search,
  pages, "add") and the branch choice.
* :mod:`.create`: :class:`~.create.CreateRun`: Create and Cancel, the batch, its table.
* :mod:`.lifecycle`: :class:`~.lifecycle.AfterRun`: after a run, "Discard these drafts" (a
  dry run, a confirmation naming how many drafts will be discarded and skipped, then the
  careful discard) and "Show drafts".
* :mod:`.live`: running a batch (create, discard, listing) with the progress live.

Example:
    >>> from omni_nb import sandbox
    >>> with sandbox.serve(documents=5, rate_limit=None) as sb:
    ...     form = DraftForm(sb.base_url, sb.token, ledger="off")
    ...     form.documents.value = "doc-0001\\ndoc-0002"
    ...     table = form.submit(wait=True)
    >>> list(table["status"])
    ['ok', 'ok']
"""

from .form import DraftForm
from .picker import NO_BRANCH, OTHER_BRANCH

__all__ = ["NO_BRANCH", "OTHER_BRANCH", "DraftForm"]
