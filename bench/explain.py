"""Profiles one query shape on a loaded bench store: each statement the engine runs, its time,
the time left to Python (parsing, row assembly), and the database's EXPLAIN ANALYZE.

    python explain.py bench/results/data-embedded-1000000 f2_source_country 30d

Run it while no server holds the store (DuckDB allows one writer process).
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from queries import SHAPES
from run import WINDOWS
from sqlalchemy import Connection, event
from weldpulse.stats.engine import run as engine_run
from weldpulse.stats.engine.goals import Goal
from weldpulse.stats.engine.request import parse_query
from weldpulse.storage import engines, goals
from weldpulse.v1 import analytics_pb2 as pb


def profile(
    conn: Connection, site: str, shape: str, window: str, site_goals: list[Goal]
) -> dict[str, Any]:
    """Answers the shape once, recording each statement's SQL, parameters and milliseconds."""
    body = SHAPES[shape].body(site, WINDOWS[window])
    request = json_format.ParseDict(body, pb.QueryRequest())
    statements: list[dict[str, Any]] = []

    def before(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        statements.append({"sql": sql, "params": params, "started": time.perf_counter()})

    def after(_c: Any, _cur: Any, _sql: str, _params: Any, _ctx: Any, _many: bool) -> None:
        statements[-1]["ms"] = round((time.perf_counter() - statements[-1].pop("started")) * 1e3, 1)

    started = time.perf_counter()
    q = parse_query(request, (site,), lambda _: "UTC", site_goals)
    event.listen(conn, "before_cursor_execute", before)
    event.listen(conn, "after_cursor_execute", after)
    try:
        answer = engine_run.answer(conn, q)
    finally:
        event.remove(conn, "before_cursor_execute", before)
        event.remove(conn, "after_cursor_execute", after)
    total = (time.perf_counter() - started) * 1e3
    # Fetching happens after after_cursor_execute: it counts as Python/driver time here.
    return {
        "total_ms": round(total, 1),
        "statements_ms": round(sum(s["ms"] for s in statements), 1),
        "rows": answer.total_rows,
        "statements": statements,
    }


def main(data_dir: str, shape: str, window: str = "30d") -> None:
    info = json.loads((Path(data_dir) / "load.json").read_text())
    site = info["sites"][0]
    meta = engines.connect(info["meta_url"])
    with meta.connect() as conn:  # the goals the server would read (g_* shapes)
        rows = conn.execute(goals.site_goals_stmt([site])).all()
    meta.dispose()
    site_goals = [Goal(r.site_id, r.name, r.event_name or "", r.page_path or "") for r in rows]
    ev = engines.connect(info["events_url"])
    try:
        with ev.connect() as conn:
            profile(conn, site, shape, window, site_goals)  # warm caches
            result = profile(conn, site, shape, window, site_goals)
            print(f"{shape}/{window}: {result['total_ms']} ms in all, statements "
                  f"{result['statements_ms']} ms, {result['rows']} rows")  # fmt: skip
            for s in result["statements"]:
                print(f"\n--- {s['ms']} ms\n{s['sql']}\n{s['params']}")
                if s["sql"].startswith("SET"):  # planner settings around a statement: replay
                    conn.exec_driver_sql(s["sql"])
                    continue
                plan = conn.exec_driver_sql("EXPLAIN ANALYZE " + s["sql"], s["params"]).all()
                print("\n".join(str(cell) for row in plan for cell in row))
    finally:
        ev.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:])
