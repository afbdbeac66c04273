"""Time zones: names, local ranges, the UTC offsets in force, local bucket starts (zoneinfo)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection
from weldpulse.errors import BadRequest

ONE_MICROSECOND = timedelta(microseconds=1)
MAX_NAME = 64


def parse_timezone(name: str, field: str = "timezone") -> ZoneInfo:
    """An IANA zone; unknown or malformed names are a 400 naming `field`."""
    if len(name) > MAX_NAME:
        raise BadRequest(f"Invalid {field}: longer than {MAX_NAME} characters")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(
            f"Invalid {field}: {name!r} is not an IANA time zone (e.g. Europe/Berlin)"
        ) from None


def site_timezone(conn: Connection, site_id: str) -> str:
    """The site's time zone name.

    TODO(issue 10): read `sites.timezone` (added on the time-zone branch); until
    that column exists every site is in UTC.
    """
    return "UTC"


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


def segments(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta]]:
    """(from, offset) pairs: the UTC offset in force from each naive UTC instant on, covering
    [start, end]. Found by stepping a day at a time and bisecting each change to the second."""

    def offset(at: datetime) -> timedelta:
        return at.replace(tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0)

    out = [(start, offset(start))]
    at = start
    while at < end:
        step = min(at + timedelta(days=1), end)
        if offset(step) != out[-1][1]:
            lo, hi = at, step  # offset(lo) is the current one, offset(hi) the next
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if offset(mid) == out[-1][1]:
                    lo = mid
                else:
                    hi = mid
            hi = hi.replace(microsecond=0)
            out.append((hi, offset(hi)))
        at = step
    return out
