"""Parsing and validation of request parameters: ranges, limits, intervals, site filters."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from weldpulse.domain import ONE_MICROSECOND
from weldpulse.errors import BadRequest
from weldpulse.timezones import offsets

MAX_LIMIT = 1000
MAX_BUCKETS = 10_000
UNITS = ("minute", "hour", "day", "week", "month")
_INTERVAL = re.compile(r"^\s*(\d{1,4})\s*(minute|hour|day|week|month)s?\s*$", re.IGNORECASE)
_RECORD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_record_id(value: str) -> bool:
    """Whether `value` can name a stored goal or funnel (their ids are lower-case UUIDs).

    Anything else names none, so it is answered as not found without a lookup:
    PostgreSQL refuses a NUL in a text parameter, which was a 500.
    """
    return _RECORD_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class Range:
    """An inclusive range of naive UTC datetimes."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Interval:
    count: int
    unit: str  # one of UNITS


def iso_instant(value: str) -> datetime:
    """An ISO 8601 date-time as naive UTC: an offset is applied, none means UTC.

    Raises ValueError for text that is no ISO 8601 date-time, and
    OverflowError when an offset moves it out of datetime's range (past
    9999-12-31 or before 0001-01-01); callers word the error for their field.
    """
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _parse_instant(name: str, value: str, end_of_day: bool) -> datetime:
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        pass
    else:
        return datetime.combine(day, time.max if end_of_day else time.min)
    try:
        return iso_instant(value)
    except ValueError:
        raise BadRequest(
            f"Invalid {name}: {value!r} is not an ISO 8601 date-time (e.g. 2024-01-15T00:00:00Z)"
        ) from None
    except OverflowError:
        raise BadRequest(
            f"Invalid {name}: {value!r} is out of range (0001-01-01 to 9999-12-31 UTC)"
        ) from None


def parse_range(start: str, end: str) -> Range:
    missing = [name for name, value in (("start", start), ("end", end)) if not value.strip()]
    if missing:
        raise BadRequest(f"Missing required parameters: {', '.join(missing)}")
    first = _parse_instant("start", start, end_of_day=False)
    last = _parse_instant("end", end, end_of_day=True)
    if last < first:
        raise BadRequest("Invalid end: end is before start")
    return Range(first, last)


def parse_limit(value: int | None, default: int) -> int:
    """`value` is None when the caller left `limit` out."""
    if value is None:
        return default
    if not 1 <= value <= MAX_LIMIT:
        raise BadRequest(f"Invalid limit: {value} is not between 1 and {MAX_LIMIT}")
    return value


def parse_interval(value: str) -> Interval:
    if not value.strip():
        return Interval(1, "hour")
    match = _INTERVAL.match(value)
    if match is None or not 1 <= int(match.group(1)) <= 1000:
        raise BadRequest(
            f"Invalid interval: {value!r}; expected 'N minute(s)', 'N hour(s)', 'N day(s)', "
            "'N week(s)' or 'N month(s)' with N from 1 to 1000, e.g. '1 hour'"
        )
    return Interval(int(match.group(1)), match.group(2).lower())


def parse_site(site_id: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The sites to query: all of the caller's, or the one asked for if it is theirs."""
    if not site_id:
        return allowed
    if site_id not in allowed:
        raise BadRequest(f"Invalid site_id: no site {site_id!r} in this project")
    return (site_id,)


# Bucket arithmetic. Buckets are numbered from the epoch of their unit:
# minutes/hours/days from 1970-01-01, weeks from Monday 1969-12-29, months
# from January 1970; an N-unit bucket holds unit numbers [k*N, (k+1)*N).
EPOCH = datetime(1970, 1, 1)
WEEK_EPOCH = datetime(1969, 12, 29)
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


def bucket_of(moment: datetime, interval: Interval) -> int:
    if interval.unit == "month":
        return ((moment.year - 1970) * 12 + moment.month - 1) // interval.count
    origin = WEEK_EPOCH if interval.unit == "week" else EPOCH
    seconds = (moment - origin) // timedelta(seconds=1)
    return seconds // (UNIT_SECONDS[interval.unit] * interval.count)


def bucket_start(index: int, interval: Interval) -> datetime:
    if interval.unit == "month":
        months = index * interval.count
        return datetime(1970 + months // 12, months % 12 + 1, 1)
    origin = WEEK_EPOCH if interval.unit == "week" else EPOCH
    return origin + timedelta(seconds=index * UNIT_SECONDS[interval.unit] * interval.count)


def _check_count(count: int, interval: Interval, margin: int = 0) -> None:
    """Bounds the buckets; `margin` lets a zone's offsets (under a day each way) add a few."""
    if count > MAX_BUCKETS + margin:
        raise BadRequest(
            f"Invalid interval: the range would hold {count} buckets of "
            f"'{interval.count} {interval.unit}', more than {MAX_BUCKETS}; use a larger interval"
        )


def buckets(rng: Range, interval: Interval, zone: ZoneInfo | None = None) -> Sequence[int]:
    """Indexes of every bucket holding some instant of the range, in order.

    Buckets are numbered on the wall clock of `zone` (default UTC): where it
    jumps forward the skipped buckets hold no instant and are left out; where
    it falls back the repeated wall-clock times fall into the same buckets.
    """
    # Bound the work first: a zone shifts the range by under a day each way.
    margin = 2 * 86400 // UNIT_SECONDS.get(interval.unit, 86400) + 2 if zone else 0
    _check_count(
        bucket_of(rng.end, interval) - bucket_of(rng.start, interval) + 1, interval, margin
    )
    pieces = offsets(zone, rng.start, rng.end) if zone else ()
    if not pieces:
        spans = [(rng.start, rng.end)]
    else:  # each piece of the range at one offset covers a span of wall-clock time
        ends = [p.start - ONE_MICROSECOND for p in pieces[1:]] + [rng.end]
        spans = [(p.start + p.offset, end + p.offset) for p, end in zip(pieces, ends, strict=True)]
    merged: list[range] = []  # disjoint runs of indexes, in order
    for first, last in sorted((bucket_of(a, interval), bucket_of(b, interval)) for a, b in spans):
        if merged and first <= merged[-1].stop:  # overlaps or touches the run before
            previous = merged.pop()
            first, last = previous.start, max(last, previous.stop - 1)
        merged.append(range(first, last + 1))
    _check_count(sum(len(run) for run in merged), interval)
    return merged[0] if len(merged) == 1 else [i for run in merged for i in run]
