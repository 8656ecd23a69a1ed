"""The sandbox's rate window at its edge: the grace a lenient firewall allows, and the record
of accepted arrivals that says what the server let through (``Sandbox.busiest_window``).

The window itself is checked on an injected clock (``RateLimiter``); the options are checked
over sockets and on the command line, as a user meets them.
"""

from __future__ import annotations

import httpx
import pytest

from omni_nb import sandbox
from omni_nb.sandbox.state import RateLimiter, Settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def statuses(limiter: RateLimiter, clock: Clock, settings: Settings, times: list[float],
             token: str = "t") -> list[int]:  # noqa: S107 - a window's name
    codes = []
    for at in times:
        clock.now = at
        reply = limiter.check(token, settings)
        codes.append(200 if reply is None else reply.status)
    return codes


def test_grace_accepts_a_request_whose_window_frees_within_it() -> None:
    """2 per 1 s with a 0.25 s grace: at 0.70 s the oldest arrival (0.0) leaves in 0.30 s,
    so the request is refused; at 0.76 s it leaves in 0.24 s, so it passes. The strict window
    refuses both."""
    lenient, strict = Clock(), Clock()
    times = [0.0, 0.5, 0.70, 0.76]
    assert statuses(RateLimiter(lenient), lenient, Settings(rate_limit=(2, 1.0), grace=0.25),
                    times) == [200, 200, 429, 200]
    assert statuses(RateLimiter(strict), strict, Settings(rate_limit=(2, 1.0)),
                    times) == [200, 200, 429, 429]


def test_grace_waits_for_the_arrival_that_has_to_leave_not_the_oldest() -> None:
    """2 per 1 s, grace 0.25, arrivals at 0.0 and 0.5 and one let in by the grace at 0.8: at
    0.9 s the window holds three, and the one that must leave for a fourth is 0.5 (1.1 s,
    0.6 s away), so it is refused even though 0.0 leaves within the grace."""
    clock = Clock()
    limiter = RateLimiter(clock)
    settings = Settings(rate_limit=(2, 1.0), grace=0.25)
    assert statuses(limiter, clock, settings, [0.0, 0.5, 0.8, 0.9]) == [200, 200, 200, 429]


def test_retry_after_says_when_the_grace_lets_the_request_in() -> None:
    """1 per 10 s, grace 3: a request at 1 s would wait 9 s in the strict window but 6 s with
    the grace, and Retry-After says 6."""
    clock = Clock()
    limiter = RateLimiter(clock)
    settings = Settings(rate_limit=(1, 10.0), grace=3.0)
    assert limiter.check("t", settings) is None
    clock.now = 1.0
    refused = limiter.check("t", settings)
    assert refused is not None
    assert dict(refused.headers)["Retry-After"] == "6"


@pytest.mark.parametrize("grace", [-0.1, float("inf"), float("nan")])
def test_a_negative_or_infinite_grace_is_refused(grace: float) -> None:
    with pytest.raises(ValueError, match="grace must be a finite number >= 0"):
        Settings(grace=grace)


def test_busiest_window_counts_accepted_arrivals_in_any_trailing_window() -> None:
    """Arrivals at 0, 0.4, 0.9, 1.0, 1.3 and 2.2 s (5 per 10 s, none refused): the busiest
    1-s window holds four (0.4-1.3; not 0.0-1.0: a window exactly 1 s long does not hold both
    of its ends), the busiest 0.5-s window three (0.9-1.3)."""
    clock = Clock()
    limiter = RateLimiter(clock)
    settings = Settings(rate_limit=(10, 10.0))
    statuses(limiter, clock, settings, [0.0, 0.4, 0.9, 1.0, 1.3, 2.2])
    assert limiter.busiest_window(1.0) == 4
    assert limiter.busiest_window(0.5) == 3
    assert limiter.busiest_window(10.0) == 6
    assert limiter.busiest_window(0.001) == 1
    # Arrivals exactly one window apart never share a window: (now - per, now].
    statuses(limiter, clock, settings, [20.0, 20.5, 21.0], token="apart")
    assert limiter.busiest_window(0.5, "apart") == 1


