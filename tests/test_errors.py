"""The errors room (omni_nb.errors): the exception tree, every error crossing a pickle
boundary with all its fields (multiprocessing, joblib), the one-line notebook view, and the
table status each error becomes."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pandas as pd
import pytest

from omni_nb import errors
from omni_nb.batch import BatchInterrupted
from omni_nb.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigError,
    DraftsFailedError,
    HostUnreachableError,
    InvalidInputError,
    LedgerError,
    NotEligibleError,
    NotFoundError,
    OmniError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from omni_nb.rows import STATUSES, Row, status_of
from omni_nb.table import frame_from_rows

BODY = {"error": {"code": 404, "message": "Document with identifier x not found"}}

#: One instance per class of errors.__all__, with every field it can carry set.
MAKERS: dict[str, Callable[[], OmniError]] = {
    "OmniError": lambda: OmniError("something went wrong"),
    "ConfigError": lambda: ConfigError("No Omni API token"),
    "DraftsFailedError": lambda: DraftsFailedError("no draft created: 2 rows: 2 not_found"),
    "InvalidInputError": lambda: InvalidInputError("document id '../x': '/' is not allowed"),
    "LedgerError": lambda: LedgerError(
        "ledger /l.sqlite3: a write failed", path="/l.sqlite3",
        unrecorded=[("doc-1", None, "d1"), ("doc-2", "b", "d2")]),
    "APIConnectionError": lambda: APIConnectionError("connection reset by 127.0.0.1"),
    "APITimeoutError": lambda: APITimeoutError("no answer within 0.2 s"),
    "HostUnreachableError": lambda: HostUnreachableError("ConnectError talking to x: refused"),
    "APIStatusError": lambda: APIStatusError(418, "teapot", body="<html>teapot</html>"),
    "NotEligibleError": lambda: NotEligibleError(
        400, "Document is not eligible for publishing workflow", body={"message": "n/e"}),
    "AuthenticationError": lambda: AuthenticationError(403, "Invalid bearer token", body={}),
    "PermissionDeniedError": lambda: PermissionDeniedError(
        403, "Permission denied - EDITOR role required", body={"detail": "x", "status": 403}),
    "NotFoundError": lambda: NotFoundError(404, "Document with identifier x not found",
                                           body=BODY),
    "RateLimitError": lambda: RateLimitError(429, "slow down", body={"error": "Too Many"},
                                             retry_after=2.5),
    "ServerError": lambda: ServerError(503, "Service Unavailable", body=None),
    "UnexpectedResponseError": lambda: UnexpectedResponseError(
        307, "redirect to https://evil.example/x not followed", body=b"\xff".decode("latin-1")),
}

FIELDS = ("status_code", "message", "body", "retry_after", "attempts", "path", "unrecorded")


def made(name: str) -> OmniError:
    exc = MAKERS[name]()
    exc.attempts = 3  # set after construction, as the client does
    return exc


def round_trip(exc: BaseException) -> BaseException:
    return pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes


def test_every_error_class_has_a_maker() -> None:
    """The pickle table covers exactly the exception classes errors.__all__ exports (the
    warning category aside: warnings are not raised)."""
    raised = {n for n in errors.__all__ if issubclass(getattr(errors, n), OmniError)}
    assert raised == set(MAKERS)
    for name, make in MAKERS.items():
        assert type(make()) is getattr(errors, name)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_error_pickles_with_all_its_fields(name: str) -> None:
    """Every error survives pickle with its class, str() and every field."""
    exc = made(name)
    back = round_trip(exc)
    assert type(back) is type(exc)
    assert back.args == exc.args
    assert str(back) == str(exc)
    assert repr(back) == repr(exc)
    assert vars(back) == vars(exc)
    for field in FIELDS:
        assert getattr(back, field, None) == getattr(exc, field, None), field
    assert back.attempts == 3
    if isinstance(exc, APIStatusError):
        assert (back.status_code, back.message, back.body) == (
            exc.status_code, exc.message, exc.body)


def test_rate_limit_error_keeps_its_retry_after_through_pickle() -> None:
    """The 429's keyword-only retry_after (the field cls(*args) would lose) survives."""
    back = round_trip(made("RateLimitError"))
    assert isinstance(back, RateLimitError)
    assert (back.status_code, back.message, back.retry_after, back.body) == (
        429, "slow down", 2.5, {"error": "Too Many"})


