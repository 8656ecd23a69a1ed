"""What may be sent: document ids and branch UUIDs, checked before anything leaves.

Example:
    >>> check_document_id("doc-0001")
    'doc-0001'
"""

from __future__ import annotations

import re
import uuid

from .._text import quoted
from ..errors import InvalidInputError

__all__ = ["MAX_DOCUMENT_ID_LENGTH", "check_branch_id", "check_document_id"]

MAX_DOCUMENT_ID_LENGTH = 256
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Omni document ids and slugs are URL path material: RFC 3986 unreserved characters only.
_DOC_ID = re.compile(r"^[A-Za-z0-9._~-]+$")


def check_document_id(document_id: object) -> str:
    """Return the id to send, or raise :class:`InvalidInputError` naming it.

    Omni ids and slugs are path material: letters, digits and ``- . _ ~``, at most 256
    characters. Anything else (``/``, ``?``, ``#``, spaces, control characters, look-alike
    letters) is refused rather than sent: nothing malformed leaves the machine.

    Example:
        >>> check_document_id(" 93874a87 ")
        '93874a87'
        >>> check_document_id("../x")
        Traceback (most recent call last):
        ...
        omni_nb.errors.InvalidInputError: document id '../x': '/' is not allowed ...
    """
    if isinstance(document_id, bool) or not isinstance(document_id, str):
        raise InvalidInputError(
            f"document id {quoted(document_id)}: must be a string, not {type(document_id).__name__}"
        )
    value = document_id.strip()
    if not value:
        raise InvalidInputError(f"document id {quoted(document_id)}: empty")
    if len(value) > MAX_DOCUMENT_ID_LENGTH:
        raise InvalidInputError(
            f"document id {quoted(value)}: {len(value)} characters, "
            f"at most {MAX_DOCUMENT_ID_LENGTH}"
        )
    if not _DOC_ID.match(value):
        bad = next(ch for ch in value if not _DOC_ID.match(ch))
        raise InvalidInputError(
            f"document id {quoted(value)}: {quoted(bad)} is not allowed (ids use letters, digits "
            "and - . _ ~)"
        )
    if set(value) == {"."}:
        raise InvalidInputError(f"document id {quoted(value)}: a path step, not an id")
    return value


def check_branch_id(branch_id: object) -> str | None:
    """Return the canonical (lower-case) branch UUID, None for no branch, or raise.

    Example:
        >>> check_branch_id("7C9E6679-7425-40DE-944B-E07FC1F90AE7")
        '7c9e6679-7425-40de-944b-e07fc1f90ae7'
        >>> check_branch_id(None) is None
        True
    """
    if branch_id is None:
        return None
    if isinstance(branch_id, uuid.UUID):
        return str(branch_id)
    if not isinstance(branch_id, str):
        raise InvalidInputError(
            f"branch id {quoted(branch_id)}: must be a UUID string, not {type(branch_id).__name__}"
        )
    value = branch_id.strip()
    if not _UUID.match(value):
        raise InvalidInputError(
            f"branch id {quoted(branch_id)}: not a UUID (expected like "
            "7c9e6679-7425-40de-944b-e07fc1f90ae7)"
        )
    return value.lower()
