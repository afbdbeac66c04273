"""Builds a k-times larger embedded bench store from a loaded one: k copies with disjoint ids.

    python scale.py results/data-embedded-10000000 10    # -> results/data-embedded-100000000

Loading 100M events through `writer.record` takes hours on a shared 2-core
machine; this takes minutes. Copy c of the events, sessions and visitor_days
is the original with visitor and session ids XOR-ed by c * STRIDE (disjoint
for random 62/63-bit ids) and seq = seq * k + c, so every invariant the
writer keeps (sessions, one-day visitors, previous-pageview links, seq
order) holds per copy, and every distribution of the generated stream is
kept: k times the visitors, sessions and events, same paths, sources, days and
hours. Rows go in day by day in time order, as a real load leaves them, so
DuckDB's min/max pruning sees the same layout. The day rollups are copied
too (rolling 100M events anew would take most of an hour here): as the
copies share no visitor or session, each rolled count of a (site, day, key)
is k times the original's, the multi-day ids are copied like the events'
and the marks stay; the smoke test checks this equals rolling the copies.
Run it while no process holds either store (DuckDB allows one writer).
"""

import argparse
import json
import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
from weldpulse.storage import engines

STRIDE = 0x0123_4567_89AB_CDE  # < 2**62 / 16: XOR keeps ids positive and in range
# (table, the column its rows are in order of): the tables ingestion writes; the rest are rollups.
TABLES = (("events", "ts"), ("sessions", "started_at"), ("visitor_days", "day"))
ORDER = {"events": "ts, seq", "sessions": "started_at, session_id", "visitor_days": "day"}
IDS = {"visitor_id", "session_id"}
# Rollup tables, copied once with their counts times k (multi_day_visitors: k times, like ids).
ROLLUPS = ("page_days", "source_days", "event_days", "breakdown_days", "attr_days",
           "local_slots", "rolled_days")  # fmt: skip
COUNTS = {"visitors", "pageviews", "time_total", "time_count", "entries", "bounces", "sessions",
          "duration", "total", "events", "views", "firsts", "lasts"}  # fmt: skip


def copy_metadata(src: Path, dst: Path) -> None:
    """The same project, sites and keys (sqlite's backup: consistent with its WAL)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def select_list(con: duckdb.DuckDBPyConnection, table: str, k: int) -> str:
    columns = [r[0] for r in con.execute(f"DESCRIBE src.{table}").fetchall()]
    out = []
    for c in columns:
        if c in IDS:
            out.append(f"xor({c}, copy * {STRIDE}) AS {c}")
        elif c == "seq":
            out.append(f"seq * {k} + copy AS seq")
        else:
            out.append(c)
    return ", ".join(out)


def scale(src_dir: Path, k: int) -> Path:
    info = json.loads((src_dir / "load.json").read_text())
    n = int(src_dir.name.rsplit("-", 1)[1])
    dst_dir = src_dir.with_name(f"data-embedded-{n * k}")
    dst_dir.mkdir()
    copy_metadata(src_dir / "metadata.sqlite3", dst_dir / "metadata.sqlite3")
    meta_url = f"sqlite:///{dst_dir / 'metadata.sqlite3'}"
    events_url = f"duckdb:///{dst_dir / 'events.duckdb'}"
    metadata, events = engines.open_stores(meta_url, events_url)  # migrated, empty
    assert events is not None
    metadata.dispose()
    events.dispose()
    con = duckdb.connect(str(dst_dir / "events.duckdb"))
    con.execute(f"ATTACH '{src_dir / 'events.duckdb'}' AS src (READ_ONLY)")
    started = time.perf_counter()
    for table, day in TABLES:
        columns = select_list(con, table, k)
        days = con.execute(
            f"SELECT DISTINCT CAST({day} AS DATE) FROM src.{table} ORDER BY 1"
        ).fetchall()
        for (d,) in days:  # a range, not a cast, so DuckDB skips the other row groups
            con.execute(
                f"INSERT INTO {table} SELECT {columns} FROM src.{table}, range({k}) AS r(copy) "
                f"WHERE {day} >= ? AND {day} < ? ORDER BY {ORDER[table]}, copy",
                [d, d + timedelta(days=1)],
            )
        (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0]
        print(f"scale: {table}: {rows:,} rows", flush=True)
    for table in ROLLUPS:
        names = [r[0] for r in con.execute(f"DESCRIBE src.{table}").fetchall()]
        scaled = ", ".join(f"{c} * {k} AS {c}" if c in COUNTS else c for c in names)
        con.execute(f"INSERT INTO {table} SELECT {scaled} FROM src.{table} ORDER BY day")
    for table in ("multi_day_visitors", "visitor_spans"):  # ids: copied like the events'
        con.execute(
            f"INSERT INTO {table} SELECT {select_list(con, table, k)} "
            f"FROM src.{table}, range({k}) AS r(copy) ORDER BY day, copy"
        )
    # Fresh seq values continue after the copies' (the writer draws from this sequence).
    (top,) = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM events").fetchall()[0]
    con.execute("DROP SEQUENCE events_seq")
    con.execute(f"CREATE SEQUENCE events_seq START WITH {int(top)}")
    con.execute("CHECKPOINT")
    con.close()
    seconds = round(time.perf_counter() - started, 1)
    scaled = info | {
        "meta_url": meta_url,
        "events_url": events_url,
        "scaled_from": str(src_dir.name),
        "scaled_copies": k,
        "scale_s": seconds,
    }
    (dst_dir / "load.json").write_text(json.dumps(scaled, indent=1))
    print(f"scale: {n:,} -> {n * k:,} events in {seconds} s", flush=True)
    return dst_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, help="a loaded data-embedded-N directory")
    parser.add_argument("copies", type=int)
    args = parser.parse_args(argv)
    scale(args.source.resolve(), args.copies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
