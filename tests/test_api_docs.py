"""docs/api.md is rendered from the current protos, and its curl examples work as written."""

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from conftest import Stack
from weldpulse_client import rpc_methods

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/api.md"


def test_api_docs_are_up_to_date() -> None:
    script = ROOT / "scripts/api_docs.py"
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_every_rpc_is_documented() -> None:
    text = DOC.read_text()
    for name in rpc_methods():
        service, method = name.split("/")
        assert f"{service}/{method}" in text and f"— {method}" in text, f"{name} is not in the docs"


def test_curl_examples_return_data(stack: Stack) -> None:
    urls = re.findall(r"^curl -s '(http://127\.0\.0\.1:8080/v1/[^']*)'", DOC.read_text(), re.M)
    assert len(urls) >= 10  # the introduction's and one per GET route
    key = stack.new_key("a")
    for url in urls:
        parts = urlsplit(url.replace("SITE_ID", stack.ids["a_site1"]))
        resp = stack.http.get(
            f"{parts.path}?{parts.query}", headers={"Authorization": f"Bearer {key}"}
        )
        assert resp.status_code == 200, (url, resp.text)
        assert list(resp.json()) == ["data"], url
