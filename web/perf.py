"""Times the dashboard in Chromium with the Performance API on `make bench`'s data (not a test).

    make bench-dashboard EVENTS=1000000 [BENCH_ARGS="--reuse --runs 9"]

Loads (or, with --reuse, keeps) bench/results/data-embedded-N through
bench/run.py, starts `weldpulse up` on it, and for each run opens the
dashboard on the big site's last 30 days of data, then clicks its top
source. Prints the medians (milliseconds after navigation start, from the
page's own `weldpulse:*` marks), the tiles' question asked alone through
Envoy in the same runs, and the JavaScript's size as sent (gzipped).
"""

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import run as bench  # noqa: E402
from weldpulse.storage import accounts, engines  # noqa: E402

# The bench data's last 30 days (bench/generate.py: END is 2026-11-01, exclusive).
VIEW = "?range=custom&from=2026-10-02&to=2026-10-31"
MARKS = """
const at = (name, after = 0) => {
  const m = performance.getEntriesByName(name).find((e) => e.startTime >= after);
  return m ? m.startTime : null;
};
const js = performance.getEntriesByType('resource').find((e) => e.name.includes('/app.js'));
return {tiles: at('weldpulse:tiles'), idle: at('weldpulse:idle'),
        js_transfer: js ? js.transferSize : null, js_encoded: js ? js.encodedBodySize : null,
        js_decoded: js ? js.decodedBodySize : null};
"""


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", "--disable-background-networking"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def wait(driver: Any, script: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {script}")
        time.sleep(0.01)


def one_run(driver: Any, origin: str, key: str, site: str) -> dict[str, float]:
    driver.get("about:blank")
    driver.get(f"{origin}/dashboard/{VIEW}&site={site}#key={key}")
    wait(driver, "return document.documentElement.dataset.pending === '0'"
                 " && performance.getEntriesByName('weldpulse:idle').length > 0")  # fmt: skip
    first = driver.execute_script(MARKS)
    button = driver.find_element("css selector", "#panel-sources tbody tr button")
    before = driver.execute_script("return performance.now()")
    button.click()
    wait(
        driver,
        "return performance.getEntriesByName('weldpulse:idle')"
        f".some((e) => e.startTime > {before})",
    )
    filtered = driver.execute_script(
        "const f = performance.getEntriesByName('weldpulse:filter').at(-1).startTime;"
        "const idle = performance.getEntriesByName('weldpulse:idle').find((e) => e.startTime > f);"
        "return idle.startTime - f;"
    )
    return {"tiles_ms": first["tiles"], "panels_ms": first["idle"], "filter_ms": filtered, **first}


def api_tiles_ms(origin: str, key: str, site: str) -> float:
    """The page's tiles question asked alone through Envoy: the server's share of the wait."""
    body = {
        "site_id": site, "timezone": "UTC",
        "date_range": {"start": "2026-10-02", "end": "2026-10-31"},
        "metrics": ["visitors", "pageviews", "sessions", "bounce_rate", "avg_duration",
                    "views_per_session"],
    }  # fmt: skip
    started = time.perf_counter()
    resp = httpx.post(f"{origin}/v1/query", json=body, headers={"Authorization": f"Bearer {key}"})
    resp.raise_for_status()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    data_dir = bench.RESULTS / f"data-embedded-{args.events}"
    if args.reuse and (data_dir / "load.json").exists():
        info = json.loads((data_dir / "load.json").read_text())
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        info = bench.load(args.events, "embedded", data_dir, 50_000)
        bench.roll(info)
    meta = engines.connect(info["meta_url"])
    server = bench.Server(info, data_dir)
    driver = browser()
    origin = f"http://127.0.0.1:{server.http_port}"
    runs = []
    try:
        for i in range(args.warmup + args.runs):
            # A key per run: a view makes about ten calls of a key's 100 a minute.
            with meta.begin() as conn:
                key = accounts.create_api_key(conn, info["project"], ["stats:read"])["key"]
            result = one_run(driver, origin, key, info["sites"][0])
            result["api_tiles_ms"] = api_tiles_ms(origin, key, info["sites"][0])
            if i >= args.warmup:
                runs.append(result)
    finally:
        driver.quit()
        server.stop()
        meta.dispose()
    summary = {
        name: round(statistics.median(r[name] for r in runs), 1)
        for name in ("tiles_ms", "panels_ms", "filter_ms", "api_tiles_ms")
    }
    summary |= {k: runs[-1][k] for k in ("js_transfer", "js_encoded", "js_decoded")}
    timed = ("tiles_ms", "panels_ms", "filter_ms", "api_tiles_ms")
    each = [{k: round(r[k], 1) for k in timed} for r in runs]
    out = {"events": args.events, "runs": len(runs), "median": summary, "each": each}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