def test_busiest_window_never_counts_a_refused_request() -> None:
    """3 per 10 s, seven requests at once: the busiest window holds the three accepted, also
    when the server counts refused requests in its own window."""
    for count_refused in (False, True):
        clock = Clock()
        limiter = RateLimiter(clock)
        settings = Settings(rate_limit=(3, 10.0), count_refused=count_refused)
        assert statuses(limiter, clock, settings, [0.0] * 7).count(429) == 4
        assert limiter.busiest_window(10.0) == 3


def test_busiest_window_counts_each_token_on_its_own() -> None:
    """Two tokens, three and two arrivals in one second: 3 and 2 each, 3 for every token
    (never 5: the server counts keys apart), 0 for a token that sent nothing."""
    clock = Clock()
    limiter = RateLimiter(clock)
    settings = Settings(rate_limit=(5, 1.0))
    statuses(limiter, clock, settings, [0.0, 0.1, 0.2], token="a")
    statuses(limiter, clock, settings, [0.3, 0.4], token="b")
    assert (limiter.busiest_window(1.0, "a"), limiter.busiest_window(1.0, "b")) == (3, 2)
    assert limiter.busiest_window(1.0) == 3
    assert limiter.busiest_window(1.0, "c") == 0


def test_accepted_arrivals_are_kept_without_a_rate_limit_and_within_a_bound() -> None:
    """With no rate limit every request is accepted and recorded; the record keeps the last
    100,000 per token, so a long run's memory stays bounded."""
    clock = Clock()
    limiter = RateLimiter(clock)
    settings = Settings(rate_limit=None)
    kept = RateLimiter.ACCEPTED_KEPT
    for i in range(kept + 10):
        clock.now = i * 1e-3
        assert limiter.check("t", settings) is None
    assert limiter.busiest_window(1e9) == kept
    # The ten oldest arrivals are gone: the first 11 ms held 11, now 1.
    assert limiter.busiest_window(0.0105) == 11


@pytest.mark.parametrize("per", [0.0, -1.0, float("inf")])
def test_busiest_window_refuses_a_window_that_is_not_a_length(per: float) -> None:
    with pytest.raises(ValueError, match="per must be a finite number > 0"):
        RateLimiter().busiest_window(per)


def test_serve_and_configure_set_the_grace_over_sockets() -> None:
    """1 per 60 s: with no grace the second request is refused; configure(grace=60) lets the
    third in at once; the busiest window then holds the two accepted."""
    with sandbox.serve(documents=2, rate_limit=(1, 60.0)) as sb, \
            httpx.Client(headers={"Authorization": f"Bearer {sb.token}"}) as c:
        url = f"{sb.base_url}/v1/documents/doc-0001/draft"
        assert [c.post(url).status_code for _ in range(2)] == [200, 429]
        sb.configure(grace=60.0)
        assert c.post(url).status_code == 200
        assert sb.busiest_window(60.0) == 2
        assert sb.busiest_window(60.0, sb.token) == 2
    with sandbox.serve(documents=2, rate_limit=(1, 60.0), grace=60.0) as sb, \
            httpx.Client(headers={"Authorization": f"Bearer {sb.token}"}) as c:
        url = f"{sb.base_url}/v1/documents/doc-0001/draft"
        assert [c.post(url).status_code for _ in range(2)] == [200, 200]


def test_cli_takes_a_grace_and_refuses_a_negative_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["--grace", "-1"], ["--grace", "soon"]):
        with pytest.raises(SystemExit) as exit_info:
            sandbox.main(argv)
        assert exit_info.value.code == 2
    assert "expected seconds >= 0" in capsys.readouterr().err
