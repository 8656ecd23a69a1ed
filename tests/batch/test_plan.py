"""The batch's planning side (omni_nb.batch): the one planner, the dry run built on it, the
operations, and BatchOptions. Nothing here sends a request except the one test that checks a
dry run against what a run really sends."""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
import pytest

from omni_nb import InvalidInputError, create_drafts, sandbox
from omni_nb.batch import (
    CREATE_DRAFT,
    BatchOptions,
    CreateDraft,
    dry_run,
    pairs_of,
    plan,
)
from omni_nb.client import Call, RetryPolicy
from omni_nb.ratelimit import RateLimit

ROOT = "https://acme.omniapp.co/api"
B1 = "081c8cec-a997-5c87-9f41-00dd4e31bc04"
B2 = "11c0f8c9-7e50-523f-9be0-f7de1104f2b5"


def shape(items: object, **kwargs: object) -> list[tuple[str, str, str | None, bool, str | None]]:
    """(label, document, branch, valid, first) per planned input."""
    return [(i.label, i.document_id, i.branch_id, i.error is None, i.first)
            for i in plan(items, **kwargs).inputs]  # type: ignore[arg-type]


# -- the planner -------------------------------------------------------------------------------


def test_inputs_are_labelled_item_n_or_by_the_callers_labels() -> None:
    """Inputs are labelled 'item N' or by labels=, and errors start with the label."""
    assert [i.label for i in plan(["a", "b"]).inputs] == ["item 1", "item 2"]
    planned = plan(["a", "../x"], labels=["line 3", "line 4"]).inputs
    assert [i.label for i in planned] == ["line 3", "line 4"]
    assert planned[1].error is not None
    assert planned[1].error.startswith("line 4: document id '../x'")


def test_duplicates_fold_into_the_first_occurrence() -> None:
    """A repeated pair (trimmed, branch case-folded) folds into its first occurrence."""
    p = plan(["a", "b", " a ", ("a", B1), ("a", B1.upper()), "a"])
    assert [(i.label, i.first) for i in p.inputs] == [
        ("item 1", None), ("item 2", None), ("item 3", "item 1"), ("item 4", None),
        ("item 5", "item 4"), ("item 6", "item 1")]
    assert [i.sent for i in p.inputs] == [True, True, False, True, False, False]
    assert [i.label for i in p.distinct] == ["item 1", "item 2", "item 4"]


def test_invalid_duplicates_fold_too() -> None:
    """An invalid input given twice is one invalid row; a different invalid input is its own."""
    p = plan(["../x", "ok", "../x", "a/b"])
    assert [(i.label, i.error is None, i.first) for i in p.inputs] == [
        ("item 1", False, None), ("item 2", True, None), ("item 3", False, "item 1"),
        ("item 4", False, None)]
    assert [i.label for i in p.distinct] == ["item 1", "item 2", "item 4"]
    assert not any(i.sent for i in p.inputs if i.error is not None)


def test_default_branch_applies_only_where_an_input_has_none() -> None:
    """branch_id= fills only inputs without a branch; an input's own branch wins."""
    assert shape(["a", ("b", B2), ("c", None), ("a", B1)], branch_id=B1.upper()) == [
        ("item 1", "a", B1, True, None), ("item 2", "b", B2, True, None),
        ("item 3", "c", B1, True, None), ("item 4", "a", B1, True, "item 1")]


@pytest.mark.parametrize("bad", ["main", "", 42, B1 + "x"])
def test_a_bad_default_branch_raises(bad: object) -> None:
    """A bad batch-wide branch raises InvalidInputError, even with no items."""
    with pytest.raises(InvalidInputError, match="branch id"):
        plan(["a"], branch_id=bad)
    with pytest.raises(InvalidInputError, match="branch id"):
        plan([], branch_id=bad)


def test_an_items_bad_branch_is_an_invalid_input() -> None:
    """A bad branch on one input makes that input invalid (named), not the whole plan."""
    p = plan([("a", "nope"), "b"])
    assert p.inputs[0].error is not None
    assert p.inputs[0].error.startswith("item 1: branch id 'nope'")
    assert p.inputs[1].sent


def test_dataframe_input_uses_its_columns() -> None:
    """A DataFrame plans by document_col/branch_col (or branch_id), NaN taking the default."""
    frame = pd.DataFrame({"doc": ["a", "b", "a"], "br": [B2, math.nan, B2],
                          "branch_id": [B1, B1, B1]})
    assert shape(frame, document_col="doc", branch_col="br", branch_id=B1) == [
        ("item 1", "a", B2, True, None), ("item 2", "b", B1, True, None),
        ("item 3", "a", B2, True, "item 1")]
    assert [i.branch_id for i in plan(frame, document_col="doc").inputs] == [B1, B1, B1]
    with pytest.raises(InvalidInputError, match="'nope'"):
        plan(frame, document_col="nope")


@pytest.mark.parametrize(("items", "words"), [
    ("doc-0001", "single string"), (b"doc-0001", "single string"), (42, "not int"),
    (None, "not NoneType"),
])
def test_items_that_are_not_a_collection_are_refused(items: object, words: str) -> None:
    """A single string, bytes or a non-iterable is refused, not read item by item."""
    with pytest.raises(InvalidInputError, match=words):
        plan(items)


def test_pairs_of_reads_ids_pairs_and_lists() -> None:
    """pairs_of reads ids as (id, None) and 2-tuples/2-lists as (document, branch)."""
    assert pairs_of(["a", ("b", B1), ["c", None], ("d", B1, "x")]) == [
        ("a", None), ("b", B1), ("c", None), (("d", B1, "x"), None)]


