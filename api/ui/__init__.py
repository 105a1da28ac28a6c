"""The web dashboard: static pages served at `/ui` by the API itself (see README, Dashboard).

The pages hold no data: they are plain HTML, CSS and JavaScript modules (and the vendored
uPlot) that call this same API with the token the user signs in with, so the token gate
lets `/ui` through (api/gate.py) and every call the pages make is checked like any other.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
UI_PATH = "/ui"
# Only this origin's files, no inline script: a token in sessionStorage is only as safe as
# the scripts the page runs. `connect-src 'self'`: the pages call this API and nothing else.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class DashboardFiles(StaticFiles):
    """StaticFiles with the dashboard's security headers, revalidated on every load."""

    async def get_response(self, path: str, scope: Scope):
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def mount(app: FastAPI) -> None:
    """Serve the dashboard at `/ui/` (and send `/ui` there)."""

    @app.api_route(UI_PATH, methods=["GET", "HEAD"], include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/", status_code=308)

    app.mount(UI_PATH, DashboardFiles(directory=STATIC_DIR, html=True), name="ui")
