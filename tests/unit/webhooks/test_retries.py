"""Delivery retries: which answers end a delivery, which retry it, and how long to wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from broker.domain.webhooks import (
    DeadLetter,
    Delivered,
    Outcome,
    Retry,
    classify_response,
    next_delay,
    parse_retry_after,
)
from brokkr_common.errors import InvalidArgument, Unavailable


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        pytest.param(200, Delivered(200), id="200"),
        pytest.param(202, Delivered(202), id="202"),
        pytest.param(204, Delivered(204), id="204"),
        pytest.param(408, Retry("HTTP 408"), id="408-request-timeout"),
        pytest.param(429, Retry("HTTP 429"), id="429-too-many-requests"),
        pytest.param(500, Retry("HTTP 500"), id="500"),
        pytest.param(502, Retry("HTTP 502"), id="502"),
        pytest.param(503, Retry("HTTP 503"), id="503"),
        pytest.param(599, Retry("HTTP 599"), id="599"),
        pytest.param(400, DeadLetter("HTTP 400"), id="400"),
        pytest.param(401, DeadLetter("HTTP 401"), id="401"),
        pytest.param(404, DeadLetter("HTTP 404"), id="404"),
        pytest.param(410, DeadLetter("HTTP 410"), id="410-gone"),
        pytest.param(301, DeadLetter("HTTP 301: redirects are not followed"), id="301"),
        pytest.param(307, DeadLetter("HTTP 307: redirects are not followed"), id="307"),
        pytest.param(101, DeadLetter("HTTP 101"), id="101"),
    ],
)
def test_statuses(status: int, outcome: Outcome) -> None:
    assert classify_response(status) == outcome


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [pytest.param(429, 30.0, id="429"), pytest.param(503, 30.0, id="503"), pytest.param(500, None, id="500")],
)
def test_retry_after_counts_for_429_and_503_only(status: int, retry_after: float | None) -> None:
    assert classify_response(status, retry_after=30.0) == Retry(f"HTTP {status}", retry_after)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        pytest.param(TimeoutError(), Retry("TimeoutError"), id="timeout"),
        pytest.param(
            ConnectionRefusedError(111, "refused"),
            Retry("ConnectionRefusedError: [Errno 111] refused"),
            id="refused",
        ),
        pytest.param(
            OSError("network is unreachable"), Retry("OSError: network is unreachable"), id="network"
        ),
        pytest.param(RuntimeError("unexpected"), Retry("RuntimeError: unexpected"), id="unknown"),
        pytest.param(Unavailable("dns down"), Retry("Unavailable: dns down"), id="unavailable"),
        pytest.param(
            InvalidArgument("now resolves to 10.0.0.1"),
            DeadLetter("now resolves to 10.0.0.1"),
            id="refused-destination",
        ),
    ],
)
def test_errors(error: BaseException, outcome: Outcome) -> None:
    assert classify_response(None, error) == outcome


def test_an_attempt_has_a_status_or_an_error() -> None:
    with pytest.raises(ValueError, match="needs a status or an error"):
        classify_response(None, None)


class Extreme(random.Random):
    """Always draws the top of the range, to show the ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (7, 60.0), (10_000, 60.0), (0, 1.0)],
)
def test_backoff_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert next_delay(attempt, base=1.0, cap=60.0, rng=Extreme()) == ceiling


def test_full_jitter_spreads_delays_over_the_whole_range() -> None:
    rng = random.Random(7)
    delays = [next_delay(4, base=1.0, cap=60.0, rng=rng) for _ in range(1000)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    assert min(delays) < 1.0
    assert max(delays) > 7.0


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(30.0, 30.0, id="floor"),
        pytest.param(600.0, 60.0, id="capped"),
        pytest.param(0.5, 1.0, id="jitter-wins"),
    ],
)
def test_retry_after_is_a_floor_within_the_cap(retry_after: float, expected: float) -> None:
    assert next_delay(1, base=1.0, cap=60.0, rng=Extreme(), retry_after=retry_after) == expected


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 5 ", 5.0, id="spaces"),
        pytest.param("Wed, 01 Jan 2025 12:01:30 GMT", 90.0, id="http-date"),
        pytest.param("Wed, 01 Jan 2025 11:00:00 GMT", 0.0, id="date-in-the-past"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("-5", None, id="negative"),
        pytest.param("soon", None, id="garbage"),
    ],
)
def test_parsing_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
