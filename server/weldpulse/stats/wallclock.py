"""Stored naive-UTC timestamps as wall-clock time of an IANA zone, in SQL for every engine."""

from datetime import datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Interval, case, literal
from weldpulse.api.params import Range
from weldpulse.timezones import ZERO, offsets


def local_time(
    column: ColumnElement[datetime], zone: ZoneInfo, rng: Range
) -> ColumnElement[datetime]:
    """`column` (naive UTC) as naive wall-clock time in `zone`; exact for values within `rng`.

    The offsets come from the pinned tzdata (weldpulse.timezones), not from
    the engine's own time-zone database, so DuckDB and PostgreSQL bucket
    exactly as the Python side lists buckets, whatever their tz versions; and
    a `ts + CASE ... END` over the range's few offset changes costs less than
    a per-row zone conversion. Values outside `rng` get the nearest piece's offset.
    """
    pieces = offsets(zone, rng.start, rng.end)
    if len(pieces) == 1:
        if pieces[0].offset == ZERO:
            return column
        return column + literal(pieces[0].offset, Interval())
    whens = [(column < later.start, literal(p.offset, Interval())) for p, later in pairwise(pieces)]
    return column + case(*whens, else_=literal(pieces[-1].offset, Interval()))
