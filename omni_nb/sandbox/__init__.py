"""A local stand-in for Omni's REST API: a real HTTP server on loopback.

The sandbox answers the Create draft endpoint (and the few neighbouring
endpoints the project uses) the way Omni does, including the awkward parts:
three error-body shapes, 403 for an unknown token, a per-token rate limit with
an optional ``Retry-After``, and injected faults (5xx, dropped connections,
slow answers). Tests, the demo command, benchmarks and example notebooks use it
instead of a real Omni instance. It is standard library only and imports
nothing else from ``omni_nb``, so it can never share a bug with the client it
is meant to check.

Example::

    from omni_nb import sandbox
    import httpx

    with sandbox.serve(documents=20, rate_limit=(5, 1.0)) as sb:
        r = httpx.post(
            f"{sb.base_url}/v1/documents/doc-0001/draft",
            headers={"Authorization": f"Bearer {sb.token}"},
            json={"branchId": sb.branches[0].id},
        )
        assert r.status_code == 200 and len(r.json()["identifier"]) == 8

Routes (the API root is ``{sb.url}/api``):

``POST /api/v1/documents/{documentId}/draft``
    Checked in this order: scripted answers (:meth:`Sandbox.enqueue`), auth
    (401 no header, 403 unknown token), rate limit (429), faults (drop, 5xx,
    slow), body (400), document (404), branch (404), viewer role (403),
    eligibility (400); then 200 ``{"identifier": "<8 hex>"}``, one draft per
    (document, branch): the active one while there is one.
``GET /api/v1/documents``
    Paged (``pageSize`` 1..100, default 50; ``cursor``), filters ``folderId``,
    ``creatorId``, ``labels``; ``sortField``/``sortDirection``; other
    documented parameters accepted; unknown ones give 400.
``GET /api/v1/models``
    Paged (``pageSize`` 1..100, default 20), filters ``modelKind``,
    ``baseModelId``, ``modelId``, ``connectionId``, ``name``; one SCHEMA
    model, one SHARED model and the branches (``modelKind=BRANCH``).
``DELETE /api/v1/documents/{documentId}/draft``
    Archives the document's active draft, or that branch's (optional
    ``{"branchId"}``): 200 ``{"message": "Draft discarded successfully"}``.
    Checked like POST (auth, rate limit, faults, body, document, branch,
    viewer role 403); then 404 ``Draft with id {documentId} does not exist``
    when there is no active draft (archiving twice). Archived drafts are kept
    for the sandbox's life; a later POST makes a new draft with a new
    identifier. Not eligible documents simply have no draft to archive.
``GET /api/v1/documents/{documentId}/drafts[?include=archived]``
    A bare JSON list (no paging), creation order: the active drafts, and the
    archived ones too with ``include=archived``. Each record: ``identifier``,
    ``publishedIdentifier``, ``branch`` (``{"id", "name"}`` or null),
    ``status`` (``active``/``archived``), ``draftOutOfDate`` (false),
    ``createdAt``/``updatedAt`` (UTC, milliseconds, ``Z``; ``createdAt`` is
    the real time of creation, ``updatedAt`` that of archiving for an
    archived draft), ``createdBy``/``lastEditedBy`` (``{"name":
    "Sandbox Editor"}``). Viewers may list. 400 for another ``include`` value
    or an unknown parameter, 404 for an unknown document. No faults.

Anything else is 404 ``{"detail": "Not Found", "status": 404}``.

Seeded data: ``documents=N`` gives ``doc-0001`` .. ``doc-{N:04d}``; every 10th
(``doc-0010``, ``doc-0020``, ...) is not eligible for the publishing workflow
(400). Branches are fixed: ``feature-a`` ``081c8cec-a997-5c87-9f41-00dd4e31bc04``,
``feature-b`` ``11c0f8c9-7e50-523f-9be0-f7de1104f2b5``, ``feature-c``
``9bd33108-f31c-5418-94dc-c9637db659f1``, all on the SHARED model
``Sandbox model``.

Faults (``fail_rate``, ``drop_rate``, ``slow_rate``) apply to the two writes,
POST and DELETE; scripted answers (:meth:`Sandbox.enqueue`) to POST only.

Inspection: :meth:`Sandbox.drafts` maps (document, branch) to the active
draft's identifier; :meth:`Sandbox.draft_records` and
:meth:`Sandbox.archived_drafts` give :class:`SandboxDraft` records (status,
exact creation and archiving times)::

    with sandbox.serve(documents=3) as sb:
        auth = {"Authorization": f"Bearer {sb.token}"}
        httpx.post(f"{sb.base_url}/v1/documents/doc-0001/draft", headers=auth)
        httpx.delete(f"{sb.base_url}/v1/documents/doc-0001/draft", headers=auth)
        assert sb.drafts() == {}
        assert [d.status for d in sb.archived_drafts()] == ["archived"]
        listed = httpx.get(f"{sb.base_url}/v1/documents/doc-0001/drafts",
                           params={"include": "archived"}, headers=auth).json()
        assert listed[0]["createdBy"] == {"name": sb.editor_name}

The rate window: :meth:`Sandbox.busiest_window` gives the most requests the rate limit
accepted in any trailing window, on the server's own arrival times (what a client's rate
budget is judged by). ``grace=S`` (``--grace S``) makes the window lenient at its edge, as
some firewalls are: a request it would refuse is accepted when the arrival that has to leave
the window for it leaves within S seconds.

The rest of the world, for undo tests: ``serve(clock_offset=S)`` runs the
sandbox's clock ``S`` seconds from this machine's (its ``Date`` headers,
drafts' ``createdAt`` and ``Retry-After`` dates move together);
:meth:`Sandbox.make_draft` is another user making a draft (the active one is
archived first); :meth:`Sandbox.replace_answer` loses or replaces the answer
to the next create or discard of a document (dropped, a proxy's 502, a 429 or
503), with another user's move just before the answer or some time after it.

Tokens never appear in request records, reprs or log lines: records keep the
caller's *role* only.

Command line: ``python -m omni_nb.sandbox --port 8787`` (see :func:`main`).

Layout (only the names below are public; the modules are how it is built):
``data`` the seeded documents, branches and models and the records;
``drafts`` the active and archived drafts; ``state`` every answer, decided
without sockets; ``server`` HTTP framing, the :class:`Sandbox` handle and
:func:`serve`; ``command`` the command line.
"""

from .command import DEMO_TOKEN, main
from .data import RequestRecord, SandboxBranch, SandboxDocument, SandboxDraft, seed_documents
from .probe import is_sandbox
from .server import MAX_BODY_BYTES, Sandbox, serve

__all__ = [
    "DEMO_TOKEN",
    "MAX_BODY_BYTES",
    "RequestRecord",
    "Sandbox",
    "SandboxBranch",
    "SandboxDocument",
    "SandboxDraft",
    "is_sandbox",
    "main",
    "seed_documents",
    "serve",
]
