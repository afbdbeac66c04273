"""The query shapes of issue 10's "Fast" section: POST /v1/query bodies, their GET twins, targets.

Each shape is timed through Envoy for the 30- and 90-day windows; `ratios`
pairs shapes measured in the same run (compare vs. without, Berlin vs. UTC).
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from generate import END

EVENT_METRICS = ["visitors", "pageviews"]


def _is(dimension: str, *values: str) -> dict[str, Any]:
    return {"dimension": dimension, "op": "is", "values": list(values)}


@dataclass(frozen=True)
class Shape:
    """One query: its body (without site and range), the GET route answering the same, target."""

    metrics: list[str]
    dimensions: list[str] = field(default_factory=list)
    filters: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None  # the GET endpoint asking the same question, if any
    # p50 through Envoy at 30 / 90 days, ms (issue 10); None: no target of its own
    targets: tuple[float | None, float | None] = (None, None)

    def body(self, site: str, days: int) -> dict[str, Any]:
        """The request for the last `days` whole days before END (dates: local days)."""
        start, end = END - timedelta(days=days), END - timedelta(days=1)
        body: dict[str, Any] = {
            "site_id": site,
            "date_range": {"start": start.date().isoformat(), "end": end.date().isoformat()},
            "metrics": list(self.metrics),
            "dimensions": list(self.dimensions),
            **self.extra,
        }
        if self.filters is not None:
            body["filters"] = self.filters
        return body


_NO_FILTER = (100.0, 250.0)  # the GET targets, kept
_FILTERED = (250.0, None)


def _top_pages_of(filters: dict[str, Any]) -> Shape:
    return Shape(EVENT_METRICS, ["page"], filters, targets=_FILTERED)


SHAPES: dict[str, Shape] = {
    # No filter, no dimension or any single one (GET targets kept: 100 / 250 ms).
    "q_stats": Shape(["visitors", "pageviews", "bounce_rate", "avg_duration"], preset="stats",
                     targets=_NO_FILTER),
    "q_page": Shape(EVENT_METRICS, ["page"], preset="pages", targets=_NO_FILTER),
    "q_source": Shape(["visitors", "sessions", "bounce_rate"], ["source"], preset="referrers",
                      targets=_NO_FILTER),
    "q_country": Shape(EVENT_METRICS, ["country"], targets=_NO_FILTER),
    "q_channel": Shape(["visitors", "sessions"], ["channel"], targets=_NO_FILTER),
    "q_utm_campaign": Shape(["visitors", "sessions", "bounce_rate"], ["utm_campaign"],
                            targets=_NO_FILTER),
    "q_day": Shape(EVENT_METRICS, ["time:day"], preset="timeseries", targets=_NO_FILTER),
    "q_geo": Shape(EVENT_METRICS, ["country", "region"], preset="geo", targets=_NO_FILTER),
    "q_devices": Shape(EVENT_METRICS, ["device_type", "browser", "os"], preset="devices",
                       targets=_NO_FILTER),
    # One filter on a dimension (≤ 250 ms at 30 days).
    "f_page": Shape(EVENT_METRICS, ["source"], _is("page", "/pricing"), targets=_FILTERED),
    "f_source": _top_pages_of(_is("source", "Google")),
    "f_country": _top_pages_of(_is("country", "DE")),
    "f_utm_campaign": _top_pages_of(_is("utm_campaign", "spring_sale")),
    "f_prop": Shape(filters=_is("prop:plan", "pro"), metrics=["visitors", "events"],
                    dimensions=["event_name"], targets=_FILTERED),
    # Session metrics under an event filter (issue 10: 3.6-8.4 s on PostgreSQL; ≤ 250 ms).
    "s_page": Shape(["visitors", "sessions", "bounce_rate", "avg_duration", "views_per_session"],
                    filters=_is("page", "/pricing"), targets=_FILTERED),
    "s_page_source": Shape(["sessions", "bounce_rate", "views_per_session"], ["source"],
                           _is("page", "/pricing"), targets=_FILTERED),
    # Two dimensions and two filters, one a case-insensitive `contains` (≤ 400 ms).
    "f2_source_country": Shape(EVENT_METRICS, ["source", "country"], {"and": [
        {"dimension": "page", "op": "contains", "values": ["/blog"], "case_sensitive": False},
        _is("device_type", "mobile"),
    ]}, targets=(400.0, None)),
    # A custom event's prop breakdown (≤ 250 ms).
    "prop_plan": Shape(["visitors", "events"], ["prop:plan"], _is("event_name", "signup"),
                       targets=_FILTERED),
    # Comparisons and zones: the targets are ratios to the twin without (see RATIOS).
    "c_stats": Shape(["visitors", "pageviews", "bounce_rate", "avg_duration"],
                     extra={"compare": {"mode": "previous_period"}}),
    "c_page": Shape(EVENT_METRICS, ["page"], extra={"compare": {"mode": "previous_period"}}),
    "c_day": Shape(EVENT_METRICS, ["time:day"], extra={"compare": {"mode": "previous_period"}}),
    "z_day": Shape(EVENT_METRICS, ["time:day"], extra={"timezone": "Europe/Berlin"}),
    "z_page": Shape(EVENT_METRICS, ["page"], extra={"timezone": "Europe/Berlin"}),
    "z_f2": Shape(EVENT_METRICS, ["source", "country"], {"and": [
        {"dimension": "page", "op": "contains", "values": ["/blog"], "case_sensitive": False},
        _is("device_type", "mobile"),
    ]}, extra={"timezone": "Europe/Berlin"}),
    # Goals (issue 11): conversion rate per goal (≤ 250 ms at 30 days, 10M events).
    "g_goal": Shape(["visitors", "conversion_rate"], ["goal"], targets=(250.0, None)),
    # A goal as the filter, per source (issue 10 at 100M: goal filtered <= 1 s at 30 days).
    "g_filtered": Shape(["visitors", "conversion_rate"], ["source"], _is("goal", "Signup"),
                        targets=(1000.0, None)),
}  # fmt: skip

# The goals of the big site (g_goal): event names and page paths, `*` and `**`.
GOALS = [
    {"name": "Signup", "event_name": "signup"},
    {"name": "Purchase", "event_name": "purchase"},
    {"name": "Newsletter", "event_name": "newsletter"},
    {"name": "Saw pricing", "page_path": "/pricing"},
    {"name": "Read docs", "page_path": "/docs/**"},
    {"name": "Blog post", "page_path": "/blog/*"},
    {"name": "Asked for help", "page_path": "/help/*"},
    {"name": "Changelog", "page_path": "/changelog**"},
]

# shape -> (its twin in the same run, the highest ratio of their p50s issue 10 allows)
RATIOS: dict[str, tuple[str, float]] = {
    "c_stats": ("q_stats", 1.6),
    "c_page": ("q_page", 1.6),
    "c_day": ("q_day", 1.6),
    "z_day": ("q_day", 1.3),
    "z_page": ("q_page", 1.3),
    "z_f2": ("f2_source_country", 1.3),
}
