"""The dashboard's files at /ui: served by the API without a token (they hold no data), with
their security headers, all shipped as package data; the way past the gate goes nowhere else."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import anyio
from fastapi.testclient import TestClient

from api.ui import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_ui_redirects_to_the_page_which_needs_no_token(client: TestClient):
    client.headers.pop("Authorization")
    for method in ("GET", "HEAD"):
        moved = client.request(method, "/ui", follow_redirects=False)
        assert moved.status_code == 308 and moved.headers["location"] == "/ui/"
    assert client.head("/ui/").status_code == 200
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="js/app.js" type="module">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


def test_every_asset_is_served_from_the_package(client: TestClient):
    client.headers.pop("Authorization")
    page = client.get("/ui/").text
    for asset in ("vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "app.css", "js/app.js"):
        assert asset in page
        response = client.get(f"/ui/{asset}")
        assert response.status_code == 200, asset
        assert response.content == (STATIC_DIR / asset).read_bytes()
    assert client.get("/ui/js/api.js").headers["content-type"].startswith("text/javascript")
    assert "https://" not in page and "http://" not in page  # no CDN


def _raw_get(client: TestClient, path: str) -> int:
    """The status of a GET of exactly `path` (httpx would normalise the dots away)."""
    from urllib.parse import unquote

    sent: list[dict] = []
    asked: list[bool] = []

    async def receive() -> dict:
        if not asked:
            asked.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()  # no disconnect: the response ends by itself
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": unquote(path), "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": [(b"host", b"testserver")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "app": client.app}
    client.portal.call(client.app, scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_the_gate_opens_for_ui_files_only(client: TestClient):
    client.headers.pop("Authorization")
    assert client.get("/ui/no-such-file.js").status_code == 404
    assert (_raw_get(client, "/ui/"), _raw_get(client, "/jobs")) == (200, 401)
    for raw in ("/ui/../jobs", "/ui/js/../../jobs", "/ui/%2e%2e/jobs"):
        assert _raw_get(client, raw) == 404, raw  # past the gate, yet never the jobs list
    refused = client.get("/uiadmin")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.get("/jobs").status_code == 401


def test_every_dashboard_file_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api"]
    api = ROOT / "api"
    files = [p.relative_to(api).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) and
                                           f.count("/") == pattern.count("/") for pattern in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data] api: {missing}"


def test_the_vendored_chart_library_is_the_locked_one():
    lock = json.loads((ROOT / "api/ui/package-lock.json").read_text())
    version = lock["packages"]["node_modules/uplot"]["version"]
    assert json.loads((ROOT / "api/ui/package.json").read_text())["dependencies"]["uplot"] == version
    header = (STATIC_DIR / "vendor/uPlot.iife.min.js").read_text()[:100]
    assert f"(v{version})" in header, "run scripts/vendor_ui.sh and commit what it vendors"
