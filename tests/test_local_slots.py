"""Which rolled UTC days the slot rollup may answer local buckets from (local._readable).

The reference tests prove the answers; these pin the rule on zones the data set lacks:
quarter-hour offsets, offsets that are no whole number of slots, and days cut twice.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from weldpulse.api.params import Range
from weldpulse.domain import ONE_MICROSECOND
from weldpulse.stats.engine.local import _raw, _readable
from weldpulse.stats.engine.zones import span_of_days
from weldpulse.timezones import offsets


def readable(zone: str, rng: Range, unit: str | None) -> list[date]:
    pieces = offsets(ZoneInfo(zone), rng.start, rng.end)
    days = (rng.end.date() - rng.start.date()).days + 1
    every = [rng.start.date() + timedelta(i) for i in range(days)]
    return [d for d in every if _readable(d, unit, pieces, rng)]


def local_days(zone: str, first: date, last: date) -> Range:
    span = span_of_days(first, last, ZoneInfo(zone))
    return Range(span.start, span.end)


def test_local_days_read_every_utc_day_they_touch_dst_and_quarter_hours_too() -> None:
    for zone in ("Europe/Berlin", "Asia/Kathmandu", "Australia/Lord_Howe", "America/St_Johns"):
        rng = local_days(zone, date(2026, 3, 20), date(2026, 4, 10))
        for unit in ("day", "week", "month", None):
            assert len(readable(zone, rng, unit)) == 23, (zone, unit)


def test_offsets_off_the_slot_grid_and_days_cut_twice_read_raw_rows() -> None:
    # Monrovia was -0:44:30 until 1972: its midnights cut slots.
    assert readable("Africa/Monrovia", local_days("Africa/Monrovia", date(1971, 1, 5),
                                                  date(1971, 1, 8)), "day") == []  # fmt: skip
    # A range inside one UTC day: its start and end both cut it.
    inside = Range(datetime(2026, 5, 4, 6), datetime(2026, 5, 4, 18) - ONE_MICROSECOND)
    assert readable("Europe/Berlin", inside, None) == []
    # Its days but the first: the first is cut by the range start and a Berlin midnight.
    rng = Range(datetime(2026, 5, 4, 6), datetime(2026, 5, 7, 22) - ONE_MICROSECOND)
    assert readable("Europe/Berlin", rng, "day") == [date(2026, 5, 5), date(2026, 5, 6),
                                                     date(2026, 5, 7)]  # fmt: skip
    assert readable("Europe/Berlin", rng, None) == [date(2026, 5, 4), date(2026, 5, 5),
                                                    date(2026, 5, 6), date(2026, 5, 7)]  # fmt: skip
    # Ends off the slot grid: those days read raw rows.
    odd = Range(datetime(2026, 5, 4, 6, 5), datetime(2026, 5, 6, 7, 59))
    assert readable("Europe/Berlin", odd, None) == [date(2026, 5, 5)]


def test_raw_pieces_are_the_range_without_the_read_days() -> None:
    rng = Range(datetime(2026, 5, 3, 22), datetime(2026, 5, 7, 21, 59, 59))
    assert _raw(rng, [date(2026, 5, 4), date(2026, 5, 6)]) == (
        Range(datetime(2026, 5, 3, 22), datetime(2026, 5, 4) - ONE_MICROSECOND),
        Range(datetime(2026, 5, 5), datetime(2026, 5, 6) - ONE_MICROSECOND),
        Range(datetime(2026, 5, 7), datetime(2026, 5, 7, 21, 59, 59)),
    )
    assert _raw(rng, [date(2026, 5, 3), date(2026, 5, 7)]) == (
        Range(datetime(2026, 5, 4), datetime(2026, 5, 7) - ONE_MICROSECOND),
    )