# -- dry run -----------------------------------------------------------------------------------


def dry(items: object, **kwargs: object) -> pd.DataFrame:
    return dry_run(CREATE_DRAFT, items, api_root=ROOT, **kwargs)  # type: ignore[arg-type]


def test_dry_run_has_one_row_per_input() -> None:
    """Every input is a row, duplicates and invalid ones included, in input order."""
    frame = dry(["a", "a", "../x", ("b", B1)])
    assert list(frame["input"]) == ["item 1", "item 2", "item 3", "item 4"]
    assert list(frame["document_id"]) == ["a", "a", "../x", "b"]
    assert list(frame["valid"]) == [True, True, False, True]


def test_dry_run_says_a_duplicate_is_sent_once() -> None:
    """A duplicate's message names the input it folds into: 'duplicate of item 1: sent once'."""
    frame = dry(["a", "b", "a"])
    assert list(frame["message"]) == ["", "", "duplicate of item 1: sent once"]


def test_dry_run_shows_the_request_with_its_branch_body() -> None:
    """Dry-run requests read 'POST <root>/v1/documents/<id>/draft' with {} or branchId."""
    frame = dry(["a.b~c_d-e", ("b", B1.upper()), "a/b"])
    assert list(frame["request"]) == [
        f"POST {ROOT}/v1/documents/a.b~c_d-e/draft {{}}",
        f'POST {ROOT}/v1/documents/b/draft {{"branchId": "{B1}"}}',
        "",
    ]
    assert frame["message"].iloc[2].startswith("item 3: document id 'a/b'")


def test_dry_run_summary_counts_requests_and_invalid_inputs() -> None:
    """The summary counts requests that would be sent (duplicates once) and invalid inputs."""
    frame = dry(["a", "a", "../x", "../x", ("b", B1)])
    assert frame.attrs["summary"] == (
        f"dry run: 2 requests would be sent to {ROOT}, 2 invalid; nothing was sent")


def test_dry_run_shows_exactly_what_a_run_sends(sb: sandbox.Sandbox) -> None:
    """Each dry-run request line is the exact path and body a real run then sends."""
    items = ["doc-0001", "doc-0001", ("doc-0002", B1.upper()), "a.b~c_d-e", "../x"]
    frame = dry_run(CREATE_DRAFT, items, api_root=sb.base_url)
    assert sb.requests() == []
    create_drafts(items, base_url=sb.base_url, token=sb.token, rate_limit=None, ledger="off")
    received = [(r.method, f"{sb.url}{r.path}", json.loads(r.body)) for r in sb.requests()]
    shown = []
    for line in frame.loc[frame["valid"] & (frame["message"] == ""), "request"]:
        method, url, body = line.split(" ", 2)
        shown.append((method, url, json.loads(body)))
    assert sorted(shown, key=str) == sorted(received, key=str)
    assert len(received) == 3


# -- operations --------------------------------------------------------------------------------


def test_create_draft_call_is_a_post_to_the_draft_path() -> None:
    """CREATE_DRAFT.call is POST /v1/documents/{id}/draft with {} or {"branchId": <branch>}."""
    assert CREATE_DRAFT.call("doc-1", None) == Call("POST", "/v1/documents/doc-1/draft", {},
                                                    action="create")
    assert CREATE_DRAFT.call("doc-1", B1) == Call("POST", "/v1/documents/doc-1/draft",
                                                  {"branchId": B1}, action="create")
    assert CREATE_DRAFT.call("doc-1", None).describe(ROOT) == (
        f"POST {ROOT}/v1/documents/doc-1/draft {{}}")
    assert CREATE_DRAFT.call("doc-1", B1).describe(ROOT) == (
        f'POST {ROOT}/v1/documents/doc-1/draft {{"branchId": "{B1}"}}')
    assert CreateDraft().action == "create"


def test_ids_are_checked_where_the_plan_is_made_and_stay_one_path_segment() -> None:
    """The planner refuses a bad id (it never reaches an operation), and an operation's call
    keeps whatever it is given inside one path segment (no second check, no way out)."""
    planned = plan(["../x", "a/b?c#d"])
    assert [i.error is not None for i in planned.inputs] == [True, True]
    assert CREATE_DRAFT.call("../x", None).path == "/v1/documents/..%2Fx/draft"
    assert CREATE_DRAFT.call("a/b?c#d", None).path == "/v1/documents/a%2Fb%3Fc%23d/draft"


# -- BatchOptions ------------------------------------------------------------------------------


def test_batch_options_defaults() -> None:
    """BatchOptions defaults: 8 workers, 60/min, default retries, 30 s, no resume."""
    options = BatchOptions()
    assert (options.concurrency, options.rate_limit, options.retry, options.timeout,
            options.resume, options.ledger) == (8, RateLimit(), RetryPolicy(), 30.0, False, None)


@pytest.mark.parametrize("bad", [0, -1, True, "8", 2.0, None])
def test_batch_options_refuse_a_bad_concurrency(bad: object) -> None:
    """concurrency must be a whole number from 1 to 64 (not a bool, str or float)."""
    with pytest.raises(InvalidInputError, match="concurrency must be a whole number from 1 to 64"):
        BatchOptions(concurrency=bad)  # type: ignore[arg-type]


def test_batch_options_are_keyword_only_and_frozen() -> None:
    """Options are given by name and cannot change once made."""
    with pytest.raises(TypeError):
        BatchOptions(4)  # type: ignore[misc]
    options = BatchOptions(concurrency=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.concurrency = 5  # type: ignore[misc]
