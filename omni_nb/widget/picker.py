"""The form's two pickers: the searchable, paged document list and the branch choice.

Both are filled from a connection check (:func:`~omni_nb.widget.connection.list_instance`)
and know nothing of the connection or the batch.

Example:
    >>> added = []
    >>> docs = DocumentPicker(add=added.extend)
    >>> docs.set_documents([{"identifier": "doc-1", "name": "Sales"}])
    >>> docs.choices.options
    (('Sales · doc-1', 'doc-1'),)
    >>> docs.add_all.click()
    >>> added
    ['doc-1']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w

from ..client import check_branch_id
from ..errors import InvalidInputError

__all__ = ["NO_BRANCH", "OTHER_BRANCH", "PICKER_PAGE", "BranchPicker", "DocumentPicker", "matches"]

NO_BRANCH = ""
OTHER_BRANCH = "\x00other"  # cannot be a UUID, so it never collides with a real branch id
PICKER_PAGE = 50


def matches(records: Sequence[dict[str, Any]], query: str) -> list[tuple[str, str]]:
    """(label, identifier) of the documents whose name or id contains ``query`` (any case).

    Example:
        >>> matches([{"identifier": "doc-1", "name": "Sales"}, {"identifier": "doc-2"},
        ...          {"name": "no id"}], "DOC")
        [('Sales · doc-1', 'doc-1'), ('doc-2', 'doc-2')]
    """
    query = query.strip().lower()
    found: list[tuple[str, str]] = []
    for record in records:
        identifier = record.get("identifier")
        if not isinstance(identifier, str) or not identifier:
            continue
        name = str(record.get("name") or "")
        if query and query not in name.lower() and query not in identifier.lower():
            continue
        found.append((f"{name} · {identifier}" if name else identifier, identifier))
    return found


class DocumentPicker:
    """A search box over the listed documents, pages of :data:`PICKER_PAGE`, and buttons that
    hand the chosen identifiers to ``add``.

    Example:
        >>> picker = DocumentPicker(add=print)
        >>> picker.page_label.value
        'no documents listed'
        >>> picker.set_documents([{"identifier": f"d{i}"} for i in range(120)])
        >>> picker.next_page.click()
        >>> picker.page_label.value
        '51–100 of 120'
    """

    def __init__(self, add: Callable[[list[str]], None]) -> None:
        self._documents: list[dict[str, Any]] = []
        self._matches: list[tuple[str, str]] = []
        self._page = 0
        self.search = w.Text(placeholder="search documents by name or id",
                             layout=w.Layout(width="380px"))
        self.choices = w.SelectMultiple(options=[], rows=8, layout=w.Layout(width="380px"))
        self.prev_page = w.Button(icon="chevron-left", tooltip="previous page",
                                  layout=w.Layout(width="36px"))
        self.next_page = w.Button(icon="chevron-right", tooltip="next page",
                                  layout=w.Layout(width="36px"))
        self.page_label = w.Label(value="no documents listed")
        self.add_selected = w.Button(description="Add selected", icon="plus",
                                     layout=w.Layout(width="120px"))
        self.add_all = w.Button(description="Add all", layout=w.Layout(width="130px"))
        #: The picker's part of the form.
        self.box = w.VBox([
            self.search, self.choices,
            w.HBox([self.prev_page, self.page_label, self.next_page]),
            w.HBox([self.add_selected, self.add_all]),
        ])
        self.search.observe(lambda _: self._filter(), names="value")
        self.prev_page.on_click(lambda _: self._turn(-1))
        self.next_page.on_click(lambda _: self._turn(+1))
        self.add_selected.on_click(lambda _: add(list(self.choices.value)))
        self.add_all.on_click(lambda _: add([i for _, i in self._matches]))
        self._filter()

    def set_documents(self, records: list[dict[str, Any]]) -> None:
        """Replace the listed documents (back to the first page of the current search).

        Example:
            >>> DocumentPicker(add=print).set_documents([])
        """
        self._documents = records
        self._filter()

    def _filter(self) -> None:
        self._matches = matches(self._documents, self.search.value)
        self._page = 0
        self._show_page()

    def _turn(self, step: int) -> None:
        self._page += step
        self._show_page()

    def _show_page(self) -> None:
        total = len(self._matches)
        pages = max(1, -(-total // PICKER_PAGE))
        self._page = min(max(self._page, 0), pages - 1)
        start = self._page * PICKER_PAGE
        chunk = self._matches[start:start + PICKER_PAGE]
        self.choices.options = chunk
        self.prev_page.disabled = self._page == 0
        self.next_page.disabled = self._page >= pages - 1
        # The count on the button: a click adds that many, every page of the search.
        self.add_all.description = f"Add all {total}" if total else "Add all"
        self.add_all.tooltip = (f"add the {total} documents matching the search (all pages); "
                                "the form then says how long they take at the rate limit")
        if not self._documents:
            self.page_label.value = "no documents listed"
        elif not total:
            self.page_label.value = "no match"
        else:
            self.page_label.value = f"{start + 1}–{start + len(chunk)} of {total}"


class BranchPicker:
    """The branch dropdown ("no branch", the listed branches, "other") and the UUID box that
    "other" enables.

    Example:
        >>> branches = BranchPicker()
        >>> branches.set_branches([{"id": "0b1c2d3e-0000-4000-8000-000000000001", "name": "b"}])
        >>> [label for label, _ in branches.dropdown.options]
        ['no branch', 'b (0b1c2d3e)', 'other: type a UUID…']
        >>> branches.branch_id() is None
        True
    """

    def __init__(self) -> None:
        self.dropdown = w.Dropdown(options=_branch_options([]), value=NO_BRANCH,
                                   description="Branch", layout=w.Layout(width="420px"))
        self.uuid = w.Text(placeholder="branch UUID", disabled=True,
                           layout=w.Layout(width="320px"))
        self.dropdown.observe(self._changed, names="value")

    def set_branches(self, records: Sequence[dict[str, Any]]) -> None:
        """Offer these branches, keeping the choice when it is still offered.

        Example:
            >>> BranchPicker().set_branches([])
        """
        keep = self.dropdown.value
        options = _branch_options(records)
        self.dropdown.options = options
        self.dropdown.value = keep if any(v == keep for _, v in options) else NO_BRANCH

    def branch_id(self) -> str | None:
        """The chosen branch (None for no branch); :class:`InvalidInputError` for a typed
        value that is not a UUID.

        Example:
            >>> branches = BranchPicker()
            >>> branches.dropdown.value = OTHER_BRANCH
            >>> branches.uuid.value = "0B1C2D3E-0000-4000-8000-000000000001"
            >>> branches.branch_id()
            '0b1c2d3e-0000-4000-8000-000000000001'
        """
        chosen = self.dropdown.value
        if chosen == OTHER_BRANCH:
            typed = self.uuid.value.strip()
            if not typed:
                raise InvalidInputError("Enter the branch UUID, or pick a branch.")
            return check_branch_id(typed)
        return check_branch_id(chosen) if chosen else None

    def _changed(self, change: dict[str, Any]) -> None:
        self.uuid.disabled = change["new"] != OTHER_BRANCH


def _branch_options(records: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    options = [("no branch", NO_BRANCH)]
    for record in records:
        branch_id = record.get("id")
        if isinstance(branch_id, str) and branch_id:
            name = record.get("name") or "(unnamed)"
            options.append((f"{name} ({branch_id[:8]})", branch_id))
    options.append(("other: type a UUID…", OTHER_BRANCH))
    return options
