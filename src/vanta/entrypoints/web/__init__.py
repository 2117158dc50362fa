"""The web app, served under ``/app`` by the API's own process: server-rendered Jinja2 pages
with htmx (vendored in ``static/``, nothing from a CDN) for the live parts.

How to add a page (the helper layer, :mod:`vanta.entrypoints.web.pages`):

* Make a module ``routes_<area>.py`` with ``router = page_router()``: routes out of the
  OpenAPI document, and every POST refused (403) without the session's CSRF token. Add the
  module to ``PAGE_MODULES`` below. Paths are relative to ``/app``.
* In each route, ``p = require_page_principal(request, "scope:name")`` (optionally
  ``allow=has_role("owner")``): no session sends the browser to sign in and back; a missing
  grant answers 404 like the API. Then call the same application services and access checks
  as the API routes (``vanta.entrypoints.api.access``: ``visible_vaults``, ``load_follower``,
  ``require_vault``…) with ``p.tenant_id`` and ``actor=p.subject``: tenant scoping, ABAC, plan
  entitlements and audit come with them.
* Render with ``render(request, "x.html", title=..., **ctx)``; templates extend
  ``base.html`` (header, menu, messages) and use the macros of ``_ui.html``: ``csrf_field()``
  inside every ``<form method="post">``, ``empty(text)`` for empty states, ``pager(next)``.
  ``fragment(request, "_part.html", ...)`` answers htmx requests without the layout; htmx
  POSTs carry the token through ``hx-headers`` set once on ``<body>``.
* After a change, ``flash(request, "Done.")`` then ``return back(request, "/app/...")``
  (303). An error a service raises (``DomainError``, ``ApiProblem``) that the route does not
  catch becomes a page in plain words (``plain_words``) with the API's status; catch it and
  ``flash(request, plain_words(e), "error")`` to show it on the form's page instead.
* Add the menu entry with ``NAV.append(NavItem(label, "/app/x", has_scope("...")))``.
* No inline ``<script>`` or ``style=`` attribute: the Content-Security-Policy allows this
  origin's files only. Behaviour goes in ``static/app.js`` (data attributes), styles in
  ``static/app.css``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from vanta.bootstrap import Container
from vanta.domain.errors import DomainError
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.web import (
    routes_auth,
    routes_billing,
    routes_branding,
    routes_followers,
    routes_onboarding,
    routes_operations,
    routes_orders,
    routes_portal,
    routes_replay,
    routes_studio,
    routes_vaults,
)
from vanta.entrypoints.web.middleware import WebSessionMiddleware
from vanta.entrypoints.web.pages import (
    HERE,
    NAV,
    CsrfRefused,
    PageNotFound,
    SignInRequired,
    current_principal,
    error_page,
)
from vanta.entrypoints.web.session import Signer, session_key

__all__ = ["PAGE_MODULES", "mount"]

PAGE_MODULES: list[Any] = [routes_auth, routes_vaults, routes_followers, routes_orders,
                           routes_replay, routes_operations, routes_portal, routes_billing,
                           routes_onboarding, routes_branding, routes_studio]


def build_web_app(container: Container) -> FastAPI:
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.state.container = container
    web.state.signer = Signer(session_key(container.settings))
    web.state.dev_codes = {}  # the built-in issuer's one-time authorization codes
    web.add_middleware(WebSessionMiddleware, signer=web.state.signer,
                       idle_seconds=container.settings.web_session_idle_minutes * 60)
    for exc in (SignInRequired, PageNotFound, CsrfRefused, DomainError, ApiProblem):
        web.add_exception_handler(exc, _handle)
    web.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    web.include_router(routes_auth.open_router)
    web.include_router(routes_onboarding.open_router)
    for module in PAGE_MODULES:
        web.include_router(module.router)

    @web.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        p = current_principal(request)
        if p is None:
            return RedirectResponse("/app/login", status_code=303)
        first = next((n.href for n in NAV if n.visible(p)), "/app/vaults")
        return RedirectResponse(first, status_code=303)

    return web


async def _handle(request: Request, exc: Exception) -> Response:
    return error_page(request, exc)


def mount(app: FastAPI, container: Container) -> None:
    """Serves the web app under ``/app`` of ``app``; ``/`` leads there."""
    app.mount("/app", build_web_app(container))

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/app", status_code=303)
