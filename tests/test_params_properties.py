"""Property tests of the parameter parsers: ISO 8601 ranges, intervals, limits, buckets."""

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from weldpulse.api.params import (
    MAX_LIMIT,
    UNITS,
    Interval,
    bucket_of,
    bucket_start,
    buckets,
    parse_interval,
    parse_limit,
    parse_range,
)
from weldpulse.errors import BadRequest

moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(moments, offsets)
def test_any_iso_instant_with_offset_is_read_as_utc(moment: datetime, tz: timezone) -> None:
    aware = moment.replace(tzinfo=tz)
    rng = parse_range(aware.isoformat(), aware.isoformat())
    expected = aware.astimezone(UTC).replace(tzinfo=None)
    assert rng.start == rng.end == expected


@given(moments)
def test_zulu_and_naive_instants_are_utc(moment: datetime) -> None:
    zulu = moment.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    assert parse_range(zulu, zulu).start == moment.replace(microsecond=0)
    assert parse_range(moment.isoformat(), moment.isoformat()).start == moment


@given(st.dates(min_value=date(1971, 1, 1), max_value=date(2200, 1, 1)))
def test_a_date_covers_its_whole_day(day: date) -> None:
    rng = parse_range(day.isoformat(), day.isoformat())
    assert rng.start == datetime.combine(day, time.min)
    assert rng.end == datetime.combine(day, time.max)


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_text_is_a_range_or_a_bad_request(start: str, end: str) -> None:
    try:
        rng = parse_range(start, end)
    except BadRequest as err:
        assert err.message.startswith(
            ("Missing required parameters", "Invalid start", "Invalid end")
        )
    else:
        assert rng.start <= rng.end and rng.start.tzinfo is None


@given(moments, moments)
def test_end_before_start_is_refused(a: datetime, b: datetime) -> None:
    if a <= b:
        assert parse_range(a.isoformat(), b.isoformat()).start == a
    else:
        with pytest.raises(BadRequest, match="end is before start"):
            parse_range(a.isoformat(), b.isoformat())


@given(
    st.integers(1, 1000),
    st.sampled_from(UNITS),
    st.booleans(),
    st.sampled_from(["", " ", "  "]),
    st.booleans(),
)
def test_every_valid_interval_spelling(
    n: int, unit: str, plural: bool, pad: str, upper: bool
) -> None:
    word = unit + ("s" if plural else "")
    text = f"{pad}{n}{pad or ' '}{word.upper() if upper else word}{pad}"
    assert parse_interval(text) == Interval(n, unit)


@given(st.text(max_size=30))
def test_any_text_is_an_interval_or_a_bad_request(text: str) -> None:
    try:
        interval = parse_interval(text)
    except BadRequest as err:
        assert err.message.startswith("Invalid interval")
    else:
        assert interval.unit in UNITS and 1 <= interval.count <= 1000


@given(st.integers(-(2**31), 2**31 - 1))
def test_limit_is_accepted_exactly_in_range(value: int) -> None:
    if 1 <= value <= MAX_LIMIT:
        assert parse_limit(value, 10) == value
    else:
        with pytest.raises(BadRequest, match="Invalid limit"):
            parse_limit(value, 10)


@given(moments, st.integers(1, 1000), st.sampled_from(UNITS))
def test_every_moment_lies_in_its_bucket(moment: datetime, n: int, unit: str) -> None:
    interval = Interval(n, unit)
    index = bucket_of(moment, interval)
    assert bucket_start(index, interval) <= moment < bucket_start(index + 1, interval)


@given(moments, st.integers(0, 10**6), st.integers(1, 50), st.sampled_from(UNITS))
def test_buckets_cover_the_range_or_refuse(
    start: datetime, minutes: int, n: int, unit: str
) -> None:
    interval = Interval(n, unit)
    end = start + timedelta(minutes=minutes)
    try:
        indexes = buckets(parse_range(start.isoformat(), end.isoformat()), interval)
    except BadRequest as err:
        assert "buckets" in err.message
    else:
        assert bucket_start(indexes[0], interval) <= start
        assert end < bucket_start(indexes[-1] + 1, interval)
