"""IANA time zones from the pinned tzdata package: name validation and UTC offsets over a range."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from importlib.resources import files
from zoneinfo import ZoneInfo

from weldpulse.domain import ONE_MICROSECOND
from weldpulse.errors import BadRequest

# The keys of the pinned tzdata release. Only these are accepted: zoneinfo
# itself would also open other files on its search path (`posixrules`,
# paths, a machine's own older database), which differ between machines.
ZONES = frozenset(files("tzdata").joinpath("zones").read_text().split())
MAX_NAME = 64  # the longest key is 32 characters

# Offsets are sampled once a day and bisected where they change. No zone of
# the pinned tzdata changes its offset twice within 3 days and back again
# (checked over every zone's transitions), so no change hides between samples.
SAMPLE = timedelta(days=1)
ZERO = timedelta(0)


@cache
def _zone(key: str) -> ZoneInfo:
    # From the tzdata package, never the machine's /usr/share/zoneinfo.
    with files("tzdata.zoneinfo").joinpath(key).open("rb") as tzif:
        return ZoneInfo.from_file(tzif, key=key)


def parse_timezone(name: str, field: str = "timezone") -> ZoneInfo:
    """The zone of an IANA key such as `Europe/Berlin` or `UTC`; BadRequest naming `field` else."""
    if len(name) > MAX_NAME:
        raise BadRequest(f"{field}: longer than {MAX_NAME} characters; expected an IANA name "
                         "like Europe/Berlin")  # fmt: skip
    if name not in ZONES:
        raise BadRequest(f"{field}: unknown time zone {name!r}, expected an IANA name like "
                         "Europe/Berlin")  # fmt: skip
    return _zone(name)


@dataclass(frozen=True)
class Piece:
    """Instants from `start` (inclusive, naive UTC) on, to the next piece, at one UTC offset."""

    start: datetime
    offset: timedelta


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    return instant.replace(tzinfo=UTC).astimezone(zone).utcoffset() or ZERO


def _change(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first instant in (before, after] whose offset is that of `after`."""
    target = _offset(zone, after)
    while after - before > ONE_MICROSECOND:
        middle = before + (after - before) // 2
        if _offset(zone, middle) == target:
            after = middle
        else:
            before = middle
    return after


@lru_cache(maxsize=256)
def offsets(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[Piece, ...]:
    """The zone's UTC offsets from `start` to `end` (naive UTC), in order, one piece per change.

    Raises BadRequest when local time there lies outside datetime's years 1 to 9999.
    """
    try:
        pieces = [Piece(start, _offset(zone, start))]
        cursor = start
        while cursor < end:
            step = end if end - cursor <= SAMPLE else cursor + SAMPLE
            if _offset(zone, step) != pieces[-1].offset:
                changed = _change(zone, cursor, step)
                pieces.append(Piece(changed, _offset(zone, changed)))
                cursor = changed
            else:
                cursor = step
        # Local time must exist at both ends, as bucket arithmetic reads it there.
        for instant, piece in ((start, pieces[0]), (end, pieces[-1])):
            instant + piece.offset
    except OverflowError:
        raise BadRequest(
            f"timezone: the range reaches past 0001-01-01 or 9999-12-31 in {zone.key}"
        ) from None
    return tuple(pieces)


def is_utc(zone: ZoneInfo, start: datetime, end: datetime) -> bool:
    """Whether the zone's wall clock equals UTC all along the range (then UTC day rollups fit)."""
    return all(p.offset == ZERO for p in offsets(zone, start, end))
