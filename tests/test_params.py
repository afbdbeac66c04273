"""Parameter parsing: ranges, limits, intervals and bucket alignment."""

from datetime import datetime

import pytest
from weldpulse.api.params import (
    Interval,
    Range,
    bucket_of,
    bucket_start,
    buckets,
    parse_interval,
    parse_limit,
    parse_range,
)
from weldpulse.errors import BadRequest


def test_range_formats() -> None:
    assert parse_range("2024-01-15", "2024-01-15") == Range(
        datetime(2024, 1, 15), datetime(2024, 1, 15, 23, 59, 59, 999999)
    )
    assert parse_range("2024-01-15T12:00:00+02:00", "2024-01-15T10:00:00.5Z") == Range(
        datetime(2024, 1, 15, 10), datetime(2024, 1, 15, 10, 0, 0, 500000)
    )


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("", "", "Missing required parameters: start, end"),
        ("  ", "2024-01-01", "Missing required parameters: start"),
        ("2024-01-01", "", "Missing required parameters: end"),
        ("01/02/2024", "2024-01-01", "Invalid start"),
        ("2024-01-02", "2024-01-01", "Invalid end"),
        # An offset that moves the instant past datetime's range: a 400, not a 500.
        (
            "9999-12-31T23:00:00-05:00",
            "9999-12-31",
            r"Invalid start: .* is out of range \(0001-01-01 to 9999-12-31 UTC\)",
        ),
        ("2024-01-01", "0001-01-01T00:10:00+01:00", r"Invalid end: .* is out of range"),
    ],
)
def test_range_errors(start: str, end: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_range(start, end)


def test_limit() -> None:
    assert parse_limit(None, 10) == 10
    assert parse_limit(1, 10) == 1 and parse_limit(1000, 10) == 1000
    for bad in (0, 1001, -1):
        with pytest.raises(BadRequest, match="limit"):
            parse_limit(bad, 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", Interval(1, "hour")), ("1 hour", Interval(1, "hour")), ("15 minutes", Interval(15, "minute")),
     (" 2 Days ", Interval(2, "day")), ("1 week", Interval(1, "week")), ("3 months", Interval(3, "month"))],
)  # fmt: skip
def test_interval(text: str, expected: Interval) -> None:
    assert parse_interval(text) == expected


def test_buckets_align_to_their_unit() -> None:
    wed = datetime(2024, 1, 17, 13, 47)
    assert bucket_start(bucket_of(wed, Interval(1, "week")), Interval(1, "week")) == datetime(
        2024, 1, 15
    )
    assert bucket_start(bucket_of(wed, Interval(1, "month")), Interval(1, "month")) == datetime(
        2024, 1, 1
    )
    assert bucket_start(bucket_of(wed, Interval(15, "minute")), Interval(15, "minute")) == datetime(
        2024, 1, 17, 13, 45
    )
    assert bucket_start(bucket_of(wed, Interval(6, "hour")), Interval(6, "hour")) == datetime(
        2024, 1, 17, 12
    )
    every_hour = buckets(
        Range(datetime(2024, 1, 1), datetime(2024, 1, 1, 23, 59)), Interval(1, "hour")
    )
    assert len(every_hour) == 24
    with pytest.raises(BadRequest, match="10000"):
        buckets(Range(datetime(2000, 1, 1), datetime(2024, 1, 1)), Interval(1, "hour"))
