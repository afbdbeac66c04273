"""The floor: each endpoint's aggregate as one hand-written SQL statement on the bare engine.

Parameters are `$name`; `run` rewrites them for psycopg. The statements follow
docs/metrics.md on the raw events and sessions tables, without the server.
"""

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

BOUNCE = "CASE WHEN pageviews = 1 AND events = 1 THEN 1 ELSE 0 END"
EVENTS_IN = "site_id = $site AND ts >= $start AND ts <= $end"
SESSIONS_IN = "site_id = $site AND started_at >= $start AND started_at <= $end"

SQL = {
    "stats": f"""
        SELECT e.visitors, e.pageviews, s.sessions, s.avg_duration, s.bounces
        FROM (SELECT count(DISTINCT visitor_id) AS visitors,
                     count(*) FILTER (WHERE name = 'pageview') AS pageviews
              FROM events WHERE {EVENTS_IN}) AS e,
             (SELECT count(*) AS sessions, avg(duration) AS avg_duration, sum({BOUNCE}) AS bounces
              FROM sessions WHERE {SESSIONS_IN}) AS s""",
    "pages": f"""
        WITH views AS (
            SELECT pathname, visitor_id, ts,
                   lead(ts) OVER (PARTITION BY session_id ORDER BY ts) AS next_ts
            FROM events
            WHERE site_id = $site AND name = 'pageview' AND ts >= $start
              AND ts <= (SELECT coalesce(max(ended_at), $end) FROM sessions
                         WHERE site_id = $site AND started_at <= $end AND ended_at >= $start)),
        top AS (
            SELECT pathname, count(DISTINCT visitor_id) AS visitors, count(*) AS pageviews,
                   avg(extract(epoch FROM next_ts - ts)) AS avg_duration
            FROM views WHERE ts <= $end GROUP BY pathname
            ORDER BY visitors DESC, pageviews DESC, pathname LIMIT 10),
        entry AS (
            SELECT entry_page, count(*) AS sessions, sum({BOUNCE}) AS bounces FROM sessions
            WHERE {SESSIONS_IN} AND entry_page IN (SELECT pathname FROM top)
            GROUP BY entry_page)
        SELECT top.*, entry.sessions, entry.bounces
        FROM top LEFT JOIN entry ON entry.entry_page = top.pathname
        ORDER BY visitors DESC, pageviews DESC, pathname""",
    "referrers": f"""
        SELECT referrer_source, count(DISTINCT visitor_id) AS visitors,
               sum(pageviews) AS pageviews, count(*) AS sessions, sum({BOUNCE}) AS bounces
        FROM sessions WHERE {SESSIONS_IN} GROUP BY referrer_source
        ORDER BY visitors DESC, pageviews DESC, referrer_source LIMIT 10""",
    "timeseries": f"""
        SELECT coalesce(e.day, s.day) AS day, e.visitors, e.pageviews, s.sessions
        FROM (SELECT date_trunc('day', ts) AS day, count(DISTINCT visitor_id) AS visitors,
                     count(*) FILTER (WHERE name = 'pageview') AS pageviews
              FROM events WHERE {EVENTS_IN} GROUP BY 1) AS e
        FULL JOIN (SELECT date_trunc('day', started_at) AS day, count(*) AS sessions
                   FROM sessions WHERE {SESSIONS_IN} GROUP BY 1) AS s ON e.day = s.day
        ORDER BY 1""",
    "realtime": """
        SELECT exit_page, country, device_type, referrer_source,
               count(DISTINCT visitor_id) AS current_visitors
        FROM sessions WHERE site_id = $site AND ended_at >= $since
        GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1, 2, 3, 4 LIMIT 1000""",
    "events": f"""
        SELECT name, count(*) AS total, count(DISTINCT visitor_id) AS unique_visitors
        FROM events WHERE {EVENTS_IN} AND name <> 'pageview'
        GROUP BY name ORDER BY total DESC, unique_visitors DESC, name LIMIT 1000""",
    "geo": f"""
        SELECT country, region, count(DISTINCT visitor_id) AS visitors,
               count(*) FILTER (WHERE name = 'pageview') AS pageviews
        FROM events WHERE {EVENTS_IN} GROUP BY country, region
        ORDER BY visitors DESC, pageviews DESC, country, region LIMIT 50""",
    "devices": f"""
        SELECT device_type, browser, os, count(DISTINCT visitor_id) AS visitors,
               count(*) FILTER (WHERE name = 'pageview') AS pageviews
        FROM events WHERE {EVENTS_IN} GROUP BY device_type, browser, os
        ORDER BY visitors DESC, pageviews DESC, device_type, browser, os LIMIT 50""",
}


def to_psycopg(sql: str) -> str:
    return re.sub(r"\$(\w+)", r"%(\1)s", sql)


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """DuckDB refuses named parameters that the statement does not use."""
    return {k: v for k, v in params.items() if f"${k}" in sql}


def time_statement(
    execute: Callable[[str, dict[str, Any]], Any],
    sql: str,
    params: dict[str, Any],
    warmup: int,
    requests: int,
) -> list[float]:
    """Milliseconds of `requests` runs after `warmup` unmeasured ones."""
    for _ in range(warmup):
        execute(sql, params)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        execute(sql, params)
        times.append((time.perf_counter() - started) * 1000)
    return times


def executor(events_url: str) -> tuple[Callable[[str, dict[str, Any]], Any], Callable[[], None]]:
    """A bare DB-API connection to the events store: (execute returning rows, close)."""
    if events_url.startswith("duckdb:///"):
        import duckdb

        con = duckdb.connect(events_url.removeprefix("duckdb:///"), read_only=True)
        return (lambda sql, p: con.execute(sql, _used(sql, p)).fetchall()), con.close
    import psycopg

    pg = psycopg.connect(events_url.replace("postgresql+psycopg://", "postgresql://"))

    def run(sql: str, p: dict[str, Any]) -> Any:
        with pg.cursor() as cur:
            cur.execute(to_psycopg(sql).encode(), _used(sql, p))
            return cur.fetchall()

    return run, pg.close


def floor_params(site: str, start: datetime, end: datetime, since: datetime) -> dict[str, Any]:
    return {"site": site, "start": start, "end": end, "since": since}
