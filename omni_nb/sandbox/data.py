"""What the sandbox serves and records: seeded documents, branches and models, drafts, requests.

Nothing here answers a request or touches a socket; :mod:`.state` decides the answers
from these records and :mod:`.server` carries them over HTTP.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import urllib.parse
import uuid
from collections.abc import Iterable, Sequence
from typing import Final, Literal

__all__ = [
    "EDITOR_NAME",
    "EPOCH",
    "JSON",
    "Catalog",
    "RequestRecord",
    "Role",
    "SandboxBranch",
    "SandboxDocument",
    "SandboxDraft",
    "folder_id",
    "iso",
    "owner_id",
    "resolve_documents",
    "seed_documents",
    "timestamp",
]

Role = Literal["editor", "viewer", "invalid", "missing"]
JSON = dict[str, object]

# Every seeded ID is a uuid5 in this namespace, so branch ids are the same in
# every run, on every machine, and notebooks can hard-code them.
_NAMESPACE: Final = uuid.UUID("e4b152d4-80ca-58ba-9dc0-4581ce98831d")
EPOCH: Final = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
#: The user every editor token acts as: drafts show it as ``createdBy``/``lastEditedBy``.
EDITOR_NAME: Final = "Sandbox Editor"
#: Who made the drafts :meth:`Sandbox.make_draft` makes by default: another user of Omni.
OTHER_NAME: Final = "Another Editor"


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxDocument:
    """A document the sandbox knows; ``folder`` is a path, ``owner`` a name.

    Example::

        doc = SandboxDocument("q3-revenue", "Q3 revenue", eligible=False)
        with serve(documents=[doc]) as sb:
            ...  # creating a draft of "q3-revenue" gives 400
    """

    identifier: str
    name: str
    eligible: bool = True
    folder: str = "Shared"
    owner: str = "Sandbox Owner"
    updated_at: str = "2025-01-01T00:00:00.000Z"
    has_dashboard: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxBranch:
    """A model branch; ``id`` is the ``branchId`` to send.

    Example::

        with serve() as sb:
            body = {"branchId": sb.branches[0].id}
    """

    id: str
    name: str
    base_model_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class RequestRecord:
    """What one request brought and what it got; never holds the token.

    ``path`` is the raw request target path (still percent-encoded), ``query``
    the raw query string, ``status`` is 0 for a dropped connection, and
    ``document_id`` is the decoded ``{documentId}`` segment on the draft
    routes (None elsewhere).

    Example::

        with serve() as sb:
            ...
            [r.status for r in sb.requests() if r.method == "POST"]
    """

    method: str
    path: str
    query: str
    document_id: str | None
    branch_id: str | None
    body: bytes
    role: Role
    has_authorization: bool
    user_agent: str | None
    status: int
    draft_id: str | None
    received_at: float
    answered_at: float
    thread: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxDraft:
    """A draft the sandbox created: active, or archived by ``DELETE .../draft``.

    ``created_at`` and ``archived_at`` are ``time.time()`` values (seconds,
    UTC epoch) taken when the sandbox created or archived the draft; the
    drafts list shows them (cut to the millisecond) as ``createdAt`` and,
    for an archived draft, ``updatedAt``. Archived drafts are kept for the
    sandbox's life (Omni keeps them 30 days). ``created_by`` is the user the
    listing names (the editor tokens' user, or another one's).

    Example:

        >>> draft = SandboxDraft("1a2b3c4d", "doc-0001", None, created_at=1735689600.0)
        >>> draft.status, draft.active
        ('active', True)
        >>> archived = dataclasses.replace(draft, archived_at=1735689601.5)
        >>> archived.status, archived.updated_at
        ('archived', 1735689601.5)
    """

    identifier: str
    document_id: str
    branch_id: str | None
    created_at: float
    archived_at: float | None = None
    created_by: str = EDITOR_NAME

    @property
    def active(self) -> bool:
        """True until the draft is archived."""
        return self.archived_at is None

    @property
    def status(self) -> Literal["active", "archived"]:
        """``"active"`` or ``"archived"``, as the drafts list shows it."""
        return "active" if self.archived_at is None else "archived"

    @property
    def updated_at(self) -> float:
        """When the draft last changed: its archiving, else its creation."""
        return self.created_at if self.archived_at is None else self.archived_at


def timestamp(seconds: float) -> str:
    """A ``time.time()`` value as Omni writes timestamps: UTC, milliseconds, ``Z``.

    The milliseconds are cut, not rounded (as JavaScript's ``toISOString`` does
    with a Date), so the text is never later than the moment.

    Example:

        >>> timestamp(1735689600.0009), timestamp(1735689601.9999)
        ('2025-01-01T00:00:00.000Z', '2025-01-01T00:00:01.999Z')
    """
    whole = math.floor(seconds)
    millis = min(999, int((seconds - whole) * 1000))
    moment = datetime.datetime.fromtimestamp(whole, datetime.UTC)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{millis:03d}Z"


def iso(moment: datetime.datetime) -> str:
    """Omni's timestamp form, milliseconds always zero here.

    Example:

        >>> iso(EPOCH)
        '2025-01-01T00:00:00.000Z'
    """
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def seed_documents(count: int) -> list[SandboxDocument]:
    """Return the deterministic documents ``serve(documents=count)`` seeds.

    Every 10th document is not eligible; names, folders and owners cycle with
    the index.

    Example::

        >>> [d.identifier for d in seed_documents(3)]
        ['doc-0001', 'doc-0002', 'doc-0003']
        >>> seed_documents(10)[-1].eligible
        False
    """
    if count < 0:
        raise ValueError(f"documents must be >= 0, got {count}")
    topics = ("Revenue", "Pipeline", "Churn", "Marketing", "Inventory", "Support", "Finance")
    folders = ("Shared/Sales", "Shared/Marketing", "Shared/Finance", "Personal/Analyst")
    owners = ("Ada Lovelace", "Grace Hopper", "Katherine Johnson", "Barbara Liskov", "Alan Turing")
    docs = []
    for i in range(1, count + 1):
        updated = EPOCH + datetime.timedelta(hours=i)
        docs.append(
            SandboxDocument(
                identifier=f"doc-{i:04d}",
                name=f"{topics[(i - 1) % len(topics)]} overview {i:04d}",
                eligible=i % 10 != 0,
                folder=folders[(i - 1) % len(folders)],
                owner=owners[(i - 1) % len(owners)],
                updated_at=iso(updated),
                has_dashboard=i % 3 != 0,
            )
        )
    return docs


def resolve_documents(documents: int | Iterable[SandboxDocument]) -> list[SandboxDocument]:
    """``serve(documents=...)``: a count to seed, or the documents themselves (checked).

    Example:

        >>> len(resolve_documents(4)), resolve_documents([SandboxDocument("a", "A")])[0].name
        (4, 'A')
    """
    if isinstance(documents, bool):
        raise TypeError("documents must be an int or an iterable of SandboxDocument")
    docs = seed_documents(documents) if isinstance(documents, int) else list(documents)
    for doc in docs:
        if not isinstance(doc, SandboxDocument):
            raise TypeError(f"documents must hold SandboxDocument, got {type(doc).__name__}")
    return docs


def folder_id(path: str) -> str:
    """The stable id of a folder path (folders exist only as paths here)."""
    return str(uuid.uuid5(_NAMESPACE, f"folder/{path}"))


def owner_id(name: str) -> str:
    """The stable id of an owner name."""
    return str(uuid.uuid5(_NAMESPACE, f"owner/{name}"))


class Catalog:
    """The seeded documents, the fixed connection, models and branches; read-only once built.

    Example:

        >>> catalog = Catalog(seed_documents(2))
        >>> [b.name for b in catalog.branches]
        ['feature-a', 'feature-b', 'feature-c']
        >>> catalog.branches[0].id
        '081c8cec-a997-5c87-9f41-00dd4e31bc04'
    """

    def __init__(self, documents: Sequence[SandboxDocument]) -> None:
        self.documents = tuple(documents)
        self.doc_by_id = {d.identifier: d for d in self.documents}
        if len(self.doc_by_id) != len(self.documents):
            raise ValueError("document identifiers must be unique")
        self.connection_id = str(uuid.uuid5(_NAMESPACE, "connection/sandbox"))
        self.schema_model_id = str(uuid.uuid5(_NAMESPACE, "model/sandbox_schema"))
        self.shared_model_id = str(uuid.uuid5(_NAMESPACE, "model/sandbox"))
        self.branches = tuple(
            SandboxBranch(str(uuid.uuid5(_NAMESPACE, f"branch/{name}")), name, self.shared_model_id)
            for name in ("feature-a", "feature-b", "feature-c")
        )
        self.branch_by_id = {b.id: b for b in self.branches}

    def document_record(self, doc: SandboxDocument, include: set[str], origin: str) -> JSON:
        """A document as ``GET /documents`` lists it; ``origin`` builds its URL."""
        folder: JSON | None = None
        if doc.folder:
            folder = {
                "id": folder_id(doc.folder),
                "name": doc.folder.rstrip("/").rsplit("/", 1)[-1],
                "path": doc.folder,
                "scope": "organization",
            }
        kind = "dashboards" if doc.has_dashboard else "w"
        record: JSON = {
            "identifier": doc.identifier,
            "name": doc.name,
            "type": "document",
            "scope": "organization",
            "deleted": False,
            "hasDashboard": doc.has_dashboard,
            "connectionId": self.connection_id,
            "description": None,
            "folder": folder,
            "owner": {"id": owner_id(doc.owner), "name": doc.owner},
            "updatedAt": doc.updated_at,
            "url": f"{origin}/{kind}/{urllib.parse.quote(doc.identifier, safe='')}",
        }
        if "_count" in include:
            record["_count"] = {"favorites": 0, "views": 0}
        if "labels" in include:
            record["labels"] = []
        return record

    def draft_record(self, draft: SandboxDraft) -> JSON:
        """A draft as ``GET /documents/{documentId}/drafts`` lists it.

        Example:

            >>> catalog = Catalog(seed_documents(1))
            >>> draft = SandboxDraft("1a2b3c4d", "doc-0001", catalog.branches[0].id, 1735689600.25)
            >>> record = catalog.draft_record(draft)
            >>> record["branch"]["name"], record["status"], record["createdAt"]
            ('feature-a', 'active', '2025-01-01T00:00:00.250Z')
            >>> record["createdBy"] == record["lastEditedBy"] == {"name": EDITOR_NAME}
            True
        """
        branch: JSON | None = None
        if draft.branch_id is not None:
            branch = {"id": draft.branch_id, "name": self.branch_by_id[draft.branch_id].name}
        return {
            "identifier": draft.identifier,
            "publishedIdentifier": draft.document_id,
            "branch": branch,
            "status": draft.status,
            "draftOutOfDate": False,  # nobody publishes the document while the sandbox runs
            "createdAt": timestamp(draft.created_at),
            "updatedAt": timestamp(draft.updated_at),
            "createdBy": {"name": draft.created_by},
            "lastEditedBy": {"name": draft.created_by},
        }

    def model_records(self, with_branches: bool) -> list[JSON]:
        """The SCHEMA model, the SHARED model and its branches, as ``GET /models`` lists them."""
        created = iso(EPOCH)
        # (id, name, kind, base model) of every model; the fields they share follow.
        models = [
            (self.schema_model_id, "sandbox_connection", "SCHEMA", None),
            (self.shared_model_id, "Sandbox model", "SHARED", self.schema_model_id),
        ] + [(b.id, b.name, "BRANCH", b.base_model_id) for b in self.branches]
        records: list[JSON] = [
            {
                "id": model_id,
                "name": name,
                "modelKind": kind,
                "baseModelId": base_model_id,
                "deletedAt": None,
                "connectionId": self.connection_id,
                "createdAt": created,
                "updatedAt": created,
            }
            for model_id, name, kind, base_model_id in models
        ]
        if with_branches:
            for record in records:
                record["branches"] = [
                    {"id": b.id, "name": b.name}
                    for b in self.branches
                    if b.base_model_id == record["id"]
                ]
        return records
