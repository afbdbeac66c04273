"""Local wall-clock time buckets: their starts over a range, as `time:*` shows them."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from weldpulse.errors import BadRequest
from weldpulse.stats.engine.zones import Span, day_start, utc_to_wall, wall_to_utc

MAX_BUCKETS = 10_000


def truncate(wall: datetime, unit: str) -> datetime:
    """Python twin of SQL date_trunc(unit, wall): weeks start Monday."""
    if unit == "minute":
        return wall.replace(second=0, microsecond=0)
    if unit == "hour":
        return wall.replace(minute=0, second=0, microsecond=0)
    day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if unit == "month" else day


def _next(start: datetime, unit: str) -> datetime:
    if unit == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    step = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
            "week": timedelta(days=7)}[unit]  # fmt: skip
    return start + step


def _exists(start: datetime, unit: str, zone: ZoneInfo) -> bool:
    """Whether any instant's wall time falls in the bucket (DST gaps skip some)."""
    if unit in ("minute", "hour"):
        probes = (
            [start] if unit == "minute" else [start + timedelta(minutes=m) for m in (0, 15, 30, 45)]
        )
        return any(utc_to_wall(wall_to_utc(p, zone), zone) == p for p in probes)
    return day_start(start.date(), zone) < day_start(_next(start, unit).date(), zone)


def count(span: Span, unit: str, zone: ZoneInfo) -> int:
    """An upper bound of the buckets from the one holding start to the one holding end."""
    first = truncate(utc_to_wall(span.start, zone), unit)
    last = truncate(utc_to_wall(span.end, zone), unit)
    first, last = min(first, last), max(first, last)
    if unit == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    width = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}[unit]
    return int((last - first).total_seconds() // width) + 1


def check(span: Span, unit: str, zone: ZoneInfo, field: str) -> None:
    n = count(span, unit, zone)
    if n > MAX_BUCKETS:
        raise BadRequest(
            f"Invalid {field}: time:{unit} over this range gives {n} buckets, more than "
            f"{MAX_BUCKETS}; use a larger unit or a shorter range"
        )


def labels(span: Span, unit: str, zone: ZoneInfo) -> list[str]:
    """Every bucket start from the one holding start to the one holding end, oldest first."""
    check(span, unit, zone, "dimensions")
    first = truncate(utc_to_wall(span.start, zone), unit)
    last = truncate(utc_to_wall(span.end, zone), unit)
    at, out = min(first, last), []
    while at <= max(first, last):
        if _exists(at, unit, zone):
            out.append(label(at))
        at = _next(at, unit)
    return out


def label(start: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS` (isoformat pads years below 1000, strftime does not)."""
    return start.isoformat(timespec="seconds")