def test_batch_interrupted_pickles_with_its_table() -> None:
    """BatchInterrupted survives pickle with its message and its results table."""
    rows = [Row("doc-1", None, "d1", "ok", 200, "", 1, 0.1, 0, "https://a/api", "r1"),
            Row("doc-2", None, None, "cancelled", None, "not sent", 0, 0.0, 0,
                "https://a/api", "r1")]
    table = frame_from_rows(rows)
    table.errors = [None, NotFoundError(404, "gone", body=BODY)]
    stop = BatchInterrupted(table)
    back = round_trip(stop)
    assert type(back) is BatchInterrupted
    assert isinstance(back, KeyboardInterrupt)
    assert str(back) == str(stop) == (
        "interrupted: 2 rows: 1 ok, 1 cancelled; run r1 — the table is "
        "omni_nb.batch.last_result()")
    result = back.result  # type: ignore[attr-defined]
    assert type(result) is type(table)
    pd.testing.assert_frame_equal(pd.DataFrame(result), pd.DataFrame(table))
    assert result.errors[0] is None
    assert type(result.errors[1]) is NotFoundError
    assert result.errors[1].body == BODY


def test_ledger_error_pickles_with_its_table_and_unrecorded_rows() -> None:
    """A LedgerError of a failed batch survives pickle with its path, its table (errors
    included) and the rows it names; kept_in() moves the table's place in the message only."""
    rows = [Row("doc-1", None, "d1", "ok", 200, "", 1, 0.1, 0, "https://a/api", "r1"),
            Row("doc-2", None, None, "cancelled", None, "not sent", 0, 0.0, 0,
                "https://a/api", "r1")]
    table = frame_from_rows(rows)
    table.errors = [None, None]
    exc = LedgerError(f"ledger /x: a write failed; the table is {errors.TABLE_AT}", path="/x",
                      result=table, unrecorded=[("doc-1", None, "d1")])
    for back in (round_trip(exc), round_trip(exc.kept_in("in res"))):
        assert type(back) is LedgerError
        assert (back.path, back.unrecorded) == ("/x", [("doc-1", None, "d1")])
        pd.testing.assert_frame_equal(pd.DataFrame(back.result), pd.DataFrame(table))
        assert type(back.result) is type(table)
    moved = round_trip(exc.kept_in("in res"))
    assert str(moved) == "ledger /x: a write failed; the table is in res"


def test_the_tree_is_the_documented_one() -> None:
    """The class tree is the documented one (OmniError root, ValueError, status errors)."""
    for make in MAKERS.values():
        assert isinstance(make(), OmniError)
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(APITimeoutError, APIConnectionError)
    for cls in (NotEligibleError, AuthenticationError, PermissionDeniedError, NotFoundError,
                RateLimitError, ServerError, UnexpectedResponseError):
        assert issubclass(cls, APIStatusError)
    for cls in (ConfigError, DraftsFailedError, InvalidInputError, APIConnectionError,
                LedgerError):
        assert not issubclass(cls, APIStatusError)


def test_status_errors_read_http_n_and_the_servers_words() -> None:
    """str() of an HTTP error is 'HTTP <status>: <message>'; attempts is 0 until set."""
    exc = NotFoundError(404, "Document with identifier x not found", body=BODY)
    assert str(exc) == "HTTP 404: Document with identifier x not found"
    assert exc.attempts == 0
    assert RateLimitError(429, "x").retry_after is None


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_a_notebook_shows_one_line_naming_the_class(name: str) -> None:
    """IPython's traceback hook gives one line: the class name and the message."""
    exc = made(name)
    assert exc._render_traceback_() == [f"{name}: {exc}"]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("InvalidInputError", "invalid"),
        ("NotEligibleError", "not_eligible"),
        ("AuthenticationError", "unauthorized"),
        ("PermissionDeniedError", "forbidden"),
        ("NotFoundError", "not_found"),
        ("RateLimitError", "rate_limited"),
        ("ServerError", "server_error"),
        ("APIConnectionError", "network_error"),
        ("APITimeoutError", "network_error"),
        ("UnexpectedResponseError", "server_error"),
        ("APIStatusError", "server_error"),
    ],
)
def test_each_error_becomes_its_table_status(name: str, status: str) -> None:
    """status_of maps each error class to the row status the README lists."""
    assert status in STATUSES
    assert status_of(made(name)) == status
