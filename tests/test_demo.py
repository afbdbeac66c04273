"""`make run`'s demo seeding: realistic traffic through the import pipeline, and a working key."""

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import distinct, func, select
from weldpulse.storage import engines, keys
from weldpulse.storage.schema import events, sessions

ROOT = Path(__file__).resolve().parent.parent


def test_demo_imports_a_month_of_enriched_traffic(tmp_path: Path) -> None:
    env = {**os.environ, "WELDPULSE_DATA_DIR": str(tmp_path)}
    env.pop("WELDPULSE_METADATA_URL", None)
    env.pop("WELDPULSE_EVENTS_URL", None)
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts/demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    imported = int(re.search(r"imported (\d+) events", run.stdout).group(1))  # type: ignore[union-attr]
    key = re.search(r"Bearer (ak_live_\w+)", run.stdout).group(1)  # type: ignore[union-attr]
    assert keys.is_well_formed(key)
    meta, store = engines.open_stores(
        f"sqlite:///{tmp_path}/metadata.sqlite3", f"duckdb:///{tmp_path}/events.duckdb"
    )
    assert store is not None
    with store.connect() as conn:
        count, days, countries, browsers, customs = conn.execute(
            select(
                func.count(),
                func.count(distinct(func.date_trunc("day", events.c.ts))),
                func.count(distinct(events.c.country)),
                func.count(distinct(events.c.browser)),
                func.count().filter(events.c.name != "pageview"),
            )
        ).one()
        session_count = conn.execute(select(func.count()).select_from(sessions)).scalar_one()
    store.dispose()
    meta.dispose()
    assert count == imported > 5000
    assert days >= 30 and countries == 7 and browsers >= 4 and customs > 0
    assert 0 < session_count < count
    # A second run keeps the data and prints a fresh key.
    again = subprocess.run(
        [sys.executable, str(ROOT / "scripts/demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        again.returncode == 0
        and "imported" not in again.stdout
        and "Bearer ak_live_" in again.stdout
    )
