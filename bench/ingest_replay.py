"""Replay time: how long a restarted server takes to apply 100,000 logged, unapplied events.

Logs the events (one record per collect, as a burst leaves them) while no
applier runs, then starts a Collector on the same log and store and times
until the log is empty (wall, and CPU of this process: the applier's, and
DuckDB's threads on the embedded store; PostgreSQL's own is not counted).
`--engine postgres --postgres-url URL` for PostgreSQL.
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest_wire import _drop_database, _fresh_database
from weldpulse.domain import Event
from weldpulse.ingest.collector import Collector, encode
from weldpulse.ingest.hits import Enriched
from weldpulse.ingest.log import SqliteLog
from weldpulse.storage import engines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--engine", choices=("embedded", "postgres"), default="embedded")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="weldpulse-replay-"))
    url = f"duckdb:///{tmp}/events.duckdb"
    if args.engine == "postgres":
        url = _fresh_database(args.postgres_url)
    _, store = engines.open_stores(f"sqlite:///{tmp}/metadata.sqlite3", url)
    assert store is not None
    log = SqliteLog(tmp / "ingest-log.sqlite3")
    now = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    records = [
        (1, encode([Enriched(Event("replay", now + timedelta(milliseconds=i), "pageview",
                                   i % 5000, f"/p/{i % 200}"), None)]))
        for i in range(args.events)
    ]  # fmt: skip
    for lo in range(0, len(records), 10_000):
        log.append(records[lo : lo + 10_000])
    started, cpu = time.perf_counter(), time.process_time()
    collector = Collector(store, log=log)  # replays on start
    while log.backlog():
        time.sleep(0.01)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    collector.close()
    store.dispose()
    if args.engine == "postgres":
        _drop_database(url)
    print(f"{args.engine}: replayed {args.events} events in {elapsed:.2f} s "
          f"({args.events / elapsed:,.0f} events/s), {cpu:.2f} s of its CPU")  # fmt: skip


if __name__ == "__main__":
    main()
