"""Robust parsing of what servers really send: arbitrary status codes, headers (Retry-After
garbage included) and bodies (HTML, empty, truncated or deeply nested JSON, huge, non-UTF-8)
always end in a Draft or an OmniError, never another exception."""

from __future__ import annotations

import contextlib
import json
import math
import random
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from omni_nb import Draft, OmniClient, OmniError, RetryPolicy

# Private on purpose: the response classifier (Core.interpret / draft_from / next_wait) is
# internal to the client room, and feeding it raw answers directly is what lets Hypothesis
# try thousands of them cheaply. The public path is checked too, below, through OmniClient
# over an httpx.MockTransport.
from omni_nb.client._core import ClientOptions, Core
from omni_nb.client.parse import parse_retry_after
from omni_nb.config import resolve_settings

URL = "https://acme.omniapp.co/api/v1/documents/doc-1/draft"
HUGE = b'{"identifier": "' + b"x" * (3 << 20) + b'"}'  # past the 1 MiB read cap

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_payloads = st.one_of(
    _json_values,
    st.fixed_dictionaries({"identifier": _json_values}),
    st.fixed_dictionaries({"error": _json_values, "message": _json_values}),
    st.fixed_dictionaries({"detail": _json_values, "status": _json_values}),
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "truncated", "binary", "html", "text", "fixed"]))
    if kind == "json":
        return json.dumps(draw(_payloads)).encode()
    if kind == "truncated":
        whole = json.dumps(draw(_payloads)).encode()
        return whole[: draw(st.integers(0, max(len(whole) - 1, 0)))]
    if kind == "binary":
        return draw(st.binary(max_size=512))
    if kind == "html":
        title = draw(st.text(max_size=40))
        return f"<html><head><title>{title}</title></head><body>x</body></html>".encode()
    if kind == "text":
        return draw(st.text(max_size=200)).encode(draw(st.sampled_from(["utf-8", "utf-16"])))
    return draw(st.sampled_from([
        b"", b" ", b"null", b"[]", b'"identifier"', b'{"identifier": ""}',
        b'{"identifier": 12345}', b'{"identifier": "  "}', b"\xff\xfe\x00{", b"\xc3\x28",
        b"[" * 100_000, b'{"a":' * 50_000, b"NaN", b"1e999", HUGE,
        b'{"error": {"code": 403, "message": null}}', b'{"error": {"code": {}}}',
    ]))


_retry_after = st.one_of(
    st.text(max_size=40),
    st.sampled_from([
        "0", "-1", "1e999", "nan", "inf", "-inf", "3.5", "  7  ", "999999999999999999999",
        "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 99999 23:59:59 GMT",
        "Mon, 32 Jan 2020 00:00:00 GMT", "Tue, 01 Jan 2030 25:61:61 +9999", "Thu, 01 Jan 1970",
    ]),
)
_header_names = st.sampled_from(
    ["retry-after", "content-type", "location", "x-omni-waf-action", "content-encoding",
     "x-anything"]
)
_header_values = st.one_of(_retry_after, st.sampled_from(
    ["text/html", "application/json; charset=latin-1", "https://evil.example/x",
     "/relative", "http://[bad", "gzip", "br", "identity", "block"]))
_latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
_headers = st.dictionaries(_header_names, _header_values.filter(
    lambda v: all(0x20 <= ord(c) <= 0xFF and c != "\x7f" for c in v)), max_size=4)
_statuses = st.one_of(
    st.integers(100, 599), st.sampled_from([200, 201, 204, 301, 307, 400, 401, 403, 404, 429,
                                            500, 502, 503, 504, 999]))


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    # Servers send bytes: latin-1 header values reach the client as they are on the wire.
    return [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]


def _core() -> Core:
    settings = resolve_settings("https://acme.omniapp.co/api", "omni_osk_parse", environ={})
    options = ClientOptions(rate_limit=None, retry=RetryPolicy(max_retries=0), timeout=5.0,
                            rng=random.Random(0))
    return Core(settings=settings, options=options)


CORE = _core()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=_statuses, headers=_headers, body=bodies())
@example(status=200, headers={}, body=b"[" * 100_000)  # deeper than Python's recursion limit
@example(status=404, headers={}, body=b'{"a":' * 50_000)
@example(status=429, headers={"retry-after": "1e999"}, body=b"")
@example(status=200, headers={}, body=HUGE[: 1 << 20])
def test_classifier_ends_in_a_draft_or_an_omni_error(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    """Core.interpret / classify_error / draft_from turn any answer into a Draft or an
    OmniError with a bounded, one-line message."""
    headers.pop("content-encoding", None)  # decoding is httpx's job: see the transport test
    response = httpx.Response(status, headers=_raw(headers), content=body,
                              request=httpx.Request("POST", URL))
    result: Any
    try:
        payload = CORE.interpret(response, body)
        result = CORE.draft_from(payload, "doc-1", None, 1)
    except OmniError as exc:
        result = exc
    assert isinstance(result, Draft | OmniError)
    if isinstance(result, Draft):
        assert 200 <= status < 300
        assert result.identifier.strip()
    else:
        assert "\n" not in str(result)
        assert len(str(result)) < 1000
        wait = CORE.next_wait(result, 1, 0.0)
        assert wait is None or (math.isfinite(wait) and wait >= 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=_statuses, headers=_headers, body=bodies(), retries=st.integers(0, 2))
def test_client_over_a_mock_transport_never_raises_anything_else(
    status: int, headers: dict[str, str], body: bytes, retries: int
) -> None:
    """Through OmniClient (httpx.MockTransport, retries on), any answer ends in an outcome
    with a Draft or an OmniError; create_draft raises only OmniError."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=_raw(headers), content=body)

    # A key of its own per example: what one example's 429s taught the key's shared budget
    # must not change the next example's attempts.
    client = OmniClient(
        "https://acme.omniapp.co/api", f"omni_osk_parse_{uuid.uuid4().hex}", rate_limit=None,
        retry=RetryPolicy(max_retries=retries, backoff=0.0, backoff_cap=0.0, max_wait=1.0),
        transport=httpx.MockTransport(answer), sleep=lambda _s: None,
    )
    with client:
        outcome = client.create_draft_outcome("doc-1")
        assert (outcome.draft is None) != (outcome.error is None)
        # The documented bound: retries, plus refusals of the rate budget's own probes.
        assert 1 <= outcome.attempts <= retries + 1 + RetryPolicy().probe_retries
        with contextlib.suppress(OmniError):
            client.create_draft("doc-1")


@given(st.one_of(st.none(), _retry_after, st.text()))
def test_retry_after_parses_to_none_or_a_finite_wait(value: str | None) -> None:
    """parse_retry_after gives None or a finite number of seconds >= 0 for any header."""
    wait = parse_retry_after(value)
    assert wait is None or (math.isfinite(wait) and wait >= 0)
