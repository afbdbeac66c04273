"""The benchmark harness still works: a 10,000-event smoke run writes its JSON, table and chart.

Only that the harness runs end to end is checked here; its timings are
never asserted (benchmarks are not timed tests).
"""

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from weldpulse.domain import SESSION_GAP
from weldpulse.storage import engines, rollups

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
from funnel_shapes import FUNNELS  # noqa: E402
from queries import SHAPES  # noqa: E402
from scale import ROLLUPS  # noqa: E402


def _rows(store: Path, table: str) -> list[tuple[Any, ...]]:
    """The table's rows, ordered by their keys (every column but the float ones and the time
    of a roll; local_slots rows differ in their slot's time only)."""
    with duckdb.connect(str(store), read_only=True) as con:
        found = con.execute(f"SELECT * FROM {table}").fetchall()
    skip = float | datetime if table == "rolled_days" else float
    return sorted(found, key=lambda r: repr([v for v in r if not isinstance(v, skip)]))


def test_bench_smoke_run_reports_every_endpoint(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "run.py", "--events", "10000", "--requests", "2", "--warmup", "1",
         "--out", str(tmp_path)],
        cwd=BENCH, check=True, timeout=300,
    )  # fmt: skip
    result = json.loads((tmp_path / "embedded-10000.json").read_text())
    endpoints = {"stats", "pages", "referrers", "timeseries", "events", "geo", "devices"}
    for endpoint in endpoints:
        for window in ("30d", "90d"):
            assert result["floor"][f"{endpoint}/{window}"]["n"] == 2
            for transport in ("envoy", "grpc"):
                assert result["api"][f"{endpoint}/{window}/{transport}"]["p50"] > 0
    for shape in SHAPES:  # every query shape answered 200 through Envoy, for both windows
        for window in ("30d", "90d"):
            assert result["query"][f"{shape}/{window}"]["status"] == 200, shape
            assert result["query"][f"{shape}/{window}"]["n"] == 2
    for name in FUNNELS:  # every funnel shape answered 200 through Envoy, for both windows
        for window in ("30d", "90d"):
            assert result["funnel"][f"{name}/{window}"]["status"] == 200, name
            assert result["funnel"][f"{name}/{window}"]["n"] == 2
    assert result["funnel"]["session4/90d"]["visitors"][0] > 0  # step 1 has visitors to follow
    assert "| session4 | 30d |" in (tmp_path / "embedded-10000.md").read_text()
    # The generator gives the dimensions the shapes group by something to group.
    assert result["query"]["q_utm_campaign/30d"]["rows"] > 1
    assert result["query"]["prop_plan/30d"]["rows"] > 1
    assert result["api"]["realtime/now/envoy"]["n"] == 2
    assert result["api"]["sites/now/grpc"]["n"] == 2
    assert result["load"]["record_1000_events"] == 1000
    assert result["load"]["record_bulk_events_per_s"] > 0
    assert result["roll"]["site_days"] >= 90  # the big site has events on each of the 90 days
    assert result["server_max_rss_mib"] > 0
    table = (tmp_path / "embedded-10000.md").read_text()
    assert "| stats | 30d |" in table and "| devices | 90d |" in table
    assert "| q_page | page | 30d |" in table and "| c_page | q_page | 30d |" in table
    assert (tmp_path / "latency-vs-events-embedded.png").stat().st_size > 1000
    # The scaled-store check takes minutes on a loaded machine: `make bench`'s users run it.
    if os.environ.get("WELDPULSE_TEST_BENCH_SCALE"):
        _check_scale(tmp_path, result)


def _check_scale(tmp_path: Path, result: dict[str, Any]) -> None:
    # scale.py makes a 3x store of disjoint copies; a later run on it (--reuse), timing only
    # the query shapes, keeps the first run's files.
    subprocess.run(
        [sys.executable, "scale.py", str(tmp_path / "data-embedded-10000"), "3"],
        cwd=BENCH, check=True, timeout=300,
    )  # fmt: skip
    counts = (
        "SELECT (SELECT count(*) FROM events), (SELECT count(DISTINCT visitor_id) FROM events),"
        " (SELECT count(*) FROM sessions), (SELECT sum(pageviews) FROM visitor_days)"
    )
    stores = [tmp_path / f"data-embedded-{n}" / "events.duckdb" for n in (10000, 30000)]
    found = []
    for store in stores:  # closed before the server opens the store for writing
        with duckdb.connect(str(store), read_only=True) as con:
            found.append(con.execute(counts).fetchone())
    assert found[0] is not None and found[1] == tuple(3 * x for x in found[0])
    # Its copied rollups are what rolling the copies anew gives (floats: float4 sums).
    rerolled = tmp_path / "rerolled.duckdb"
    shutil.copy(stores[1], rerolled)
    with duckdb.connect(str(rerolled)) as con:
        for table in (*ROLLUPS, "multi_day_visitors", "visitor_spans"):
            con.execute(f"DELETE FROM {table}")
    engine = engines.connect(f"duckdb:///{rerolled}")
    rollups.roll_pending(engine, (datetime.now(UTC).replace(tzinfo=None) - SESSION_GAP).date())
    engine.dispose()
    for table in (*ROLLUPS, "multi_day_visitors", "visitor_spans"):
        copied, rolled = (_rows(store, table) for store in (stores[1], rerolled))
        assert len(copied) == len(rolled) > 0, table
        for a, b in zip(copied, rolled, strict=True):
            if table == "rolled_days":
                assert a[:-1] == b[:-1], table
                continue
            times = [v for v in a if isinstance(v, datetime)]  # local_slots' slot_at
            assert times == [v for v in b if isinstance(v, datetime)], table
            rest = [v for v in a if not isinstance(v, datetime)]
            assert rest == pytest.approx([v for v in b if not isinstance(v, datetime)]), table
    subprocess.run(
        [sys.executable, "run.py", "--events", "30000", "--requests", "1", "--warmup", "0",
         "--reuse", "--skip", "floor,api,ingestion", "--label", "again", "--out", str(tmp_path)],
        cwd=BENCH, check=True, timeout=300,
    )  # fmt: skip
    again = json.loads((tmp_path / "embedded-30000-again.json").read_text())
    assert again["api"] == again["floor"] == again["ingestion"] == {}
    assert all(again["query"][f"{shape}/30d"]["status"] == 200 for shape in SHAPES)
    # The copies share paths and plans: as many rows as the original store's answers.
    for shape in ("q_page", "prop_plan"):
        assert again["query"][f"{shape}/30d"]["rows"] == result["query"][f"{shape}/30d"]["rows"]
    assert json.loads((tmp_path / "embedded-10000.json").read_text()) == result
    # The profiler of docs/performance.md prints the shape's statements and their plans.
    profiled = subprocess.run(
        [sys.executable, "explain.py", str(tmp_path / "data-embedded-10000"), "f2_source_country"],
        cwd=BENCH, check=True, timeout=120, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert profiled.startswith("f2_source_country/30d:") and "FROM events" in profiled
    assert "Total Time" in profiled  # DuckDB's EXPLAIN ANALYZE of the statement
