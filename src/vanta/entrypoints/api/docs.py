"""``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles served from the
``fastapi-offline`` package's files, so the reference works on a network without a CDN."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/static-offline-docs"
# The pages themselves may load from this server only: ReDoc's bundle still names a logo on
# its vendor's CDN, which the browser now refuses without asking the network. Both pages
# start with an inline script of FastAPI's; ReDoc searches in a blob: worker.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
       "'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' "
       "blob:; connect-src 'self'; frame-ancestors 'none'")
ASSETS = Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Call on an app made with ``docs_url=None, redoc_url=None``."""
    app.mount(STATIC_URL, StaticFiles(directory=str(ASSETS)), name="offline-docs")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return _local_only(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=oauth_redirect,
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon.png"))

    @app.get(oauth_redirect, include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _local_only(get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/favicon.png", with_google_fonts=False))


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["content-security-policy"] = CSP
    return page
