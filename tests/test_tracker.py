"""The tracker script in real headless Chromium: load, click, navigate; the API then shows it all."""

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import Stack, Tenant

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# Headless Chromium announces itself as HeadlessChrome, which is a bot; a
# real desktop user agent makes the test see what users' browsers send.
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
PAGE = """<!doctype html>
<html><head><title>shop</title>
<script defer data-site="{site_key}" data-api="{api}" src="{api}/js/script.js"></script>
</head><body>
<button id="signup" onclick="weldpulse('signup_click', {{props: {{plan: 'pro'}}}})">Sign up</button>
<a id="about" href="/about" onclick="history.pushState({{}}, '', '/about'); return false;">About</a>
</body></html>
"""

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


@pytest.fixture
def site_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static site on localhost, a different origin from the API."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def test_pageviews_click_and_spa_navigation_reach_the_api(
    stack: Stack, tenant: Tenant, site_server
) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if stack.engine != "embedded":
        pytest.skip(
            "one browser run covers the tracker; the store is tested on both engines elsewhere"
        )
    origin, root = site_server
    # The tenant's site must be the page's host.
    from sqlalchemy import update
    from weldpulse.storage.schema import sites

    with stack.metadata.begin() as conn:
        conn.execute(update(sites).where(sites.c.id == tenant.site_id).values(domain="localhost"))
    api = str(stack.http.base_url).rstrip("/")
    (root / "index.html").write_text(PAGE.format(site_key=tenant.site_key, api=api))

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-agent={DESKTOP_UA}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"{origin}/index.html?utm_source=browser-test")
        wait_for(lambda: driver.execute_script("return typeof window.weldpulse") == "function")
        driver.find_element("id", "signup").click()
        driver.find_element("id", "about").click()
        assert driver.execute_script("return location.pathname") == "/about"
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        day = {"start": today, "end": today}
        wait_for(lambda: read(stack, tenant, "/v1/stats", **day)[0]["pageviews"] == 2)
        wait_for(lambda: read(stack, tenant, "/v1/events", **day) != [])
    finally:
        driver.quit()
    stats = read(stack, tenant, "/v1/stats", **day)[0]
    assert (stats["visitors"], stats["pageviews"], stats["sessions"]) == (1, 2, 1)
    pages = {r["pathname"]: r["pageviews"] for r in read(stack, tenant, "/v1/pages", **day)}
    assert pages == {"/index.html": 1, "/about": 1}
    assert read(stack, tenant, "/v1/events", **day) == [
        {"event_name": "signup_click", "total": 1, "unique_visitors": 1}
    ]
    live = read(stack, tenant, "/v1/realtime")
    assert [
        (r["pathname"], r["device_type"], r["referrer_source"], r["current_visitors"]) for r in live
    ] == [("/about", "desktop", "browser-test", 1)]


def read(stack: Stack, tenant: Tenant, path: str, **params: str) -> list[dict]:
    resp = stack.http.get(
        path, params=params, headers={"Authorization": f"Bearer {tenant.read_key}"}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
