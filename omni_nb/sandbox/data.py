"""What the sandbox serves and records: seeded documents, branches and models, drafts, requests.

Nothing here answers a request or touches a socket; :mod:`.state` decides the answers
from these records and :mod:`.server` carries them over HTTP.
"""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
import uuid
from collections.abc import Iterable, Sequence
from typing import Final, Literal

__all__ = [
    "EPOCH",
    "JSON",
    "Catalog",
    "Draft",
    "RequestRecord",
    "Role",
    "SandboxBranch",
    "SandboxDocument",
    "folder_id",
    "iso",
    "owner_id",
    "resolve_documents",
    "seed_documents",
]

Role = Literal["editor", "viewer", "invalid", "missing"]
JSON = dict[str, object]

# Every seeded ID is a uuid5 in this namespace, so branch ids are the same in
# every run, on every machine, and notebooks can hard-code them.
_NAMESPACE: Final = uuid.UUID("e4b152d4-80ca-58ba-9dc0-4581ce98831d")
EPOCH: Final = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


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
class Draft:
    """A draft the sandbox created, as the drafts list shows it.

    Kept as a record rather than a bare id so that the draft routes can grow
    (e.g. an archived state) without changing how drafts are stored.

    Example:

        >>> Draft("1a2b3c4d", "doc-0001", None).to_json()
        {'identifier': '1a2b3c4d', 'documentIdentifier': 'doc-0001', 'branchId': None}
    """

    identifier: str
    document_id: str
    branch_id: str | None

    def to_json(self) -> JSON:
        return {
            "identifier": self.identifier,
            "documentIdentifier": self.document_id,
            "branchId": self.branch_id,
        }


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
