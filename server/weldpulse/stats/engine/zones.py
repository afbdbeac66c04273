"""Time zones of a query: local day ranges, wall clock to UTC and back, RFC 3339 with offsets."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from weldpulse.domain import ONE_MICROSECOND


@dataclass(frozen=True)
class Span:
    """A resolved inclusive range: naive UTC instants for SQL, and how it was given."""

    start: datetime  # naive UTC
    end: datetime  # naive UTC
    first_day: date | None  # both ends were dates: the local days, for comparisons
    last_day: date | None
    local_start: datetime  # naive local wall times, for comparisons of timestamp ranges
    local_end: datetime


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local day as naive UTC (fold 0 lands on the transition when
    DST skips midnight)."""
    local = datetime.combine(day, time.min, tzinfo=zone)
    return local.astimezone(UTC).replace(tzinfo=None)


def wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def utc_to_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def aware(instant: datetime, zone: ZoneInfo) -> str:
    """RFC 3339 with the zone's offset, e.g. `2026-11-30T23:59:59.999999+01:00`."""
    return instant.replace(tzinfo=UTC).astimezone(zone).isoformat()


def span_of_days(first: date, last: date, zone: ZoneInfo) -> Span:
    start, end = day_start(first, zone), day_start(last + timedelta(1), zone) - ONE_MICROSECOND
    return Span(start, end, first, last, datetime.combine(first, time.min),
                datetime.combine(last, time.max))  # fmt: skip
